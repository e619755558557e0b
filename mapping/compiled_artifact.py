"""The compiled-program artifact: one writer for `llmaccel compile` and host sessions, one reader.

Layout (schema ``llmaccel.compiled_program`` v3, written through ``mapping.artifact_io``:
temporary name + rename, every file hashed):

* ``programs.bin``: the ISA words (uint32, little-endian) of every program, back to back;
* ``programs.json``: the index (phase, context length, tokens, layer group, template layer, per
  core the word offset/count and the debug names) and which program serves each bucket and the head;
* ``placement.json``: every tensor's HBM region (``simulator.compiled.HbmRegion``: what the host
  writes where);
* ``compiled.json``: the rest of the ``CompiledModel`` (buckets, chunks, slices, buffer ids,
  on-chip vectors, layer base registers);
* the manifest: model, design, recipe, max_len, bucket sizes and whatever the caller adds.

An artifact runs exactly as stored: :func:`read_compiled_model` rebuilds the CompiledModel from
these files (no compiler involved) and decodes every program once, so a corrupt word is refused
at load (``simulator.isa.decode``) and any other stored word is what the engines execute.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from llmaccel.mapping.artifact_io import ArtifactError, check_artifact_dest, read_artifact_json, write_artifact
from llmaccel.simulator import isa
from llmaccel.simulator.compiled import (ActRegion, BufferIds, CompiledModel, CompiledProgram, CoreSlices, CoreStream,
                                HbmRegion)
from llmaccel.simulator.specs.model import ModelSpec
from llmaccel.simulator.timing_params import HwParams

SCHEMA = "llmaccel.compiled_program"
SCHEMA_VERSION = 3   # 3: the artifact is the CompiledModel (words + names + placement + layout), run as stored


def encode_programs(cm: CompiledModel) -> tuple[dict, np.ndarray]:
    """The program index and all words of a compiled model."""
    index: list[dict] = []
    chunks: list[np.ndarray] = []
    ids: dict = {}
    offset = 0
    for key, prog in cm.programs.items():
        entry = {"id": len(index), "phase": prog.phase, "ctx_len": prog.ctx_len, "tokens": prog.tokens,
                 "layer_group": prog.layer_group, "template_layer": prog.template_layer, "cores": {}}
        for st in prog.cores:
            chunks.append(np.asarray(st.words, "<u4"))
            entry["cores"][str(st.core)] = {"word_offset": int(offset), "n_words": int(len(st.words)),
                                            "n_instructions": len(st.names), "names": list(st.names)}
            offset += len(st.words)
        ids[key] = len(index)
        index.append(entry)
    words = np.concatenate(chunks).astype("<u4") if chunks else np.zeros(0, "<u4")
    n_groups = len(cm.layer_groups)
    table = {"programs": index, "head": ids.get(("head", 0, 1, -1)),
             "decode_buckets": {str(k[1]): ids[k] for k in cm.programs if k[0] == "decode" and k[3] == 0},
             "prefill_buckets": {str(b): [ids[("prefill", min(q0 + c, b), min(c, b - q0), 0)]
                                          for q0 in range(0, b, c)] for b, c in cm.prefill_chunks
                                 if ("prefill", min(c, b), min(c, b), 0) in cm.programs},
             "layer_groups": n_groups}
    return table, words


def model_json(cm: CompiledModel) -> dict[str, Any]:
    return {"max_len": cm.max_len, "decode_bucket": cm.decode_bucket, "prefill_bucket": cm.prefill_bucket,
            "kv_tile": cm.kv_tile, "prefill_chunks": [list(x) for x in cm.prefill_chunks],
            "layer_groups": [list(g) for g in cm.layer_groups], "slices": cm.slices.__dict__,
            "buffers": cm.buffers.__dict__, "act": [a.__dict__ for a in cm.act],
            "layer_base_lines": [list(r) for r in cm.layer_base_lines], "weight_bytes": cm.weight_bytes,
            "linear_macs": cm.linear_macs, "source": cm.source}


def write_compiled_artifact(comp: Any, out: str | Path, meta: dict[str, Any], storage: bool = False,
                            extra_files: Optional[Callable[[Path], None]] = None,
                            force: bool = False) -> dict[str, Any]:
    """Compile every program a session may run and write the artifact; returns a summary for the CLI.

    ``out`` is checked before any work: an existing non-empty directory is refused unless ``force``
    is given and it is a compiled-program artifact (mapping.artifact_io)."""
    check_artifact_dest(out, SCHEMA, force)
    cm = comp.compile_model()
    table, words = encode_programs(cm)
    report = comp.storage_report() if storage else None

    def write(tmp: Path) -> None:
        (tmp / "programs.bin").write_bytes(words.tobytes())
        (tmp / "programs.json").write_text(json.dumps(table))
        (tmp / "placement.json").write_text(json.dumps(cm.placement_dict()))
        (tmp / "compiled.json").write_text(json.dumps(model_json(cm)))
        if extra_files is not None:
            extra_files(tmp)

    full_meta = {"model": cm.spec.name, "max_len": cm.max_len, "decode_bucket": cm.decode_bucket,
                 "prefill_bucket": cm.prefill_bucket, "n_cores": cm.hw.n_cores,
                 "weight_bytes": cm.weight_bytes, "instruction_words": int(words.size), "storage": report,
                 **meta}
    path = write_artifact(out, SCHEMA, SCHEMA_VERSION, full_meta, write, force=force)
    return {"artifact": str(path), "programs": len(table["programs"]), "instruction_words": int(words.size),
            "decode_buckets": len(table["decode_buckets"]), "prefill_buckets": len(table["prefill_buckets"]),
            "storage": report, "hbm_bytes_placed": sum(r.bytes_per_channel * r.n_channels for r in cm.regions)}


def read_compiled_model(path: Path, spec: ModelSpec, hw: HwParams) -> CompiledModel:
    """The CompiledModel an artifact stores (``spec`` and ``hw``: the model and design it names)."""
    meta = read_artifact_json(path, "compiled.json")
    table = read_artifact_json(path, "programs.json")
    placement = read_artifact_json(path, "placement.json")
    if not all(isinstance(d, dict) for d in (meta, table, placement)):
        raise ArtifactError(f"artifact '{path}': compiled.json, programs.json and placement.json must each hold "
                            "a JSON object; recompile it")
    if placement.get("n_channels") != hw.hbm_channels or placement.get("n_cores") != hw.n_cores:
        raise ArtifactError(f"artifact '{path}' was placed for {placement.get('n_cores')} cores / "
                            f"{placement.get('n_channels')} channels; the design has {hw.n_cores} / {hw.hbm_channels}")
    words = np.frombuffer((path / "programs.bin").read_bytes(), dtype="<u4")
    programs = {}
    for e in table["programs"]:
        streams = []
        for c, v in sorted(e["cores"].items(), key=lambda kv: int(kv[0])):
            w = words[v["word_offset"]:v["word_offset"] + v["n_words"]]
            try:
                n = len(isa.decode(w))
            except isa.IsaError as exc:
                raise ArtifactError(f"artifact '{path}': the {e['phase']} program (context {e['ctx_len']}) of core "
                                    f"{c} does not decode: {exc}") from None
            if n != len(v["names"]):
                raise ArtifactError(f"artifact '{path}': program {e['id']} core {c} has {n} instructions and "
                                    f"{len(v['names'])} debug names")
            streams.append(CoreStream(int(c), w, tuple(v["names"])))
        prog = CompiledProgram(e["phase"], int(e["ctx_len"]), int(e["tokens"]), int(e["layer_group"]),
                               int(e["template_layer"]), tuple(streams))
        programs[prog.key] = prog
    return CompiledModel(
        spec=spec, hw=hw, max_len=int(meta["max_len"]), decode_bucket=int(meta["decode_bucket"]),
        prefill_bucket=int(meta["prefill_bucket"]), kv_tile=int(meta["kv_tile"]),
        prefill_chunks=tuple(tuple(x) for x in meta["prefill_chunks"]),
        layer_groups=tuple(tuple(g) for g in meta["layer_groups"]),
        slices=CoreSlices(**{k: tuple(v) for k, v in meta["slices"].items()}), buffers=BufferIds(**meta["buffers"]),
        act=tuple(ActRegion(**a) for a in meta["act"]), regions=tuple(HbmRegion(**r) for r in placement["regions"]),
        layer_base_lines=tuple(tuple(r) for r in meta["layer_base_lines"]), programs=programs,
        weight_bytes=int(meta["weight_bytes"]), linear_macs=int(meta["linear_macs"]), source=meta.get("source", ""))
