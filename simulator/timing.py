"""Cycle-approximate timing of compiled programs, and the scaling that makes a 7B run take seconds.

What is simulated event by event (``timing_engine``): one decoder layer's
program per bucket (every instruction of every core, with its wait/release
tokens and cross-core barriers), and the LM-head program.

What is scaled, and why that is exact here:

* **Layers.** All layers of a format group run the same program with other
  addresses, and addresses do not change timing. A layer is simulated once
  alone (``t1``) and twice back to back (``t2``, the second copy's first op
  waiting on the SYS->SFU token of the first copy's last all-gather, and its
  LDs on the buffer-slot tokens the first copy leaves). ``t2 - t1`` is the steady-state layer time
  including the overlap of one layer's weight prefetch with the previous
  layer's tail, so ``N`` layers take ``t1 + (N - 1) * (t2 - t1)``. This is exact
  as long as the overlap reaches at most one layer back, which the double
  buffer guarantees (only two tiles can be in flight).
* **Decode steps.** Every step whose context falls in one 16-token bucket runs
  that bucket's program (length-adaptive compilation), so its time is the
  same for all of them: one simulation per bucket, times the steps in it.
* **Layer groups.** Mixed precision can give layers different formats; each
  distinct format group is simulated once and weighted by its layer count
  (the junction between two groups is approximated by the steady state).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from llmaccel.simulator import isa
from llmaccel.simulator.compiled import CompiledProgram, EngineCache
from llmaccel.simulator.timing_costs import OpCost, costs
from llmaccel.simulator.timing_engine import UNIT_INDEX, UNITS, Schedule, TimedOp, run
from llmaccel.simulator.timing_params import HwParams

# Where a decode token's time goes. Each cycle of a core's schedule is given to the first category
# (in this order) that has an op active then, so a category counts the time it is *exposed*: compute
# hidden under the weight stream counts as weight stream. 'lm_head' is the head program's whole time;
# 'idle' is time with nothing active (waiting on a dependency whose producer has finished its part).
CATEGORIES = ("weight_stream", "decoder_stall", "kv_reads", "compute", "sfu", "sync", "instruction_fetch",
              "lm_head", "idle")
CAT = {c: i for i, c in enumerate(CATEGORIES)}

MNEMONIC_UNIT = {cls.MNEMONIC: UNIT_INDEX[cls.UNIT] for cls in isa.INSTRUCTIONS}
SLOT_TOKENS = 2   # double-buffered weight/KV tiles: two free slots at start (MPE -> LD tokens)
Program = CompiledProgram   # what the timing engine runs: ISA words per core (simulator.compiled)


@dataclass
class Work:
    """What a stretch of execution moved and computed (for utilization, roofline and energy)."""

    cycles: float = 0.0
    hbm_read_bytes: float = 0.0
    hbm_write_bytes: float = 0.0
    macs: float = 0.0
    sfu_elems: float = 0.0
    decoded_weights: float = 0.0
    buffer_bytes: float = 0.0        # on-chip buffer traffic (writes by LD + reads by the MPE)
    busy: dict[str, float] = field(default_factory=dict)   # unit -> busy cycles summed over cores
    time: dict[str, float] = field(default_factory=dict)   # CATEGORIES -> cycles (decode and head programs)

    def add(self, o: "Work", times: float = 1.0) -> None:
        self.cycles += o.cycles * times
        self.hbm_read_bytes += o.hbm_read_bytes * times
        self.hbm_write_bytes += o.hbm_write_bytes * times
        self.macs += o.macs * times
        self.sfu_elems += o.sfu_elems * times
        self.decoded_weights += o.decoded_weights * times
        self.buffer_bytes += o.buffer_bytes * times
        for k, v in o.busy.items():
            self.busy[k] = self.busy.get(k, 0.0) + v * times
        for k, v in o.time.items():
            self.time[k] = self.time.get(k, 0.0) + v * times

    def scaled_diff(self, a: "Work") -> "Work":
        """self - a (the second copy of a two-copy run)."""
        w = Work(self.cycles - a.cycles, self.hbm_read_bytes - a.hbm_read_bytes,
                 self.hbm_write_bytes - a.hbm_write_bytes, self.macs - a.macs, self.sfu_elems - a.sfu_elems,
                 self.decoded_weights - a.decoded_weights, self.buffer_bytes - a.buffer_bytes)
        w.busy = {k: self.busy.get(k, 0.0) - a.busy.get(k, 0.0) for k in self.busy}
        return w


def program_digest(prog: CompiledProgram) -> tuple:
    """A value key of a program: what it is plus a digest of its words (an edited word is another program)."""
    h = hashlib.blake2b(digest_size=16)
    for st in prog.cores:
        h.update(st.core.to_bytes(2, "little"))
        h.update(np.ascontiguousarray(st.words, dtype="<u4").tobytes())
    return (prog.phase, prog.ctx_len, prog.tokens, prog.replicas, h.hexdigest())


def decoded(prog: CompiledProgram, cache: Optional[EngineCache] = None) -> list[tuple[int, isa.Instr, str]]:
    """(core, instruction, name) of every instruction, decoded from the program's words (memoised)."""
    key = program_digest(prog)
    memo = cache.decoded if cache is not None else {}
    hit = memo.get(key)
    if hit is None:
        hit = [(st.core, ins, name) for st in prog.cores for ins, name in zip(isa.decode(st.words), st.names)]
        memo[key] = hit
    return hit


