"""Residual add + the family's norm (RMSNorm or LayerNorm) + the next linear's input, as one Triton kernel.

A pre-norm block (every family here, ``Architecture.dataflow``) adds the last sublayer's
output to the residual stream and normalises the sum for the next linear; at batch 1 the
decode step is launch-bound, so the add, the norm and the INT8 quantization (or FP16
rounding) of the result are one launch per norm.

* RMSNorm (Llama, Mistral, Qwen2): ``h = w * (x * r)``, ``r = 1 / sqrt(mean(x^2) + eps)``.
* LayerNorm (GPT-2, OPT): ``mu = mean(x)``, ``var = mean((x - mu)^2)`` (the biased variance,
  as torch's layer_norm), ``r = 1 / sqrt(var + eps)``, ``h = ((x - mu) * r) * w + b``.

The residual add and the element-wise products round exactly as torch's ops do; the means
are tree sums (torch uses its own reduction order), which the contract bounds (section 5):
RMSNorm 8 ULP. LayerNorm's two means and its centring differ from torch's fused kernel in
the same way; its per-element bound is measured in tests/gpu_baseline/test_triton_families.py.
Each pass recomputes the chunk rather than keeping the row (rows of any width, fixed registers);
a program serves :func:`~gpu_baseline.triton.quantize.block_rows` rows (one when compiled).
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from llmaccel.gpu_baseline.triton.formats import KernelFormatError
from llmaccel.gpu_baseline.triton.launch import check_operand, compile_options
from llmaccel.gpu_baseline.triton.quantize import (CHUNK, block_rows, prepared_buffers, prepared_result,
                                                   row_scale, store_prepared)

NORM_KINDS = ("rmsnorm", "layernorm")


@triton.jit
def _norm_chunk(w_ptr, b_ptr, src, base, rmask, k0, lane, K, mu, r, LAYERNORM: tl.constexpr):
    """One chunk [RB, CHUNK] of the normalised rows and its mask (masked lanes are 0)."""
    cm = (k0 + lane) < K
    m = rmask[:, None] & cm[None, :]
    x = tl.load(src + base[:, None] + k0 + lane[None, :], mask=m, other=0.0)
    w = tl.load(w_ptr + k0 + lane, mask=cm, other=0.0)[None, :]
    if LAYERNORM:
        h = ((x - mu[:, None]) * r[:, None]) * w + tl.load(b_ptr + k0 + lane, mask=cm, other=0.0)[None, :]
    else:
        h = w * (x * r[:, None])
    return h, m


@triton.jit
def _add_norm_kernel(x_ptr, res_ptr, w_ptr, b_ptr, xo_ptr, q_ptr, s_ptr, h_ptr, T, K, eps,
                     ADD: tl.constexpr, LAYERNORM: tl.constexpr, OUT: tl.constexpr, RB: tl.constexpr,
                     CHUNK: tl.constexpr):
    """RB rows: x = x + res (ADD); h = norm(x); then h as INT8 codes + scale, FP16 or FP32 (OUT)."""
    rows = tl.program_id(0) * RB + tl.arange(0, RB)
    rmask = rows < T
    base = rows.to(tl.int64) * K
    lane = tl.arange(0, CHUNK)
    acc = tl.zeros([RB, CHUNK], dtype=tl.float32)
    for k0 in range(0, K, CHUNK):
        m = rmask[:, None] & ((k0 + lane) < K)[None, :]
        off = base[:, None] + k0 + lane[None, :]
        x = tl.load(x_ptr + off, mask=m, other=0.0)
        if ADD:
            x = x + tl.load(res_ptr + off, mask=m, other=0.0)
            tl.store(xo_ptr + off, x, mask=m)
        if LAYERNORM:
            acc = acc + x
        else:
            acc = acc + x * x
    src = xo_ptr if ADD else x_ptr
    if LAYERNORM:
        mu = tl.math.div_rn(tl.sum(acc, axis=1), K * 1.0)
        sq = tl.zeros([RB, CHUNK], dtype=tl.float32)
        for k0 in range(0, K, CHUNK):
            m = rmask[:, None] & ((k0 + lane) < K)[None, :]
            x = tl.load(src + base[:, None] + k0 + lane[None, :], mask=m, other=0.0)
            d = tl.where(m, x - mu[:, None], 0.0)
            sq = sq + d * d
        r = tl.math.div_rn(1.0, tl.math.sqrt_rn(tl.math.div_rn(tl.sum(sq, axis=1), K * 1.0) + eps))
    else:
        mu = tl.zeros([RB], dtype=tl.float32)
        r = tl.math.div_rn(1.0, tl.math.sqrt_rn(tl.math.div_rn(tl.sum(acc, axis=1), K * 1.0) + eps))
    s = tl.full([RB], 1.0, tl.float32)
    if OUT == "int8":
        amax = tl.zeros([RB, CHUNK], dtype=tl.float32)
        for k0 in range(0, K, CHUNK):
            h, m = _norm_chunk(w_ptr, b_ptr, src, base, rmask, k0, lane, K, mu, r, LAYERNORM)
            amax = tl.maximum(amax, tl.abs(h))
        s = row_scale(tl.max(amax, axis=1))
        tl.store(s_ptr + rows, s, mask=rmask)
    for k0 in range(0, K, CHUNK):
        h, m = _norm_chunk(w_ptr, b_ptr, src, base, rmask, k0, lane, K, mu, r, LAYERNORM)
        store_prepared(h, m, q_ptr, h_ptr, base[:, None] + k0 + lane[None, :], s[:, None], OUT)


def add_norm_prepare(x: torch.Tensor, res: Optional[torch.Tensor], w: torch.Tensor, b: Optional[torch.Tensor],
                     eps: float, kind: str, out: str):
    """(x + res, the next linear's input norm(x + res)) in one launch.

    ``kind``: ``rmsnorm`` (``b`` must be None) or ``layernorm`` (``b`` fp32 [K] required); ``out``:
    ``int8`` -> (codes, scales), ``fp16`` / ``fp32`` -> the normalised values. ``res=None``: no add
    (the first norm), and the returned residual is ``x`` itself.
    """
    if kind not in NORM_KINDS:
        raise KernelFormatError(f"norm kind={kind!r} is not supported by the Triton kernels; allowed: {list(NORM_KINDS)}")
    t, k = x.shape
    check_operand(x, "x", torch.float32, (t, k))
    check_operand(w, "w", torch.float32, (k,))
    if (b is not None) != (kind == "layernorm"):
        raise KernelFormatError(f"norm kind={kind!r} {'needs' if kind == 'layernorm' else 'takes no'} a bias")
    if b is not None:
        check_operand(b, "b", torch.float32, (k,))
    if res is not None:
        check_operand(res, "res", torch.float32, (t, k))
    xo = torch.empty_like(x) if res is not None else x
    q, s, h = prepared_buffers(t, k, out, x.device)
    rb = block_rows(t)
    _add_norm_kernel[(triton.cdiv(t, rb),)](x, res if res is not None else x, w, b if b is not None else w, xo,
                                            q, s, h, t, k, eps, ADD=res is not None, LAYERNORM=kind == "layernorm",
                                            OUT=out, RB=rb, CHUNK=CHUNK, **compile_options())
    return xo, prepared_result(q, s, h, out)
