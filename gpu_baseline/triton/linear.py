"""Linear layers straight from the packed format: decode GEMV (split-K) and prefill GEMM.

Two activation types, as the two kinds of users run them:

* INT8 activations (the numerics contract, docs/numerics.md sections 2-3):
  per group an exact INT32 partial sum of INT8 weights times INT8
  activations, then the FP32 rescale ``y += s[o,g] * float(acc[g])`` over the
  groups *in order*, then ``y *= s_x``. Given the same INT8 inputs the output
  is bit-exact with ``simulator.golden.linear``. Split-K GEMV stores the INT32
  partial sums and rescales them in a second kernel in the contract's order,
  so splitting does not change a bit.
* FP16 activations (weight-only quantization, as GPU users run W4A16): the
  group's weights are decoded to ``fp16(s * d)`` and multiplied with FP16
  activations, accumulated in FP32. Its bound is :func:`fp16_error_bound`.

A layer's bias (GPT-2, OPT, Qwen2's q/k/v) is added in FP32 in the epilogue, after the rescale
(``y = (sum_g ...) * s_x + b``, contract section 3), as one more rounded add: launches have
FP contraction off, so it is not fused with the multiply and the INT8 path stays bit-exact.

One kernel specialisation per packed format (bits, group, N:M, symmetric),
so every layer of a mixed-precision model gets its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import triton
import triton.language as tl

from llmaccel.gpu_baseline.triton.formats import DevicePackedLinear, KernelFormatError
from llmaccel.gpu_baseline.triton.launch import INTERPRETED, check_operand, compile_options
from llmaccel.gpu_baseline.triton.unpack import decode_group_tile

GEMM_BLOCK_T = 16      # tl.dot needs tile sides >= 16
# Rows per program. Compiled: 32 keeps a group's tile in registers; the interpreter pays per
# program, not per element, so it runs 512 rows at once (measured 10x faster on the bundled model).
DEFAULT_BLOCK_O = 512 if INTERPRETED else 32
# Groups whose loads one GEMV iteration issues together (compiled): an estimate to be tuned by the
# gpu-bench sweep on a lent GPU; the interpreter gains nothing from it.
DEFAULT_GROUPS_PER_ITER = 1 if INTERPRETED else 4


@dataclass(frozen=True)
class GemvConfig:
    """Tiling of the decode GEMV: rows per program, K-splits (None: chosen from the SM count), warps,
    groups per loop iteration."""

    block_o: int = DEFAULT_BLOCK_O
    split_k: Optional[int] = None
    num_warps: int = 4
    groups_per_iter: int = DEFAULT_GROUPS_PER_ITER


@triton.jit
def _group_scales(scales_ptr, rows, mask, g, ngroups):
    """FP32 scales ``s[rows, g]`` of one group (scales are stored [O, ngroups], row-major)."""
    return tl.load(scales_ptr + rows.to(tl.int64) * ngroups + g, mask=mask, other=0).to(tl.float32)


@triton.jit
def _gemv_program(O, ngroups, groups_per_split, BLOCK_O: tl.constexpr):
    """This GEMV program's rows (axis 0) and the groups ``[g0, g1)`` of its K-split (axis 1)."""
    rows = tl.program_id(0) * BLOCK_O + tl.arange(0, BLOCK_O)
    g0 = tl.program_id(1) * groups_per_split
    return rows, rows < O, g0, tl.minimum(g0 + groups_per_split, ngroups)


@triton.jit
def _gemv_group(x_ptr, codes_ptr, idx_ptr, zeros_ptr, rows, rmask, g, g1, code_words, idx_words, ngroups,
                BITS: tl.constexpr, G: tl.constexpr, N: tl.constexpr, M: tl.constexpr,
                IDX_BITS: tl.constexpr, SYM: tl.constexpr):
    """Group ``g`` of a GEMV loop step: ``ok`` (g < g1, as a vector), the row mask, the decoded weights
    int32 [BLOCK_O, G] and the activations [G] as stored (zero past ``g1``).

    A step issues GPI groups at once, so the last one may run past the split's end: a scalar mask is
    not a valid load mask, hence ``ok`` as a vector.
    """
    ok = (rows * 0 + g) < g1
    m = rmask & ok
    d = decode_group_tile(codes_ptr, idx_ptr, zeros_ptr, rows, m, g, code_words, idx_words, ngroups,
                          BITS, G, N, M, IDX_BITS, SYM)
    cols = tl.arange(0, G)
    x = tl.load(x_ptr + g * G + cols, mask=(cols * 0 + g) < g1, other=0)
    return ok, m, d, x


