"""Compress a Hugging Face Llama checkpoint into llmaccel's packed format, layer by layer.

Pipeline per decoder layer (prune-then-quantize, as SparseGPT/Wanda do):
N:M mask (magnitude or Wanda) -> quantization of the kept weights (RTN or
GPTQ) under the recipe's or the allocator's bit width -> packing
(sparse_dsp.packed_format) -> one safetensors shard written at once. Only
one layer's weights are in memory at a time, so a 7B checkpoint compresses
in a few GB. The artifact is a directory: shards plus a manifest with schema
version, content hashes, the recipe and the mixed-precision allocation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from mapping import llama_math as lm
from mapping.artifact_io import ArtifactError, check_artifact_dest, read_manifest, write_artifact
from mapping.calibration import LINEAR_PATHS, LayerCapture, InputStats, calibration_tokens, layer_forward
from mapping.checkpoint import SafetensorsCheckpoint
from mapping.mixed_precision import allocate_bits, layer_sensitivity
from mapping.prune import nm_mask, prune_scores
from mapping.quantize import quantize_gptq, quantize_rtn
from mapping.recipe import LayerRule, Recipe
from sparse_dsp.errors import LlmaccelError
from sparse_dsp.packed_format import FORMAT_VERSION, LayerFormat, PackedLinear

SCHEMA = "llmaccel.compressed_model"
SCHEMA_VERSION = 2   # 2: content_hash covers the whole manifest (metadata too), timings outside it
CALIB_SEQ_LEN = 256
LinearWeight = Union[PackedLinear, np.ndarray]
ProgressFn = Callable[[str], None]


@dataclass
class CompressedModel:
    """A compressed Llama: packed (or FP32) linears plus the small FP tensors, and what was done."""

    config: dict
    recipe: Recipe
    linears: dict[str, LinearWeight]          # "layers.3.mlp.down_proj", "lm_head"
    tensors: dict[str, np.ndarray]            # "embed_tokens" (fp16), norms (fp32)
    stats: dict = field(default_factory=dict)
    path: Optional[Path] = None

    @property
    def shape(self) -> lm.ModelSpec:
        return lm.shape_from_config(self.config)

    @property
    def content_hash(self) -> Optional[str]:
        return self.stats.get("content_hash")


def _layer_key(i: int, leaf: str) -> str:
    return f"layers.{i}.{LINEAR_PATHS[leaf]}"


def _hf_name(key: str) -> str:
    return "lm_head.weight" if key == "lm_head" else f"model.{key}.weight"


def _validate_recipe_for_shape(recipe: Recipe, shape: lm.ModelSpec) -> None:
    dims = {"q_proj": (shape.num_heads * shape.head_dim, shape.hidden_size),
            "o_proj": (shape.hidden_size, shape.num_heads * shape.head_dim),
            "gate_proj": (shape.intermediate_size, shape.hidden_size),
            "down_proj": (shape.hidden_size, shape.intermediate_size)}
    for leaf, (o, k) in dims.items():
        rule = recipe.rule_for(leaf)
        if rule.bits is not None:
            rule.layer_format(o, k)  # raises naming group_size / N:M and the dimension
        elif rule.nm is not None and k % rule.nm[1]:
            raise LlmaccelError(f"N:M pattern {rule.nm[0]}:{rule.nm[1]} does not divide {leaf} in_features={k}")
    if recipe.lm_head_bits is not None:
        LayerFormat(shape.vocab_size, shape.hidden_size, recipe.lm_head_bits, recipe.attn.group_size, True, None)


def compress_linear(weight: torch.Tensor, rule: LayerRule, bits: Optional[int],
                    stats: Optional[InputStats]) -> LinearWeight:
    """One linear: prune, then quantize. Returns the stored weight (packed, or FP32 if bits is None)."""
    keep = None
    if rule.nm is not None:
        n, m = rule.nm
        keep = nm_mask(prune_scores(weight, rule.prune_method, None if stats is None else stats.col_norm), n, m)
    if bits is None:
        w = weight if keep is None else weight * keep
        return w.numpy().astype(np.float32)
    fmt = rule.layer_format(*weight.shape, bits=bits)
    if rule.method == "gptq":
        if stats is None:
            raise LlmaccelError("method='gptq' needs calibration activations")
        return quantize_gptq(weight, stats.hessian, fmt, keep)
    return quantize_rtn(weight, fmt, keep)


def compress_checkpoint(checkpoint_dir: str | Path, recipe: Recipe, out_dir: str | Path,
                        calibration: Optional[Union[str, list[int]]] = None,
                        progress: Optional[ProgressFn] = None, force: bool = False) -> dict:
    """Compress ``checkpoint_dir`` with ``recipe`` into the artifact ``out_dir``; returns its stats.

    ``calibration`` is text (tokenized with the checkpoint's tokenizer) or token ids.

    Shards are written as each layer finishes; the directory appears under its
    final name only when complete (mapping.artifact_io). An existing non-empty ``out_dir`` is
    refused unless ``force`` is given and it is a compressed-model artifact.
    """
    say = progress or (lambda msg: None)
    check_artifact_dest(out_dir, SCHEMA, force)
    ckpt = SafetensorsCheckpoint(checkpoint_dir)     # every header and tensor checked against config.json
    shape = ckpt.spec
    _validate_recipe_for_shape(recipe, shape)
    t0 = time.perf_counter()
    freqs = lm.inv_freq(shape)

    x = None
    if recipe.needs_calibration:
        if calibration is None:
            raise LlmaccelError(f"recipe '{recipe.name}' needs calibration text (GPTQ, Wanda or mixed precision)")
        tokens = calibration_tokens(str(checkpoint_dir), calibration, recipe.calibration_tokens,
                                    min(CALIB_SEQ_LEN, shape.max_position_embeddings))
        embed = torch.from_numpy(ckpt.get("model.embed_tokens.weight"))
        x = embed[tokens]
        del embed

    def layer_weights(i: int) -> dict[str, torch.Tensor]:
        w = {leaf: torch.from_numpy(ckpt.get(f"model.layers.{i}.{path}.weight")) for leaf, path in LINEAR_PATHS.items()}
        for norm in ("input_layernorm", "post_attention_layernorm"):
            w[norm] = torch.from_numpy(ckpt.get(f"model.layers.{i}.{norm}.weight"))
        return w

    if recipe.mixed_avg_bits is not None and not recipe.layer_bits:
        say(f"mixed precision: measuring sensitivity of {shape.num_layers * 7} linears")
        sens, sizes = {}, {}
        xs = x.clone()
        for i in range(shape.num_layers):
            w = layer_weights(i)
            cap = LayerCapture()
            xs = layer_forward(xs, w, shape, freqs, cap)
            st = cap.stats()
            for leaf in LINEAR_PATHS:
                rule = recipe.rule_for(leaf)
                keep = None
                if rule.nm is not None:
                    keep = nm_mask(prune_scores(w[leaf], rule.prune_method, st[leaf].col_norm), *rule.nm)
                key = _layer_key(i, leaf)
                sens[key] = layer_sensitivity(w[leaf], rule, st[leaf], keep)
                n_kept = w[leaf].numel() if keep is None else int(keep.sum())
                sizes[key] = n_kept
        alloc = allocate_bits(sens, sizes, recipe.mixed_avg_bits)
        recipe = recipe.with_layer_bits(alloc)
        say("mixed precision: allocated " + ", ".join(f"{b}-bit x{list(alloc.values()).count(b)}"
                                                       for b in sorted(set(alloc.values()))))
        sensitivity = {k: {str(b): v for b, v in d.items()} for k, d in sens.items()}
    else:
        sensitivity = None

    layer_formats: dict[str, Optional[dict]] = {}
    n_dense = n_kept = code_bits = storage_bytes = 0

    def record(key: str, wt: LinearWeight, o: int, k: int, decoder: bool) -> None:
        nonlocal n_dense, n_kept, code_bits, storage_bytes
        if isinstance(wt, PackedLinear):
            f = wt.fmt
            layer_formats[key] = {"bits": f.bits, "group_size": f.group_size, "symmetric": f.symmetric,
                                  "nm": list(f.nm) if f.nm else None, "out_features": o, "in_features": k}
            kept, bits, nbytes = f.kept_per_row * o, f.bits, f.total_bytes
        else:
            layer_formats[key] = {"bits": None, "out_features": o, "in_features": k}
            kept, bits, nbytes = int(np.count_nonzero(wt)), 32, wt.nbytes
        if decoder:
            n_dense += o * k
            n_kept += kept
            code_bits += kept * bits
            storage_bytes += nbytes

    def write_files(tmp: Path) -> None:
        nonlocal x
        embed = ckpt.get("model.embed_tokens.weight")
        # FP16 embeddings on the accelerator path (docs/numerics.md section 1); FP32 when nothing is quantized
        embed_dtype = np.float16 if recipe.quantized else np.float32
        save_file({"embed_tokens": embed.astype(embed_dtype)}, str(tmp / "embed.safetensors"))
        del embed
        for i in range(shape.num_layers):
            say(f"layer {i + 1}/{shape.num_layers}")
            w = layer_weights(i)
            st = None
            if x is not None:
                cap = LayerCapture()
                layer_forward(x, w, shape, freqs, cap)
                st = cap.stats()
            shard: dict[str, np.ndarray] = {
                "input_layernorm": w["input_layernorm"].numpy(),
                "post_attention_layernorm": w["post_attention_layernorm"].numpy()}
            dense_after = dict(w)
            for leaf in LINEAR_PATHS:
                key = _layer_key(i, leaf)
                stored = compress_linear(w[leaf], recipe.rule_for(leaf), recipe.bits_for(key),
                                         None if st is None else st[leaf])
                if x is not None:  # the next layer is calibrated on what this compressed layer outputs
                    dense_after[leaf] = torch.from_numpy(dense_weight(stored))
                o, k = w[leaf].shape
                record(key, stored, o, k, True)
                if isinstance(stored, PackedLinear):
                    for name, arr in stored.arrays().items():
                        shard[f"{LINEAR_PATHS[leaf]}.{name}"] = arr
                else:
                    shard[f"{LINEAR_PATHS[leaf]}.weight"] = stored
            del w
            save_file(shard, str(tmp / f"layer_{i:03d}.safetensors"))
            if x is not None:
                x = layer_forward(x, dense_after, shape, freqs)
            del dense_after, shard
        head_name = "lm_head.weight" if "lm_head.weight" in ckpt else "model.embed_tokens.weight"
        head = torch.from_numpy(ckpt.get(head_name))
        head_shard = {"norm": ckpt.get("model.norm.weight")}
        if recipe.lm_head_bits is not None:
            fmt = LayerFormat(head.shape[0], head.shape[1], recipe.lm_head_bits, recipe.attn.group_size, True, None)
            packed = quantize_rtn(head, fmt)
            record("lm_head", packed, *head.shape, False)
            head_shard.update({f"lm_head.{k}": v for k, v in packed.arrays().items()})
        else:
            record("lm_head", head.numpy(), *head.shape, False)
            head_shard["lm_head.weight"] = head.numpy()
        save_file(head_shard, str(tmp / "head.safetensors"))

    stats: dict = {}
    timings: dict = {}

    def finish(tmp: Path) -> None:
        write_files(tmp)
        stats.update({
            "avg_bits": (code_bits / n_kept) if recipe.quantized else 32.0,
            "storage_bits_per_weight": 8.0 * storage_bytes / n_dense,
            "sparsity": 1.0 - n_kept / n_dense,
            "decoder_weight_bytes": storage_bytes,
        })
        timings["compress_seconds"] = time.perf_counter() - t0

    meta = {"config": ckpt.config, "recipe": recipe.to_dict(), "layer_formats": layer_formats,
            "packed_format_version": FORMAT_VERSION, "stats": stats, "sensitivity": sensitivity,
            "num_layers": shape.num_layers}
    path = write_artifact(out_dir, SCHEMA, SCHEMA_VERSION, meta, finish, force=force, timings=timings)
    manifest = read_manifest(path, SCHEMA, SCHEMA_VERSION, verify=False)
    return {**manifest["stats"], **manifest["timings"], "content_hash": manifest["content_hash"], "path": str(path),
            "layer_bits": recipe.layer_bits}


def load_compressed(path: str | Path, verify: bool = True) -> CompressedModel:
    """Load an artifact written by :func:`compress_checkpoint`, refusing corrupted or mismatched ones."""
    path = Path(path)
    man = read_manifest(path, SCHEMA, SCHEMA_VERSION, verify=verify)
    if man.get("packed_format_version") != FORMAT_VERSION:
        raise ArtifactError(f"artifact '{path}' uses packed format version {man.get('packed_format_version')}, "
                            f"this llmaccel reads version {FORMAT_VERSION}")
    recipe = Recipe.from_dict(man["recipe"])
    try:
        tensors = {"embed_tokens": load_file(str(path / "embed.safetensors"))["embed_tokens"]}
        head = load_file(str(path / "head.safetensors"))
        shards = [load_file(str(path / f"layer_{i:03d}.safetensors")) for i in range(man["num_layers"])]
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise ArtifactError(f"artifact '{path}' could not be read: {exc}") from None
    tensors["norm"] = head["norm"]
    linears: dict[str, LinearWeight] = {}

    def build(key: str, arrays: dict[str, np.ndarray]) -> LinearWeight:
        f = man["layer_formats"][key]
        if f["bits"] is None:
            return arrays["weight"]
        fmt = LayerFormat(f["out_features"], f["in_features"], f["bits"], f["group_size"], f["symmetric"],
                          tuple(f["nm"]) if f["nm"] else None)
        return PackedLinear(fmt, arrays["codes"], arrays["indices"], arrays["scales"], arrays.get("zeros"))

    for i, shard in enumerate(shards):
        for norm in ("input_layernorm", "post_attention_layernorm"):
            tensors[f"layers.{i}.{norm}"] = shard[norm]
        for leaf, p in LINEAR_PATHS.items():
            key = f"layers.{i}.{p}"
            linears[key] = build(key, {k[len(p) + 1:]: v for k, v in shard.items() if k.startswith(p + ".")})
    linears["lm_head"] = build("lm_head", {k[len("lm_head."):]: v for k, v in head.items() if k.startswith("lm_head.")})
    stats = dict(man["stats"], content_hash=man["content_hash"])
    return CompressedModel(man["config"], recipe, linears, tensors, stats, path)


def dense_weight(w: LinearWeight) -> np.ndarray:
    """FP32 dense weight [O, K] of a stored linear (what the codes stand for)."""
    return w.dense_float() if isinstance(w, PackedLinear) else np.asarray(w, np.float32)