def _category(ins: isa.Instr, c: OpCost, head: bool) -> int:
    if head:
        return CAT["lm_head"]
    if isinstance(ins, (isa.LD, isa.ST)):
        return CAT["weight_stream"] if c.weight_stream else CAT["kv_reads"]
    if isinstance(ins, (isa.MV, isa.MM)):
        return CAT["compute"]
    if isinstance(ins, isa.MISC):
        return CAT["sfu"]
    return CAT["sync"]


def lower(prog: CompiledProgram, hw: HwParams, copies: int = 1, core: Optional[int] = None,
          cache: Optional[EngineCache] = None) -> list[TimedOp]:
    """Decoded instructions -> engine ops, ``copies`` times back to back (the tokens a copy leaves feed the next).

    The engine never mutates a TimedOp, so the copies share the objects of the first.
    """
    key = ("lowered", program_digest(prog), core, hw)
    memo = cache.timing if cache is not None else {}
    base = memo.get(key)
    if base is None:
        cost_memo = cache.timing.setdefault(("costs", hw), {}) if cache is not None else {}
        base = []
        issue, setup = hw.mem.issue_cycles, hw.mem.setup_cycles
        head = prog.phase == "head"
        q0 = {}
        for c, ins, name in decoded(prog, cache):
            if isinstance(ins, isa.SYS) and ins.op == "set_position":
                q0[c] = ins.imm
            if core is not None and c != core:
                continue
            ck = (ins, c, q0.get(c, 0))
            oc = cost_memo.get(ck)
            if oc is None:
                oc = cost_memo[ck] = costs(ins, c, q0.get(c, 0), hw)
            mem = isinstance(ins, (isa.LD, isa.ST))
            sys = isinstance(ins, isa.SYS)
            base.append(TimedOp(c, MNEMONIC_UNIT[ins.MNEMONIC], oc.cycles, ins.wait, ins.release, name,
                                hbm_read_bytes=oc.hbm_read_bytes, hbm_write_bytes=oc.hbm_write_bytes,
                                macs=oc.macs, sfu_elems=oc.sfu_elems, buf_bytes=oc.decoded_weights,
                                latency=oc.latency, channel=oc.channel if mem else -1,
                                sync=sys and ins.op == "barrier", issue=0 if sys else issue,
                                setup=setup if mem and oc.cycles else 0, inst_bytes=4 * ins.WORDS,
                                cat=_category(ins, oc, head), stream=oc.stream))
        memo[key] = base
    return base * copies


def initial_tokens(hw: HwParams) -> dict[tuple[int, int, int], int]:
    """Tokens a program starts with on every core: two free tile slots (MPE -> LD) and the
    previous layer's all-gather (SYS -> SFU) that the first RMSNorm waits on."""
    init = {}
    for c in range(hw.n_cores):
        init[(c, UNIT_INDEX["MPE"], UNIT_INDEX["LD"])] = SLOT_TOKENS
        init[(c, UNIT_INDEX["SYS"], UNIT_INDEX["SFU"])] = 1
    return init


