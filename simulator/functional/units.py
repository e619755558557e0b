"""The arithmetic of each unit, from the per-unit goldens (``simulator.golden``): nothing here is new math.

The matrix engine's linear tile (activation quantization, INT32 group sums, FP32 rescale) and its
output path (accumulate, then the fused op), the attention pieces, the SFU norms.
"""
from __future__ import annotations

import numpy as np

from llmaccel.simulator.functional.weights import F32, FunctionalError
from llmaccel.simulator.golden.attention import attention_scores, quantize_heads, weighted_value_sum
from llmaccel.simulator.golden.linear import quantize_activation
from llmaccel.simulator.golden.sfu import add, gelu, gelu_tanh, layernorm, mul, relu, rmsnorm, rope, silu, softmax

__all__ = ["F32", "add", "mul", "attention_scores", "quantize_heads", "weighted_value_sum", "quantize_activation", "softmax",
           "group_scales", "linear_tile", "epilogue", "apply_rope", "norm", "masked_softmax"]


# INT8 x INT8 products are at most 127 * 127; a group of G of them sums below 2**24 for G <= 1040, so every
# partial sum is an integer an FP32 holds exactly, in any summation order: a float32 BLAS matmul then gives
# exactly golden.linear.group_partial_sums (tested bit for bit), at a fraction of its int64 einsum's time.
EXACT_F32_GROUP = (1 << 24) // (127 * 127)


def grouped_weights(w8: np.ndarray, group_size: int) -> np.ndarray:
    """[O, K] INT8 -> [K/G, O, G] FP32 (the layout the exact group matmul takes)."""
    o, k = w8.shape
    return np.ascontiguousarray(w8.astype(F32).reshape(o, k // group_size, group_size).transpose(1, 0, 2))


def _group_sums_f32(wg: np.ndarray, q: np.ndarray, group_size: int) -> np.ndarray:
    """The INT32 partial sums as exact FP32 integers, [K/G, O, T] (the matmul's own layout)."""
    ng = wg.shape[0]
    if group_size > EXACT_F32_GROUP:
        raise FunctionalError(f"group_size={group_size} exceeds {EXACT_F32_GROUP}, the largest group whose INT8 "
                              "partial sums FP32 holds exactly")
    xg = q.astype(F32, copy=False).reshape(q.shape[0], ng, group_size).transpose(1, 2, 0)     # [NG, G, T]
    return np.matmul(wg, xg)


def group_sums(wg: np.ndarray, q: np.ndarray, group_size: int) -> np.ndarray:
    """INT32 partial sums [T, O, K/G], equal to golden.linear.group_partial_sums."""
    return _group_sums_f32(wg, q, group_size).transpose(2, 1, 0).astype(np.int32)


def group_scales(scales_fp16: np.ndarray) -> np.ndarray:
    """[O, K/G] FP16 scales -> [K/G, O, 1] FP32, the layout :func:`linear_tile` multiplies by."""
    return np.ascontiguousarray(np.asarray(scales_fp16, np.float16).astype(F32, copy=False).T[:, :, None])


def linear_tile(wg: np.ndarray, gscales: np.ndarray, group_size: int, xq: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """golden.linear.rescale_groups(group_sums(...)) computed in the matmul's [K/G, O, T] layout: the same
    FP32 operations on the same values (each group's product rounded, added in group order from 0.0,
    then times the activation scale), so the same bits (tested against the golden), without the INT32
    round trip: the partial sums are exact integers in FP32 already."""
    q, s_x = xq
    acc = _group_sums_f32(wg, q, group_size)                                      # [NG, O, T]
    y = np.zeros(acc.shape[1:], F32)
    for g in range(acc.shape[0]):
        y += gscales[g] * acc[g]
    return (y * np.asarray(s_x, F32)[None, :]).T


def epilogue(y: np.ndarray, old: np.ndarray | None, accumulate: bool, fuse: str) -> np.ndarray:
    """The output path: v = old + y if accumulate else y; then the fused op (silu_mul: silu(old) * y)."""
    if fuse == "silu_mul":
        return mul(silu(old), y)
    v = add(old, y) if accumulate else y
    if fuse == "gelu":
        return gelu_tanh(v)
    if fuse == "gelu_erf":
        return gelu(v)
    if fuse == "relu":
        return relu(v)
    return v


def apply_rope(v: np.ndarray, head_dim: int, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    t = v.shape[0]
    return rope(v.reshape(t, -1, head_dim), cos[:, None, :], sin[:, None, :]).reshape(t, -1)


def norm(op: str, x: np.ndarray, block: np.ndarray, row_len: int) -> np.ndarray:
    """rmsnorm/layernorm of rows x with the parameter block (eps line, gamma, beta) an LD brought."""
    f = block.view(F32)
    eps = float(f[0])
    lines = -(-row_len // 16) * 16
    gamma = f[16:16 + row_len]
    if op == "rmsnorm":
        return rmsnorm(x, gamma, eps)
    beta = f[16 + lines:16 + lines + row_len]
    return layernorm(x, gamma, beta, eps)


def masked_softmax(part: np.ndarray, qpos: np.ndarray) -> np.ndarray:
    keys = np.arange(part.shape[1])
    masked = keys[None, :] > qpos[:, None]
    if np.isnan(part[~masked]).any():
        raise FunctionalError("scores are missing for keys the query attends (a K tile was not loaded or not "
                              "multiplied)")
    return softmax(np.where(masked, F32(-np.inf), part).astype(F32, copy=False))
