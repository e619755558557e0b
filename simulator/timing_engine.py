"""Event-driven execution of compiled programs: in-order units joined by dependency tokens.

Each core has the units of the ISA (``simulator.isa.UNITS``: LD, ST, the
matrix engine MPE that runs MM and MV, the SFU that runs MISC, and SYS for
barriers). Every unit executes
its own instructions in program order. Instructions do not see each other's
data; they synchronise only through the ISA's wait/release fields, which
this engine treats as token FIFOs between unit pairs of one core (the
scheme of VTA and FlightLLM): an instruction with release bit ``d`` pushes
its end time into the FIFO (its unit -> d) when it finishes; an instruction
with wait bit ``s`` pops the oldest token of FIFO (s -> its unit) and may
not start before that time (the ISA's counter semantics, with times). Cross-core
all-gathers are SYS ``barrier`` instructions: the k-th barrier of every core
completes at the last arrival plus the sync latency. An op may carry a ``latency``: the unit is
free after ``cycles`` but the result (its tokens) is ready ``latency`` later,
which is how a DMA with outstanding requests hides HBM latency behind the
next transfer while a consumer still sees it. Tokens released back to LD mean
"buffer slot read, free to refill" and are pushed when the op leaves its
unit; all other tokens announce results and are pushed after the latency.

Why tokens rather than a full dataflow graph: the hardware has exactly this
information (a few bits per instruction), so a schedule that needs more is
a schedule the hardware cannot run; an unbalanced token stream shows up
here as a deadlock error, which is a compiler bug caught early.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Optional, Sequence

from llmaccel.errors import LlmaccelError

from llmaccel.simulator.isa import UNITS  # ("LD", "ST", "MPE", "SFU", "SYS"): bit i of wait/release = UNITS[i]

UNIT_INDEX = {u: i for i, u in enumerate(UNITS)}
LD_UNIT = UNIT_INDEX["LD"]
LD_BIT = 1 << LD_UNIT


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
    name: str = ""
    # accounting only (not timing): what the op moved or computed
    hbm_read_bytes: int = 0
    hbm_write_bytes: int = 0
    macs: int = 0
    sfu_elems: int = 0
    buf_bytes: int = 0
    latency: int = 0          # cycles after the unit frees until the result is usable (pipelined memory)
    channel: int = -1         # LD/ST: the HBM channel it occupies (-1: none)
    sync: bool = False        # SYS barrier: completes when every core's matching barrier has arrived
    issue: int = 0            # cycles the unit spends issuing the instruction before its work starts
    setup: int = 0            # LD/ST: address-phase cycles in the unit before the channel moves data
    inst_bytes: int = 0       # bytes of the instruction in its stream (instruction fetch)
    cat: int = -1             # time-breakdown category (simulator.timing.CATEGORIES), -1: none
    stream: int = 0           # LD/ST: cycles of ``cycles`` that are the memory stream (the rest: decoder)


@dataclass
class Schedule:
    start: list[int]
    end: list[int]
    makespan: int
    busy: dict[tuple[int, int], float] = field(default_factory=dict)  # (core, unit) -> busy cycles
    data_start: list[int] = field(default_factory=list)   # when the work began (after issue); LD/ST: = start
    fetch_wait: list[tuple[int, int]] = field(default_factory=list)  # (from, to): an op waited for its instruction


def run(ops: Sequence[TimedOp], n_cores: int, sync_cycles: int = 0,
        initial_tokens: Optional[dict[tuple[int, int, int], int]] = None,
        channels_per_core: int = 1, ifetch_bytes_per_cycle: float = 0.0, ifetch_latency: int = 0) -> Schedule:
    """Start/end cycle of every op. Deterministic: same ops, same schedule.

    ``initial_tokens[(core, src, dst)] = n`` pre-loads n tokens at cycle 0 (free buffer slots).
    LD/ST ops name a channel: the unit issues one per cycle, in order, while the
    transfers of different channels overlap; a channel moves one transfer at a
    time; completions are in order (a DMA retires requests in order), so the
    last LD of a tile releasing its token implies the whole tile has landed.
    SYS barriers: the k-th barrier of every core completes together, at the
    last arrival plus ``sync_cycles``.

    Instruction fetch (``ifetch_bytes_per_cycle`` > 0): each core's fetcher streams its instructions in
    program order from their memory and hands them to the units' FIFOs (taken as deep enough); an op
    cannot start before its instruction has arrived: ``ifetch_latency`` plus the bytes up to and
    including it over the fetch bandwidth.
    """
    n_units = len(UNITS)
    queues: dict[tuple[int, int], list[int]] = {}
    for i, op in enumerate(ops):
        if not (0 <= op.core < n_cores) or not (0 <= op.unit < n_units):
            raise ScheduleError(f"op {i} ({op.name}) names core {op.core}/unit {op.unit}; "
                                f"allowed cores 0..{n_cores - 1}, units {list(UNITS)}")
        if op.cycles < 0:
            raise ScheduleError(f"op {i} ({op.name}) has negative cycles {op.cycles}")
        queues.setdefault((op.core, op.unit), []).append(i)
    keys = sorted(queues)
    ptr = {k: 0 for k in keys}
    free_at = {k: 0 for k in keys}
    last_done = {k: 0 for k in keys}
    busy = {k: 0 for k in keys}
    chan_free: dict[tuple[int, int], int] = {}
    tokens: dict[tuple[int, int, int], deque] = {k: deque([0] * n) for k, n in (initial_tokens or {}).items()}
    sync_seq = [0] * n_cores
    sync_groups: dict[int, list[tuple[int, int, tuple[int, int]]]] = {}
    arrived: set[int] = set()
    start = [0] * len(ops)
    end = [0] * len(ops)
    data_start = [0] * len(ops)
    fetch_wait: list[tuple[int, int]] = []
    fetched: Optional[list[int]] = None
    if ifetch_bytes_per_cycle > 0:
        cum = [0] * n_cores
        fetched = [0] * len(ops)
        for i, op in enumerate(ops):
            cum[op.core] += op.inst_bytes
            fetched[i] = ifetch_latency + int(-(-cum[op.core] // ifetch_bytes_per_cycle))
    remaining = len(ops)
    bits = [(s, 1 << s) for s in range(n_units)]

    def push(core: int, unit: int, mask: int, t: int) -> None:
        for d, b in bits:
            if mask & b:
                tokens.setdefault((core, unit, d), deque()).append(t)

    while remaining:
        progressed = False
        for key in keys:
            q = queues[key]
            core, unit = key
            while ptr[key] < len(q):
                i = q[ptr[key]]
                op = ops[i]
                if i in arrived:
                    break                      # a barrier waiting for the other cores
                if op.wait:
                    ready = True
                    for s, b in bits:
                        if op.wait & b:
                            dq = tokens.get((core, s, unit))
                            if not dq:
                                ready = False
                                break
                    if not ready:
                        break
                t0 = free_at[key]
                if op.wait:
                    for s, b in bits:
                        if op.wait & b:
                            tt = tokens[(core, s, unit)].popleft()
                            if tt > t0:
                                t0 = tt
                progressed = True
                if fetched is not None and fetched[i] > t0:
                    fetch_wait.append((t0, fetched[i]))
                    t0 = fetched[i]
                if op.sync:
                    seq = sync_seq[core]
                    sync_seq[core] += 1
                    grp = sync_groups.setdefault(seq, [])
                    grp.append((i, t0, key))
                    arrived.add(i)
                    if len(grp) == n_cores:
                        t_done = max(t for _, t, _ in grp) + sync_cycles
                        for j, tj, kj in grp:
                            start[j], end[j] = tj, t_done
                            data_start[j] = tj
                            free_at[kj] = t_done
                            push(kj[0], kj[1], ops[j].release, t_done)
                            arrived.discard(j)
                            ptr[kj] += 1
                            remaining -= 1
                        del sync_groups[seq]
                        continue
                    break
                if op.channel >= 0:
                    ck = (core, op.channel)
                    tc = chan_free.get(ck, 0)
                    ta = t0 + op.setup
                    if ta > tc:
                        tc = ta
                    t1 = tc + op.cycles
                    chan_free[ck] = t1
                    t_done = max(t1 + op.latency, last_done[key])
                    last_done[key] = t_done
                    free_at[key] = t0 + max(1, op.issue + op.setup)   # the unit issues transfers in order
                    busy[key] += op.cycles / channels_per_core
                    data_start[i] = tc
                    t0 = tc                          # the op's start: when its channel begins
                else:
                    t1 = t0 + op.issue + op.cycles
                    t_done = t1 + op.latency
                    free_at[key] = t1
                    busy[key] += op.cycles + op.issue
                    data_start[i] = t0 + op.issue
                start[i], end[i] = t0, t_done
                if op.release:
                    # a token back to LD frees a buffer slot: the slot is free once the op has
                    # read it (end of occupancy); every other token announces results (t_done)
                    if op.release & LD_BIT and unit != LD_UNIT:
                        push(core, unit, LD_BIT, t1)
                        push(core, unit, op.release & ~LD_BIT, t_done)
                    else:
                        push(core, unit, op.release, t_done)
                ptr[key] += 1
                remaining -= 1
        if not progressed:
            stuck = [(k, ops[queues[k][ptr[k]]].name) for k in keys if ptr[k] < len(queues[k])]
            desc = ", ".join(f"core{c}.{UNITS[u]} at '{n}'" for (c, u), n in stuck[:4])
            raise ScheduleError(f"deadlock: no unit can issue ({desc}); the program's wait/release "
                                "tokens are unbalanced")
    makespan = max(end) if ops else 0
    return Schedule(start=start, end=end, makespan=makespan, busy=busy, data_start=data_start,
                    fetch_wait=fetch_wait)
