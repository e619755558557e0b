"""Per-row symmetric INT8 activation quantization (contract section 2) as one Triton kernel.

``s = amax / 127`` (``s = 1`` when ``amax == 0``), ``q = clamp(rint(x / s), -127, 127)``,
with IEEE division (``div_rn``) and round-half-even, so the codes and scales are
bit-exact with ``simulator.golden.linear.quantize_activation`` and the
reference's ``quantize_per_row``. One launch instead of torch's eight
element-wise kernels: the decode step is launch-bound at batch 1.

``rint`` is built from ``floor``: ``r = floor(v)``, ``f = v - r`` (exact for
``|v| <= 127``), round up when ``f > 0.5`` or ``f == 0.5`` and ``r`` is odd.
(``floor(v + 0.5)`` would be wrong for the float just below 0.5.)
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from llmaccel.gpu_baseline.triton.formats import KernelFormatError
from llmaccel.gpu_baseline.triton.launch import check_operand, compile_options

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
                          ROPE: tl.constexpr, AT_START: tl.constexpr):
    """One (token, head) row: optional RoPE (HF rotate-half), then per-row INT8; rows land at ``start + t``
    when AT_START (the KV cache) else at ``t``."""
    t = tl.program_id(0)
    h = tl.program_id(1)
    d = tl.arange(0, D)
    src = (t * NH + h).to(tl.int64) * D
    x = tl.load(x_ptr + src + d)
    if ROPE:
        HALF: tl.constexpr = D // 2
        partner = tl.load(x_ptr + src + (d + HALF) % D)
        rot = tl.where(d < HALF, -partner, partner)
        c = tl.load(cos_ptr + t * D + d)
        sn = tl.load(sin_ptr + t * D + d)
        x = x * c + rot * sn
    s = row_scale(tl.max(tl.abs(x), axis=0))
    row = t
    if AT_START:
        row = tl.load(start_ptr) + t
    dst = (row * NH + h).to(tl.int64)
    tl.store(s_ptr + dst, s)
    tl.store(q_ptr + dst * D + d, rint_clamp127(tl.math.div_rn(x, s)).to(tl.int8))


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
    _rope_quantize_kernel[(t, nh)](x, cos if rope else x, sin if rope else x, out_q, out_s, start, nh, D=d,
                                   ROPE=rope, AT_START=at_start, **compile_options())
    return out_q, out_s


@triton.jit
def _rmsnorm_chunk(w_ptr, src, base, k0, lane, K, r):
    """One chunk of ``h = w * (x * r)`` (r = 1 / RMS of the row) and its mask; each pass recomputes it
    rather than keeping the row."""
    m = (k0 + lane) < K
    return tl.load(w_ptr + k0 + lane, mask=m, other=0.0) * (tl.load(src + base + k0 + lane, mask=m, other=0.0) * r), m


@triton.jit
def _add_rmsnorm_quant_kernel(x_ptr, res_ptr, w_ptr, xo_ptr, q_ptr, s_ptr, h16_ptr, K, eps,
                              ADD: tl.constexpr, INT8: tl.constexpr, CHUNK: tl.constexpr):
    """x = x + res (ADD); h = w * (x * (1 / sqrt(mean(x^2) + eps))); then h as INT8 codes + scale, or FP16."""
    row = tl.program_id(0).to(tl.int64)
    base = row * K
    lane = tl.arange(0, CHUNK)
    ss = tl.zeros([CHUNK], dtype=tl.float32)
    for k0 in range(0, K, CHUNK):
        m = (k0 + lane) < K
        x = tl.load(x_ptr + base + k0 + lane, mask=m, other=0.0)
        if ADD:
            x = x + tl.load(res_ptr + base + k0 + lane, mask=m, other=0.0)
            tl.store(xo_ptr + base + k0 + lane, x, mask=m)
        ss = ss + x * x
    r = tl.math.div_rn(1.0, tl.math.sqrt_rn(tl.math.div_rn(tl.sum(ss, axis=0), K * 1.0) + eps))
    src = xo_ptr if ADD else x_ptr
    if INT8:
        amax = tl.zeros([CHUNK], dtype=tl.float32)
        for k0 in range(0, K, CHUNK):
            h, m = _rmsnorm_chunk(w_ptr, src, base, k0, lane, K, r)
            amax = tl.maximum(amax, tl.abs(h))
        s = row_scale(tl.max(amax, axis=0))
        tl.store(s_ptr + row, s)
        for k0 in range(0, K, CHUNK):
            h, m = _rmsnorm_chunk(w_ptr, src, base, k0, lane, K, r)
            tl.store(q_ptr + base + k0 + lane, rint_clamp127(tl.math.div_rn(h, s)).to(tl.int8), mask=m)
    else:
        for k0 in range(0, K, CHUNK):
            h, m = _rmsnorm_chunk(w_ptr, src, base, k0, lane, K, r)
            tl.store(h16_ptr + base + k0 + lane, fp16_saturate(h), mask=m)


def add_rmsnorm_prepare(x: torch.Tensor, res: torch.Tensor | None, w: torch.Tensor, eps: float, int8: bool):
    """(x + res, prepared rmsnorm(x + res, w)) in one launch; prepared = (int8 codes, scales) or FP16.

    The residual add and the element-wise products are exactly torch's; the mean of squares is a
    tree sum (the contract bounds RMSNorm at 8 ULP against torch's own reduction order).
    """
    t, k = x.shape
    check_operand(x, "x", torch.float32, (t, k))
    check_operand(w, "w", torch.float32, (k,))
    if res is not None:
        check_operand(res, "res", torch.float32, (t, k))
    xo = torch.empty_like(x) if res is not None else x
    q = torch.empty((t, k), dtype=torch.int8, device=x.device) if int8 else xo
    s = torch.empty((t,), dtype=torch.float32, device=x.device) if int8 else xo
    h16 = xo if int8 else torch.empty((t, k), dtype=torch.float16, device=x.device)
    _add_rmsnorm_quant_kernel[(t,)](x, res if res is not None else x, w, xo, q, s, h16, k, eps,
                                    ADD=res is not None, INT8=int8, CHUNK=CHUNK, **compile_options())
    return xo, ((q, s) if int8 else h16)


@triton.jit
def _silu_mul_chunk(g_ptr, u_ptr, row, g_stride, u_stride, k0, lane, K):
    """One chunk of ``a = silu(gate) * up`` and its mask (recomputed by each pass, like the RMSNorm chunk)."""
    m = (k0 + lane) < K
    z = tl.load(g_ptr + row * g_stride + k0 + lane, mask=m, other=0.0)
    return tl.math.div_rn(z, 1.0 + tl.exp(-z)) * tl.load(u_ptr + row * u_stride + k0 + lane, mask=m, other=0.0), m


@triton.jit
def _silu_mul_quant_kernel(g_ptr, u_ptr, g_stride, u_stride, q_ptr, s_ptr, h16_ptr, K,
                           INT8: tl.constexpr, CHUNK: tl.constexpr):
    """a = silu(gate) * up with silu(z) = z / (1 + exp(-z)) (contract section 4), then a's INT8 codes or FP16."""
    row = tl.program_id(0).to(tl.int64)
    lane = tl.arange(0, CHUNK)
    out = row * K
    if INT8:
        amax = tl.zeros([CHUNK], dtype=tl.float32)
        for k0 in range(0, K, CHUNK):
            a, m = _silu_mul_chunk(g_ptr, u_ptr, row, g_stride, u_stride, k0, lane, K)
            amax = tl.maximum(amax, tl.abs(a))
        s = row_scale(tl.max(amax, axis=0))
        tl.store(s_ptr + row, s)
    for k0 in range(0, K, CHUNK):
        a, m = _silu_mul_chunk(g_ptr, u_ptr, row, g_stride, u_stride, k0, lane, K)
        if INT8:
            tl.store(q_ptr + out + k0 + lane, rint_clamp127(tl.math.div_rn(a, s)).to(tl.int8), mask=m)
        else:
            tl.store(h16_ptr + out + k0 + lane, fp16_saturate(a), mask=m)


def silu_mul_prepare(gate: torch.Tensor, up: torch.Tensor, int8: bool):
    """The down projection's prepared input from gate/up [T, I] (rows may be strided views of one
    stacked output): (int8 codes, scales) or FP16. SiLU's exp may differ from torch's by the contract's
    4 ULP, so codes can differ from the reference's by one step where a value sits on a rounding edge."""
    t, k = gate.shape
    for name, a in (("gate", gate), ("up", up)):
        if a.dtype != torch.float32 or tuple(a.shape) != (t, k) or a.stride(1) != 1:
            raise KernelFormatError(f"operand '{name}' must be float32[{t}, {k}] with unit column stride")
    q = torch.empty((t, k), dtype=torch.int8, device=gate.device)
    s = torch.empty((t,), dtype=torch.float32, device=gate.device)
    h16 = q if int8 else torch.empty((t, k), dtype=torch.float16, device=gate.device)
    _silu_mul_quant_kernel[(t,)](gate, up, gate.stride(0), up.stride(0), q, s, h16, k, INT8=int8, CHUNK=CHUNK,
                                 **compile_options())
    return (q, s) if int8 else h16
