"""Float64 kernels whose bits do not depend on the CPU: the same result under every instruction set.

Why: torch's CPU kernels are compiled once per vector ISA (ATEN_CPU_CAPABILITY default / avx2 /
avx512) and BLAS picks its own kernel by CPUID. Reductions then add in a different order, and
exp/sin/pow use different approximations (Sleef vectors vs. scalar libm), so a calibration run
gives other Hessians, other Wanda norms and in the end other weight codes on another machine.
Rounding the statistics to a coarser grid would not help: a value near a grid edge still flips.

What is used here, and why each is portable:

* IEEE-754 elementwise ``+ - * /``, ``sqrt``, ``trunc``, ``round`` (half to even), ``max``: each
  result is correctly rounded, so a vector lane and a scalar loop give the same bits. Every
  product and sum is its own torch op (no ``alpha=``, ``addcmul`` or ``lerp``, which a compiler
  may fuse into an FMA in one ISA's kernel and not in another's).
* Sums and matrix products are made *exact* before any floating-point addition happens
  (the Ozaki splitting idea): each row of A and each column of B is scaled by a power of two and
  cut into integer-valued slices of ``b`` bits, with ``b`` chosen so that every partial sum of a
  slice product is an integer below 2^53. Any summation order, any blocking, any FMA gives that
  integer exactly, so BLAS may do what it likes. The slices are then combined by elementwise ops
  in a fixed order. Two slices keep ``2b`` bits of each row (>= 38 bits for K <= 2^15); the
  error is below ``12 K 2^-2b max|A_i| max|B_j|`` (docs/numerics.md, "Cross-CPU determinism").
* ``exp`` is a Cody-Waite range reduction and a degree-13 Taylor polynomial in float64 (error
  below 1 ulp of float64 for the arguments calibration produces), not libm or Sleef.
* RoPE angles, cos and sin are computed in 40-digit decimal arithmetic (Python's ``decimal``,
  integer arithmetic underneath) and rounded once to float64.
"""
from __future__ import annotations

import math
from decimal import Context, Decimal
from functools import lru_cache
from typing import Optional

import torch

from sparse_dsp.errors import LlmaccelError

F64 = torch.float64
_MANT = 53                          # float64 significand bits
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: n * _LN2_HI is exact for |n| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(14))  # |r| <= ln2/2: r^14/14! < 2^-57
_EXP_MIN, _EXP_MAX = -745.2, 709.78                              # exp underflows to 0 / overflows


class NonFiniteError(LlmaccelError):
    """A calibration quantity became inf or NaN (the checkpoint's activations overflow)."""


def pow2(e: torch.Tensor) -> torch.Tensor:
    """Exact 2^e as float64 from an integer tensor with -1022 <= e <= 1023 (built from its bits)."""
    return ((e.to(torch.int64) + 1023) << 52).view(F64)


def _check_finite(amax: torch.Tensor, what: str) -> None:
    """``amax`` is a max of |values| (NaN propagates through amax, so it is finite iff they all are)."""
    if not bool(torch.isfinite(amax).all()):
        raise NonFiniteError(f"{what} holds inf or NaN; calibration cannot continue on this checkpoint")


def _slice_bits(k: int) -> int:
    """Bits per slice so that a sum of k products of two slices stays an exact float64 integer."""
    return (_MANT - max(1, math.ceil(math.log2(max(k, 2))))) // 2


