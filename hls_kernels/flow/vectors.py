"""Golden test cases for the emitted testbenches: inputs from hls_kernels.vectors, expected outputs
from llmaccel.simulator.golden (never from the kernels), written as a C header of exact bit patterns."""
from __future__ import annotations

from typing import Any

import numpy as np

from llmaccel.hls_kernels.configs import (AttentionKernelConfig, DecoderLayerConfig, LinearKernelConfig, PROJECTIONS,
                                 SfuKernelConfig)
from llmaccel.hls_kernels.csim import layer_weight_buffers
from llmaccel.hls_kernels.vectors import random_activation, random_packed_linear
from llmaccel.simulator.golden import attention, sfu
from llmaccel.simulator.golden.decoder_layer import LayerKVCache, decoder_layer_decode
from llmaccel.simulator.golden.linear import group_partial_sums, quantize_activation, rescale_groups
from llmaccel.sparse_dsp.packed_format import PackedLinear

F32 = np.float32
ATTN_TERM_ULP = 8     # see tests/hls/test_hls_attention.py
LAYER_REL_BOUND = 1e-3  # docs/numerics.md section 5 (whole-model logits), applied per layer output


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, F32).reshape(-1)).view(np.uint32)


def _linear_case(cfg: LinearKernelConfig, rng: np.random.Generator, layer: PackedLinear | None = None
                 ) -> dict[str, Any]:
    """``layer``: a user's packed weights at the configuration's bounds; seeded random ones otherwise."""
    rows, k = cfg.o_max, cfg.k_max
    if layer is None:
        layer = random_packed_linear(rng, cfg.layer_format(rows, k))
    f = layer.fmt
    case: dict[str, Any] = {
        "ROWS": rows, "K": k, "GROUPS": f.groups_per_row, "KEPT": f.kept_per_row, "HAS_ZEROS": int(not f.symmetric),
        "codes": layer.codes.reshape(-1), "indices": layer.indices.reshape(-1) if layer.indices.size else np.zeros(1, np.uint32),
        "scales": layer.scales.view(np.uint16).reshape(-1),
        "zeros": layer.zeros.reshape(-1) if layer.zeros is not None else np.zeros(1, np.uint8),
    }
    if cfg.kind in ("decode", "decode_stream"):
        case["N_CODE_WORDS"] = int(layer.codes.size)
        case["N_INDEX_WORDS"] = int(layer.indices.size)
        case["expect_d"] = layer.decode_int8().reshape(-1)
        case["expect_column"] = layer.column_of_kept().astype(np.int32).reshape(-1)
        return case
    tokens = 1 if cfg.kind == "mv" else cfg.t_max
    q, s = quantize_activation(random_activation(rng, (tokens, k)))
    acc = group_partial_sums(layer.dense_int8(), q, f.group_size)
    y = rescale_groups(acc, layer.scales, s)
    case.update({"TOKENS": tokens, "xq": q.reshape(-1), "s_x_bits": _f32(s), "expect_partial": acc.reshape(-1),
                 "expect_y_bits": _f32(y)})
    return case


def _attention_case(cfg: AttentionKernelConfig, rng: np.random.Generator) -> dict[str, Any]:
    seq_len = cfg.seq_max
    q8, s_q = attention.quantize_heads(random_activation(rng, (cfg.heads * cfg.head_dim,)), cfg.head_dim)
    k8, s_k = attention.quantize_heads(random_activation(rng, (seq_len, cfg.kv_heads * cfg.head_dim)), cfg.head_dim)
    v8, s_v = attention.quantize_heads(random_activation(rng, (seq_len, cfg.kv_heads * cfg.head_dim)), cfg.head_dim)
    out = attention.decode_attention(q8, s_q, k8, s_k, v8, s_v, cfg.kv_heads)
    kv = np.arange(cfg.heads) // (cfg.heads // cfg.kv_heads)
    p = attention.softmax(attention.attention_scores(q8, s_q, k8, s_k, cfg.kv_heads))
    mag = np.einsum("ht,thd->hd", p * s_v[:, kv].T, np.abs(v8[:, kv, :].astype(F32)))
    bound = (ATTN_TERM_ULP * F32(2.0**-23) * mag + np.finfo(F32).tiny).astype(F32)
    return {"HEADS": cfg.heads, "KV_HEADS": cfg.kv_heads, "HEAD_DIM": cfg.head_dim, "SEQ_LEN": seq_len,
            "q8": q8.reshape(-1), "s_q_bits": _f32(s_q), "k8": k8.reshape(-1), "s_k_bits": _f32(s_k),
            "v8": v8.reshape(-1), "s_v_bits": _f32(s_v), "expect_out_bits": _f32(out), "bound_out_bits": _f32(bound)}


