"""Compress a Hugging Face checkpoint of a supported family into llmaccel's packed format, layer by layer.

Pipeline per decoder layer (prune-then-quantize, as SparseGPT/Wanda do):
N:M mask (magnitude or Wanda) -> quantization of the kept weights (RTN or
GPTQ) under the recipe's or the allocator's bit width -> packing
(sparse_dsp.packed_format) -> one safetensors shard written at once. Only
one layer's weights are in memory at a time, so a 7B checkpoint compresses
in a few GB. The artifact is a directory: shards plus a manifest with schema
version, content hashes, the recipe and the mixed-precision allocation.

Calibrated recipes run each layer forward once (mapping.calibration): its
groups of linears are compressed where the forward reaches them, so every
group is calibrated on the output of the compressed groups before it, and
the same forward gives the next layer's input. Mixed precision adds one
dense forward per layer beforehand to measure sensitivities.

Names in the artifact are canonical, whatever the family (the family's tensor
paths stay in mapping.checkpoint): ``layers.{i}.self_attn.q_proj`` ...
``layers.{i}.mlp.down_proj`` (no gate_proj in a non-gated MLP), their
``.bias`` (FP32) where the family has biases, ``layers.{i}.input_layernorm``
/ ``post_attention_layernorm`` (+ ``.bias`` for LayerNorm), ``norm``
(+ ``norm.bias``), ``embed_tokens`` and ``embed_positions`` (learned
positions from position 0; FP16 with the embedding when quantized), ``lm_head``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from llmaccel.mapping import layer_math as lm
from llmaccel.mapping.artifact_io import ArtifactError, check_artifact_dest, read_manifest, write_artifact
from llmaccel.mapping.calibration import InputStats, LayerCapture, calibration_tokens, embed_inputs, layer_forward
from llmaccel.mapping.checkpoint import SafetensorsCheckpoint, layer_tensors, model_tensors
from llmaccel.mapping.mixed_precision import allocate_bits, layer_sensitivity
from llmaccel.mapping.prune import nm_mask, prune_scores
from llmaccel.mapping.quantize import GptqFactor, gptq_factor, quantize_gptq, quantize_rtn
from llmaccel.mapping.recipe import LayerRule, Recipe
from llmaccel.simulator.specs.model import ModelSpec
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import FORMAT_VERSION, LayerFormat, PackedLinear

SCHEMA = "llmaccel.compressed_model"
SCHEMA_VERSION = 2   # 2: content_hash covers the whole manifest (metadata too); any family since (new names only added)
CALIB_SEQ_LEN = 256
NORM_NAMES = ("input_layernorm", "post_attention_layernorm")
LinearWeight = Union[PackedLinear, np.ndarray]
ProgressFn = Callable[[str], None]


@dataclass
class CompressedModel:
    """A compressed decoder: packed (or FP32) linears plus the small FP tensors, and what was done."""

    config: dict
    recipe: Recipe
    linears: dict[str, LinearWeight]          # "layers.3.mlp.down_proj", "lm_head"
    tensors: dict[str, np.ndarray]            # "embed_tokens" (fp16), norms, biases (fp32), "embed_positions"
    stats: dict = field(default_factory=dict)
    path: Optional[Path] = None

    @property
    def shape(self) -> ModelSpec:
        return lm.shape_from_config(self.config)

    @property
    def content_hash(self) -> Optional[str]:
        return self.stats.get("content_hash")


def _layer_key(spec: ModelSpec, i: int, leaf: str) -> str:
    return f"layers.{i}.{spec.arch.linear_keys[leaf]}"


def _validate_recipe_for_shape(recipe: Recipe, shape: ModelSpec) -> None:
    for leaf, o, k in shape.linear_shapes():
        rule = recipe.rule_for(leaf)
        if rule.bits is not None:
            rule.layer_format(o, k)  # raises naming group_size / N:M and the dimension
        elif rule.nm is not None and k % rule.nm[1]:
            raise LlmaccelError(f"N:M pattern {rule.nm[0]}:{rule.nm[1]} does not divide {leaf} in_features={k}")
    if recipe.lm_head_bits is not None:
        LayerFormat(shape.vocab_size, shape.hidden_size, recipe.lm_head_bits, recipe.attn.group_size, True, None)


def compress_linear(weight: torch.Tensor, rule: LayerRule, bits: Optional[int],
                    stats: Optional[InputStats], dense_dtype: type = np.float32,
                    factor: Optional[GptqFactor] = None) -> LinearWeight:
    """One linear: prune, then quantize. Returns the stored weight (packed, or ``dense_dtype`` (FP32 or
    FP16) if bits is None). ``factor``: GPTQ's factor of ``stats.hessian``, when the caller shares one."""
    keep = None
    if rule.nm is not None:
        n, m = rule.nm
        keep = nm_mask(prune_scores(weight, rule.prune_method, None if stats is None else stats.col_norm), n, m)
    if bits is None:
        w = weight if keep is None else weight * keep
        return w.numpy().astype(dense_dtype)
    fmt = rule.layer_format(*weight.shape, bits=bits)
    if rule.method == "gptq":
        if stats is None:
            raise LlmaccelError("method='gptq' needs calibration activations")
        return quantize_gptq(weight, stats.hessian, fmt, keep, factor=factor)
    return quantize_rtn(weight, fmt, keep)