@triton.jit
def _gemm_program(T, O, BLOCK_T: tl.constexpr, BLOCK_O: tl.constexpr):
    """This GEMM program's tokens (axis 0) and rows (axis 1), with their masks."""
    toks = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    rows = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    return toks, rows, toks < T, rows < O


@triton.jit
def _fp16_weights(d, s):
    """Weight-only dequantization: ``fp16(s * d)`` per row, the weights FP16 activations multiply."""
    return (d.to(tl.float32) * s[:, None]).to(tl.float16)


@triton.jit
def _gemv_int8_kernel(xq_ptr, sx_ptr, codes_ptr, idx_ptr, zeros_ptr, scales_ptr, b_ptr, y_ptr, part_ptr,
                      O, code_words, idx_words, ngroups, groups_per_split,
                      BITS: tl.constexpr, G: tl.constexpr, N: tl.constexpr, M: tl.constexpr,
                      IDX_BITS: tl.constexpr, SYM: tl.constexpr, BIAS: tl.constexpr, BLOCK_O: tl.constexpr,
                      SPLIT: tl.constexpr, STORE_PARTIALS: tl.constexpr, GPI: tl.constexpr):
    rows, rmask, g0, g1 = _gemv_program(O, ngroups, groups_per_split, BLOCK_O)
    y = tl.zeros([BLOCK_O], dtype=tl.float32)
    for gb in range(g0, g1, GPI):
        for j in tl.static_range(GPI):       # GPI groups' loads independent of each other: more bytes in flight
            g = gb + j
            ok, m, w, x = _gemv_group(xq_ptr, codes_ptr, idx_ptr, zeros_ptr, rows, rmask, g, g1, code_words,
                                      idx_words, ngroups, BITS, G, N, M, IDX_BITS, SYM)
            acc = tl.sum(w * x.to(tl.int32)[None, :], axis=1)
            if STORE_PARTIALS:
                tl.store(part_ptr + rows.to(tl.int64) * ngroups + g, acc, mask=m)
            if SPLIT == 1:
                s = _group_scales(scales_ptr, rows, m, g, ngroups)
                y = tl.where(ok, y + s * acc.to(tl.float32), y)     # groups in order, as the contract says
    if SPLIT == 1:
        sx = tl.load(sx_ptr)
        tl.store(y_ptr + rows, _add_bias(y * sx, b_ptr, rows, rmask, BIAS), mask=rmask)


@triton.jit
def _add_bias(y, b_ptr, rows, rmask, BIAS: tl.constexpr):
    """``y + b[rows]`` (FP32, after the rescale) when the layer has a bias, else ``y``; y is [BLOCK_O] or
    [BLOCK_T, BLOCK_O] (rows on the last axis)."""
    if BIAS:
        y = y + tl.load(b_ptr + rows, mask=rmask, other=0.0)
    return y


@triton.jit
def _rescale_kernel(part_ptr, sx_ptr, scales_ptr, b_ptr, y_ptr, O, ngroups, BIAS: tl.constexpr,
                    BLOCK_O: tl.constexpr):
    """y[t, o] = (sum over g in order of s[o,g] * float(acc[t,o,g])) * s_x[t] (+ b[o])."""
    pid_t = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK_O + tl.arange(0, BLOCK_O)
    rmask = rows < O
    base = (pid_t * O + rows).to(tl.int64) * ngroups
    y = tl.zeros([BLOCK_O], dtype=tl.float32)
    for g in range(0, ngroups):
        acc = tl.load(part_ptr + base + g, mask=rmask, other=0)
        s = _group_scales(scales_ptr, rows, rmask, g, ngroups)
        y = y + s * acc.to(tl.float32)
    tl.store(y_ptr + pid_t * O + rows, _add_bias(y * tl.load(sx_ptr + pid_t), b_ptr, rows, rmask, BIAS), mask=rmask)


