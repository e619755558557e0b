"""The MLP's activation (gated or not) + the down projection's input, as one Triton kernel.

Gated (SwiGLU: Llama, Mistral, Qwen2): ``a = act(gate) * up``; not gated (GPT-2, OPT):
``a = act(up)``. Then ``a`` as INT8 codes + scale (the contract's activations), FP16
(weight-only) or FP32 (tests). The activations are transformers' ACT2FN ones
(``Architecture.activation``):

* ``silu``: ``z / (1 + exp(-z))`` (contract section 4);
* ``gelu_tanh`` (GPT-2's ``gelu_new``): ``0.5 z (1 + tanh(u))``, ``u = sqrt(2/pi) (z + 0.044715 z^3)``,
  computed as ``z / (1 + exp(-2u))`` (the same function: ``1 + tanh(u) = 2 / (1 + exp(-2u))``), so
  one ``exp`` and no cancellation where ``tanh(u)`` is near -1;
* ``gelu`` (erf): ``(0.5 z) (1 + erf(z / sqrt(2)))``;
* ``relu``: ``max(z, 0)``, NaN kept (exact).

``exp`` and ``erf`` may differ from torch's by a few ULP (the contract's 4 ULP for ``exp``), and
torch's tanh form rounds differently from the sigmoid form; the per-element bounds are measured
in tests/gpu_baseline/test_triton_families.py. Where a value sits on an INT8 rounding edge the
code can then differ from the reference's by one step.
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from llmaccel.gpu_baseline.triton.formats import KernelFormatError
from llmaccel.gpu_baseline.triton.launch import compile_options
from llmaccel.gpu_baseline.triton.quantize import (CHUNK, block_rows, prepared_buffers, prepared_result, row_scale,
                                                   store_prepared)

KERNEL_ACTIVATIONS = ("silu", "gelu_tanh", "gelu", "relu")


@triton.jit
def activation_fn(z, ACT: tl.constexpr):
    """One of KERNEL_ACTIVATIONS, element-wise in FP32."""
    if ACT == "silu":
        a = tl.math.div_rn(z, 1.0 + tl.exp(-z))
    elif ACT == "gelu_tanh":
        u = 0.7978845608028654 * (z + 0.044715 * (z * z * z))
        a = tl.math.div_rn(z, 1.0 + tl.exp(-2.0 * u))
    elif ACT == "gelu":
        a = (0.5 * z) * (1.0 + tl.math.erf(z * 0.7071067811865476))
    else:
        a = tl.maximum(z, 0.0, propagate_nan=tl.PropagateNan.ALL)
    return a


@triton.jit
def _act_chunk(g_ptr, u_ptr, rows, rmask, g_stride, u_stride, k0, lane, K, ACT: tl.constexpr, GATED: tl.constexpr):
    """One chunk [RB, CHUNK] of ``a`` and its mask (recomputed by each pass, like the norm chunk)."""
    m = rmask[:, None] & ((k0 + lane) < K)[None, :]
    col = k0 + lane[None, :]
    up = tl.load(u_ptr + rows[:, None] * u_stride + col, mask=m, other=0.0)
    if GATED:
        a = activation_fn(tl.load(g_ptr + rows[:, None] * g_stride + col, mask=m, other=0.0), ACT) * up
    else:
        a = activation_fn(up, ACT)
    return a, m


@triton.jit
def _act_prepare_kernel(g_ptr, u_ptr, g_stride, u_stride, q_ptr, s_ptr, h_ptr, T, K,
                        ACT: tl.constexpr, GATED: tl.constexpr, OUT: tl.constexpr, RB: tl.constexpr,
                        CHUNK: tl.constexpr):
    rows = (tl.program_id(0) * RB + tl.arange(0, RB)).to(tl.int64)
    rmask = rows < T
    lane = tl.arange(0, CHUNK)
    out = rows * K
    s = tl.full([RB], 1.0, tl.float32)
    if OUT == "int8":
        amax = tl.zeros([RB, CHUNK], dtype=tl.float32)
        for k0 in range(0, K, CHUNK):
            a, m = _act_chunk(g_ptr, u_ptr, rows, rmask, g_stride, u_stride, k0, lane, K, ACT, GATED)
            amax = tl.maximum(amax, tl.abs(a))
        s = row_scale(tl.max(amax, axis=1))
        tl.store(s_ptr + rows, s, mask=rmask)
    for k0 in range(0, K, CHUNK):
        a, m = _act_chunk(g_ptr, u_ptr, rows, rmask, g_stride, u_stride, k0, lane, K, ACT, GATED)
        store_prepared(a, m, q_ptr, h_ptr, out[:, None] + k0 + lane[None, :], s[:, None], OUT)


def act_prepare(gate: Optional[torch.Tensor], up: torch.Tensor, activation: str, out: str):
    """The down projection's input from ``up`` [T, I] (and ``gate`` [T, I] when the MLP is gated); rows
    may be strided views of one stacked gate|up output. ``out``: ``int8`` -> (codes, scales), else values."""
    if activation not in KERNEL_ACTIVATIONS:
        raise KernelFormatError(f"activation={activation!r} is not supported by the Triton kernels; allowed: "
                                f"{list(KERNEL_ACTIVATIONS)}")
    t, k = up.shape
    for name, a in (("gate", gate), ("up", up)):
        if a is not None and (a.dtype != torch.float32 or tuple(a.shape) != (t, k) or a.stride(1) != 1):
            raise KernelFormatError(f"operand '{name}' must be float32[{t}, {k}] with unit column stride")
    q, s, h = prepared_buffers(t, k, out, up.device)
    g = gate if gate is not None else up
    rb = block_rows(t)
    _act_prepare_kernel[(triton.cdiv(t, rb),)](g, up, g.stride(0), up.stride(0), q, s, h, t, k, ACT=activation,
                                               GATED=gate is not None, OUT=out, RB=rb, CHUNK=CHUNK,
                                               **compile_options())
    return prepared_result(q, s, h, out)