def dense_weight(w: LinearWeight) -> np.ndarray:
    """FP32 dense weight [O, K] of a stored linear (what the codes stand for)."""
    return w.dense_float() if isinstance(w, PackedLinear) else np.asarray(w, np.float32)


# ----------------------------------------------------------------------------- the steps
def _layer_weights(ckpt: SafetensorsCheckpoint, spec: ModelSpec, i: int) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in layer_tensors(ckpt, spec, i).items()}


def _calibration_input(ckpt: SafetensorsCheckpoint, spec: ModelSpec, recipe: Recipe, checkpoint_dir: Path,
                       calibration: Optional[Union[str, list[int]]]) -> Optional[torch.Tensor]:
    """The first layer's float64 input on the calibration tokens, or None if the recipe needs none."""
    if not recipe.needs_calibration:
        return None
    if calibration is None:
        raise LlmaccelError(f"recipe '{recipe.name}' needs calibration text (GPTQ, Wanda or mixed precision)")
    tokens = calibration_tokens(str(checkpoint_dir), calibration, recipe.calibration_tokens,
                                min(CALIB_SEQ_LEN, spec.max_context))
    t = model_tensors(ckpt, spec, head=False)
    pos = t.get("embed_positions")
    return embed_inputs(tokens, torch.from_numpy(t["embed_tokens"]), None if pos is None else torch.from_numpy(pos))


def _allocate_mixed_bits(ckpt: SafetensorsCheckpoint, spec: ModelSpec, recipe: Recipe, x: torch.Tensor,
                         say: ProgressFn) -> tuple[Recipe, dict]:
    """Mixed precision: one dense forward per layer measures each linear's sensitivity, then bits are allocated."""
    n_lin = spec.num_layers * len(spec.arch.leaves)
    say(f"mixed precision: measuring sensitivity of {n_lin} linears")
    sens, sizes = {}, {}
    for i in range(spec.num_layers):
        w = _layer_weights(ckpt, spec, i)
        cap = LayerCapture()
        x = layer_forward(x, w, spec, capture=cap)
        st = cap.stats()
        for leaf in spec.arch.leaves:
            rule = recipe.rule_for(leaf)
            keep = None
            if rule.nm is not None:
                keep = nm_mask(prune_scores(w[leaf], rule.prune_method, st[leaf].col_norm), *rule.nm)
            key = _layer_key(spec, i, leaf)
            sens[key] = layer_sensitivity(w[leaf], rule, st[leaf], keep)
            sizes[key] = w[leaf].numel() if keep is None else int(keep.sum())
    alloc = allocate_bits(sens, sizes, recipe.mixed_avg_bits)
    say("mixed precision: allocated " + ", ".join(f"{b}-bit x{list(alloc.values()).count(b)}"
                                                   for b in sorted(set(alloc.values()))))
    return recipe.with_layer_bits(alloc), {k: {str(b): v for b, v in d.items()} for k, d in sens.items()}