@triton.jit
def _gemm_int8_kernel(xq_ptr, sx_ptr, codes_ptr, idx_ptr, zeros_ptr, scales_ptr, b_ptr, y_ptr, part_ptr,
                      T, O, K, code_words, idx_words, ngroups,
                      BITS: tl.constexpr, G: tl.constexpr, N: tl.constexpr, M: tl.constexpr,
                      IDX_BITS: tl.constexpr, SYM: tl.constexpr, BIAS: tl.constexpr,
                      BLOCK_T: tl.constexpr, BLOCK_O: tl.constexpr,
                      STORE_PARTIALS: tl.constexpr):
    toks, rows, tmask, rmask = _gemm_program(T, O, BLOCK_T, BLOCK_O)
    cols = tl.arange(0, G)
    y = tl.zeros([BLOCK_T, BLOCK_O], dtype=tl.float32)
    for g in range(0, ngroups):
        w = decode_group_tile(codes_ptr, idx_ptr, zeros_ptr, rows, rmask, g, code_words, idx_words, ngroups,
                              BITS, G, N, M, IDX_BITS, SYM).to(tl.int8)
        x = tl.load(xq_ptr + toks.to(tl.int64)[:, None] * K + g * G + cols[None, :], mask=tmask[:, None], other=0)
        acc = tl.dot(x, tl.trans(w), out_dtype=tl.int32)
        if STORE_PARTIALS:
            tl.store(part_ptr + (toks.to(tl.int64)[:, None] * O + rows[None, :]) * ngroups + g, acc,
                     mask=tmask[:, None] & rmask[None, :])
        s = _group_scales(scales_ptr, rows, rmask, g, ngroups)
        y = y + s[None, :] * acc.to(tl.float32)
    sx = tl.load(sx_ptr + toks, mask=tmask, other=0)
    tl.store(y_ptr + toks.to(tl.int64)[:, None] * O + rows[None, :],
             _add_bias(y * sx[:, None], b_ptr, rows[None, :], rmask[None, :], BIAS),
             mask=tmask[:, None] & rmask[None, :])


@triton.jit
def _gemv_fp16_kernel(x_ptr, codes_ptr, idx_ptr, zeros_ptr, scales_ptr, b_ptr, part_ptr,
                      O, code_words, idx_words, ngroups, groups_per_split,
                      BITS: tl.constexpr, G: tl.constexpr, N: tl.constexpr, M: tl.constexpr,
                      IDX_BITS: tl.constexpr, SYM: tl.constexpr, BIAS: tl.constexpr, BLOCK_O: tl.constexpr,
                      GPI: tl.constexpr):
    """One K-split's FP32 partial outputs; the first split also adds the bias (the splits' partials are
    summed afterwards, so the bias is one more term of that sum: :func:`fp16_error_bound`)."""
    rows, rmask, g0, g1 = _gemv_program(O, ngroups, groups_per_split, BLOCK_O)
    y = tl.zeros([BLOCK_O], dtype=tl.float32)
    for gb in range(g0, g1, GPI):
        for j in tl.static_range(GPI):
            g = gb + j
            ok, m, d, x = _gemv_group(x_ptr, codes_ptr, idx_ptr, zeros_ptr, rows, rmask, g, g1, code_words,
                                      idx_words, ngroups, BITS, G, N, M, IDX_BITS, SYM)
            w = _fp16_weights(d, _group_scales(scales_ptr, rows, m, g, ngroups))
            y = y + tl.sum(w.to(tl.float32) * x.to(tl.float32)[None, :], axis=1)
    tl.store(part_ptr + tl.program_id(1) * O + rows,
             _add_bias(y, b_ptr, rows, rmask & ((rows * 0 + tl.program_id(1)) == 0), BIAS), mask=rmask)


