"""Models of any supported family's shapes with synthetic weights built directly in packed form on the device
(for speed runs).

Speed does not depend on the weights' values, only on their formats, so a
7B-shaped model is made without a checkpoint: random 32-bit words are valid
code streams for every bit width, N:M position streams are a random valid
pattern (N distinct ascending positions per block) packed by the format's own
packer for a few rows and tiled, scales are small FP16 values (about Llama's
init scale, so activations stay finite) and zeros valid codes. The formats
come from the recipe exactly as the compiler derives them
(``mapping.compiler.formats_from_recipe``). What else the family has (linear biases, LayerNorm biases,
learned positions: ``spec.arch``) is made too, small and random, so a GPT-2- or OPT-shaped run streams
and adds what the real model would.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import torch

from llmaccel.gpu_baseline.triton.formats import DevicePackedLinear, KernelFormat
from llmaccel.gpu_baseline.triton.linear import GemvConfig
from llmaccel.gpu_baseline.triton_model import (WORKSPACE_MARGIN_BYTES, Activations, MemoryNeed, TritonModel, check_fits,
                                       kv_cache_bytes)
from llmaccel.mapping.compiler import formats_from_recipe
from llmaccel.simulator.specs.model import ModelSpec
from llmaccel.sparse_dsp.packed_format import LayerFormat, pack_bitstream

PATTERN_ROWS = 64      # distinct N:M position rows, tiled over the layer


def synthetic_packed(fmt: LayerFormat, device: torch.device, gen: torch.Generator,
                     rng: np.random.Generator) -> DevicePackedLinear:
    """One packed layer of format ``fmt`` with random valid contents, made on ``device`` (``gen`` is a
    generator of that device; ``rng`` draws the N:M pattern on the host)."""
    kf = KernelFormat.of(fmt)
    o = fmt.out_features
    codes = torch.randint(-2 ** 31, 2 ** 31, (o, max(fmt.code_words_per_row, 1)), dtype=torch.int32,
                          generator=gen, device=device)
    if fmt.nm is None:
        idx = torch.zeros((o, 1), dtype=torch.int32, device=device)
    else:
        n, m = fmt.nm
        blocks = fmt.in_features // m
        pos = np.sort(np.argsort(rng.random((PATTERN_ROWS, blocks, m)), axis=2)[:, :, :n], axis=2)
        words = pack_bitstream(pos.reshape(PATTERN_ROWS, -1).astype(np.uint8), fmt.index_bits).view(np.int32)
        reps = -(-o // PATTERN_ROWS)
        idx = torch.from_numpy(np.ascontiguousarray(np.tile(words, (reps, 1))[:o])).to(device)
    qmax = (1 << (fmt.bits - 1)) - 1 if fmt.symmetric else (1 << fmt.bits) - 1
    scales = (torch.rand((o, fmt.groups_per_row), generator=gen, device=device) * (0.04 / max(qmax, 1)) + 1e-4).half()
    zeros = None
    if not fmt.symmetric:
        zeros = torch.randint(0, 1 << fmt.bits, (o, fmt.groups_per_row), dtype=torch.uint8, generator=gen,
                              device=device)
    return DevicePackedLinear(fmt, kf, codes, idx, scales, zeros)


def synthetic_model(spec: ModelSpec, recipe: str, device: torch.device | str, max_len: int,
                    activations: Activations = "int8", gemv: Optional[GemvConfig] = None,
                    seed: int = 0) -> TritonModel:
    """A TritonModel of ``spec``'s shapes under ``recipe``'s formats with synthetic weights (memory checked first)."""
    device = torch.device(device)
    formats = formats_from_recipe(spec, recipe)
    a = spec.arch
    layer_fmts = {f"layers.{i}.{a.linear_keys[leaf]}": fmt
                  for i in range(spec.num_layers) for leaf, fmt in formats.layers[i]}
    layer_fmts["lm_head"] = formats.lm_head
    for fmt in layer_fmts.values():
        KernelFormat.of(fmt)
    extra = 4 * spec.max_position_embeddings * spec.hidden_size if a.positions == "learned" else 0
    need = MemoryNeed(sum(f.total_bytes for f in layer_fmts.values()), spec.vocab_size * spec.hidden_size * 2 + extra,
                      kv_cache_bytes(spec, max_len), WORKSPACE_MARGIN_BYTES)
    if device.type == "cuda":
        check_fits(need, torch.cuda.mem_get_info(device)[0], str(device), max_len)
    gen = torch.Generator(device=device).manual_seed(seed)
    rng = np.random.default_rng(seed)
    linears = {k: synthetic_packed(f, device, gen, rng) for k, f in layer_fmts.items()}
    small = lambda *shape: torch.randn(shape, generator=gen, device=device) * 0.02
    biased = {f"layers.{i}.{a.linear_keys[leaf]}" for i in range(spec.num_layers) for leaf in a.biased}
    for k in biased:
        linears[k] = dataclasses.replace(linears[k], bias=small(linears[k].out_features))
    embed = small(spec.vocab_size, spec.hidden_size).half()
    names = ["norm"] + [f"layers.{i}.{n}" for i in range(spec.num_layers)
                        for n in ("input_layernorm", "post_attention_layernorm")]
    norms = {n: torch.ones(spec.hidden_size, device=device) for n in names}
    if a.norm.has_bias:
        norms.update({n + ".bias": small(spec.hidden_size) for n in names})
    positions = small(spec.max_position_embeddings, spec.hidden_size) if a.positions == "learned" else None
    return TritonModel(spec, linears, embed, norms, device, max_len, activations, gemv, f"synthetic:{recipe}",
                       positions)