def _symmetric(prog: CompiledProgram, hw: HwParams, cache: Optional[EngineCache] = None) -> bool:
    """True when every core runs the same instruction stream up to its channel numbers and addresses.

    Then every core has the same schedule (barriers meet at the same time), so
    simulating core 0 alone is exact: ``schedule`` does that and scales the
    counts by the number of cores.
    """
    if hw.n_cores == 1 or prog.replicas == hw.n_cores:
        return True           # the compiler emitted core 0 only because every core's slice is the same
    key = ("symmetric", program_digest(prog), hw)
    memo = cache.timing if cache is not None else {}
    if key in memo:
        return memo[key]
    cpc = hw.channels_per_core
    per_core: list[list] = [[] for _ in range(hw.n_cores)]
    for op in lower(prog, hw, cache=cache):
        per_core[op.core].append((op.unit, op.cycles, op.latency, op.wait, op.release, op.sync,
                                  op.channel - op.core * cpc if op.channel >= 0 else -1,
                                  op.hbm_read_bytes, op.hbm_write_bytes, op.macs, op.sfu_elems, op.buf_bytes))
    sym = all(pc == per_core[0] for pc in per_core[1:])
    memo[key] = sym
    return sym


def schedule(prog: CompiledProgram, hw: HwParams, copies: int = 1, allow_symmetry: bool = True,
             cache: Optional[EngineCache] = None) -> tuple[list[TimedOp], Schedule, int]:
    """Schedule ``copies`` back-to-back copies; returns (ops, schedule, core multiplier)."""
    mult = 1
    n_cores = hw.n_cores
    if allow_symmetry and _symmetric(prog, hw, cache):
        ops = lower(prog, hw, copies, core=0, cache=cache)
        mult, n_cores = hw.n_cores, 1
    else:
        if prog.replicas > 1:
            raise ValueError("a core-0-only program can only be scheduled with symmetry")
        ops = lower(prog, hw, copies, cache=cache)
    init = {k: v for k, v in initial_tokens(hw).items() if k[0] < n_cores}
    return ops, run(ops, n_cores, hw.sync_cycles, initial_tokens=init, channels_per_core=hw.channels_per_core,
                    ifetch_bytes_per_cycle=hw.ifetch_bytes_per_cycle, ifetch_latency=hw.ifetch_latency_cycles), mult


def time_breakdown(ops: list[TimedOp], sch: Schedule, t0: int, t1: int) -> dict[str, float]:
    """Cycles of core 0's window [t0, t1) per category (CATEGORIES), exposed-time attribution.

    Memory ops: channel start, the stream, then (weights) the decoder's excess over the stream
    (decoder_stall), then the read latency: all in the op's category except the decoder part.
    Computed on the grid of interval end points (vectorised), not cycle by cycle.
    """
    out = {c: 0.0 for c in CATEGORIES}
    if t1 <= t0:
        return out
    n_ops = len(ops)
    core = np.fromiter((o.core for o in ops), np.int64, n_ops)
    cat = np.fromiter((o.cat for o in ops), np.int64, n_ops)
    chan = np.fromiter((o.channel for o in ops), np.int64, n_ops)
    stream = np.fromiter((o.stream for o in ops), np.int64, n_ops)
    cyc = np.fromiter((o.cycles for o in ops), np.int64, n_ops)
    st, en, ds = (np.asarray(x[:n_ops], dtype=np.int64) for x in (sch.start, sch.end, sch.data_start))
    sel = (core == 0) & (cat >= 0)
    mem = sel & (chan >= 0) & (cat != CAT["lm_head"])
    oth = sel & ~mem
    dec = np.full(int(mem.sum()), CAT["decoder_stall"])
    fw = np.asarray(sch.fetch_wait, dtype=np.int64).reshape(-1, 2)
    S = np.concatenate([st[mem], ds[mem] + stream[mem], ds[mem] + cyc[mem], st[oth], fw[:, 0]])
    E = np.concatenate([ds[mem] + stream[mem], ds[mem] + cyc[mem], en[mem], en[oth], fw[:, 1]])
    C = np.concatenate([cat[mem], dec, cat[mem], cat[oth], np.full(len(fw), CAT["instruction_fetch"])])
    S, E = np.clip(S, t0, t1), np.clip(E, t0, t1)
    keep = E > S
    S, E, C = S[keep], E[keep], C[keep]
    bounds = np.unique(np.concatenate([S, E, [t0, t1]]))
    k = len(CATEGORIES)
    d = np.zeros((k, len(bounds) + 1), dtype=np.int64)
    np.add.at(d, (C, np.searchsorted(bounds, S)), 1)
    np.add.at(d, (C, np.searchsorted(bounds, E)), -1)
    active = np.cumsum(d, axis=1)[:, :len(bounds) - 1] > 0
    seg = np.diff(bounds)
    taken = np.zeros(len(seg), dtype=bool)
    for c, name in enumerate(CATEGORIES):
        if name == "idle":
            continue
        mine = active[c] & ~taken
        out[name] = float(seg[mine].sum())
        taken |= mine
    out["idle"] = float(t1 - t0 - seg[taken].sum())
    return out


