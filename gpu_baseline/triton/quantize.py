"""Per-row symmetric INT8 activation quantization (contract section 2) as one Triton kernel.

``s = amax / 127`` (``s = 1`` when ``amax == 0``), ``q = clamp(rint(x / s), -127, 127)``,
with IEEE division (``div_rn``) and round-half-even, so the codes and scales are
bit-exact with ``simulator.golden.linear.quantize_activation`` and the
reference's ``quantize_per_row``. One launch instead of torch's eight
element-wise kernels: the decode step is launch-bound at batch 1.

``rint`` is built from ``floor``: ``r = floor(v)``, ``f = v - r`` (exact for
``|v| <= 127``), round up when ``f > 0.5`` or ``f == 0.5`` and ``r`` is odd.
(``floor(v + 0.5)`` would be wrong for the float just below 0.5.)

The fused kernels that end in the next linear's input (``norm.py``: residual add + RMSNorm or
LayerNorm; ``activation.py``: the MLP's activation) share this module's rounding helpers and
:func:`store_prepared`, so every path quantizes the same way.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from llmaccel.gpu_baseline.triton.formats import KernelFormatError
from llmaccel.gpu_baseline.triton.launch import INTERPRETED, check_operand, compile_options

CHUNK = 1024


@triton.jit
def rint_clamp127(v):
    """clamp(rint(v), -127, 127) with round-half-even, exact for |v| <= 2**22."""
    r = tl.floor(v)
    f = v - r
    odd = (r - 2.0 * tl.floor(r * 0.5)) != 0.0
    r = tl.where((f > 0.5) | ((f == 0.5) & odd), r + 1.0, r)
    return tl.minimum(tl.maximum(r, -127.0), 127.0)


@triton.jit
def row_scale(amax):
    """The row's INT8 scale from its absolute maximum: ``amax / 127`` (IEEE division), 1 for a zero row."""
    return tl.where(amax == 0.0, 1.0, tl.math.div_rn(amax, 127.0))


@triton.jit
def fp16_saturate(v):
    """``v`` as FP16, clamped to the largest finite FP16 (65504) instead of overflowing to inf."""
    return tl.minimum(tl.maximum(v, -65504.0), 65504.0).to(tl.float16)