@dataclass
class _Tally:
    """Formats of the stored linears and the size/sparsity totals of the decoder layers."""

    layer_formats: dict[str, Optional[dict]] = field(default_factory=dict)
    n_dense: int = 0
    n_kept: int = 0
    code_bits: int = 0
    storage_bytes: int = 0

    def add(self, key: str, wt: LinearWeight, o: int, k: int, decoder: bool) -> None:
        if isinstance(wt, PackedLinear):
            f = wt.fmt
            self.layer_formats[key] = {"bits": f.bits, "group_size": f.group_size, "symmetric": f.symmetric,
                                       "nm": list(f.nm) if f.nm else None, "out_features": o, "in_features": k}
            kept, bits, nbytes = f.kept_per_row * o, f.bits, f.total_bytes
        else:
            self.layer_formats[key] = {"bits": None, "out_features": o, "in_features": k}
            kept, bits, nbytes = int(np.count_nonzero(wt)), 8 * wt.itemsize, wt.nbytes
        if decoder:
            self.n_dense += o * k
            self.n_kept += kept
            self.code_bits += kept * bits
            self.storage_bytes += nbytes

    def stats(self, recipe: Recipe) -> dict:
        return {"avg_bits": (self.code_bits / self.n_kept) if recipe.quantized else (16.0 if recipe.fp16_weights else 32.0),
                "storage_bits_per_weight": 8.0 * self.storage_bytes / self.n_dense,
                "sparsity": 1.0 - self.n_kept / self.n_dense, "decoder_weight_bytes": self.storage_bytes}


def _layer_shard(spec: ModelSpec, w: dict[str, torch.Tensor], stored: dict[str, LinearWeight]) -> dict[str, np.ndarray]:
    """One layer's shard by canonical name under the layer: norms (+ biases), linears, linear biases."""
    keys = spec.arch.linear_keys
    shard: dict[str, np.ndarray] = {}
    for name, t in w.items():
        leaf = name.removesuffix(".bias")
        if name in NORM_NAMES or leaf in NORM_NAMES:
            shard[name] = t.numpy()
        elif name.endswith(".bias"):
            shard[f"{keys[leaf]}.bias"] = t.numpy()
    for leaf, wt in stored.items():
        if isinstance(wt, PackedLinear):
            shard.update({f"{keys[leaf]}.{name}": arr for name, arr in wt.arrays().items()})
        else:
            shard[f"{keys[leaf]}.weight"] = wt
    return shard


def _compress_layer(i: int, w: dict[str, torch.Tensor], spec: ModelSpec, recipe: Recipe,
                    x: Optional[torch.Tensor], tally: _Tally) -> tuple[dict[str, np.ndarray], Optional[torch.Tensor]]:
    """Layer ``i``'s shard, and the next layer's calibration input (x through the compressed layer)."""
    stored: dict[str, LinearWeight] = {}

    def compress_group(group: str, leaves: tuple[str, ...], inp: Optional[torch.Tensor]) -> dict[str, torch.Tensor]:
        st = None if inp is None else InputStats.of(inp)
        gptq = [leaf for leaf in leaves if recipe.rule_for(leaf).method == "gptq"
                and recipe.bits_for(_layer_key(spec, i, leaf)) is not None]
        factor = gptq_factor(st.hessian) if st is not None and gptq else None   # one per shared input
        for leaf in leaves:
            stored[leaf] = compress_linear(w[leaf], recipe.rule_for(leaf), recipe.bits_for(_layer_key(spec, i, leaf)), st,
                                           np.float16 if recipe.fp16_weights else np.float32, factor)
        return {leaf: torch.from_numpy(dense_weight(stored[leaf])) for leaf in leaves}

    nxt = None
    if x is None:
        for leaves in spec.arch.groups().values():
            compress_group("", leaves, None)
    else:   # one forward: each group compressed on its input, then used compressed
        nxt = layer_forward(x, w, spec, on_group=compress_group)
    for leaf in spec.arch.leaves:
        tally.add(_layer_key(spec, i, leaf), stored[leaf], *w[leaf].shape, True)
    return _layer_shard(spec, w, {leaf: stored[leaf] for leaf in spec.arch.leaves}), nxt


def _write_embeddings(tmp: Path, ckpt: SafetensorsCheckpoint, spec: ModelSpec, recipe: Recipe) -> None:
    # FP16 embeddings (and learned positions) on the accelerator path (docs/numerics.md section 1);
    # FP32 when nothing is quantized, unless the weights are FP16
    dtype = np.float16 if recipe.quantized or recipe.fp16_weights else np.float32
    t = model_tensors(ckpt, spec, head=False)
    save_file({k: t[k].astype(dtype) for k in ("embed_tokens", "embed_positions") if k in t},
              str(tmp / "embed.safetensors"))


