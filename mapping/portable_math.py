"""Float64 kernels whose bits do not depend on the CPU: the same result under every instruction set.

Why: torch's CPU kernels are compiled once per vector ISA (ATEN_CPU_CAPABILITY default / avx2 /
avx512) and BLAS picks its own kernel by CPUID. Reductions then add in a different order, and
exp/sin/pow use different approximations (Sleef vectors vs. scalar libm), so a calibration run
gives other Hessians, other Wanda norms and in the end other weight codes on another machine.
Rounding the statistics to a coarser grid would not help: a value near a grid edge still flips.

What is used here, and why each is portable (docs/numerics.md, section 6):

* IEEE-754 elementwise ``+ - * /``, ``sqrt``, ``round`` (half to even), ``max``: each result is
  correctly rounded, so a vector lane and a scalar loop give the same bits. Every product and
  sum is its own torch op (no ``alpha=``, ``addcmul`` or ``lerp``, which a compiler may fuse
  into an FMA in one ISA's kernel and not in another's).
* Matrix products are made *exact* before any rounding can depend on the order (Ozaki's
  splitting): each row of A and each column of B is cut into two slices, multiples of one power
  of two with at most ``b`` significant bits, ``b`` chosen so that every partial sum of a slice
  product is an exact float64. Any summation order, blocking or FMA that BLAS picks gives that
  value, and the slice products are added in a fixed order with one rounding. The cut keeps
  ``2b`` bits of each row (>= 36 bits for K <= 2^15); the error is below
  ``5 K 2^-2b max|A_i| max|B_j|`` plus that one rounding.
* Sums over a dimension are a fixed pairwise tree of elementwise additions.
* ``exp`` is a Cody-Waite range reduction and a degree-13 Taylor polynomial in float64 (within
  1 ulp of float64), not libm or Sleef.
* RoPE angles, cos and sin are computed in 40-digit decimal arithmetic (Python's ``decimal``,
  integer arithmetic underneath) and rounded once to float64 (simulator.families.rope).
* tanh is built on that exp; erf is Python's math.erf (scalar libm); relu and bias adds are exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import torch

from llmaccel.errors import LlmaccelError

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
    """Bits per slice so that a sum of 2k products of two slices (the hi*lo + lo*hi cross term over
    an inner size k) is an integer below 2^53, exact in float64 whatever the order of the additions."""
    return (_MANT - math.ceil(math.log2(2 * max(k, 1)))) // 2


_CHUNK = 1 << 15  # elements per pass of the elementwise kernels: their temporaries stay in cache (measured best)


def _split_block(a: torch.Tensor, bits: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Ozaki's extraction: hi = (a + c) - c rounds each entry to a multiple of 2^(e-bits), c = 3*2^(e+51-bits)
    per row (a is far below c, so the sum stays in c's binade where the spacing is 2^(e-bits)); the
    remainder a - hi is exact, and the same step at 2^(e-2bits) gives lo. |hi| <= 2^bits and
    |lo| <= 2^(bits-1) in those units."""
    amax = a.abs().amax(dim=-1, keepdim=True)
    _check_finite(amax, what)
    e = torch.frexp(amax).exponent.to(torch.int64).clamp(min=-1022 + 2 * bits)  # amax < 2^e
    if bool((e > 1023 - 51 + bits).any()):
        raise NonFiniteError(f"{what} reach {float(amax.max()):.3g}, too close to the float64 range to calibrate on")
    c_hi = pow2(e + 51 - bits) * 3.0
    c_lo = pow2(e + 51 - 2 * bits) * 3.0
    hi = (a + c_hi).sub_(c_hi)
    lo = (a - hi).add_(c_lo).sub_(c_lo)
    return hi, lo