@triton.jit
def _quantize_kernel(x_ptr, q_ptr, s_ptr, K, CHUNK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = row * K
    lane = tl.arange(0, CHUNK)
    amax = tl.zeros([CHUNK], dtype=tl.float32)
    for k0 in range(0, K, CHUNK):
        x = tl.load(x_ptr + base + k0 + lane, mask=(k0 + lane) < K, other=0.0)
        amax = tl.maximum(amax, tl.abs(x))
    s = row_scale(tl.max(amax, axis=0))
    tl.store(s_ptr + row, s)
    for k0 in range(0, K, CHUNK):
        m = (k0 + lane) < K
        v = tl.math.div_rn(tl.load(x_ptr + base + k0 + lane, mask=m, other=0.0), s)
        tl.store(q_ptr + base + k0 + lane, rint_clamp127(v).to(tl.int8), mask=m)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 [R, K] -> (int8 codes [R, K], fp32 scales [R]), contract section 2 per row."""
    r, k = x.shape
    check_operand(x, "x", torch.float32, (r, k))
    q = torch.empty((r, k), dtype=torch.int8, device=x.device)
    s = torch.empty((r,), dtype=torch.float32, device=x.device)
    _quantize_kernel[(r,)](x, q, s, k, CHUNK=CHUNK, **compile_options())
    return q, s


@triton.jit
def _rope_quantize_kernel(x_ptr, cos_ptr, sin_ptr, q_ptr, s_ptr, start_ptr, NH, D: tl.constexpr,
                          HB: tl.constexpr, ROPE: tl.constexpr, AT_START: tl.constexpr):
    """HB (token, head) rows of one token: optional RoPE (HF rotate-half), then per-row INT8; rows land at
    ``start + t`` when AT_START (the KV cache) else at ``t``."""
    t = tl.program_id(0)
    heads = tl.program_id(1) * HB + tl.arange(0, HB)
    d = tl.arange(0, D)
    src = (t * NH + heads).to(tl.int64)[:, None] * D                  # [HB, 1]
    x = tl.load(x_ptr + src + d[None, :])
    if ROPE:
        HALF: tl.constexpr = D // 2
        partner = tl.load(x_ptr + src + ((d + HALF) % D)[None, :])
        rot = tl.where((d < HALF)[None, :], -partner, partner)
        c = tl.load(cos_ptr + t * D + d)
        sn = tl.load(sin_ptr + t * D + d)
        x = x * c[None, :] + rot * sn[None, :]
    s = row_scale(tl.max(tl.abs(x), axis=1))
    row = t
    if AT_START:
        row = tl.load(start_ptr) + t
    dst = (row * NH + heads).to(tl.int64)
    tl.store(s_ptr + dst, s)
    tl.store(q_ptr + dst[:, None] * D + d[None, :], rint_clamp127(tl.math.div_rn(x, s[:, None])).to(tl.int8))


def block_rows(t: int) -> int:
    """Token rows one program of a fused per-row kernel (norm, activation) serves: up to 16 in the
    interpreter (a power of two >= t, masked; each program costs milliseconds there), 1 when compiled
    (one row per program fills the SMs, and its chunk stays in registers)."""
    return min(triton.next_power_of_2(t), 16) if INTERPRETED else 1


def rows_per_program(n: int) -> int:
    """Rows one program of a per-row kernel serves: many in the interpreter (numpy vectorises them, and
    each program costs milliseconds there: the largest power of two dividing ``n``), one when compiled
    (a grid that fills the SMs)."""
    return n & -n if INTERPRETED else 1


def rope_quantize(x: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None,
                  out_q: torch.Tensor | None = None, out_s: torch.Tensor | None = None,
                  start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` fp32 [T, NH, D] -> RoPE (when ``cos``/``sin`` [T, D] are given) then INT8 per (token, head).

    Bit-exact with ``apply_rope`` followed by ``quantize_per_row`` (same products and sums, no FMA).
    With ``out_q`` int8 [L, NH, D] / ``out_s`` fp32 [L, NH] and ``start`` (int32 [1], device) the rows
    are written at positions ``start .. start+T-1`` of those buffers (the KV cache), else into new ones.
    """
    t, nh, d = x.shape
    check_operand(x, "x", torch.float32, (t, nh, d))
    if d & (d - 1):
        raise KernelFormatError(f"head_dim={d} is not supported by rope_quantize; allowed: a power of two")
    rope = cos is not None
    if rope:
        check_operand(cos, "cos", torch.float32, (t, d))
        check_operand(sin, "sin", torch.float32, (t, d))
    at_start = out_q is not None
    if not at_start:
        out_q = torch.empty((t, nh, d), dtype=torch.int8, device=x.device)
        out_s = torch.empty((t, nh), dtype=torch.float32, device=x.device)
        start = out_s          # a valid pointer, never read
    hb = rows_per_program(nh)
    _rope_quantize_kernel[(t, nh // hb)](x, cos if rope else x, sin if rope else x, out_q, out_s, start, nh, D=d,
                                         HB=hb, ROPE=rope, AT_START=at_start, **compile_options())
    return out_q, out_s


# ----------------------------------------------------------------------------- prepared linear inputs
# What a fused element-wise kernel (norm.py, activation.py) writes for the next linear: INT8 codes and
# per-row scales (the contract's activations), FP16 (weight-only), or FP32 (the values themselves, for
# tests that check the element-wise arithmetic per element).
PREPARED = ("int8", "fp16", "fp32")


def prepared_buffers(t: int, k: int, out: str, device: torch.device):
    """(codes int8 [T, K], scales fp32 [T], values [T, K] of ``out``'s dtype) to pass to a fused kernel;
    the buffers ``out`` does not use are 1-element placeholders (valid pointers, never written)."""
    if out not in PREPARED:
        raise KernelFormatError(f"out={out!r} is invalid; allowed: {list(PREPARED)}")
    one = lambda dt: torch.empty((1,), dtype=dt, device=device)
    if out == "int8":
        return (torch.empty((t, k), dtype=torch.int8, device=device), torch.empty((t,), dtype=torch.float32,
                                                                                   device=device), one(torch.float16))
    dt = torch.float16 if out == "fp16" else torch.float32
    return one(torch.int8), one(torch.float32), torch.empty((t, k), dtype=dt, device=device)


def prepared_result(q: torch.Tensor, s: torch.Tensor, h: torch.Tensor, out: str):
    """What the linears take: (codes, scales) for INT8, else the values."""
    return (q, s) if out == "int8" else h


@triton.jit
def store_prepared(a, m, q_ptr, h_ptr, dst, s, OUT: tl.constexpr):
    """One chunk ``a`` (mask ``m``) of a prepared input at element offset ``dst``: INT8 codes at scale ``s``,
    saturated FP16, or FP32 as is."""
    if OUT == "int8":
        tl.store(q_ptr + dst, rint_clamp127(tl.math.div_rn(a, s)).to(tl.int8), mask=m)
    elif OUT == "fp16":
        tl.store(h_ptr + dst, fp16_saturate(a), mask=m)
    else:
        tl.store(h_ptr + dst, a, mask=m)
