"""Golden special-function-unit ops (contract section 4), FP32, in the order the hardware uses.

Every reduction here runs sequentially in index order, starting from 0.0f,
because that is the order a pipelined HLS/RTL accumulator has; numpy's
pairwise ``np.sum`` would give different bits. Each line rounds to FP32 on
its own (no fused multiply-add). ``exp`` is numpy's float32 exp; a libm or
torch exp may differ from it by an ULP, which is why contract section 5 gives
exp-based ops a 4 ULP bound while the other ops here are exact.
"""
from __future__ import annotations

import numpy as np

from simulator.golden.linear import ACT_QMAX, quantize_activation  # noqa: F401  (re-exported)

F32 = np.float32


def _seq_sum(v: np.ndarray) -> np.ndarray:
    """Sequential FP32 sum over the last axis (index order), vectorised over leading axes."""
    v = np.asarray(v, dtype=F32)
    acc = np.zeros(v.shape[:-1], dtype=F32)
    for i in range(v.shape[-1]):
        acc = (acc + v[..., i]).astype(F32)
    return acc


def _seq_max(v: np.ndarray) -> np.ndarray:
    return np.max(np.asarray(v, dtype=F32), axis=-1)  # max is order-independent


def softmax(score: np.ndarray) -> np.ndarray:
    """Two-phase softmax over the last axis: phase 1 max, phase 2 exp and sum, then divide.

    ``-inf`` entries (masked) give 0. p = e / sum(e) is a division, not a
    multiplication by a reciprocal, as the contract states.
    """
    s = np.asarray(score, dtype=F32)
    m = _seq_max(s)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp((s - m[..., None]).astype(F32)).astype(F32)
    total = _seq_sum(e)
    return (e / total[..., None]).astype(F32)


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """x * (1 / sqrt(mean(x^2) + eps)) * w; mean = sequential sum / float(K)."""
    x = np.asarray(x, dtype=F32)
    k = x.shape[-1]
    ms = (_seq_sum((x * x).astype(F32)) / F32(k)).astype(F32)
    inv = (F32(1.0) / np.sqrt((ms + F32(eps)).astype(F32))).astype(F32)
    return ((x * inv[..., None]).astype(F32) * np.asarray(weight, dtype=F32)).astype(F32)


def layernorm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """(x - mean) * (1 / sqrt(var + eps)) * w + b, mean and var by sequential sums / float(K).

    Llama does not use it; it is here for the non-Llama decoders the SFU
    serves. Not in the contract page yet (see the HLS report to the lead).
    """
    x = np.asarray(x, dtype=F32)
    k = x.shape[-1]
    mean = (_seq_sum(x) / F32(k)).astype(F32)
    c = (x - mean[..., None]).astype(F32)
    var = (_seq_sum((c * c).astype(F32)) / F32(k)).astype(F32)
    inv = (F32(1.0) / np.sqrt((var + F32(eps)).astype(F32))).astype(F32)
    y = ((c * inv[..., None]).astype(F32) * np.asarray(weight, dtype=F32)).astype(F32)
    return (y + np.asarray(bias, dtype=F32)).astype(F32)


def silu(z: np.ndarray) -> np.ndarray:
    """z / (1 + exp(-z)) in FP32 (division, as the contract writes it)."""
    z = np.asarray(z, dtype=F32)
    with np.errstate(over="ignore"):
        e = np.exp((-z).astype(F32)).astype(F32)
    return (z / (F32(1.0) + e).astype(F32)).astype(F32)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.asarray(a, dtype=F32) + np.asarray(b, dtype=F32)).astype(F32)


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.asarray(a, dtype=F32) * np.asarray(b, dtype=F32)).astype(F32)


def rope_tables(positions: np.ndarray, head_dim: int, theta: float = 10000.0) -> tuple[np.ndarray, np.ndarray]:
    """FP32 cos/sin tables [len(positions), head_dim], bit-identical to Hugging Face Llama's default RoPE.

    The tables are an input of every implementation (the host/compiler
    writes them; the RoPE unit computes no transcendental function), so they
    are made once, with torch's own float32 pow/cos/sin in HF's order:
    inv_freq = 1 / theta ** (arange(0, d, 2) / d), angle = float(pos) * inv_freq,
    duplicated over both halves. numpy's float32 pow differs from torch's by an
    ULP for some entries, which grows to ~1e-5 in the angle at position 4095.
    """
    import torch  # noqa: PLC0415  (a package dependency; only the table builder needs it)

    if head_dim % 2:
        raise ValueError(f"head_dim={head_dim} must be even for RoPE")
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    inv_freq = 1.0 / (float(theta) ** exponent)
    pos = torch.as_tensor(np.asarray(positions), dtype=torch.int64).float()
    ang = pos[:, None] * inv_freq[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    return emb.cos().numpy().astype(F32), emb.sin().numpy().astype(F32)


def rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """HF rotate-half RoPE on the last axis (head_dim): x*cos + rotate_half(x)*sin.

    rotate_half(x) = concat(-x[h:], x[:h]); each product rounds, then the sum
    (no FMA). ``cos``/``sin`` broadcast against ``x`` ([..., head_dim]).
    """
    x = np.asarray(x, dtype=F32)
    h = x.shape[-1] // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], axis=-1)
    a = (x * np.asarray(cos, dtype=F32)).astype(F32)
    b = (rot * np.asarray(sin, dtype=F32)).astype(F32)
    return (a + b).astype(F32)