@triton.jit
def _gemm_fp16_kernel(x_ptr, codes_ptr, idx_ptr, zeros_ptr, scales_ptr, b_ptr, y_ptr,
                      T, O, K, code_words, idx_words, ngroups,
                      BITS: tl.constexpr, G: tl.constexpr, N: tl.constexpr, M: tl.constexpr,
                      IDX_BITS: tl.constexpr, SYM: tl.constexpr, BIAS: tl.constexpr,
                      BLOCK_T: tl.constexpr, BLOCK_O: tl.constexpr):
    toks, rows, tmask, rmask = _gemm_program(T, O, BLOCK_T, BLOCK_O)
    cols = tl.arange(0, G)
    y = tl.zeros([BLOCK_T, BLOCK_O], dtype=tl.float32)
    for g in range(0, ngroups):
        d = decode_group_tile(codes_ptr, idx_ptr, zeros_ptr, rows, rmask, g, code_words, idx_words, ngroups,
                              BITS, G, N, M, IDX_BITS, SYM)
        w = _fp16_weights(d, _group_scales(scales_ptr, rows, rmask, g, ngroups))
        x = tl.load(x_ptr + toks.to(tl.int64)[:, None] * K + g * G + cols[None, :], mask=tmask[:, None], other=0)
        y = tl.dot(x, tl.trans(w), y, out_dtype=tl.float32)
    tl.store(y_ptr + toks.to(tl.int64)[:, None] * O + rows[None, :],
             _add_bias(y, b_ptr, rows[None, :], rmask[None, :], BIAS), mask=tmask[:, None] & rmask[None, :])


# --------------------------------------------------------------------------- host side

def _format_args(layer: DevicePackedLinear) -> tuple[tuple, dict]:
    kf = layer.kfmt
    zeros = layer.zeros if layer.zeros is not None else layer.scales   # never read when symmetric
    bias = layer.bias if layer.bias is not None else layer.scales      # never read without a bias
    ptrs = (layer.codes, layer.indices, zeros, layer.scales, bias)
    consts = dict(BITS=kf.bits, G=kf.group_size, N=kf.n, M=kf.m, IDX_BITS=max(kf.index_bits, 1), SYM=kf.symmetric,
                  BIAS=layer.bias is not None)
    return ptrs, consts


def choose_split_k(layer: DevicePackedLinear, cfg: GemvConfig, device: torch.device) -> int:
    """K-splits so that the GEMV launches about two programs per SM (1 on CPU or when rows suffice)."""
    ngroups = layer.fmt.groups_per_row
    if cfg.split_k is not None:
        if not 1 <= cfg.split_k <= ngroups:
            raise KernelFormatError(f"split_k={cfg.split_k} is invalid; allowed: 1..{ngroups} (the layer's groups)")
        return cfg.split_k
    if device.type != "cuda":
        return 1
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    programs = triton.cdiv(layer.out_features, cfg.block_o)
    return max(1, min(ngroups, triton.cdiv(2 * sms, programs)))


def _groups_per_split(ngroups: int, split: int) -> int:
    return triton.cdiv(ngroups, split)


