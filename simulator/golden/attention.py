"""Golden decode attention over an INT8 KV cache (contract section 4), grouped-query.

One query token at position ``pos`` attends keys ``0..pos`` (causality in
decode is just the cache length). Scores are an exact INT32 dot product of the
INT8 query and key, rescaled in FP32 as ``(float(dot) * (s_q * s_k)) * inv_sqrt_d``;
the softmax and the value sum run sequentially over positions, as the
hardware streams the cache.
"""
from __future__ import annotations

import numpy as np

from llmaccel.simulator.golden.linear import quantize_activation
from llmaccel.simulator.golden.sfu import softmax

F32 = np.float32


def inv_sqrt_head_dim(head_dim: int) -> np.float32:
    """1 / sqrt(head_dim) as one constant: computed in float64, rounded once to FP32.

    That is what the PyTorch reference gets from ``scores * (1.0 / math.sqrt(d))``
    (a Python float cast to the tensor's FP32), and what an HLS kernel folds at
    compile time. FP32 sqrt-then-divide gives a different FP32 for some d (96).
    """
    return F32(1.0 / np.sqrt(np.float64(head_dim)))


def quantize_heads(x: np.ndarray, head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-head symmetric INT8 of [..., heads*head_dim] -> (int8 [..., heads, head_dim], fp32 [..., heads])."""
    x = np.asarray(x, dtype=F32)
    xh = x.reshape(*x.shape[:-1], x.shape[-1] // head_dim, head_dim)
    return quantize_activation(xh)


def attention_scores(q8: np.ndarray, s_q: np.ndarray, k8: np.ndarray, s_k: np.ndarray,
                     n_kv_heads: int) -> np.ndarray:
    """FP32 scores [H, L] of one query (q8 [H, D], s_q [H]) against the cache (k8 [L, KVH, D], s_k [L, KVH])."""
    n_heads, head_dim = q8.shape
    rep = n_heads // n_kv_heads
    kv_of_head = np.arange(n_heads) // rep                      # Llama's repeat_kv (interleave)
    k = k8[:, kv_of_head, :].astype(np.int64)                   # [L, H, D]
    dot = np.einsum("hd,lhd->hl", q8.astype(np.int64), k).astype(np.int32)
    sk = np.asarray(s_k, dtype=F32)[:, kv_of_head].T             # [H, L]
    qk_scale = (np.asarray(s_q, dtype=F32)[:, None] * sk).astype(F32, copy=False)
    return ((dot.astype(F32) * qk_scale).astype(F32, copy=False) * inv_sqrt_head_dim(head_dim)).astype(F32, copy=False)


def decode_attention(q8: np.ndarray, s_q: np.ndarray, k8: np.ndarray, s_k: np.ndarray,
                     v8: np.ndarray, s_v: np.ndarray, n_kv_heads: int) -> np.ndarray:
    """FP32 attention output [H, D] of one query token over L cached tokens.

    attn[h, :] = sum over t = 0..L-1 (in order) of (p[h, t] * s_v[t, kv(h)]) * float(v8[t, kv(h), :]).
    """
    n_heads, head_dim = q8.shape
    if n_heads % n_kv_heads:
        raise ValueError(f"n_heads={n_heads} must be a multiple of n_kv_heads={n_kv_heads}")
    p = softmax(attention_scores(q8, s_q, k8, s_k, n_kv_heads))  # [H, L]
    kv_of_head = np.arange(n_heads) // (n_heads // n_kv_heads)
    s_v = np.asarray(s_v, dtype=F32)
    out = np.zeros((n_heads, head_dim), dtype=F32)
    for h in range(n_heads):
        kv = kv_of_head[h]
        out[h] = weighted_value_sum(out[h:h + 1], p[h:h + 1], s_v[:, kv], v8[:, kv, :])[0]
    return out


def weighted_value_sum(acc: np.ndarray, p: np.ndarray, s_v: np.ndarray, v8: np.ndarray) -> np.ndarray:
    """The P.V step: acc + sum over t (in order) of (p[:, t] * s_v[t]) * float(v8[t]), FP32 (contract section 4).

    ``acc`` [Q, D], ``p`` [Q, L], ``s_v`` [L], ``v8`` [L, D] for one kv head. Starting from a
    non-zero ``acc`` continues a sum over an earlier K/V tile, which is how the accelerator
    tiles long caches; ``np.add.accumulate`` adds strictly left to right, so tiling does not
    change the bits.
    """
    w = (p * np.asarray(s_v, F32)[None, :]).astype(F32, copy=False)          # [Q, L]
    terms = w.T[:, :, None] * v8.astype(F32)[:, None, :]                      # [L, Q, D], FP32 products
    if terms.shape[0] == 0:
        return np.array(acc, F32)
    terms[0] += np.asarray(acc, F32)              # acc + t0: the first addition of the ordered sum
    return np.add.accumulate(terms, axis=0, dtype=F32)[-1]