def _split_rows(a: torch.Tensor, bits: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of a 2-D ``a`` cut into a ~= hi + lo: per row, hi and lo are integers of at most 2^bits times
    2^(e-bits) and 2^(e-2bits), e the row's max exponent; what is below 2^(e-2bits-1) is dropped.

    Done in blocks of rows (each row's cut depends on that row alone, so blocking changes no bit).
    """
    r, k = a.shape
    step = max(1, _CHUNK // max(k, 1))
    if r <= step:
        return _split_block(a, bits, what)
    parts = [_split_block(a[r0:r0 + step], bits, what) for r0 in range(0, r, step)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@dataclass(frozen=True)
class Sliced:
    """A matrix cut for exact products, once, to be multiplied many times: a ~= hi + lo.

    ``by_rows``: the left operand A [..., M, K], cut per row; otherwise the right operand
    B [..., K, N], cut per column. Within a row (column) hi and lo are integers below 2^bits
    times one power of two each, so every partial sum of hi*hi, hi*lo or lo*hi over K is exact.
    """

    hi: torch.Tensor
    lo: torch.Tensor
    bits: int
    by_rows: bool

    @property
    def T(self) -> "Sliced":
        """The cut of the transpose: rows of A are the columns of A^T."""
        return Sliced(self.hi.transpose(-1, -2), self.lo.transpose(-1, -2), self.bits, not self.by_rows)

    def block(self, r: slice, c: slice) -> "Sliced":
        """Rows ``r`` and columns ``c`` of the cut matrix (for products of sub-blocks)."""
        return Sliced(self.hi[..., r, c], self.lo[..., r, c], self.bits, self.by_rows)


def rows(a: torch.Tensor, what: str = "calibration activations") -> Sliced:
    """Cut the rows of the left operand of a product over its last dimension."""
    a = a.to(F64)
    bits = _slice_bits(a.shape[-1])
    hi, lo = _split_rows(a.reshape(-1, a.shape[-1]), bits, what)
    return Sliced(hi.view(a.shape), lo.view(a.shape), bits, True)


def cols(b: torch.Tensor, what: str = "calibration activations") -> Sliced:
    """Cut the columns of the right operand of a product over its second-to-last dimension."""
    return rows(b.transpose(-1, -2), what).T


def product(a: Sliced, b: Sliced) -> torch.Tensor:
    """The float64 product of two cut operands (or sub-blocks of them, cut for the same inner size).

    hi*lo + lo*hi is exact (every partial sum is a multiple of one power of two below 2^53 of it),
    hi*hi is exact, and their sum is the one rounding. lo*lo is below the cut's own error and
    left out.
    """
    if a.bits != b.bits or not a.by_rows or b.by_rows:
        raise ValueError(f"need a row-cut left and a column-cut right operand for the same inner size "
                         f"(got {a.bits} and {b.bits} bits per slice)")
    cross = torch.matmul(a.hi, b.lo).add_(torch.matmul(a.lo, b.hi))
    return torch.matmul(a.hi, b.hi).add_(cross)


def matmul(a: torch.Tensor, b: torch.Tensor, what: str = "calibration activations") -> torch.Tensor:
    """``a @ b`` (batched like torch.matmul) in float64, the same bits on every CPU."""
    return product(rows(a, what), cols(b, what))


def sum_last(a: torch.Tensor, what: str = "calibration activations") -> torch.Tensor:
    """Sum over the last dimension in float64, the same bits on every CPU: a fixed pairwise tree.

    Zero-padded to a power of two, then halves are added elementwise (entry i with entry i + n/2)
    until one is left: every addition is a separate IEEE operation in an order fixed here.
    Error at most ceil(log2 n) * 2^-53 * sum|a|.
    """
    a = a.to(F64)
    k = a.shape[-1]
    n = 1 << max(0, (k - 1).bit_length())
    if n != k:
        a = torch.nn.functional.pad(a, (0, n - k))
    while a.shape[-1] > 1:
        h = a.shape[-1] // 2
        a = a[..., :h] + a[..., h:]
    out = a[..., 0]
    _check_finite(out, what)
    return out


def _exp_block(x: torch.Tensor) -> torch.Tensor:
    under = x < _EXP_MIN
    xc = x.clamp(_EXP_MIN, _EXP_MAX)
    n = torch.round(xc * _INV_LN2)
    r = xc.sub_(n * _LN2_HI).sub_(n * _LN2_LO)
    p = torch.full_like(r, _EXP_TAYLOR[-1])
    for c in reversed(_EXP_TAYLOR[:-1]):  # Horner, in place: one multiply and one add per degree
        p.mul_(r).add_(c)
    n = n.to(torch.int64)
    n1 = torch.div(n, 2, rounding_mode="floor")  # two factors keep each power of two normal
    p.mul_(pow2(n1)).mul_(pow2(n.sub_(n1)))
    return p.masked_fill_(under, 0.0)


def exp(x: torch.Tensor) -> torch.Tensor:
    """e^x in float64 for finite x or -inf (-> 0), the same bits on every CPU.

    x = n ln2 + r with |r| <= ln2/2 (Cody-Waite: n * ln2_hi is exact), e^r by its Taylor series
    to degree 13 (remainder below 2^-57), times 2^n built from its bits. Worked in cache-sized
    blocks (elementwise, so blocking changes no bit).
    """
    flat = x.to(F64).reshape(-1)
    out = torch.empty_like(flat)
    for i in range(0, flat.numel(), _CHUNK):
        out[i:i + _CHUNK] = _exp_block(flat[i:i + _CHUNK].clone())
    return out.view(x.shape)


def sigmoid_linear(z: torch.Tensor) -> torch.Tensor:
    """SiLU z * sigmoid(z) = z / (1 + e^-z), float64."""
    return z / (exp(-z) + 1.0)


@lru_cache(maxsize=8)
def _causal_index(t: int) -> torch.Tensor:
    """Flat indices of the unmasked (key <= query) entries of a [t, t] score matrix."""
    return torch.tril_indices(t, t).mul(torch.tensor([[t], [1]])).sum(0)


def causal_softmax(scores: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim of float64 scores [..., Tq, Tk], keys after the query masked.

    exp runs on the unmasked entries only (a masked entry is exactly 0 either way).
    """
    tq, tk = scores.shape[-2:]
    keep = k_pos[None, :] <= q_pos[:, None]
    m = scores.masked_fill(~keep, float("-inf")).amax(dim=-1, keepdim=True)
    shifted = (scores - m).reshape(*scores.shape[:-2], tq * tk)
    if tq == tk and torch.equal(q_pos, k_pos) and torch.equal(q_pos, torch.arange(tq)):
        idx = _causal_index(tq)
    else:
        idx = torch.nonzero(keep.reshape(-1)).squeeze(1)
    e = torch.zeros_like(shifted).index_copy_(-1, idx, exp(shifted.index_select(-1, idx)))
    e = e.view(scores.shape)
    return e / sum_last(e).unsqueeze(-1)


def gram(a: torch.Tensor, what: str = "calibration activations") -> torch.Tensor:
    """a @ a^T in float64, bit for bit :func:`matmul` (a, a.T): one cut, and hi*lo^T + lo*hi^T = C + C^T."""
    r = rows(a, what)
    c = torch.matmul(r.hi, r.lo.T)
    return torch.matmul(r.hi, r.hi.T).add_(c.add_(c.T.clone()))


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """weight * (x / sqrt(mean(x^2) + eps)) in float64, the operation order of Hugging Face's Llama."""
    var = sum_last(x * x) / x.shape[-1]
    return weight.to(F64) * (x * (1.0 / torch.sqrt(var + eps)).unsqueeze(-1))


def layernorm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias in float64, torch's layer_norm order (two passes)."""
    k = x.shape[-1]
    c = x - (sum_last(x) / k).unsqueeze(-1)
    var = sum_last(c * c) / k
    return c * (1.0 / torch.sqrt(var + eps)).unsqueeze(-1) * weight.to(F64) + bias.to(F64)


def tanh(z: torch.Tensor) -> torch.Tensor:
    """tanh in float64 from the portable exp: sign(z) (1 - 2 / (e^{2|z|} + 1)) (absolute error ~1e-16)."""
    a = z.abs()
    t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0)
    return torch.where(z < 0, -t, t)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), float64."""
    return 0.5 * x * (1.0 + tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))))


def gelu_erf(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU 0.5 x (1 + erf(x / sqrt 2)), float64; erf is Python's math.erf (scalar libm, no
    CPU-specific vector kernel), not torch.erf."""
    z = (x * (1.0 / math.sqrt(2.0))).reshape(-1).tolist()
    e = torch.tensor([math.erf(v) for v in z], dtype=F64).view(x.shape)
    return 0.5 * x * (1.0 + e)