def _work(ops: list[TimedOp], sch: Schedule, hw: HwParams, mult: int = 1, n_ops: Optional[int] = None) -> Work:
    """Counts of the first ``n_ops`` ops (all by default), times ``mult`` identical cores."""
    n = len(ops) if n_ops is None else n_ops
    w = Work(cycles=max(sch.end[:n]) if n else 0)
    for op in ops[:n]:
        w.hbm_read_bytes += op.hbm_read_bytes
        w.hbm_write_bytes += op.hbm_write_bytes
        w.macs += op.macs
        w.sfu_elems += op.sfu_elems
        w.decoded_weights += op.buf_bytes
    # on-chip buffer traffic: every decoded weight written once and read once per token pair,
    # every KV byte written once and read once
    w.buffer_bytes = 2 * w.decoded_weights + 2 * w.hbm_read_bytes
    for (core, unit), b in sch.busy.items():
        w.busy[UNITS[unit]] = w.busy.get(UNITS[unit], 0.0) + b * mult
    for k in ("hbm_read_bytes", "hbm_write_bytes", "macs", "sfu_elems", "decoded_weights", "buffer_bytes"):
        setattr(w, k, getattr(w, k) * mult)
    return w


@dataclass
class LayerTiming:
    first: Work          # one layer alone (pipeline fill included)
    steady: Work         # each further layer

    def total(self, n_layers: int) -> Work:
        w = Work()
        w.add(self.first)
        w.add(self.steady, max(n_layers - 1, 0))
        return w


def layer_timing(prog: CompiledProgram, hw: HwParams, cache: Optional[EngineCache] = None) -> LayerTiming:
    key = ("layer_timing", program_digest(prog), hw)
    if cache is not None and key in cache.timing:
        return cache.timing[key]
    # In-order units: ops of the second copy queue behind the first copy's in every unit, so
    # they never delay it; the first copy's end inside the two-copy run is the one-layer time.
    o2, s2, mult = schedule(prog, hw, 2, cache=cache)
    n1 = len(o2) // 2
    w1 = _work(o2, s2, hw, mult, n_ops=n1)
    w2 = _work(o2, s2, hw, mult)
    # busy cycles of the first copy alone: the share of its ops
    busy1: dict[str, float] = {}
    for op in o2[:n1]:
        u = UNITS[op.unit]
        busy1[u] = busy1.get(u, 0.0) + (op.cycles / hw.channels_per_core if op.channel >= 0 else op.cycles) * mult
    w1.busy = busy1
    steady = w2.scaled_diff(w1)
    if prog.phase != "prefill":      # decode-token breakdown (prefill windows are millions of cycles)
        t1 = int(w1.cycles)
        w1.time = time_breakdown(o2, s2, 0, t1)
        steady.time = time_breakdown(o2, s2, t1, int(w2.cycles))
    lt = LayerTiming(w1, steady)
    if cache is not None:
        cache.timing[key] = lt
    return lt


def program_work(prog: CompiledProgram, hw: HwParams, cache: Optional[EngineCache] = None) -> Work:
    ops, sch, mult = schedule(prog, hw, 1, cache=cache)
    w = _work(ops, sch, hw, mult)
    if prog.phase == "head":
        w.time = {"lm_head": w.cycles}
    elif prog.phase != "prefill":
        w.time = time_breakdown(ops, sch, 0, int(w.cycles))
    return w
