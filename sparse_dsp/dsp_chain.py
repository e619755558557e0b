"""Bit- and cycle-exact model of the configurable sparse DSP chain (no cocotb here).

The chain is the MAC engine of the matrix unit. Its RTL (``sparse_dsp/rtl/hdl/dsp_chain.v``)
implements exactly what this file computes; the cocotb tests compare the two bit for bit and
cycle for cycle, and the simulator's timing engine reads its cycle figures from here
(through :mod:`sparse_dsp.unit_costs`).

Structure (see docs/rtl.md for the picture):

* ``chain_len`` DSP48E2-style slices in groups of two. Each slice does two INT8 MACs that
  share one weight: the two activations (token lanes ``lo`` and ``hi``) are packed into the
  27-bit A operand as ``(x_hi << 18) + x_lo`` and multiplied by the 8-bit weight on the
  18-bit B port (AMD WP486). The low lane owns P[17:0]; a negative low lane borrows one from
  the high lane, which the unpack corrects by adding bit 17 back.
* A sparse activation MUX in front of every slice picks, for the kept weight it receives,
  the activation at ``block*M + index`` out of the beat's activation window (N:M), or the
  slice's own column (dense).
* Cascade: slices add their product to the packed P of the previous slice (PCIN/PCOUT);
  inside a group the cascade is fixed, between groups it is configurable
  (``cascade_groups`` groups form one packed cascade segment).
* Overflow adjustment: an 18-bit lane holds at most 8 products of |d|<=128, |x|<=127
  (8*16256 = 130048 < 2**17), so a packed cascade may span at most 8 slices. Every segment
  therefore ends in an unpack node (sign-borrow correction, two 32-bit lanes); chains longer
  than 8 have several segments, whose lanes the reduction tree adds exactly. A segment of
  more than 8 slices is rejected (it would be wrong for legal inputs; tested).
* Reduction: a pipelined binary adder tree over the segments' unpacked lanes, then an
  accumulator over the beats of one quantization group. Output: the two INT32 partial sums
  of that group, exactly ``simulator.golden.linear.group_partial_sums``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import SUPPORTED_NM

# A DSP48E2 column inside one UltraScale+ clock region holds 24 slices; a PCIN/PCOUT cascade
# is cut at column ends (anchors/hardware.yaml dsp_primitives.DSP48E2.cascade; the 24 per
# clock-region column is from AMD UG579, second_hand). The chain stays inside one column.
MAX_CHAIN_LEN = 24
# WP486: each packed result gets 18 bits before it spills into its neighbour.
PACKED_LANE_BITS = 18
# Largest |product| of a decoded weight (|d| <= 128) and an activation (|q| <= 127).
MAX_ABS_PRODUCT = 128 * 127
# How many products one 18-bit signed lane can sum without overflow: 8 (8*16256 < 2**17).
MAX_PACKED_TERMS = ((1 << (PACKED_LANE_BITS - 1)) - 1) // MAX_ABS_PRODUCT
ACC_BITS = 32
P_BITS = 48  # DSP48E2 accumulator width (anchors/hardware.yaml)
A_BITS = 27  # DSP48E2 multiplier operand widths 27 x 18 (anchors/hardware.yaml)
TOKEN_LANES = 2


class ChainConfigError(LlmaccelError):
    """A DSP-chain parameter the hardware cannot take."""


def _nm_tuple(nm) -> Optional[tuple[int, int]]:
    if nm is None or nm == "dense":
        return None
    if isinstance(nm, str):
        try:
            n, m = (int(v) for v in nm.split(":"))
        except ValueError:
            raise ChainConfigError(f"nm='{nm}' is not 'N:M' or 'dense'") from None
        nm = (n, m)
    nm = (int(nm[0]), int(nm[1]))
    if not 0 < nm[0] <= nm[1]:
        raise ChainConfigError(f"nm={nm[0]}:{nm[1]} is not a pattern; N:M keeps N of every M weights, "
                               f"0 < N <= M (N == M is dense)")
    if nm[0] == nm[1]:
        return None  # 16:16 is dense
    return nm


@dataclass(frozen=True)
class ChainConfig:
    """One chain configuration; validated once here, trusted inside."""

    chain_len: int = 8
    nm: Optional[tuple[int, int]] = None
    cascade_groups: Optional[int] = None  # groups per packed cascade segment; None = longest legal

    def __post_init__(self) -> None:
        nm = _nm_tuple(self.nm)
        object.__setattr__(self, "nm", nm)
        L = self.chain_len
        if not isinstance(L, (int, np.integer)) or L < 2 or L % 2 or L > MAX_CHAIN_LEN:
            raise ChainConfigError(
                f"chain_len={L} is not supported; allowed: even lengths 2..{MAX_CHAIN_LEN} "
                f"(groups of two DSP48E2, one DSP column)")
        if nm is not None:
            if nm not in SUPPORTED_NM:
                raise ChainConfigError(f"nm={nm[0]}:{nm[1]} is not supported; allowed: dense, "
                                       + ", ".join(f"{n}:{m}" for n, m in SUPPORTED_NM))
            if L % nm[0]:
                raise ChainConfigError(
                    f"chain_len={L} must be a multiple of N={nm[0]} for nm={nm[0]}:{nm[1]} "
                    f"(a beat holds whole N:M blocks)")
        groups = L // 2
        if self.cascade_groups is None:
            c = 1
            while c * 2 <= groups and groups % (c * 2) == 0 and 2 * (c * 2) <= MAX_PACKED_TERMS:
                c *= 2
            object.__setattr__(self, "cascade_groups", c)
        c = self.cascade_groups
        if c < 1 or groups % c or (c & (c - 1)):
            raise ChainConfigError(
                f"cascade_groups={c} must be a power of two dividing the {groups} groups of chain_len={L}")
        if 2 * c > MAX_PACKED_TERMS:
            raise ChainConfigError(
                f"cascade_groups={c} makes a packed cascade of {2 * c} DSPs; an 18-bit lane holds at most "
                f"{MAX_PACKED_TERMS} INT8 products, so allowed: cascade_groups <= {MAX_PACKED_TERMS // 2}")

    # -- derived shape ---------------------------------------------------------------
    @property
    def groups(self) -> int:
        return self.chain_len // 2

    @property
    def segments(self) -> int:
        return self.groups // self.cascade_groups

    @property
    def segment_dsps(self) -> int:
        return 2 * self.cascade_groups

    @property
    def tree_depth(self) -> int:
        return math.ceil(math.log2(self.segments)) if self.segments > 1 else 0

    @property
    def n(self) -> int:
        return self.nm[0] if self.nm else 1

    @property
    def m(self) -> int:
        return self.nm[1] if self.nm else 1

    @property
    def index_bits(self) -> int:
        return 0 if self.nm is None else self.m.bit_length() - 1

    @property
    def window(self) -> int:
        """Activations per lane a beat covers: chain_len/N whole blocks of M columns."""
        return self.chain_len * self.m // self.n

    @property
    def name(self) -> str:
        nm = "dense" if self.nm is None else f"n{self.nm[0]}m{self.nm[1]}"
        return f"chain_l{self.chain_len}_{nm}_c{self.cascade_groups}"

    # -- cycle model -------------------------------------------------------------------
    @property
    def latency_cycles(self) -> int:
        """Clock edges from accepting a group's last beat to its partial sums being taken.

        One register per stage: input, MUX/pack (A/B regs), multiply (M reg), one P reg per
        slice of the cascade segment, unpack (overflow adjust), one per reduction-tree level,
        and the group accumulator, which is the output register.
        """
        return 5 + self.segment_dsps + self.tree_depth

    def beats_per_group(self, group_size: int) -> int:
        kpg = group_size * self.n // self.m
        if group_size % self.m or kpg % self.chain_len:
            raise ChainConfigError(
                f"group_size={group_size} with nm={self.nm} holds {kpg} kept weights per group; "
                f"chain_len={self.chain_len} must divide it")
        return kpg // self.chain_len


@dataclass(frozen=True)
class ChainTiming:
    """Cycle figures of one chain job (no stalls): what the timing engine charges."""

    latency_cycles: int        # fill + drain: input accept -> output taken, one beat
    ii_cycles_per_beat: int    # initiation interval between beats
    beats_per_group: int       # one output (2 INT32 partial sums) per this many beats
    beats: int                 # beats of the whole job
    total_cycles: int          # first beat accepted -> last output taken: beats - 1 + latency


def chain_timing(cfg: ChainConfig, k: int, rows: int, group_size: int = 128) -> ChainTiming:
    if k <= 0 or group_size <= 0 or k % group_size:
        raise ChainConfigError(f"k={k} must be a positive multiple of group_size={group_size}")
    if rows <= 0:
        raise ChainConfigError(f"rows={rows} must be positive")
    bpg = cfg.beats_per_group(group_size)
    beats = rows * (k // group_size) * bpg
    return ChainTiming(cfg.latency_cycles, 1, bpg, beats, beats - 1 + cfg.latency_cycles)


# --------------------------------------------------------------------------- beats

@dataclass
class ChainBeats:
    """The input stream of a chain job, beat by beat (what the RTL's s_* ports carry)."""

    weights: np.ndarray   # int8 [B, L]
    index: np.ndarray     # uint8 [B, L] in-block column (0 when dense)
    win_lo: np.ndarray    # int8 [B, W] activation window, token lane lo
    win_hi: np.ndarray    # int8 [B, W] token lane hi
    first: np.ndarray     # bool [B] first beat of a quantization group
    last: np.ndarray      # bool [B] last beat of a quantization group


def make_beats(cfg: ChainConfig, w_kept: np.ndarray, cols: np.ndarray, x: np.ndarray,
               group_size: int) -> ChainBeats:
    """Cut rows of kept INT8 weights into beats, row by row, group by group.

    ``w_kept`` int8 [O, kept]; ``cols`` [O, kept] dense column of each kept weight (as
    ``PackedLinear.column_of_kept``); ``x`` int8 [2, K] (token lanes lo, hi).
    """
    w_kept = np.asarray(w_kept, dtype=np.int8)
    cols = np.asarray(cols, dtype=np.int64)
    x = np.asarray(x, dtype=np.int8)
    if x.ndim != 2 or x.shape[0] != TOKEN_LANES:
        raise ChainConfigError(f"x must be int8 [2, K] (two token lanes), got shape {list(x.shape)}")
    o, kept = w_kept.shape
    k = x.shape[1]
    cfg.beats_per_group(group_size)
    if kept != k * cfg.n // cfg.m:
        raise ChainConfigError(f"w_kept has {kept} kept weights per row; nm={cfg.nm} and K={k} need "
                               f"{k * cfg.n // cfg.m}")
    L, W = cfg.chain_len, cfg.window
    nb = kept // L
    weights = w_kept.reshape(o * nb, L)
    index = (cols % cfg.m).astype(np.uint8).reshape(o * nb, L)
    base = (np.arange(nb) * W)                             # first dense column of each beat
    block_of = cols.reshape(o, nb, L) // cfg.m
    expect_block = (base[:, None] // cfg.m) + np.arange(L)[None, :] // cfg.n
    if not np.array_equal(block_of, np.broadcast_to(expect_block, block_of.shape)):
        raise ChainConfigError("cols must hold exactly N ascending columns in every block of M")
    win = x[:, base[:, None] + np.arange(W)[None, :]]      # [2, nb, W]
    win_lo = np.tile(win[0], (o, 1))
    win_hi = np.tile(win[1], (o, 1))
    bpg = cfg.beats_per_group(group_size)
    pos = np.arange(o * nb) % bpg
    return ChainBeats(weights, index, win_lo, win_hi, pos == 0, pos == bpg - 1)


# --------------------------------------------------------------------------- packed arithmetic

def _wrap(v: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement wrap of int64 values to ``bits`` (what a register of that width holds)."""
    m = np.int64(1) << bits
    v = v & (m - 1)
    return np.where(v >= (m >> 1), v - m, v)


def pack_activations(x_lo: np.ndarray, x_hi: np.ndarray) -> np.ndarray:
    """The 27-bit A operand ``(x_hi << 18) + x_lo`` (signed, int64)."""
    return _wrap((x_hi.astype(np.int64) << PACKED_LANE_BITS) + x_lo.astype(np.int64), A_BITS)


def unpack_lanes(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Overflow-adjust node: split a packed 48-bit P into (lo, hi) with the borrow corrected."""
    p = _wrap(np.asarray(p, dtype=np.int64), P_BITS)
    low_field = p & ((1 << PACKED_LANE_BITS) - 1)
    borrow = (low_field >> (PACKED_LANE_BITS - 1)) & 1
    lo = _wrap(low_field, PACKED_LANE_BITS)
    hi = _wrap((p >> PACKED_LANE_BITS) + borrow, P_BITS - PACKED_LANE_BITS)
    return lo, hi


def packed_segment_sum(w: np.ndarray, x_lo: np.ndarray, x_hi: np.ndarray) -> np.ndarray:
    """The packed P at the end of one cascade segment: sum_j w_j * A_j in 48 bits.

    ``w``, ``x_lo``, ``x_hi`` are [..., S] (S slices in the segment). Each product is a
    27x18 multiply (the weight sign-extended onto the B port); the cascade adds them in P.
    """
    a = pack_activations(x_lo, x_hi)
    prod = _wrap(a * w.astype(np.int64), P_BITS)
    p = np.zeros(prod.shape[:-1], dtype=np.int64)
    for j in range(prod.shape[-1]):        # PCIN + M, one slice after the other
        p = _wrap(p + prod[..., j], P_BITS)
    return p


def select_activations(cfg: ChainConfig, index: np.ndarray, win: np.ndarray) -> np.ndarray:
    """The sparse MUX: activation for slice j = window[(j // N) * M + index_j]."""
    j = np.arange(cfg.chain_len)
    pos = (j // cfg.n) * cfg.m + (index.astype(np.int64) if cfg.nm else 0)
    return np.take_along_axis(win, np.broadcast_to(pos, index.shape), axis=-1)


def beat_lane_sums(cfg: ChainConfig, beats: ChainBeats) -> np.ndarray:
    """int64 [B, 2] (lo, hi): the reduction tree's output for every beat."""
    x_lo = select_activations(cfg, beats.index, beats.win_lo)
    x_hi = select_activations(cfg, beats.index, beats.win_hi)
    B = beats.weights.shape[0]
    S, D = cfg.segments, cfg.segment_dsps
    p = packed_segment_sum(beats.weights.reshape(B, S, D), x_lo.reshape(B, S, D), x_hi.reshape(B, S, D))
    lo, hi = unpack_lanes(p)                       # [B, S] each: exact per-segment lane sums
    lanes = np.stack([lo, hi], axis=-1)            # [B, S, 2]
    while lanes.shape[1] > 1:                      # pairwise tree, odd node passes through
        s = lanes.shape[1]
        pairs = lanes[:, : s // 2 * 2].reshape(B, s // 2, 2, 2).sum(axis=2)
        lanes = np.concatenate([pairs, lanes[:, s // 2 * 2:]], axis=1)
        lanes = _wrap(lanes, ACC_BITS)
    return lanes[:, 0]


def chain_outputs(cfg: ChainConfig, beats: ChainBeats) -> np.ndarray:
    """int32 [groups_total, 2]: the accumulator at every group's last beat (lanes lo, hi)."""
    lanes = beat_lane_sums(cfg, beats)
    out, acc = [], np.zeros(2, dtype=np.int64)
    for b in range(lanes.shape[0]):
        acc = _wrap((np.zeros(2, np.int64) if beats.first[b] else acc) + lanes[b], ACC_BITS)
        if beats.last[b]:
            out.append(acc.copy())
    return np.array(out, dtype=np.int64).reshape(-1, 2).astype(np.int32)


def chain_group_partial_sums(cfg: ChainConfig, w_kept: np.ndarray, cols: np.ndarray, x: np.ndarray,
                             group_size: int) -> np.ndarray:
    """int32 [2, O, K/G]: the chain's partial sums in the layout of ``group_partial_sums``."""
    beats = make_beats(cfg, w_kept, cols, x, group_size)
    out = chain_outputs(cfg, beats)
    o = w_kept.shape[0]
    return out.reshape(o, -1, 2).transpose(2, 0, 1).copy()


# --------------------------------------------------------------------------- cycle model

class ChainCycleModel:
    """Clock-by-clock model of the chain's handshakes (valid/ready, global stall).

    The pipeline holds ``latency_cycles`` register stages; the last is the accumulator, which
    is the output register. A waiting output (out_valid and not out_ready) freezes every
    stage (DSP48E2 clock enables), so ``in_ready = not (out_valid and not out_ready)``.
    """

    def __init__(self, cfg: ChainConfig) -> None:
        self.cfg = cfg
        self.stages: list[Optional[bool]] = [None] * cfg.latency_cycles  # None = bubble, else 'last'

    @property
    def out_valid(self) -> bool:
        return bool(self.stages[-1])

    def step(self, in_valid: bool, in_last: bool, out_ready: bool) -> tuple[bool, bool]:
        """One clock edge; returns (input accepted, output taken) at this edge."""
        out_valid = self.out_valid
        stall = out_valid and not out_ready
        in_fire = bool(in_valid) and not stall
        if not stall:
            self.stages = [bool(in_last) if in_fire else None] + self.stages[:-1]
        return in_fire, out_valid and bool(out_ready)


def replay_handshakes(cfg: ChainConfig, in_valid: Sequence[bool], in_last: Sequence[bool],
                      out_ready: Sequence[bool]) -> tuple[list[int], list[int]]:
    """Edges at which the chain accepts beats and delivers outputs, given the port traces.

    ``in_last[e]`` is the last flag presented at edge ``e``. Used by the cocotb tests: the
    traces the DUT saw go in, the model's handshake edges must equal the DUT's.
    """
    model = ChainCycleModel(cfg)
    ins, outs = [], []
    for e, (v, l, r) in enumerate(zip(in_valid, in_last, out_ready)):
        a, o = model.step(v, l, r)
        if a:
            ins.append(e)
        if o:
            outs.append(e)
    return ins, outs
