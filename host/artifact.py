"""Compiled artifacts: what a session loads, and runs exactly as stored.

The artifact is the one ``llmaccel compile`` writes (schema ``llmaccel.compiled_program``,
``mapping.compiled_artifact``): the ISA words of every bucket program with their debug names,
the HBM placement, the on-chip layout and the layer base registers, plus a manifest naming
the design, ``max_len`` and bucket sizes. When a session's flow compiles it
(:func:`compile_artifact`) the manifest also names the compressed model it was compiled from
(``compressed_model.content_hash``) and the tokenizer files are copied in, so a session needs
nothing else.

At load time nothing is recompiled: the stored words are decoded (a corrupt word is refused
then) and are what the engines execute; the compressed model supplies the weights the host
writes into the placed regions, and must be the one the artifact names (content hash).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from llmaccel.host.errors import SessionError
from llmaccel.mapping.artifact_io import ArtifactError, design_from_manifest, design_matches, design_record, read_manifest
from llmaccel.mapping.compiled_artifact import SCHEMA, SCHEMA_VERSION, read_compiled_model, write_compiled_artifact
from llmaccel.mapping.compress import CompressedModel, load_compressed
from llmaccel.mapping.sim_api import build_compiler
from llmaccel.simulator.compiled import CompiledModel

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "tokenizer.model")


@dataclass
class CompiledArtifact:
    path: Optional[Path]
    manifest: dict
    compressed: CompressedModel
    model: CompiledModel           # the programs (ISA words) and what the host knows around them
    design: Any                    # simulator.design.AcceleratorDesign
    device: Any

    @property
    def comp(self) -> CompiledModel:
        return self.model

    @property
    def programs(self) -> dict:
        """(phase, ctx_len, tokens, layer_group) -> {core: words}, as stored."""
        return {k: {st.core: st.words for st in p.cores} for k, p in self.model.programs.items()}

    @property
    def max_len(self) -> int:
        return int(self.model.max_len)

    @property
    def design_name(self) -> str:
        return self.design.name

    @property
    def tokenizer_dir(self) -> Optional[Path]:
        if self.path is not None and (self.path / "tokenizer.json").is_file():
            return self.path
        return None


def compile_artifact(compressed: Union[str, Path, CompressedModel], out_dir: Union[str, Path],
                     design: str = "flightllm-u280", max_len: Optional[int] = None,
                     tokenizer_dir: Optional[Union[str, Path]] = None) -> Path:
    """Compile a compressed model for ``design`` into the artifact ``out_dir`` (llmaccel compile's format,
    plus the compressed model's content hash and the tokenizer)."""
    cm = compressed if isinstance(compressed, CompressedModel) else load_compressed(compressed)
    if cm.path is None or cm.content_hash is None:
        raise SessionError("the compressed model has no artifact path/content hash: load it with "
                           "llmaccel.mapping.compress.load_compressed so the compiled artifact can name it")
    comp, d, dev = build_compiler(cm, design, max_len=max_len or default_max_len(cm))
    tok_src = Path(tokenizer_dir) if tokenizer_dir else None
    meta = {**design_record(d), "device": dev.name, "recipe": cm.recipe.name,
            "compressed_model": {"path": str(Path(cm.path).resolve()), "content_hash": cm.content_hash}}

    def copy_tokenizer(tmp: Path) -> None:
        if tok_src is not None:
            for name in TOKENIZER_FILES:
                if (tok_src / name).is_file():
                    shutil.copyfile(tok_src / name, tmp / name)

    return Path(write_compiled_artifact(comp, out_dir, meta, storage=False, extra_files=copy_tokenizer)["artifact"])


def default_max_len(cm: CompressedModel) -> int:
    """The longest multiple of the prefill bucket (128) the model's positions allow, at most 2048."""
    from llmaccel.mapping.compiler import DEFAULT_MAX_LEN, PREFILL_BUCKET
    n = min(DEFAULT_MAX_LEN, cm.shape.max_position_embeddings) // PREFILL_BUCKET * PREFILL_BUCKET
    return max(PREFILL_BUCKET, n)


def load_artifact(path: Union[str, Path], compressed: Optional[Union[str, Path, CompressedModel]] = None,
                  design: Optional[str] = None) -> CompiledArtifact:
    """Load a compiled artifact as stored.

    ``design`` (a preset name or a design YAML) must be the design it was compiled for (the manifest
    stores the design itself, ``mapping.artifact_io.design_record``); ``compressed`` (default: the one the
    manifest names) must have the content hash it was compiled from.
    """
    from llmaccel.simulator.specs.device import load_device
    from llmaccel.simulator.specs.model import model_spec_from_hf_config
    from llmaccel.simulator.timing_params import hw_from_design
    path = Path(path)
    man = read_manifest(path, SCHEMA, SCHEMA_VERSION, verify=True)
    if design is not None and not design_matches(man, design):
        raise ArtifactError(f"artifact '{path}' was compiled for design '{man.get('design')}', the session asks "
                            f"for design '{design}'; recompile it for '{design}'")
    named = man.get("compressed_model") or {}
    if compressed is None:
        if not named.get("path"):
            raise ArtifactError(f"artifact '{path}' does not name the compressed model it was compiled from; "
                                "give it (--compressed DIR / Session.load(..., compressed=DIR))")
        compressed = named["path"]
    cm = compressed if isinstance(compressed, CompressedModel) else load_compressed(compressed)
    want = named.get("content_hash")
    if want is not None and cm.content_hash != want:
        raise ArtifactError(f"artifact '{path}' was compiled from the compressed model with content_hash "
                            f"{want[:16]}..., the given one has content_hash {str(cm.content_hash)[:16]}...; "
                            "recompile the artifact from this compressed model")
    d = design_from_manifest(man, path)
    dev = load_device(d.device)
    spec = model_spec_from_hf_config(cm.config, name=str(man.get("model") or "compressed"))
    model = read_compiled_model(path, spec, hw_from_design(d, dev))
    return CompiledArtifact(path, man, cm, model, d, dev)


def compile_in_memory(cm: CompressedModel, design: str = "flightllm-u280",
                      max_len: Optional[int] = None) -> CompiledArtifact:
    """The same compilation without writing a directory (demo, benchmark, tests)."""
    comp, d, dev = build_compiler(cm, design, max_len=max_len or default_max_len(cm))
    man = {"design": d.name, "device": dev.name, "max_len": comp.max_len, "recipe": cm.recipe.name,
           "compressed_model": {"path": str(cm.path) if cm.path else None, "content_hash": cm.content_hash}}
    return CompiledArtifact(None, man, cm, comp.compile_model(), d, dev)