def _write_head(tmp: Path, ckpt: SafetensorsCheckpoint, spec: ModelSpec, recipe: Recipe, tally: _Tally) -> None:
    t = model_tensors(ckpt, spec)
    head = torch.from_numpy(t["lm_head"])
    shard = {k: t[k] for k in ("norm", "norm.bias") if k in t}
    if recipe.lm_head_bits is not None:
        fmt = LayerFormat(head.shape[0], head.shape[1], recipe.lm_head_bits, recipe.attn.group_size, True, None)
        packed = quantize_rtn(head, fmt)
        tally.add("lm_head", packed, *head.shape, False)
        shard.update({f"lm_head.{k}": v for k, v in packed.arrays().items()})
    else:
        dense = head.numpy().astype(np.float16 if recipe.fp16_weights else np.float32)
        tally.add("lm_head", dense, *head.shape, False)
        shard["lm_head.weight"] = dense
    save_file(shard, str(tmp / "head.safetensors"))


def _write_shards(tmp: Path, ckpt: SafetensorsCheckpoint, spec: ModelSpec, recipe: Recipe,
                  x: Optional[torch.Tensor], tally: _Tally, say: ProgressFn) -> None:
    _write_embeddings(tmp, ckpt, spec, recipe)
    for i in range(spec.num_layers):
        say(f"layer {i + 1}/{spec.num_layers}")
        shard, x = _compress_layer(i, _layer_weights(ckpt, spec, i), spec, recipe, x, tally)
        save_file(shard, str(tmp / f"layer_{i:03d}.safetensors"))
    _write_head(tmp, ckpt, spec, recipe, tally)


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
    spec = ckpt.spec
    _validate_recipe_for_shape(recipe, spec)
    t0 = time.perf_counter()
    x = _calibration_input(ckpt, spec, recipe, Path(checkpoint_dir), calibration)
    sensitivity = None
    if recipe.mixed_avg_bits is not None and not recipe.layer_bits:
        recipe, sensitivity = _allocate_mixed_bits(ckpt, spec, recipe, x, say)
    tally = _Tally()
    stats: dict = {}
    timings: dict = {}

    def finish(tmp: Path) -> None:   # write_artifact calls it inside the temporary directory
        _write_shards(tmp, ckpt, spec, recipe, x, tally, say)
        stats.update(tally.stats(recipe))
        timings["compress_seconds"] = time.perf_counter() - t0

    meta = {"config": ckpt.config, "recipe": recipe.to_dict(), "layer_formats": tally.layer_formats,
            "packed_format_version": FORMAT_VERSION, "stats": stats, "sensitivity": sensitivity,
            "num_layers": spec.num_layers}
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
        spec = lm.shape_from_config(man["config"])
    except LlmaccelError as exc:
        raise ArtifactError(f"artifact '{path}': its config.json is not supported ({exc})") from None
    try:
        tensors = dict(load_file(str(path / "embed.safetensors")))
        head = load_file(str(path / "head.safetensors"))
        shards = [load_file(str(path / f"layer_{i:03d}.safetensors")) for i in range(man["num_layers"])]
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise ArtifactError(f"artifact '{path}' could not be read: {exc}") from None
    tensors.update({k: v for k, v in head.items() if not k.startswith("lm_head.")})
    linears: dict[str, LinearWeight] = {}

    def build(key: str, arrays: dict[str, np.ndarray]) -> LinearWeight:
        f = man["layer_formats"][key]
        if f["bits"] is None:
            return arrays["weight"]
        fmt = LayerFormat(f["out_features"], f["in_features"], f["bits"], f["group_size"], f["symmetric"],
                          tuple(f["nm"]) if f["nm"] else None)
        return PackedLinear(fmt, arrays["codes"], arrays["indices"], arrays["scales"], arrays.get("zeros"))

    keys = spec.arch.linear_keys.values()
    for i, shard in enumerate(shards):
        for name, arr in shard.items():
            if name.removesuffix(".bias") in NORM_NAMES or (name.endswith(".bias") and name[:-5] in keys):
                tensors[f"layers.{i}.{name}"] = arr
        for p in keys:
            key = f"layers.{i}.{p}"
            linears[key] = build(key, {k[len(p) + 1:]: v for k, v in shard.items()
                                       if k.startswith(p + ".") and k != p + ".bias"})
    linears["lm_head"] = build("lm_head", {k[len("lm_head."):]: v for k, v in head.items() if k.startswith("lm_head.")})
    stats = dict(man["stats"], content_hash=man["content_hash"])
    return CompressedModel(man["config"], recipe, linears, tensors, stats, path)
