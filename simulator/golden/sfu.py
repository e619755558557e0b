"""Golden special-function-unit ops (contract section 4), FP32, in the order the hardware uses.

Every reduction here runs sequentially in index order, starting from 0.0f,
because that is the order a pipelined HLS/RTL accumulator has; numpy's
pairwise ``np.sum`` would give different bits. Each line rounds to FP32 on
its own (no fused multiply-add). ``exp`` (like tanh and erf) is evaluated in
float64 and rounded once (:func:`_transcendental`), the correctly rounded FP32
value but at a rounding midpoint: numpy's own FP32 exp differs from that in
39 % of arguments and has CPU-specific SIMD variants, so it could give other
bits on another x86 CPU. A libm ``expf`` or torch's FP32 exp may still differ
by an ULP, which is why contract section 5 gives exp-based ops a 4 ULP bound.
"""
from __future__ import annotations

import math

import numpy as np

from llmaccel.simulator.families.rope import Rope
from llmaccel.simulator.golden.linear import ACT_QMAX, quantize_activation  # noqa: F401  (re-exported)

F32 = np.float32


def _seq_sum(v: np.ndarray) -> np.ndarray:
    """Sequential FP32 sum over the last axis (index order, from 0.0), vectorised over leading axes.

    ``np.add.accumulate`` adds strictly left to right in FP32 (never pairwise, unlike ``np.sum``), so
    its last element is the sum in index order; starting it at v[0] instead of 0.0 + v[0] can only
    change the sign of a zero, which the final + 0.0 makes +0.0 as the 0.0-started loop does."""
    v = np.asarray(v, dtype=F32)
    if v.shape[-1] == 0:
        return np.zeros(v.shape[:-1], dtype=F32)
    return (np.add.accumulate(v, axis=-1, dtype=F32)[..., -1] + F32(0.0)).astype(F32, copy=False)


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
        e = _transcendental(np.exp, (s - m[..., None]).astype(F32, copy=False))
    total = _seq_sum(e)
    return (e / total[..., None]).astype(F32, copy=False)


def rmsnorm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """x * (1 / sqrt(mean(x^2) + eps)) * w; mean = sequential sum / float(K)."""
    x = np.asarray(x, dtype=F32)
    k = x.shape[-1]
    ms = (_seq_sum((x * x).astype(F32, copy=False)) / F32(k)).astype(F32, copy=False)
    inv = (F32(1.0) / np.sqrt((ms + F32(eps)).astype(F32, copy=False))).astype(F32, copy=False)
    return ((x * inv[..., None]).astype(F32, copy=False) * np.asarray(weight, dtype=F32)).astype(F32, copy=False)


def layernorm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """(x - mean) * (1 / sqrt(var + eps)) * w + b, mean and var by sequential sums / float(K).

    GPT-2 and OPT use it (docs/numerics.md section 4): FP32 throughout, mean first, then the
    variance of the centred values (two passes, as torch's layer_norm), no FMA.
    """
    x = np.asarray(x, dtype=F32)
    k = x.shape[-1]
    mean = (_seq_sum(x) / F32(k)).astype(F32, copy=False)
    c = (x - mean[..., None]).astype(F32, copy=False)
    var = (_seq_sum((c * c).astype(F32, copy=False)) / F32(k)).astype(F32, copy=False)
    inv = (F32(1.0) / np.sqrt((var + F32(eps)).astype(F32, copy=False))).astype(F32, copy=False)
    y = ((c * inv[..., None]).astype(F32, copy=False) * np.asarray(weight, dtype=F32)).astype(F32, copy=False)
    return (y + np.asarray(bias, dtype=F32)).astype(F32, copy=False)


def silu(z: np.ndarray) -> np.ndarray:
    """z / (1 + exp(-z)) in FP32 (division, as the contract writes it)."""
    z = np.asarray(z, dtype=F32)
    with np.errstate(over="ignore"):
        e = _transcendental(np.exp, (-z).astype(F32, copy=False))
    return (z / (F32(1.0) + e).astype(F32, copy=False)).astype(F32, copy=False)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.asarray(a, dtype=F32) + np.asarray(b, dtype=F32)).astype(F32, copy=False)


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (np.asarray(a, dtype=F32) * np.asarray(b, dtype=F32)).astype(F32, copy=False)