def _sfu_case(cfg: SfuKernelConfig, rng: np.random.Generator) -> dict[str, Any]:
    head_dim = 32 if cfg.n_max >= 32 else 2
    n = (min(cfg.n_max, 512) // head_dim) * head_dim
    x = random_activation(rng, (n,))
    w, b = random_activation(rng, (n,), 0.5), random_activation(rng, (n,), 0.5)
    eps = F32(1e-5)
    cos, sin = sfu.rope_tables(np.array([11]), head_dim)
    q, s = sfu.quantize_activation(x)
    return {"N": n, "HEAD_DIM": head_dim, "x_bits": _f32(x), "w_bits": _f32(w), "b_bits": _f32(b),
            "eps_bits": _f32([eps]), "cos_bits": _f32(cos), "sin_bits": _f32(sin),
            "expect_softmax_bits": _f32(sfu.softmax(x)), "expect_rmsnorm_bits": _f32(sfu.rmsnorm(x, w, eps)),
            "expect_layernorm_bits": _f32(sfu.layernorm(x, w, b, eps)), "expect_silu_bits": _f32(sfu.silu(x)),
            "expect_rope_bits": _f32(sfu.rope(x.reshape(-1, head_dim), cos[0], sin[0])),
            "expect_q": q.reshape(-1), "expect_q_scale_bits": _f32([s])}


def _layer_case(cfg: DecoderLayerConfig, rng: np.random.Generator, steps: int = 3) -> dict[str, Any]:
    layers = {p: random_packed_linear(rng, cfg.linear_config(p).layer_format(*cfg.shape(p)), (2e-3, 2e-2))
              for p in PROJECTIONS}
    w_in, w_post = (rng.uniform(0.5, 1.5, cfg.hidden).astype(F32) for _ in range(2))
    cos, sin = sfu.rope_tables(np.arange(steps), cfg.head_dim)
    xs = np.stack([random_activation(rng, (cfg.hidden,), 1.0) for _ in range(steps)])
    return layer_case(cfg, layers, w_in, w_post, 1e-5, xs, cos, sin)


def layer_case(cfg: DecoderLayerConfig, layers: dict[str, PackedLinear], w_in: np.ndarray, w_post: np.ndarray,
               eps: float, xs: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> dict[str, Any]:
    """Golden case of the layer top for given weights, norms, inputs (one row per decode step) and
    RoPE tables (one row per position): a user's model, or random data."""
    words, scales, zeros = layer_weight_buffers(cfg, layers)
    eps = F32(eps)
    steps = xs.shape[0]
    cache = LayerKVCache(cfg.seq_max, cfg.kv_heads, cfg.head_dim)
    outs = np.stack([decoder_layer_decode(np.asarray(xs[pos], F32), pos, layers, w_in, w_post, float(eps), cos[pos],
                                          sin[pos], cache, cfg.heads, cfg.kv_heads, cfg.head_dim)
                     for pos in range(steps)])
    bound = np.repeat((LAYER_REL_BOUND * np.abs(outs).max(axis=1, keepdims=True)).astype(F32), cfg.hidden, axis=1)
    return {"HIDDEN": cfg.hidden, "HEAD_DIM": cfg.head_dim, "KV_HEADS": cfg.kv_heads, "SEQ_MAX": cfg.seq_max,
            "STEPS": steps, "w_words": words, "w_scales": scales, "w_zeros": zeros,
            "norm_w_bits": _f32(np.concatenate([w_in, w_post])), "eps_bits": _f32([eps]),
            "x_bits": _f32(np.asarray(xs, F32)), "rope_cs_bits": _f32(np.concatenate([cos[:steps], sin[:steps]], axis=1)),
            "expect_out_bits": _f32(outs), "bound_out_bits": _f32(bound),
            "expect_k_cache": cache.k8[:steps].reshape(-1), "expect_v_cache": cache.v8[:steps].reshape(-1)}


def linear_case(cfg: LinearKernelConfig, layer: PackedLinear, seed: int = 0) -> dict[str, Any]:
    """Golden case of a linear or decoder kernel on a user's packed layer (inputs seeded random)."""
    return _linear_case(cfg, np.random.default_rng(seed), layer)


def golden_case(config, seed: int = 0) -> dict[str, Any]:
    """Named inputs and expected outputs (arrays) plus sizes (ints) for the family's testbench."""
    rng = np.random.default_rng(seed)
    if isinstance(config, LinearKernelConfig):
        return _linear_case(config, rng)
    if isinstance(config, AttentionKernelConfig):
        return _attention_case(config, rng)
    if isinstance(config, SfuKernelConfig):
        return _sfu_case(config, rng)
    if isinstance(config, DecoderLayerConfig):
        return _layer_case(config, rng)
    raise TypeError(f"no golden case for {type(config).__name__}")


_CTYPES = {np.dtype(np.uint32): "uint32_t", np.dtype(np.int32): "int32_t", np.dtype(np.uint16): "uint16_t",
           np.dtype(np.uint8): "uint8_t", np.dtype(np.int8): "int8_t"}


def vectors_header(case: dict[str, Any], name: str) -> str:
    """The golden_vectors.h text: #defines for sizes, exact integer arrays (floats as their bits)."""
    lines = [f"// Golden vectors for {name}: generated by `llmaccel hls emit` from simulator.golden.",
             "#ifndef LLMACCEL_GOLDEN_VECTORS_H", "#define LLMACCEL_GOLDEN_VECTORS_H", "#include <stdint.h>"]
    for key, val in case.items():
        if isinstance(val, (int, np.integer)):
            lines.append(f"#define {key} {int(val)}")
    for key, val in case.items():
        if isinstance(val, np.ndarray):
            a = np.ascontiguousarray(val)
            if a.dtype == np.int64:
                a = a.astype(np.int32)
            ctype = _CTYPES[a.dtype]
            fmt = (lambda v: f"0x{int(v):08x}u") if a.dtype == np.uint32 else (lambda v: str(int(v)))
            body = ",".join(fmt(v) for v in a.reshape(-1).tolist())
            lines.append(f"static const {ctype} {key}[{max(a.size, 1)}] = {{{body or '0'}}};")
    lines.append("#endif")
    return "\n".join(lines) + "\n"