def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp_min(x, 0.0)


ACTIVATIONS = {"silu": lambda z: sigmoid_linear(z), "gelu_tanh": gelu_tanh, "gelu": gelu_erf, "relu": relu}


def norm(x: torch.Tensor, kind: str, weight: torch.Tensor, bias: Optional[torch.Tensor], eps: float) -> torch.Tensor:
    """The family's norm in float64: RMSNorm or LayerNorm."""
    return rmsnorm(x, weight, eps) if kind == "rmsnorm" else layernorm(x, weight, bias, eps)


_NB = 128  # block size of the triangular algorithms below: Python loops run over blocks of this size


def _chol_small(a: torch.Tensor, offset: int) -> torch.Tensor:
    """Lower Cholesky factor of a small SPD block, column by column (rank-1 updates)."""
    a = a.clone()
    m = a.shape[0]
    for j in range(m):
        d = a[j, j]
        if not bool(d > 0):
            raise LlmaccelError(f"Hessian is not positive definite at column {offset + j} (pivot {float(d)!r})")
        col = a[j:, j] / torch.sqrt(d)
        a[j:, j] = col
        if j + 1 < m:  # one rounding per element: a product, then a difference
            a[j + 1:, j + 1:] -= col[1:, None] * col[None, 1:]
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


def _cholesky_blocks(a: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Lower L with a = L L^T and the inverses of L's diagonal blocks; blocked right-looking.

    Per block: factor the diagonal block, L21 = A21 L11^-T, then subtract L21 L21^T from the
    lower block triangle of the rest (L21 is cut once, for every block of that update).
    """
    a = a.to(F64).clone()
    n = a.shape[0]
    l = torch.zeros_like(a)
    dinv = []
    for j0 in range(0, n, _NB):
        j1 = min(j0 + _NB, n)
        ld = _chol_small(a[j0:j1, j0:j1], j0)
        l[j0:j1, j0:j1] = ld
        dinv.append(_inv_lower_small(ld))
        if j1 == n:
            break
        below = matmul(a[j1:, j0:j1], dinv[-1].T, "Hessian")
        l[j1:, j0:j1] = below
        r = rows(below, "Hessian")
        c = r.T  # the columns of below^T are the rows of below: one cut serves both operands
        for c0 in range(j1, n, _NB):
            c1 = min(c0 + _NB, n)
            a[c0:, c0:c1] -= product(r.block(slice(c0 - j1, None), slice(None)),
                                     c.block(slice(None), slice(c0 - j1, c1 - j1)))
    return l, dinv


def cholesky_lower(a: torch.Tensor) -> torch.Tensor:
    """Lower L with a = L L^T (float64 SPD ``a``), the same bits on every CPU."""
    return _cholesky_blocks(a)[0]


def inv_lower(l: torch.Tensor, diag_inverses: Optional[list[torch.Tensor]] = None) -> torch.Tensor:
    """L^-1 of a lower-triangular float64 matrix, blocked by rows: X[i, :i] = -L[i,i]^-1 L[i, :i] X[:i, :i]."""
    n = l.shape[0]
    x = torch.zeros_like(l, dtype=F64)
    for b, i0 in enumerate(range(0, n, _NB)):
        i1 = min(i0 + _NB, n)
        d = diag_inverses[b] if diag_inverses is not None else _inv_lower_small(l[i0:i1, i0:i1])
        x[i0:i1, i0:i1] = d
        if i0:
            x[i0:i1, :i0] = -matmul(d, matmul(l[i0:i1, :i0], x[:i0, :i0], "Hessian"), "Hessian")
    return x


def upper_cholesky_of_inverse(h: torch.Tensor) -> torch.Tensor:
    """Upper U with U^T U = h^-1 (what GPTQ sweeps with), without forming h^-1.

    With P the index reversal, P h P = L L^T gives h = V V^T for the upper V = P L P, so
    h^-1 = V^-T V^-1 and U = V^-1 = P L^-1 P.
    """
    lr, dinv = _cholesky_blocks(torch.flip(h, (0, 1)))
    return torch.flip(inv_lower(lr, dinv), (0, 1))


def rope_tables(head_dim: int, rope_theta: float, rope_scaling: Optional[dict], t: int,
                max_position_embeddings: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [t, head_dim] float64 for positions 0..t-1, rotate-half layout (both halves equal),
    from the one RoPE implementation (simulator.families.rope: 40-digit decimals, rounded once)."""
    from llmaccel.simulator.families import Rope
    r = Rope(int(head_dim), float(rope_theta), tuple(sorted((rope_scaling or {}).items())),
             int(max_position_embeddings))
    cos, sin = r.tables(int(t))
    return torch.from_numpy(cos), torch.from_numpy(sin)
