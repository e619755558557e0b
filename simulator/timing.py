"""Cycle-approximate timing of compiled programs, and the scaling that makes a 7B run take seconds.

What is simulated event by event (``timing_engine``): one decoder layer's
program per bucket (every instruction of every core, with its wait/release
tokens and cross-core barriers), and the LM-head program.

What is scaled, and why that is exact here:

* **Layers.** All layers of a format group run the same program with other
  addresses, and addresses do not change timing. A layer is simulated once
  alone (``t1``) and twice back to back (``t2``, the second copy's first op
  waiting on the first copy's exit barrier, and its LDs on the buffer-slot
  tokens the first copy leaves). ``t2 - t1`` is the steady-state layer time
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

from dataclasses import dataclass, field
from typing import Optional

from simulator.timing_costs import OpDesc, cycles, latency
from simulator.timing_engine import UNIT_INDEX, UNITS, Schedule, TimedOp, run
from simulator.timing_params import HwParams

OPCODE_UNIT = {"LD": UNIT_INDEX["LD"], "ST": UNIT_INDEX["ST"], "MM": UNIT_INDEX["MPE"],
               "MV": UNIT_INDEX["MPE"], "MISC": UNIT_INDEX["SFU"], "SYS": UNIT_INDEX["SFU"]}
SLOT_TOKENS = 2   # double-buffered weight/KV tiles: two free slots at start (MPE -> LD tokens)


@dataclass
class Program:
    """One layer's (or the LM head's) instruction stream for one bucket, all cores."""

    phase: str                  # decode | prefill | head
    ctx_len: int                # context length the program is compiled for (bucket upper end)
    tokens: int                 # tokens processed (1 for decode, chunk for prefill)
    ops: list[OpDesc]
    exit_barrier: int = -1      # barrier the next layer's first ops wait on
    n_barriers: int = 0
    entry_ops: list[int] = field(default_factory=list)   # ops that wait on the previous layer's exit barrier
    layer_group: int = 0

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for op in self.ops:
            c[op.opcode] = c.get(op.opcode, 0) + 1
        return c


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

    def scaled_diff(self, a: "Work") -> "Work":
        """self - a (the second copy of a two-copy run)."""
        w = Work(self.cycles - a.cycles, self.hbm_read_bytes - a.hbm_read_bytes,
                 self.hbm_write_bytes - a.hbm_write_bytes, self.macs - a.macs, self.sfu_elems - a.sfu_elems,
                 self.decoded_weights - a.decoded_weights, self.buffer_bytes - a.buffer_bytes)
        w.busy = {k: self.busy.get(k, 0.0) - a.busy.get(k, 0.0) for k in self.busy}
        return w


def _op_cycles(prog: Program, hw: HwParams) -> list[int]:
    cache = getattr(prog, "_cycles", None)
    if cache is None or cache[0] is not hw:
        cache = (hw, [cycles(op, hw) for op in prog.ops], [latency(op, hw) for op in prog.ops])
        prog._cycles = cache  # type: ignore[attr-defined]
    return cache[1], cache[2]


def lower(prog: Program, hw: HwParams, copies: int = 1) -> list[TimedOp]:
    """Program -> engine ops, ``copies`` times back to back (barrier ids offset per copy)."""
    cyc, lat = _op_cycles(prog, hw)
    entry = set(prog.entry_ops)
    out: list[TimedOp] = []
    nb = max(prog.n_barriers, 1)
    for k in range(copies):
        off = k * nb
        for i, op in enumerate(prog.ops):
            barrier = op.barrier + off if op.barrier >= 0 else -1
            if k > 0 and i in entry:
                barrier = prog.exit_barrier + off - nb
            out.append(TimedOp(op.core, OPCODE_UNIT[op.opcode], cyc[i], op.wait, op.release,
                               op.arrive + off if op.arrive >= 0 else -1, barrier, op.name,
                               hbm_read_bytes=op.hbm_bytes if op.opcode == "LD" else 0,
                               hbm_write_bytes=op.hbm_bytes if op.opcode == "ST" else 0,
                               macs=op.macs, sfu_elems=op.elems if op.opcode == "MISC" else 0,
                               buf_bytes=op.kept if op.opcode == "LD" else 0, latency=lat[i]))
    return out


def schedule(prog: Program, hw: HwParams, copies: int = 1) -> tuple[list[TimedOp], Schedule]:
    ops = lower(prog, hw, copies)
    init = {(c, UNIT_INDEX["MPE"], UNIT_INDEX["LD"]): SLOT_TOKENS for c in range(hw.n_cores)}
    return ops, run(ops, hw.n_cores, hw.sync_cycles, initial_tokens=init)


def _work(ops: list[TimedOp], sch: Schedule, hw: HwParams) -> Work:
    w = Work(cycles=sch.makespan)
    for op in ops:
        w.hbm_read_bytes += op.hbm_read_bytes
        w.hbm_write_bytes += op.hbm_write_bytes
        w.macs += op.macs
        w.sfu_elems += op.sfu_elems
        w.decoded_weights += op.buf_bytes
    # on-chip buffer traffic: every decoded weight written once and read once per token pair,
    # every KV byte written once and read once
    w.buffer_bytes = 2 * w.decoded_weights + 2 * w.hbm_read_bytes
    for (core, unit), b in sch.busy.items():
        w.busy[UNITS[unit]] = w.busy.get(UNITS[unit], 0.0) + b
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


def layer_timing(prog: Program, hw: HwParams) -> LayerTiming:
    cache = getattr(prog, "_timing", None)
    if cache is not None and cache[0] is hw:
        return cache[1]
    o1, s1 = schedule(prog, hw, 1)
    o2, s2 = schedule(prog, hw, 2)
    w1, w2 = _work(o1, s1, hw), _work(o2, s2, hw)
    lt = LayerTiming(w1, w2.scaled_diff(w1))
    prog._timing = (hw, lt)  # type: ignore[attr-defined]
    return lt


def program_work(prog: Program, hw: HwParams) -> Work:
    ops, sch = schedule(prog, hw, 1)
    return _work(ops, sch, hw)
