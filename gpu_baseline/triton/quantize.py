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

from gpu_baseline.triton.launch import check_operand, compile_options

CHUNK = 1024


@triton.jit
def _quantize_kernel(x_ptr, q_ptr, s_ptr, K, CHUNK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = row * K
    lane = tl.arange(0, CHUNK)
    amax = tl.zeros([CHUNK], dtype=tl.float32)
    for k0 in range(0, K, CHUNK):
        x = tl.load(x_ptr + base + k0 + lane, mask=(k0 + lane) < K, other=0.0)
        amax = tl.maximum(amax, tl.abs(x))
    a = tl.max(amax, axis=0)
    s = tl.math.div_rn(a, 127.0)
    s = tl.where(a == 0.0, 1.0, s)
    tl.store(s_ptr + row, s)
    for k0 in range(0, K, CHUNK):
        m = (k0 + lane) < K
        v = tl.math.div_rn(tl.load(x_ptr + base + k0 + lane, mask=m, other=0.0), s)
        r = tl.floor(v)
        f = v - r
        odd = (r - 2.0 * tl.floor(r * 0.5)) != 0.0
        r = tl.where((f > 0.5) | ((f == 0.5) & odd), r + 1.0, r)
        r = tl.minimum(tl.maximum(r, -127.0), 127.0)
        tl.store(q_ptr + base + k0 + lane, r.to(tl.int8), mask=m)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 [R, K] -> (int8 codes [R, K], fp32 scales [R]), contract section 2 per row."""
    r, k = x.shape
    check_operand(x, "x", torch.float32, (r, k))
    q = torch.empty((r, k), dtype=torch.int8, device=x.device)
    s = torch.empty((r,), dtype=torch.float32, device=x.device)
    _quantize_kernel[(r,)](x, q, s, k, CHUNK=CHUNK, **compile_options())
    return q, s