def _split(a: torch.Tensor, dim: int, bits: int, what: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """a ~= 2^(e-bits) * (hi + 2^-bits * lo) with e per slice along ``dim``; hi, lo integers < 2^bits."""
    amax = a.abs().amax(dim=dim, keepdim=True)
    _check_finite(amax, what)
    e = torch.frexp(amax).exponent.to(torch.int64).clamp(min=bits - 1022)  # amax < 2^e
    scaled = a * pow2(bits - e)                                            # exact: a power of two
    hi = torch.trunc(scaled)
    lo = torch.trunc((scaled - hi) * pow2(torch.tensor(bits)))             # both steps exact
    return hi, lo, e - bits


def matmul(a: torch.Tensor, b: torch.Tensor, what: str = "calibration activations") -> torch.Tensor:
    """``a @ b`` (batched like torch.matmul) in float64, the same bits on every CPU.

    Three float64 products of integer slices (hi*hi, hi*lo, lo*hi), each exact; lo*lo is below
    the truncation error and left out.
    """
    a, b = a.to(F64), b.to(F64)
    bits = _slice_bits(a.shape[-1])
    ah, al, ea = _split(a, -1, bits, what)
    bh, bl, eb = _split(b, -2, bits, what)
    cross = torch.matmul(ah, bl) + torch.matmul(al, bh)
    out = torch.matmul(ah, bh) + cross * pow2(torch.tensor(-bits))
    return out * pow2(ea.clamp(min=-1022)) * pow2(eb.clamp(min=-1022))


def sum_last(a: torch.Tensor, what: str = "calibration activations") -> torch.Tensor:
    """Sum over the last dimension in float64, the same bits on every CPU (exact integer slice sums)."""
    a = a.to(F64)
    bits = _MANT - 1 - max(1, math.ceil(math.log2(max(a.shape[-1], 2))))
    hi, lo, e = _split(a, -1, bits, what)
    s = hi.sum(-1, keepdim=True) + lo.sum(-1, keepdim=True) * pow2(torch.tensor(-bits))
    return (s * pow2(e.clamp(min=-1022))).squeeze(-1)


def exp(x: torch.Tensor) -> torch.Tensor:
    """e^x in float64 for finite x or -inf (-> 0), the same bits on every CPU."""
    x = x.to(F64)
    under = x < _EXP_MIN
    xc = x.clamp(_EXP_MIN, _EXP_MAX)
    n = torch.round(xc * _INV_LN2)
    r = (xc - n * _LN2_HI) - n * _LN2_LO
    p = torch.full_like(r, _EXP_TAYLOR[-1])
    for c in reversed(_EXP_TAYLOR[:-1]):  # Horner, in place: one multiply and one add per degree
        p.mul_(r).add_(c)
    n = n.to(torch.int64)
    n1 = torch.div(n, 2, rounding_mode="floor")  # two factors keep each power of two normal
    out = (p * pow2(n1)) * pow2(n - n1)
    return torch.where(under, torch.zeros_like(out), out)


def sigmoid_linear(z: torch.Tensor) -> torch.Tensor:
    """SiLU z * sigmoid(z) = z / (1 + e^-z), float64."""
    return z / (exp(-z) + 1.0)


def causal_softmax(scores: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim of float64 scores [..., Tq, Tk], keys after the query masked."""
    masked = k_pos[None, :] > q_pos[:, None]
    s = scores.masked_fill(masked, float("-inf"))
    m = s.amax(dim=-1, keepdim=True)
    e = exp(s - m)
    return e / sum_last(e).unsqueeze(-1)


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """weight * (x / sqrt(mean(x^2) + eps)) in float64, the operation order of Hugging Face's Llama."""
    var = sum_last(x * x) / x.shape[-1]
    return weight.to(F64) * (x * (1.0 / torch.sqrt(var + eps)).unsqueeze(-1))


_NB = 128  # block size of the triangular algorithms below


def cholesky_lower(a: torch.Tensor) -> torch.Tensor:
    """Lower L with a = L L^T (float64 SPD ``a``), right-looking blocked; trailing updates by :func:`matmul`."""
    a = a.to(F64).clone()
    n = a.shape[0]
    for j0 in range(0, n, _NB):
        j1 = min(j0 + _NB, n)
        for j in range(j0, j1):
            d = a[j, j]
            if not bool(d > 0):
                raise LlmaccelError(f"Hessian is not positive definite at column {j} (pivot {float(d)!r})")
            col = a[j:, j] / torch.sqrt(d)
            a[j:, j] = col
            if j + 1 < j1:  # rank-1 update of the rest of this panel, one rounding per element
                a[j + 1:, j + 1:j1] -= col[1:, None] * col[1:j1 - j][None, :]
        if j1 < n:
            p = a[j1:, j0:j1]
            a[j1:, j1:] -= matmul(p, p.T, "Hessian")
    return torch.tril(a)


def _inv_lower_small(l: torch.Tensor) -> torch.Tensor:
    """L^-1 of a small lower-triangular block by row-wise forward substitution (rank-1 updates)."""
    m = l.shape[0]
    x = torch.eye(m, dtype=F64)
    for j in range(m):
        x[j] = x[j] / l[j, j]
        if j + 1 < m:
            x[j + 1:] -= l[j + 1:, j:j + 1] * x[j:j + 1]
    return x


def inv_lower(l: torch.Tensor) -> torch.Tensor:
    """L^-1 of a lower-triangular float64 matrix, blocked by rows: X[i, :i] = -L[i,i]^-1 L[i, :i] X[:i, :i]."""
    n = l.shape[0]
    x = torch.zeros_like(l, dtype=F64)
    for i0 in range(0, n, _NB):
        i1 = min(i0 + _NB, n)
        d = _inv_lower_small(l[i0:i1, i0:i1])
        x[i0:i1, i0:i1] = d
        if i0:
            x[i0:i1, :i0] = -matmul(d, matmul(l[i0:i1, :i0], x[:i0, :i0], "Hessian"), "Hessian")
    return x


def upper_cholesky_of_inverse(h: torch.Tensor) -> torch.Tensor:
    """Upper U with U^T U = h^-1 (what GPTQ sweeps with), without forming h^-1.

    With P the index reversal, P h P = L L^T gives h = V V^T for the upper V = P L P, so
    h^-1 = V^-T V^-1 and U = V^-1 = P L^-1 P.
    """
    lr = cholesky_lower(torch.flip(h, (0, 1)))
    return torch.flip(inv_lower(lr), (0, 1))


@lru_cache(maxsize=8)
def _rope_tables(head_dim: int, theta: float, scaling: Optional[tuple], t: int) -> tuple[torch.Tensor, torch.Tensor]:
    ctx = Context(prec=40)
    d = head_dim
    inv = [ctx.divide(1, ctx.power(Decimal(theta), ctx.divide(2 * i, d))) for i in range(d // 2)]
    if scaling is not None:  # llama3 frequency-dependent scaling, the same formulas as llama_math.inv_freq
        r = dict(scaling)
        factor, lo, hi = (Decimal(float(r[k])) for k in ("factor", "low_freq_factor", "high_freq_factor"))
        old = Decimal(float(r["original_max_position_embeddings"]))
        two_pi = ctx.multiply(2, Decimal(math.pi))
        out = []
        for f in inv:
            wavelen = ctx.divide(two_pi, f)
            scaled = ctx.divide(f, factor) if wavelen > ctx.divide(old, lo) else f
            if wavelen < ctx.divide(old, hi) or wavelen > ctx.divide(old, lo):
                out.append(scaled)
            else:
                smooth = ctx.divide(ctx.subtract(ctx.divide(old, wavelen), lo), ctx.subtract(hi, lo))
                out.append(ctx.add(ctx.multiply(ctx.subtract(1, smooth), ctx.divide(scaled, factor)),
                                   ctx.multiply(smooth, scaled)))
        inv = out
    cos = torch.empty((t, d // 2), dtype=F64)
    sin = torch.empty((t, d // 2), dtype=F64)
    for i, w in enumerate(inv):
        cw, sw = _cos_sin(ctx, w)
        c, s = Decimal(1), Decimal(0)
        for p in range(t):  # rotation by w per position: 40 digits keep t * 1e-40 far below float64
            cos[p, i], sin[p, i] = float(c), float(s)
            c, s = ctx.subtract(ctx.multiply(c, cw), ctx.multiply(s, sw)), ctx.add(ctx.multiply(s, cw),
                                                                                   ctx.multiply(c, sw))
    return torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)


def _cos_sin(ctx: Context, w: Decimal) -> tuple[Decimal, Decimal]:
    """Taylor series of cos and sin at |w| <= 1 (RoPE frequencies are at most 1 rad per position)."""
    if abs(w) > 1:
        raise LlmaccelError(f"RoPE frequency {w} rad/position is above 1; rope_theta must exceed 1")
    c, s, term, k = Decimal(0), Decimal(0), Decimal(1), 0
    while term != 0 and k < 200:
        if k % 4 == 0:
            c = ctx.add(c, term)
        elif k % 4 == 1:
            s = ctx.add(s, term)
        elif k % 4 == 2:
            c = ctx.subtract(c, term)
        else:
            s = ctx.subtract(s, term)
        k += 1
        term = ctx.divide(ctx.multiply(term, w), k)
        if abs(term) < Decimal("1e-45"):
            break
    return c, s


def rope_tables(head_dim: int, rope_theta: float, rope_scaling: Optional[dict], t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [t, head_dim] float64 for positions 0..t-1, rotate-half layout (both halves equal)."""
    key = None if rope_scaling is None else tuple(sorted((k, str(v)) for k, v in rope_scaling.items()))
    cos, sin = _rope_tables(int(head_dim), float(rope_theta), key, int(t))
    return cos.clone(), sin.clone()
