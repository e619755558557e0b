"""Golden INT8 activation quantization and the group-scaled INT8 linear (contract sections 2-3)."""
from __future__ import annotations

import numpy as np

from llmaccel.sparse_dsp.packed_format import PackedLinear

ACT_QMAX = 127


def quantize_activation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric INT8: returns (int8 codes [..., K], fp32 scales [...]).

    The scale divides (not multiplies by a reciprocal) because that is the
    operation every implementation can reproduce exactly.
    """
    x = np.asarray(x, dtype=np.float32)
    amax = np.abs(x).max(axis=-1)
    scale = np.where(amax == 0, np.float32(1.0), amax / np.float32(ACT_QMAX)).astype(np.float32, copy=False)
    q = x / scale[..., None]                       # FP32 division, then rint and the clamp in place
    np.rint(q, out=q)
    np.minimum(q, np.float32(ACT_QMAX), out=q)
    np.maximum(q, np.float32(-ACT_QMAX), out=q)
    return q.astype(np.int8), scale


def group_partial_sums(w_int8: np.ndarray, x_int8: np.ndarray, group_size: int) -> np.ndarray:
    """Exact INT32 partial sums per group: [T, O, K/G] from dense int8 W [O, K] and x [T, K]."""
    o, k = w_int8.shape
    t = x_int8.shape[0]
    ng = k // group_size
    wg = w_int8.astype(np.int64).reshape(o, ng, group_size)
    xg = x_int8.astype(np.int64).reshape(t, ng, group_size)
    acc = np.einsum("ogk,tgk->tog", wg, xg)
    return acc.astype(np.int32)


def rescale_groups(acc: np.ndarray, scales_fp16: np.ndarray, act_scale: np.ndarray) -> np.ndarray:
    """FP32 rescale in the contract's order: sequential over groups, then times the activation scale."""
    s = np.asarray(scales_fp16, dtype=np.float16).astype(np.float32)  # [O, NG]
    accf = acc.astype(np.float32)                                       # [T, O, NG]
    y = np.zeros(acc.shape[:2], dtype=np.float32)
    for g in range(acc.shape[2]):
        y = (y + (s[None, :, g] * accf[:, :, g]).astype(np.float32)).astype(np.float32)
    return (y * np.asarray(act_scale, dtype=np.float32)[:, None]).astype(np.float32)


def int8_linear(layer: PackedLinear, x: np.ndarray) -> np.ndarray:
    """y = W x for FP32 activations x [T, K] through the contract's INT8 path -> FP32 [T, O]."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    q, s_x = quantize_activation(x)
    acc = group_partial_sums(layer.dense_int8(), q, layer.fmt.group_size)
    return rescale_groups(acc, layer.scales, s_x)
