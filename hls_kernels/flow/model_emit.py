"""Emit the HLS kernels of a user's compressed model on a user's design (`llmaccel hls emit --compressed`).

What crosses in is typed data (``ModelForEmit``), built by the caller from a compressed artifact,
so this package never reaches into mapping's objects. What comes out is one directory:

- ``layer_<name>/``: the decoder-layer top for each distinct set of layer formats, its golden
  vectors computed by ``simulator.golden`` on the model's own weights and norms, with the
  embeddings of real tokens as inputs and the host's RoPE tables;
- ``<kernel>/``: a linear MV kernel for each distinct projection format, its golden vectors on
  the first projection of the model that has that format;
- ``weight_decode_stream_<...>/``: the streaming weight decoder for each distinct format;
- ``project.json``: which projects were written, for which layers and projections, from which
  artifact, on which design.

Each HLS DSP cascade is the longest <= 8 that divides a group's kept values (``configs.hls_chain``):
a design's longer RTL chain (FlightLLM's 16) is two such cascades joined by its adder tree.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from llmaccel.hls_kernels.configs import (PROJECTIONS, HlsConfigError, LinearKernelConfig, hls_chain,
                                 layer_config_from_packed)
from llmaccel.hls_kernels.flow.vectors import layer_case, linear_case
from llmaccel.hls_kernels.flow.writer import _is_our_project, write_project
from llmaccel.sparse_dsp.packed_format import PackedLinear
from llmaccel.sparse_dsp.safe_paths import write_dir_atomically


@dataclass(frozen=True)
class ModelLayer:
    """One decoder layer of the user's model: its seven packed projections and two norm weights."""

    index: int
    projections: dict[str, PackedLinear]
    input_norm: np.ndarray
    post_norm: np.ndarray


@dataclass(frozen=True)
class ModelForEmit:
    """What the emitter needs of a compressed model, as plain data."""

    name: str
    content_hash: Optional[str]
    heads: int
    kv_heads: int
    head_dim: int
    rms_norm_eps: float
    layers: tuple[ModelLayer, ...]
    inputs: np.ndarray          # [steps, hidden] FP32: embeddings of real tokens, one per decode step
    rope_cos: np.ndarray        # [positions, head_dim] FP32, the host's tables (rope_scaling included)
    rope_sin: np.ndarray


@dataclass(frozen=True)
class DesignForEmit:
    """What the emitter needs of a design."""

    name: str
    device: str
    clock_MHz: float
    chain_len: int
    supported_nm: tuple[str, ...]


def _nm_text(nm) -> str:
    return "dense" if nm is None else f"{nm[0]}:{nm[1]}"


def _check_design_supports(model: ModelForEmit, design: DesignForEmit) -> None:
    bad = sorted({f"{layer.index}.{p}={_nm_text(w.fmt.nm)}" for layer in model.layers
                  for p, w in layer.projections.items() if _nm_text(w.fmt.nm) not in design.supported_nm})
    if bad:
        raise HlsConfigError(f"design '{design.name}' supports N:M {list(design.supported_nm)}; the model uses "
                             f"others in {bad[:6]}{' ...' if len(bad) > 6 else ''}")


def emit_model(model: ModelForEmit, design: DesignForEmit, out_dir: str | os.PathLike, *, seq_max: int = 64,
               seed: int = 0, overwrite: bool = False) -> dict:
    """Write the model's HLS projects under ``out_dir`` (atomically) and return the index."""
    if not model.layers:
        raise HlsConfigError("the compressed model has no decoder layers to emit")
    _check_design_supports(model, design)
    steps = model.inputs.shape[0]
    if not 1 <= steps <= seq_max or model.rope_cos.shape[0] < steps:
        raise HlsConfigError(f"{steps} input steps must be in 1..seq_max={seq_max} and covered by the RoPE tables")
    provenance = {"source": "compressed model", "model": model.name, "content_hash": model.content_hash,
                  "design": design.name}
    index: dict = {"name": model.name, "family": "model", "top": "decoder_layer_top", "design": design.name,
                   "device": design.device, "clock_MHz": design.clock_MHz, "content_hash": model.content_hash,
                   "layers": [], "linear": [], "decoders": []}

    def build(tmp: Path) -> None:
        layer_projects: dict[str, list[int]] = {}
        for layer in model.layers:
            cfg = layer_config_from_packed(layer.projections, model.heads, model.kv_heads, model.head_dim, seq_max,
                                           chain=design.chain_len)
            if cfg.name in layer_projects:
                layer_projects[cfg.name].append(layer.index)
                continue
            layer_projects[cfg.name] = [layer.index]
            case = layer_case(cfg, layer.projections, layer.input_norm, layer.post_norm, model.rms_norm_eps,
                              model.inputs, model.rope_cos, model.rope_sin)
            write_project(cfg, tmp / cfg.name, device=design.device, clock_mhz=design.clock_MHz, case=case,
                          provenance=dict(provenance, layer=layer.index, inputs=f"embeddings of {steps} tokens"))
        index["layers"] = [{"project": n, "layers": idx} for n, idx in layer_projects.items()]
        linear: dict[str, list[str]] = {}
        decoders: dict[str, list[str]] = {}
        for layer in model.layers:
            for pname in PROJECTIONS:
                w = layer.projections[pname]
                f = w.fmt
                chain = hls_chain(f.kept_per_group, design.chain_len)
                where = f"layers.{layer.index}.{pname}"
                for kind, seen in (("mv", linear), ("decode_stream", decoders)):
                    cfg = LinearKernelConfig(kind, f.bits, f.nm, f.group_size, f.in_features, f.out_features,
                                             f.symmetric, chain)
                    if cfg.name in seen:
                        seen[cfg.name].append(where)
                        continue
                    seen[cfg.name] = [where]
                    write_project(cfg, tmp / cfg.name, device=design.device, clock_mhz=design.clock_MHz,
                                  case=linear_case(cfg, w, seed),
                                  provenance=dict(provenance, weights=where, inputs=f"seeded random (seed {seed})"))
        index["linear"] = [{"project": n, "projections": p} for n, p in linear.items()]
        index["decoders"] = [{"project": n, "projections": p} for n, p in decoders.items()]
        index["projects"] = sorted([*layer_projects, *linear, *decoders])
        (tmp / "project.json").write_text(json.dumps(index, indent=2) + "\n")

    write_dir_atomically(out_dir, build, "--out", overwrite, _is_our_model_project, "HLS model project")
    return index


def _is_our_model_project(path: Path) -> "str | None":
    """None when ``path`` is a directory :func:`emit_model` wrote (each subproject one of ours), else why not."""
    try:
        meta = json.loads((path / "project.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "it has no readable project.json"
    if not isinstance(meta, dict) or meta.get("family") != "model" or not isinstance(meta.get("projects"), list):
        return "its project.json is not one `llmaccel hls emit --compressed` writes"
    extra = sorted(set(os.listdir(path)) - {"project.json", *map(str, meta["projects"])})
    if extra:
        return "it holds files llmaccel did not write: " + ", ".join(extra[:8])
    for sub in meta["projects"]:
        why = _is_our_project(path / str(sub))
        if why:
            return f"{sub}: {why}"
    return None
