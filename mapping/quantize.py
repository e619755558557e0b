"""Group-wise weight quantization to the packed format: round-to-nearest and GPTQ.

Both produce the same thing: per kept weight an unsigned code, per (row,
group) an FP16 scale and (asymmetric) a uint8 zero, exactly as
docs/numerics.md section 1 defines. Scales are rounded to FP16 *before*
codes are chosen, so decode(codes) is the value the quantizer intended.

GPTQ (Frantar et al., ICLR 2023) quantizes one input column at a time and
spreads each column's rounding error over the columns not yet quantized,
weighted by the inverse Hessian of the layer's calibration inputs. Group
parameters are chosen when the sweep reaches a group's first column, from
the already-updated weights, as the reference implementation does. With an
N:M mask, pruned weights quantize to exactly zero and their whole value is
propagated as error (a fixed-mask SparseGPT step).

Every floating-point step gives the same bits on every CPU: the inverse-Hessian factor and the
lazy-batch updates use mapping.portable_math (exact slice products, no LAPACK or BLAS rounding),
and the in-block updates are elementwise, one rounding per weight and column.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from llmaccel.mapping import portable_math as pm
from llmaccel.mapping.recipe import GPTQ_BLOCK_SIZE, RecipeError, gptq_block_problem
from llmaccel.sparse_dsp.packed_format import LayerFormat, PackedLinear, pack_linear


@dataclass
class GroupParams:
    scale: torch.Tensor   # float32 [O] holding FP16-representable values
    zero: torch.Tensor    # float32 [O] (integer valued)


def group_params(w: torch.Tensor, keep: torch.Tensor, bits: int, symmetric: bool) -> GroupParams:
    """Scale/zero of one group per row from its kept weights ``w`` [O, G] (``keep`` bool [O, G])."""
    wk = torch.where(keep, w, torch.zeros_like(w))
    if symmetric:
        amax = wk.abs().amax(dim=1)
        scale = (amax / (2 ** (bits - 1) - 1)).to(torch.float16).to(torch.float32)
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        zero = torch.full_like(scale, float(2 ** (bits - 1)))
    else:
        big = torch.finfo(torch.float32).max
        wmin = torch.where(keep, w, torch.full_like(w, big)).amin(dim=1).clamp(max=0.0)
        wmax = torch.where(keep, w, torch.full_like(w, -big)).amax(dim=1).clamp(min=0.0)
        scale = ((wmax - wmin) / (2 ** bits - 1)).to(torch.float16).to(torch.float32)
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        zero = torch.clamp(torch.round(-wmin / scale), 0, 2 ** bits - 1)
    return GroupParams(scale, zero)


def quantize_codes(w: torch.Tensor, p: GroupParams, bits: int, symmetric: bool) -> torch.Tensor:
    """Unsigned codes (as float) of ``w`` [O, n] with per-row params."""
    s, z = p.scale.unsqueeze(1), p.zero.unsqueeze(1)
    if symmetric:
        half = 2 ** (bits - 1)
        return torch.clamp(torch.round(w / s), -half, half - 1) + z
    return torch.clamp(torch.round(w / s) + z, 0, 2 ** bits - 1)


def dequantize(codes: torch.Tensor, p: GroupParams) -> torch.Tensor:
    return (codes - p.zero.unsqueeze(1)) * p.scale.unsqueeze(1)


def _to_packed(codes_dense: torch.Tensor, keep: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor,
               fmt: LayerFormat) -> PackedLinear:
    o, k = codes_dense.shape
    kept = fmt.kept_per_row
    if fmt.nm is None:
        codes = codes_dense
        columns = None
    else:
        columns = torch.nonzero(keep, as_tuple=False)[:, 1].reshape(o, kept)
        codes = torch.gather(codes_dense, 1, columns)
        columns = columns.numpy()
    return pack_linear(codes.to(torch.int64).numpy().astype(np.uint16), scales.numpy().astype(np.float16),
                       in_features=k, bits=fmt.bits, group_size=fmt.group_size,
                       zeros=None if fmt.symmetric else zeros.numpy().astype(np.uint8),
                       nm=fmt.nm, columns=columns)


def quantize_rtn(weight: torch.Tensor, fmt: LayerFormat, keep: Optional[torch.Tensor] = None) -> PackedLinear:
    """Round-to-nearest group quantization of ``weight`` [O, K] (float32) restricted to ``keep``."""
    o, k = weight.shape
    g = fmt.group_size
    keep = torch.ones_like(weight, dtype=torch.bool) if keep is None else keep
    ng = k // g
    w3, k3 = weight.reshape(o * ng, g), keep.reshape(o * ng, g)
    p = group_params(w3, k3, fmt.bits, fmt.symmetric)
    codes = quantize_codes(w3, p, fmt.bits, fmt.symmetric).reshape(o, k)
    return _to_packed(codes, keep, p.scale.reshape(o, ng), p.zero.reshape(o, ng), fmt)


@dataclass(frozen=True)
class GptqFactor:
    """What GPTQ needs of a Hessian: its dead inputs and the sweep factor. Linears that share an
    input (q/k/v, gate/up) share one Hessian, so the compressor factors it once for all of them."""

    dead: torch.Tensor    # bool [K]: inputs that never fire (zero diagonal)
    hinv: torch.Tensor    # float32 [K, K]: upper Cholesky factor of the dampened H^-1


def gptq_factor(hessian: torch.Tensor, damp_ratio: float = 0.01) -> GptqFactor:
    """Dead inputs set to 1 on the diagonal, ``damp_ratio`` of the mean diagonal added (the GPTQ
    paper's dampening, 1 % by default), then the upper Cholesky factor of the inverse, computed in
    float64 by mapping.portable_math and rounded once to float32."""
    k = hessian.shape[0]
    h = hessian.to(torch.float64).clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    mean_diag = pm.sum_last(torch.diag(h), "Hessian") / k
    h = h + torch.eye(k, dtype=torch.float64) * (damp_ratio * mean_diag)
    return GptqFactor(dead, pm.upper_cholesky_of_inverse(h).to(torch.float32))


def quantize_gptq(weight: torch.Tensor, hessian: Optional[torch.Tensor], fmt: LayerFormat,
                  keep: Optional[torch.Tensor] = None, block_size: int = GPTQ_BLOCK_SIZE,
                  damp_ratio: float = 0.01, factor: Optional[GptqFactor] = None) -> PackedLinear:
    """GPTQ with group-wise parameters. ``hessian`` is X^T X / n over calibration inputs [K, K];
    ``factor`` (:func:`gptq_factor` of it, made once for linears sharing the input) replaces it.

    ``block_size`` columns are swept per lazy batch; it must divide ``fmt.group_size`` or be a
    multiple of it (:func:`mapping.recipe.gptq_block_problem` says why), else RecipeError.
    ``damp_ratio``: see :func:`gptq_factor` (the sweep factor is the upper Cholesky factor of
    H^-1, as in the reference implementation).
    """
    problem = gptq_block_problem(block_size, fmt.group_size)
    if problem:
        raise RecipeError(f"quantize_gptq: {problem}")
    if factor is None:
        factor = gptq_factor(hessian, damp_ratio)
    w = weight.clone().to(torch.float32)
    o, k = w.shape
    keep = torch.ones_like(w, dtype=torch.bool) if keep is None else keep
    w[:, factor.dead] = 0.0
    hinv = factor.hinv

    g = fmt.group_size
    codes = torch.zeros_like(w)
    scales = torch.zeros((o, k // g))
    zeros = torch.zeros((o, k // g))
    params: Optional[GroupParams] = None
    for i1 in range(0, k, block_size):
        i2 = min(i1 + block_size, k)
        err_block = torch.zeros((o, i2 - i1))
        hblock = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if col % g == 0:
                params = group_params(w[:, col:col + g], keep[:, col:col + g], fmt.bits, fmt.symmetric)
                scales[:, col // g], zeros[:, col // g] = params.scale, params.zero
            wc = w[:, col:col + 1]
            q = quantize_codes(wc, params, fmt.bits, fmt.symmetric)
            codes[:, col:col + 1] = q
            deq = torch.where(keep[:, col:col + 1], dequantize(q, params), torch.zeros_like(wc))
            err = (wc - deq) / hblock[i, i]
            w[:, col:i2] -= err * hblock[i:i + 1, i:]
            err_block[:, i:i + 1] = err
        if i2 < k:
            w[:, i2:] -= pm.matmul(err_block, hinv[i1:i2, i2:], "GPTQ errors").to(torch.float32)
    return _to_packed(codes, keep, scales, zeros, fmt)


def output_errors(weight: torch.Tensor, dequants: list[torch.Tensor], hessian: Optional[torch.Tensor]) -> list[float]:
    """:func:`reconstruction_error` of several dequantized versions of one weight, in one product
    (the Hessian is cut once; each row's bits are those of a separate call)."""
    w = weight.to(torch.float64)
    d = torch.stack([w - dq.to(torch.float64) for dq in dequants] + [w])  # [n+1, O, K], exact differences
    if hessian is None:
        e = d * d
    else:
        e = pm.matmul(d.reshape(-1, d.shape[-1]), hessian.to(torch.float64), "weights").view(d.shape) * d
    sums = pm.sum_last(e.reshape(len(dequants) + 1, -1), "weights")
    den = sums[-1].clamp(min=1e-30)
    return [float(s / den) for s in sums[:-1]]


def reconstruction_error(weight: torch.Tensor, dequant: torch.Tensor, hessian: Optional[torch.Tensor]) -> float:
    """Output-space error tr(dW H dW^T) relative to tr(W H W^T); weight-space if no Hessian.

    Float64 with portable products and sums: the allocator compares these numbers and the
    manifest records them, so they must be the same bits on every CPU.
    """
    return output_errors(weight, [dequant], hessian)[0]