def int8_linear(layer: DevicePackedLinear, q: torch.Tensor, s_x: torch.Tensor, *, gemv: Optional[GemvConfig] = None,
                block_o: int = DEFAULT_BLOCK_O, partials: bool = False):
    """Contract linear for INT8 activations ``q`` int8 [T, K] with scales ``s_x`` fp32 [T] -> fp32 [T, O].

    T == 1 runs the decode GEMV, T > 1 the prefill GEMM. With ``partials=True`` also
    returns the INT32 partial sums [T, O, K/G] the kernel computed (for tests).
    """
    t, k = q.shape
    o, ng = layer.out_features, layer.fmt.groups_per_row
    check_operand(q, "q", torch.int8, (t, layer.in_features))
    check_operand(s_x, "s_x", torch.float32, (t,))
    ptrs, consts = _format_args(layer)
    y = torch.empty((t, o), dtype=torch.float32, device=q.device)
    if t == 1:
        cfg = gemv or GemvConfig()
        split = choose_split_k(layer, cfg, q.device)
        need_parts = partials or split > 1
        part = torch.empty((1, o, ng) if need_parts else (1,), dtype=torch.int32, device=q.device)
        grid = (triton.cdiv(o, cfg.block_o), split)
        _gemv_int8_kernel[grid](q, s_x, *ptrs, y, part, o, layer.codes.shape[1], layer.indices.shape[1], ng,
                                _groups_per_split(ng, split), **consts, BLOCK_O=cfg.block_o, SPLIT=split,
                                STORE_PARTIALS=need_parts, GPI=cfg.groups_per_iter, **compile_options(cfg.num_warps))
        if split > 1:
            _rescale_kernel[(1, triton.cdiv(o, cfg.block_o))](part, s_x, layer.scales, ptrs[4], y, o, ng,
                                                               BIAS=consts["BIAS"], BLOCK_O=cfg.block_o,
                                                               **compile_options())
    else:
        part = torch.empty((t, o, ng) if partials else (1,), dtype=torch.int32, device=q.device)
        grid = (triton.cdiv(t, GEMM_BLOCK_T), triton.cdiv(o, block_o))
        _gemm_int8_kernel[grid](q, s_x, *ptrs, y, part, t, o, k, layer.codes.shape[1], layer.indices.shape[1], ng,
                                **consts, BLOCK_T=GEMM_BLOCK_T, BLOCK_O=block_o, STORE_PARTIALS=partials,
                                **compile_options())
    return (y, part) if partials else y


def fp16_linear(layer: DevicePackedLinear, x: torch.Tensor, *, gemv: Optional[GemvConfig] = None,
                block_o: int = DEFAULT_BLOCK_O) -> torch.Tensor:
    """Weight-only quantized linear: FP16 activations ``x`` [T, K] times ``fp16(s*d)`` -> fp32 [T, O]."""
    t, k = x.shape
    o, ng = layer.out_features, layer.fmt.groups_per_row
    check_operand(x, "x", torch.float16, (t, layer.in_features))
    ptrs, consts = _format_args(layer)
    if t == 1:
        cfg = gemv or GemvConfig()
        split = choose_split_k(layer, cfg, x.device)
        part = torch.empty((split, o), dtype=torch.float32, device=x.device)
        grid = (triton.cdiv(o, cfg.block_o), split)
        _gemv_fp16_kernel[grid](x, *ptrs, part, o, layer.codes.shape[1], layer.indices.shape[1], ng,
                                _groups_per_split(ng, split), **consts, BLOCK_O=cfg.block_o, GPI=cfg.groups_per_iter,
                                **compile_options(cfg.num_warps))
        return part.sum(0, keepdim=True) if split > 1 else part
    y = torch.empty((t, o), dtype=torch.float32, device=x.device)
    grid = (triton.cdiv(t, GEMM_BLOCK_T), triton.cdiv(o, block_o))
    _gemm_fp16_kernel[grid](x, *ptrs, y, t, o, k, layer.codes.shape[1], layer.indices.shape[1], ng,
                            **consts, BLOCK_T=GEMM_BLOCK_T, BLOCK_O=block_o, **compile_options())
    return y


def fp16_error_bound(x: torch.Tensor, w_float: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Bound on |fp16_linear - (x @ w_float.T (+ bias))| (FP32 reference) per output, [T, O].

    Each product carries two FP16 roundings (activation and ``s*d``), relative
    ``2**-11`` each, so ``(1 + 2**-11)**2 - 1 < 2**-10 + 2**-22``; the FP32
    accumulation of K terms in any order adds at most ``K * 2**-24`` (the
    standard gamma_K bound, K * u / (1 - K * u), with K * u << 1), taken twice
    for the reference's own FP32 sum. All relative to ``|x| @ |w|.T``. A bias is one more
    exact term of both sums (K + 1 terms, the bound's K grows by one) and enters as ``|b|``.
    """
    k = x.shape[1] + (bias is not None)
    rel = 2.0 ** -10 + 2.0 ** -22 + 2 * k * 2.0 ** -24
    ax = x.abs().double() @ w_float.abs().double().T
    if bias is None:
        return (rel * ax).float()
    return (rel * ax + 2 * k * 2.0 ** -24 * bias.abs().double()).float()
