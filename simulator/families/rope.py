"""Rotary position embedding: one implementation of transformers' RoPE init functions, with portable bits.

It follows ``transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS`` (and the models' default
init) formula for formula: ``default``, ``linear``, ``dynamic``, ``llama3`` and ``yarn``, each
giving the inverse frequencies and the attention scaling that multiplies cos and sin. What
differs is the arithmetic: transformers computes in float32 with torch's ``pow``, whose bits
depend on the CPU's vector unit; here every quantity is computed in 40-digit decimal
arithmetic (Python's ``decimal``: integer arithmetic underneath, the same bits on every
machine) and rounded once to float64, and the FP32 tables the engines use are that rounded
once more. The angles ``position * inv_freq`` come from an exact rotation recurrence at 40
digits, so the tables are correct to float64 at every position.

``dynamic`` (NTK) is static for sequences up to ``max_position_embeddings``, where it equals
``default``; beyond that its frequencies would change with the length, so tables longer than
``max_position_embeddings`` are refused for every type. ``longrope``, ``proportional`` and a
``partial_rotary_factor`` below 1 are refused by name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Context, Decimal
from functools import lru_cache
from typing import Any, Optional

import numpy as np

from llmaccel.simulator.families.base import FamilyError

ROPE_TYPES = ("default", "linear", "dynamic", "llama3", "yarn")
# parameters each type reads (transformers' init functions); anything else in the checkpoint is refused
_KEYS: dict[str, tuple[str, ...]] = {
    "default": (),
    "linear": ("factor",),
    "dynamic": ("factor", "original_max_position_embeddings"),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
    "yarn": ("factor", "original_max_position_embeddings", "attention_factor", "beta_fast", "beta_slow",
             "mscale", "mscale_all_dim", "truncate"),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "linear": ("factor",), "dynamic": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
    "yarn": ("original_max_position_embeddings",),
}
_CTX = Context(prec=40)


def read_rope(cfg: dict[str, Any], where: str) -> tuple[float, Optional[dict[str, Any]]]:
    """(rope_theta, scaling dict or None for 'default') from a config.json, 4.x or 5.x layout.

    transformers 5 keeps theta and the scaling in ``rope_parameters``; 4.x keeps ``rope_theta``
    and ``rope_scaling`` (older files name the type ``type``). Every unknown type or parameter is
    refused, naming it and what is allowed.
    """
    params = cfg.get("rope_parameters")
    if params is not None and not isinstance(params, dict):
        raise FamilyError(f"{where}: rope_parameters must be an object, got {params!r}")
    if isinstance(params, dict) and params and all(isinstance(v, dict) for v in params.values()):
        raise FamilyError(f"{where}: per-layer-type rope_parameters ({sorted(params)}) are not supported; "
                          "allowed: one rope_parameters object for all layers")
    if isinstance(params, dict):
        theta = params.get("rope_theta", cfg.get("rope_theta", 10000.0))
        rs = {k: v for k, v in params.items() if k != "rope_theta"}
    else:
        theta = cfg.get("rope_theta", 10000.0)
        rs = cfg.get("rope_scaling")
        if rs is not None and not isinstance(rs, dict):
            raise FamilyError(f"{where}: rope_scaling must be an object or null, got {rs!r}")
        rs = dict(rs or {})
    if "type" in rs and "rope_type" not in rs:
        rs["rope_type"] = rs.pop("type")
    rs.pop("type", None)
    if not _is_number(theta) or not theta > 1:
        raise FamilyError(f"{where}: rope_theta={theta!r} must be a number above 1")
    prf = rs.pop("partial_rotary_factor", cfg.get("partial_rotary_factor", 1.0))
    if prf != 1.0:
        raise FamilyError(f"{where}: partial_rotary_factor={prf!r} is not supported (RoPE on part of the head); "
                          "allowed: 1.0")
    rtype = rs.pop("rope_type", "default")
    if rtype not in ROPE_TYPES:
        raise FamilyError(f"{where}: rope_type={rtype!r} is not supported; allowed: {list(ROPE_TYPES)}")
    if rtype in ("yarn", "llama3") and "original_max_position_embeddings" not in rs \
            and cfg.get("original_max_position_embeddings") is not None:
        rs["original_max_position_embeddings"] = cfg["original_max_position_embeddings"]
    unknown = sorted(set(rs) - set(_KEYS[rtype]))
    if unknown:
        raise FamilyError(f"{where}: rope_type={rtype!r} parameter(s) {unknown} are not supported; "
                          f"allowed: {list(_KEYS[rtype])}")
    missing = [k for k in _REQUIRED.get(rtype, ()) if rs.get(k) is None]
    if missing:
        raise FamilyError(f"{where}: rope_type={rtype!r} needs {missing}")
    for k, v in rs.items():
        ok = isinstance(v, bool) if k == "truncate" else (v is None or _is_number(v))
        if not ok:
            raise FamilyError(f"{where}: rope parameter {k}={v!r} must be " +
                              ("true or false" if k == "truncate" else "a number"))
    if rtype == "default":
        return float(theta), None
    return float(theta), {"rope_type": rtype, **{k: v for k, v in rs.items() if v is not None}}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Rope:
    """The RoPE of one model: everything the frequencies depend on (hashable, so tables are cached)."""

    head_dim: int
    theta: float
    scaling: tuple[tuple[str, Any], ...] = ()      # sorted (key, value) pairs, rope_type among them
    max_position_embeddings: int = 0

    @classmethod
    def of(cls, spec: Any) -> "Rope":
        """From anything with head_dim, rope_theta, rope_scaling and max_position_embeddings (a ModelSpec)."""
        sc = spec.rope_scaling or {}
        return cls(int(spec.head_dim), float(spec.rope_theta), tuple(sorted(sc.items())),
                   int(spec.max_position_embeddings))

    @property
    def rope_type(self) -> str:
        return dict(self.scaling).get("rope_type", "default")

    def _decimal(self) -> tuple[list[Decimal], Decimal]:
        return _inv_freq_decimal(self)

    def inv_freq(self) -> np.ndarray:
        """Inverse frequencies [head_dim/2], float64 (each rounded once from 40 digits)."""
        return np.array([float(w) for w in self._decimal()[0]], dtype=np.float64)

    @property
    def attention_scaling(self) -> float:
        """Factor on cos and sin (yarn's mscale; 1.0 for the other types)."""
        return float(self._decimal()[1])

    def tables(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """cos, sin [t, head_dim] float64 for positions 0..t-1, rotate-half layout, scaling applied."""
        self._check_length(t)
        cos, sin = _tables(self, int(t))
        return cos.copy(), sin.copy()

    def _check_length(self, t: int) -> None:
        if t > self.max_position_embeddings > 0:
            raise FamilyError(f"RoPE tables for {t} positions exceed max_position_embeddings="
                              f"{self.max_position_embeddings}; longer sequences are not supported")

    def tables_fp32(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FP32 cos, sin [len(positions), head_dim] (the float64 tables rounded once): the engines' input."""
        pos = np.asarray(positions, dtype=np.int64)
        if pos.size and pos.min() < 0:
            raise FamilyError(f"RoPE position {int(pos.min())} is negative")
        n = int(pos.max()) + 1 if pos.size else 0
        self._check_length(n)
        # one table per power of two (at least 64 positions): callers asking for growing lengths reuse it
        t = max(64, 1 << max(n - 1, 0).bit_length())
        if self.max_position_embeddings:
            t = max(n, min(t, self.max_position_embeddings))
        cos, sin = _tables(self, t)
        return cos[pos].astype(np.float32), sin[pos].astype(np.float32)


@lru_cache(maxsize=64)
def _inv_freq_decimal(r: Rope) -> tuple[list[Decimal], Decimal]:
    ctx, d = _CTX, r.head_dim
    if d % 2:
        raise FamilyError(f"head_dim={d} must be even for RoPE")
    sc = dict(r.scaling)
    rtype = sc.get("rope_type", "default")
    theta = Decimal(r.theta)
    one = Decimal(1)
    # base ** (2i / d) for i < d/2, as arange(0, d, 2) / d
    pos_freqs = [ctx.power(theta, ctx.divide(2 * i, d)) for i in range(d // 2)]
    inv = [ctx.divide(one, p) for p in pos_freqs]
    attn = one
    if rtype == "linear":
        f = Decimal(float(sc["factor"]))
        inv = [ctx.divide(w, f) for w in inv]
    elif rtype == "dynamic":
        pass   # at seq_len <= max_position_embeddings: base * (factor * 1 - (factor - 1)) ** ... = base
    elif rtype == "llama3":
        inv = _llama3(inv, sc)
    elif rtype == "yarn":
        inv, attn = _yarn(pos_freqs, sc, d, theta, r.max_position_embeddings)
    return inv, attn


def _llama3(inv: list[Decimal], sc: dict[str, Any]) -> list[Decimal]:
    ctx = _CTX
    factor, lo, hi = (Decimal(float(sc[k])) for k in ("factor", "low_freq_factor", "high_freq_factor"))
    old = Decimal(float(sc["original_max_position_embeddings"]))
    lo_wavelen, hi_wavelen = ctx.divide(old, lo), ctx.divide(old, hi)
    two_pi = ctx.multiply(2, Decimal(math.pi))          # math.pi, as transformers uses
    out = []
    for f in inv:
        wavelen = ctx.divide(two_pi, f)
        scaled = ctx.divide(f, factor) if wavelen > lo_wavelen else f
        if wavelen < hi_wavelen or wavelen > lo_wavelen:
            out.append(scaled)
        else:
            smooth = ctx.divide(ctx.subtract(ctx.divide(old, wavelen), lo), ctx.subtract(hi, lo))
            out.append(ctx.add(ctx.multiply(ctx.subtract(1, smooth), ctx.divide(scaled, factor)),
                               ctx.multiply(smooth, scaled)))
    return out


def _yarn(pos_freqs: list[Decimal], sc: dict[str, Any], d: int, base: Decimal,
          max_pos: int) -> tuple[list[Decimal], Decimal]:
    ctx = _CTX
    old = Decimal(float(sc["original_max_position_embeddings"]))
    factor = Decimal(float(sc["factor"])) if sc.get("factor") is not None else ctx.divide(Decimal(max_pos), old)

    def mscale(scale: Decimal, m: Decimal = Decimal(1)) -> Decimal:
        if scale <= 1:
            return Decimal(1)
        return ctx.add(ctx.multiply(ctx.multiply(Decimal("0.1"), m), scale.ln(ctx)), 1)

    af = sc.get("attention_factor")
    if af is not None:
        attn = Decimal(float(af))
    elif sc.get("mscale") and sc.get("mscale_all_dim"):
        attn = ctx.divide(mscale(factor, Decimal(float(sc["mscale"]))), mscale(factor, Decimal(float(sc["mscale_all_dim"]))))
    else:
        attn = mscale(factor)
    beta_fast = Decimal(float(sc.get("beta_fast") or 32))
    beta_slow = Decimal(float(sc.get("beta_slow") or 1))
    two_pi = ctx.multiply(2, Decimal(math.pi))
    ln_base = base.ln(ctx)

    def correction_dim(rot: Decimal) -> Decimal:
        return ctx.divide(ctx.multiply(d, ctx.divide(old, ctx.multiply(rot, two_pi)).ln(ctx)), ctx.multiply(2, ln_base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if sc.get("truncate", True):
        low, high = Decimal(math.floor(low)), Decimal(math.ceil(high))
    low, high = max(low, Decimal(0)), min(high, Decimal(d - 1))
    if low == high:
        high = ctx.add(high, Decimal("0.001"))           # transformers' guard against a zero-width ramp
    out = []
    for i, p in enumerate(pos_freqs):
        ramp = min(max(ctx.divide(ctx.subtract(i, low), ctx.subtract(high, low)), Decimal(0)), Decimal(1))
        extra = ctx.subtract(1, ramp)                   # extrapolation weight
        interp = ctx.divide(1, ctx.multiply(factor, p))
        out.append(ctx.add(ctx.multiply(interp, ctx.subtract(1, extra)), ctx.multiply(ctx.divide(1, p), extra)))
    return out, attn


@lru_cache(maxsize=16)
def _tables(r: Rope, t: int) -> tuple[np.ndarray, np.ndarray]:
    ctx = _CTX
    inv, attn = _inv_freq_decimal(r)
    half = r.head_dim // 2
    cos = np.empty((t, half), dtype=np.float64)
    sin = np.empty((t, half), dtype=np.float64)
    for i, w in enumerate(inv):
        cw, sw = _cos_sin(w)
        c, s = Decimal(1), Decimal(0)
        for p in range(t):  # rotation by w per position: 40 digits keep t * 1e-40 far below float64
            cos[p, i], sin[p, i] = float(ctx.multiply(c, attn)), float(ctx.multiply(s, attn))
            c, s = ctx.subtract(ctx.multiply(c, cw), ctx.multiply(s, sw)), ctx.add(ctx.multiply(s, cw),
                                                                                   ctx.multiply(c, sw))
    cos, sin = np.concatenate((cos, cos), -1), np.concatenate((sin, sin), -1)
    cos.setflags(write=False)
    sin.setflags(write=False)
    return cos, sin


def _cos_sin(w: Decimal) -> tuple[Decimal, Decimal]:
    """Taylor series of cos and sin at |w| <= 1 (RoPE frequencies are at most 1 rad per position)."""
    ctx = _CTX
    if abs(w) > 1:
        raise FamilyError(f"RoPE frequency {w} rad/position is above 1; rope_theta must exceed 1")
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
