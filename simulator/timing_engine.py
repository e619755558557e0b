"""Event-driven execution of compiled programs: in-order units joined by dependency tokens.

Each core has the units of FlightLLM's datapath (LD, ST, the matrix engine
MPE that runs MM and MV, the SFU that runs MISC ops). Every unit executes
its own instructions in program order. Instructions do not see each other's
data; they synchronise only through the ISA's wait/release fields, which
this engine treats as token FIFOs between unit pairs of one core (the
scheme of VTA and FlightLLM): an instruction with release bit ``d`` pushes
its end time into the FIFO (its unit -> d) when it finishes; an instruction
with wait bit ``s`` pops the oldest token of FIFO (s -> its unit) and may
not start before that time. Cross-core all-gathers are barriers: an op may
"arrive" at barrier ``b``; an op waiting on ``b`` starts no earlier than the
last arrival plus the sync latency. An op may carry a ``latency``: the unit is
free after ``cycles`` but the result (its tokens) is ready ``latency`` later,
which is how a DMA with outstanding requests hides HBM latency behind the
next transfer while a consumer still sees it.

Why tokens rather than a full dataflow graph: the hardware has exactly this
information (a few bits per instruction), so a schedule that needs more is
a schedule the hardware cannot run; an unbalanced token stream shows up
here as a deadlock error, which is a compiler bug caught early.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Optional, Sequence

from sparse_dsp.errors import LlmaccelError

UNITS: tuple[str, ...] = ("LD", "ST", "MPE", "SFU")
UNIT_INDEX = {u: i for i, u in enumerate(UNITS)}


class ScheduleError(LlmaccelError):
    """A program whose wait/release tokens cannot be satisfied (deadlock) or is malformed."""


@dataclass(slots=True)
class TimedOp:
    """One instruction as the engine sees it: where it runs, how long, what it waits for."""

    core: int
    unit: int                 # index into UNITS
    cycles: int
    wait: int = 0             # bitmask over UNITS: pop one token from (src -> this unit)
    release: int = 0          # bitmask over UNITS: push one token (this unit -> dst)
    arrive: int = -1          # barrier id this op arrives at when it ends (-1: none)
    barrier: int = -1         # barrier id this op waits on before it starts (-1: none)
    name: str = ""
    # accounting only (not timing): what the op moved or computed
    hbm_read_bytes: int = 0
    hbm_write_bytes: int = 0
    macs: int = 0
    sfu_elems: int = 0
    buf_bytes: int = 0
    latency: int = 0          # cycles after the unit frees until the result is usable (pipelined memory)


@dataclass
class Schedule:
    start: list[int]
    end: list[int]
    makespan: int
    busy: dict[tuple[int, int], int] = field(default_factory=dict)  # (core, unit) -> busy cycles


def run(ops: Sequence[TimedOp], n_cores: int, sync_cycles: int = 0,
        initial_tokens: Optional[dict[tuple[int, int, int], int]] = None) -> Schedule:
    """Start/end cycle of every op. Deterministic: same ops, same schedule.

    ``initial_tokens[(core, src, dst)] = n`` pre-loads n tokens at cycle 0 (free buffer slots).
    """
    n_units = len(UNITS)
    queues: dict[tuple[int, int], list[int]] = {}
    arrivals_needed: dict[int, int] = {}
    for i, op in enumerate(ops):
        if not (0 <= op.core < n_cores) or not (0 <= op.unit < n_units):
            raise ScheduleError(f"op {i} ({op.name}) names core {op.core}/unit {op.unit}; "
                                f"allowed cores 0..{n_cores - 1}, units {list(UNITS)}")
        if op.cycles < 0:
            raise ScheduleError(f"op {i} ({op.name}) has negative cycles {op.cycles}")
        queues.setdefault((op.core, op.unit), []).append(i)
        if op.arrive >= 0:
            arrivals_needed[op.arrive] = arrivals_needed.get(op.arrive, 0) + 1
    keys = sorted(queues)
    ptr = {k: 0 for k in keys}
    free_at = {k: 0 for k in keys}
    busy = {k: 0 for k in keys}
    tokens: dict[tuple[int, int, int], deque] = {k: deque([0] * n) for k, n in (initial_tokens or {}).items()}
    arr_count: dict[int, int] = {}
    arr_time: dict[int, int] = {}
    start = [0] * len(ops)
    end = [0] * len(ops)
    remaining = len(ops)
    bits = [(s, 1 << s) for s in range(n_units)]
    while remaining:
        progressed = False
        for key in keys:
            q = queues[key]
            p = ptr[key]
            core, unit = key
            t_free = free_at[key]
            while p < len(q):
                i = q[p]
                op = ops[i]
                ready = True
                if op.wait:
                    for s, b in bits:
                        if op.wait & b:
                            dq = tokens.get((core, s, unit))
                            if not dq:
                                ready = False
                                break
                if ready and op.barrier >= 0:
                    need = arrivals_needed.get(op.barrier, 0)
                    if arr_count.get(op.barrier, 0) < need or need == 0:
                        if need == 0:
                            raise ScheduleError(f"op {i} ({op.name}) waits on barrier {op.barrier} "
                                                "that no op arrives at")
                        ready = False
                if not ready:
                    break
                t0 = t_free
                if op.wait:
                    for s, b in bits:
                        if op.wait & b:
                            tt = tokens[(core, s, unit)].popleft()
                            if tt > t0:
                                t0 = tt
                if op.barrier >= 0:
                    tb = arr_time[op.barrier] + sync_cycles
                    if tb > t0:
                        t0 = tb
                t1 = t0 + op.cycles
                t_done = t1 + op.latency
                start[i] = t0
                end[i] = t_done
                busy[key] += op.cycles
                t_free = t1
                if op.release:
                    for d, b in bits:
                        if op.release & b:
                            tokens.setdefault((core, unit, d), deque()).append(t_done)
                if op.arrive >= 0:
                    arr_count[op.arrive] = arr_count.get(op.arrive, 0) + 1
                    if t_done > arr_time.get(op.arrive, -1):
                        arr_time[op.arrive] = t_done
                p += 1
                remaining -= 1
                progressed = True
            ptr[key] = p
            free_at[key] = t_free
        if not progressed:
            stuck = [(k, ops[queues[k][ptr[k]]].name) for k in keys if ptr[k] < len(queues[k])]
            desc = ", ".join(f"core{c}.{UNITS[u]} at '{n}'" for (c, u), n in stuck[:4])
            raise ScheduleError(f"deadlock: no unit can issue ({desc}); the program's wait/release "
                                "tokens are unbalanced")
    makespan = max(end) if ops else 0
    return Schedule(start=start, end=end, makespan=makespan, busy=busy)