def _transcendental(fn, z: np.ndarray) -> np.ndarray:
    """fn evaluated in float64 on FP32 inputs and rounded once to FP32 (within one FP32 ulp).

    Float64 then one rounding, rather than numpy's float32 kernels, because those have
    CPU-specific SIMD variants; the float64 result is within an ulp of float64, so the FP32 value is
    the same on every machine except at an FP32 rounding midpoint."""
    return np.asarray(fn(np.asarray(z, dtype=F32).astype(np.float64)), dtype=np.float64).astype(F32, copy=False)


_SQRT_2_OVER_PI = F32(0.7978845608028654)   # sqrt(2/pi), as transformers' NewGELUActivation writes it
_GELU_CUBIC = F32(0.044715)
_INV_SQRT2 = F32(0.7071067811865476)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU (gelu_new / gelu_pytorch_tanh): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), FP32.

    Each product and sum rounds to FP32 in that order; x^3 is x*x*x; tanh as :func:`_transcendental`.
    """
    x = np.asarray(x, dtype=F32)
    x3 = ((x * x).astype(F32, copy=False) * x).astype(F32, copy=False)
    inner = (x + (_GELU_CUBIC * x3).astype(F32, copy=False)).astype(F32, copy=False)
    t = _transcendental(np.tanh, (_SQRT_2_OVER_PI * inner).astype(F32, copy=False))
    return ((F32(0.5) * x).astype(F32, copy=False) * (F32(1.0) + t).astype(F32, copy=False)).astype(F32, copy=False)


_erf = np.vectorize(math.erf, otypes=[np.float64])   # libm's scalar erf (numpy has none)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU (erf form): 0.5 x (1 + erf(x / sqrt 2)), FP32; erf as :func:`_transcendental`."""
    x = np.asarray(x, dtype=F32)
    e = _transcendental(_erf, (x * _INV_SQRT2).astype(F32, copy=False))
    return ((F32(0.5) * x).astype(F32, copy=False) * (F32(1.0) + e).astype(F32, copy=False)).astype(F32, copy=False)


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0) in FP32 (exact); -0.0 stays -0.0 as torch.relu keeps it."""
    x = np.asarray(x, dtype=F32)
    return np.where(x > 0, x, F32(0.0) * x).astype(F32, copy=False)


ACTIVATIONS = {"silu": silu, "gelu_tanh": gelu_tanh, "gelu": gelu, "relu": relu}


def activation(name: str):
    """The golden unit of a family's activation (simulator.families.ACTIVATIONS names)."""
    return ACTIVATIONS[name]


def bias_add(y: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """y + b in FP32, b broadcast over rows: the contract adds a bias after the linear's rescale."""
    return (np.asarray(y, dtype=F32) + np.asarray(bias, dtype=F32)).astype(F32, copy=False)


def rope_tables(positions: np.ndarray, head_dim: int, theta: float = 10000.0, scaling: dict | None = None,
                max_position_embeddings: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """FP32 cos/sin tables [len(positions), head_dim] of any supported RoPE type (rotate-half layout).

    The tables are an input of every implementation (the host/compiler writes them; the RoPE unit
    computes no transcendental function). They come from the one RoPE implementation,
    simulator.families.rope: frequencies after transformers' init functions, angles and cos/sin
    correct to float64, rounded once to FP32, the attention scaling (yarn) applied; so they are the
    same bits on every CPU. transformers' own FP32 tables carry its float32 pow and angle rounding
    and differ from these by up to ~|angle| * 2^-24 (docs/numerics.md section 4).
    """
    rope_ = Rope(int(head_dim), float(theta), tuple(sorted((scaling or {}).items())), int(max_position_embeddings))
    return rope_.tables_fp32(np.asarray(positions))


def rope_tables_of(spec, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FP32 tables of a ModelSpec's RoPE (its type, theta, scaling and length limit)."""
    return Rope.of(spec).tables_fp32(np.asarray(positions))


def rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """HF rotate-half RoPE on the last axis (head_dim): x*cos + rotate_half(x)*sin.

    rotate_half(x) = concat(-x[h:], x[:h]); each product rounds, then the sum
    (no FMA). ``cos``/``sin`` broadcast against ``x`` ([..., head_dim]).
    """
    x = np.asarray(x, dtype=F32)
    h = x.shape[-1] // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], axis=-1)
    a = (x * np.asarray(cos, dtype=F32)).astype(F32, copy=False)
    b = (rot * np.asarray(sin, dtype=F32)).astype(F32, copy=False)
    return (a + b).astype(F32, copy=False)
