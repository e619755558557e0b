"""The compiled-program artifact: one writer for `llmaccel compile` and for host sessions.

Layout (schema ``llmaccel.compiled_program`` v2, written through
``mapping.artifact_io``: temporary name + rename, every file hashed):

* ``programs.bin``: the ISA words (uint32, little-endian) of every program, back to back;
* ``programs.json``: the index (phase, context length, tokens, per-core word offset/count)
  and which program serves each decode / prefill bucket and the head;
* ``placement.json``: every tensor's HBM channels and channel-local address range;
* the manifest: model, design, recipe, max_len, bucket sizes and whatever the caller adds.

Programs are layer templates, one per length bucket (length-adaptive compilation);
identical programs (same phase, context and tokens) are stored once.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from mapping.artifact_io import check_artifact_dest, write_artifact

SCHEMA = "llmaccel.compiled_program"
SCHEMA_VERSION = 2   # 2: content_hash covers the whole manifest (metadata too), timings outside it


def encode_bucket_programs(comp: Any) -> tuple[list[dict], np.ndarray, dict]:
    """Every program a session may run, encoded: (index, words, bucket table)."""
    from simulator.isa import encode

    index: list[dict] = []
    chunks: list[np.ndarray] = []
    seen: dict[tuple, int] = {}
    offset = 0

    def add(prog: Any) -> int:
        nonlocal offset
        key = (prog.phase, prog.ctx_len, prog.tokens)
        if key in seen:
            return seen[key]
        seen[key] = len(index)
        entry = {"id": len(index), "phase": prog.phase, "ctx_len": prog.ctx_len, "tokens": prog.tokens, "cores": {}}
        for core, instrs in sorted(comp.isa_streams(prog).items()):
            words = encode(instrs)
            chunks.append(words)
            entry["cores"][str(core)] = {"word_offset": int(offset), "n_words": int(len(words)),
                                         "n_instructions": len(instrs)}
            offset += len(words)
        index.append(entry)
        return seen[key]

    head = add(comp.head_program())
    decode = {str(b): add(comp.layer_program("decode", b, 1))
              for b in range(comp.decode_bucket, comp.max_len + 1, comp.decode_bucket)}
    prefill = {str(b): [add(p) for p in comp.prefill_programs(b)]
               for b in range(comp.prefill_bucket, comp.max_len + 1, comp.prefill_bucket)}
    words = np.concatenate(chunks).astype("<u4") if chunks else np.zeros(0, "<u4")
    table = {"programs": index, "decode_buckets": decode, "prefill_buckets": prefill, "head": head}
    return index, words, table


def write_compiled_artifact(comp: Any, out: str | Path, meta: dict[str, Any], storage: bool = False,
                            extra_files: Optional[Callable[[Path], None]] = None,
                            force: bool = False) -> dict[str, Any]:
    """Encode ``comp``'s bucket programs and write the artifact; returns a summary for the CLI.

    ``out`` is checked before any work: an existing non-empty directory is refused unless ``force``
    is given and it is a compiled-program artifact (mapping.artifact_io)."""
    check_artifact_dest(out, SCHEMA, force)
    index, words, table = encode_bucket_programs(comp)
    report = comp.storage_report() if storage else None

    def write(tmp: Path) -> None:
        (tmp / "programs.bin").write_bytes(words.tobytes())
        (tmp / "programs.json").write_text(json.dumps(table))
        (tmp / "placement.json").write_text(json.dumps(comp.placement.to_dict()))
        if extra_files is not None:
            extra_files(tmp)

    full_meta = {"model": comp.spec.name, "max_len": comp.max_len, "decode_bucket": comp.decode_bucket,
                 "prefill_bucket": comp.prefill_bucket, "n_cores": comp.hw.n_cores,
                 "weight_bytes": comp.f.weight_bytes, "instruction_words": int(words.size), "storage": report,
                 **meta}
    path = write_artifact(out, SCHEMA, SCHEMA_VERSION, full_meta, write, force=force)
    return {"artifact": str(path), "programs": len(index), "instruction_words": int(words.size),
            "decode_buckets": len(table["decode_buckets"]), "prefill_buckets": len(table["prefill_buckets"]),
            "storage": report, "hbm_bytes_placed": comp.placement.bytes_used}
