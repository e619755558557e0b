"""Proof that a program's tokens order every buffer access it depends on, under every legal schedule.

Why: the ISA's units run concurrently and synchronise only through wait/release token
counters (``simulator.isa``); an engine that runs the units in program order (the timing
engine's FIFOs fed in order, the HLS top's policy 0) hides any ordering the tokens do not
enforce. This module asks the question for *every* interleaving instead.

**Happens-before.** Each unit runs its own instructions in program order, so an
instruction happens after its unit's previous one. Counter (P -> C) starts at the
launch's initial tokens ``n`` (``simulator.timing.initial_tokens``); the k-th instruction
of C waiting on P takes the counter from ``n + R - k`` (R: releases so far) and may start
only once it is positive, so it starts after the ``(k - n)``-th release from P to C has
completed, and nothing else is guaranteed. These two kinds of edges, closed
transitively (vector clocks over the five units), are what every legal schedule obeys;
a wait whose release never comes, or a cycle, is a deadlock. Cross-core barriers only
add order, so each core is checked alone (conservative). LD/ST may overlap transfers, but
they start and retire in order, which keeps every chain through them. One launch at a time:
a launch starts with its initial tokens and free slots after the previous one ended (the
host and the HLS top run them so; the timing engine's back-to-back copies overlap a launch's
first loads with the previous one's tail, which is timing only).

**Accesses.** Tile buffers (the design's weight and KV buffers) are slots: the LDs
filling one slot (same buffer and ``dst_offset_lines``, until an MV/MM reads it) are one
tile; its channels' LDs fill their shares side by side from the slot offset (one per
channel, the same local range: ``emit``), so the tile spans the lines of its largest share
(weight rows ``dst_row_stride_lines`` each, K/V rows ``row_elems + KV_SCALE_BYTES`` bytes,
as ``tests/mapping`` bounds them by the buffer); the MV/MM naming ``wt_offset_lines`` reads that
tile. Vector buffers (activation, SFU: norm parameter blocks, scores) are accessed a
whole region at a time (``CompiledModel.act``): an LD of a norm block or bias writes
the region at its destination, ST reads its source, MV/MM read their activation and
write their output region, MISC reads its source (and ``aux`` for norms, add, mul) and
writes its destination. In program order, each access must happen after the last
write to anything it overlaps, and a write after every read of it since: any pair the
tokens leave unordered is a :class:`Hazard`. SYS ``set_position`` writes the core's position
register, which ST reads (it names the program's tokens a KV row belongs to). HBM is accessed
a placed region (``CompiledModel.regions``) per channel at a time: an ST writes the KV region
it names (the runtime position may move its rows anywhere in the bucket), an LD reads the
region it names, so a K/V tile that may hold a new row must be ordered after its store.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from llmaccel.errors import LlmaccelError
from llmaccel.simulator import isa
from llmaccel.simulator.compiled import CompiledModel, CompiledProgram

UNIT_INDEX = {u: i for i, u in enumerate(isa.UNITS)}
TILE_KINDS = ("weight_codes",) + isa.KV_KINDS
AUX_OPS = ("rmsnorm", "layernorm", "add", "mul")     # MISC ops that read their aux operand
POSITION = -1        # pseudo buffer: the position register SYS set_position writes and ST reads
HBM0 = -2            # pseudo buffers HBM0 - ch: HBM channel ch (lines of the placed regions)


class HazardError(LlmaccelError):
    """A program whose tokens leave a buffer access unordered (or that deadlocks)."""


@dataclass(frozen=True)
class Hazard:
    """Two accesses no token chain orders (``first`` precedes ``second`` in program order)."""

    core: int
    kind: str          # write-after-read | read-after-write | write-after-write | deadlock | unfilled-slot
    buffer: int
    lines: tuple[int, int]
    first: str
    second: str

    def __str__(self) -> str:
        if self.kind == "deadlock":
            return f"core {self.core}: {self.second} waits for a token {self.first}"
        lines = f"lines {self.lines[0]}..{self.lines[1] - 1}"
        where = ("the position register" if self.buffer == POSITION else f"HBM channel {HBM0 - self.buffer} {lines}"
                 if self.buffer <= HBM0 else f"buffer {self.buffer} {lines}")
        if self.kind == "unfilled-slot":
            return f"core {self.core}: {self.second} reads {where}, which no LD filled"
        return f"core {self.core}: {self.kind} on {where}: '{self.second}' is not ordered after '{self.first}'"


@dataclass
class _Order:
    """Vector clocks: ``clock[i][u]`` = the position in unit u's queue of the latest instruction
    that completes before instruction i starts (-1: none)."""

    unit: list[int]
    pos: list[int]
    clock: list[list[int]]

    def before(self, a: int, b: int) -> bool:
        ua = self.unit[a]
        if ua == self.unit[b]:
            return self.pos[a] < self.pos[b]
        return self.clock[b][ua] >= self.pos[a]


def _order(ins: Sequence[isa.Instr], names: Sequence[str], core: int,
           initial: dict[tuple[int, int], int]) -> tuple[Optional[_Order], list[Hazard]]:
    n_u = len(isa.UNITS)
    unit = [UNIT_INDEX[i.UNIT] for i in ins]
    pos, count = [0] * len(ins), [0] * n_u
    releases: dict[tuple[int, int], list[int]] = {}
    for i, u in enumerate(unit):
        pos[i], count[u] = count[u], count[u] + 1
        for c in range(n_u):
            if ins[i].release >> c & 1:
                releases.setdefault((u, c), []).append(i)
    preds: list[list[int]] = [[] for _ in ins]
    last = [-1] * n_u
    waits: dict[tuple[int, int], int] = {}
    missing: dict[int, int] = {}          # instruction -> a unit whose token it waits for is never released
    for i, u in enumerate(unit):
        if last[u] >= 0:
            preds[i].append(last[u])
        last[u] = i
        for p in range(n_u):
            if ins[i].wait >> p & 1:
                k = waits.get((p, u), 0)
                waits[(p, u)] = k + 1
                j = k - initial.get((p, u), 0)
                rel = releases.get((p, u), [])
                if j >= len(rel):
                    missing[i] = p
                elif j >= 0:
                    preds[i].append(rel[j])
    succ: list[list[int]] = [[] for _ in ins]
    indeg = [len(p) + (i in missing) for i, p in enumerate(preds)]   # a missing token never arrives
    for i, ps in enumerate(preds):
        for p in ps:
            succ[p].append(i)
    clock: list[Optional[list[int]]] = [None] * len(ins)
    ready = [i for i, d in enumerate(indeg) if d == 0]
    done = 0
    while ready:
        i = ready.pop()
        done += 1
        vc = [-1] * n_u
        for p in preds[i]:
            cp = clock[p]
            for u in range(n_u):
                if cp[u] > vc[u]:
                    vc[u] = cp[u]
            if pos[p] > vc[unit[p]]:
                vc[unit[p]] = pos[p]
        clock[i] = vc
        for s in succ[i]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if done < len(ins):    # the first instruction in program order that can never start
        stuck = min(i for i in range(len(ins)) if clock[i] is None)
        why = (f"from {isa.UNITS[missing[stuck]]} that is never released" if stuck in missing else
               "whose release never comes (a cycle of waits, or behind a wait nothing releases)")
        return None, [Hazard(core, "deadlock", -1, (0, 0), why, names[stuck])]
    return _Order(unit, pos, clock), []


def _vector_regions(cm: CompiledModel) -> dict[int, list[tuple[int, int]]]:
    """Per vector buffer, its regions as line ranges: each runs to the next region's offset."""
    by: dict[int, list[int]] = {}
    for a in cm.act:
        by.setdefault(a.buffer, []).append(a.offset_lines)
    out = {}
    for b, offs in by.items():
        offs = sorted(set(offs))
        out[b] = [(o, offs[k + 1] if k + 1 < len(offs) else 1 << isa.OFFSET_BITS) for k, o in enumerate(offs)]
    return out


def _tile_lines(ld: isa.LD) -> int:
    if ld.kind in isa.KV_KINDS:
        return ld.rows * isa.kv_row_bytes(ld.kind, ld.row_elems)
    return ld.rows * ld.dst_row_stride_lines * isa.LINE_BYTES


def _accesses(ins: Sequence[isa.Instr], names: Sequence[str], core: int, cm: CompiledModel
              ) -> tuple[list[list[tuple[int, int, int, bool]]], list[Hazard]]:
    """Per instruction, its accesses (buffer, first line, end line, is_write)."""
    tile_bufs = {cm.buffers.weight, cm.buffers.kv}
    regions = _vector_regions(cm)
    hazards: list[Hazard] = []

    def region(buf: int, off: int) -> Optional[tuple[int, int]]:
        rs = regions.get(buf)
        if not rs:
            return None
        k = bisect.bisect_right([r[0] for r in rs], off) - 1
        return rs[k] if k >= 0 else None

    def placed(ch: int, addr: int):
        for r in cm.regions:
            if r.channel0 <= ch < r.channel0 + r.n_channels and r.addr <= addr < r.end:
                return r
        return None

    # tiles: consecutive LDs into one slot up to the MV/MM that reads it
    filling: dict[tuple[int, int], list[int]] = {}      # (buffer, offset) -> LD indices of the open tile
    tile_of: dict[int, tuple[int, int]] = {}            # instruction -> its tile's line range
    for i, x in enumerate(ins):
        if isinstance(x, isa.LD) and x.kind in TILE_KINDS and x.dst_buffer in tile_bufs:
            filling.setdefault((x.dst_buffer, x.dst_offset_lines), []).append(i)
        elif isinstance(x, (isa.MV, isa.MM)) and x.wt_buffer in tile_bufs:
            lds = filling.pop((x.wt_buffer, x.wt_offset_lines), [])
            lines = -(-max((_tile_lines(ins[j]) for j in lds), default=0) // isa.LINE_BYTES)
            span = (x.wt_offset_lines, x.wt_offset_lines + max(lines, 1))
            for j in lds + [i]:
                tile_of[j] = span
            if not lds:
                hazards.append(Hazard(core, "unfilled-slot", x.wt_buffer, span, "", names[i]))
    for (buf, off), lds in filling.items():     # filled, never read: still a write of its lines
        lines = -(-max(_tile_lines(ins[j]) for j in lds) // isa.LINE_BYTES)
        for j in lds:
            tile_of[j] = (off, off + lines)

    out: list[list[tuple[int, int, int, bool]]] = []
    for i, x in enumerate(ins):
        acc: list[tuple[int, int, int, bool]] = []

        def vec(buf: int, off: int, write: bool) -> None:
            r = region(buf, off)
            if r is not None and buf not in tile_bufs:
                acc.append((buf, r[0], r[1], write))

        def hbm(ch: int, addr_lines: int, write: bool) -> None:
            r = placed(ch, addr_lines * isa.LINE_BYTES)
            if r is not None:
                acc.append((HBM0 - ch, r.addr // isa.LINE_BYTES, -(-r.end // isa.LINE_BYTES), write))
        if isinstance(x, (isa.LD, isa.ST)) and x.mem == "hbm":
            hbm(x.channel, x.src_addr_lines if isinstance(x, isa.LD) else x.dst_addr_lines, isinstance(x, isa.ST))
        if isinstance(x, isa.LD):
            if i in tile_of:
                acc.append((x.dst_buffer, *tile_of[i], True))
            else:
                vec(x.dst_buffer, x.dst_offset_lines, True)
        elif isinstance(x, isa.ST):
            vec(x.src_buffer, x.src_offset_lines, False)
            acc.append((POSITION, 0, 1, False))      # the compiled position names the stored tokens
        elif isinstance(x, isa.SYS) and x.op == "set_position":
            acc.append((POSITION, 0, 1, True))
        elif isinstance(x, (isa.MV, isa.MM)):
            if i in tile_of:
                acc.append((x.wt_buffer, *tile_of[i], False))
            vec(x.act_buffer, x.act_offset_lines, False)
            vec(x.out_buffer, x.out_offset_lines, True)
        elif isinstance(x, isa.MISC):
            vec(x.src_buffer, x.src_offset_lines, False)
            if x.op in AUX_OPS:
                vec(x.aux_buffer, x.aux_offset_lines, False)
            vec(x.dst_buffer, x.dst_offset_lines, True)
        out.append(acc)
    return out, hazards


def stream_hazards(ins: Sequence[isa.Instr], names: Sequence[str], core: int, cm: CompiledModel,
                   initial: Optional[dict[tuple[int, int], int]] = None) -> list[Hazard]:
    """Every unordered conflicting pair (and deadlock) of one core's instruction stream."""
    if initial is None:
        from llmaccel.simulator.timing import initial_tokens
        initial = {(s, d): n for (c, s, d), n in initial_tokens(cm.hw).items() if c == 0}
    order, hazards = _order(ins, names, core, initial)
    if order is None:
        return hazards
    accesses, hazards = _accesses(ins, names, core, cm)
    bounds: dict[int, list[int]] = {}
    for acc in accesses:
        for buf, lo, hi, _ in acc:
            bounds.setdefault(buf, []).extend((lo, hi))
    seg_of = {b: sorted(set(v)) for b, v in bounds.items()}
    last_write: dict[tuple[int, int], int] = {}
    reads: dict[tuple[int, int], dict[int, int]] = {}     # segment -> unit -> latest reader since the last write
    for i, acc in enumerate(accesses):
        writes = {(b, s) for b, lo, hi, w in acc if w
                  for s in range(bisect.bisect_left(seg_of[b], lo), bisect.bisect_left(seg_of[b], hi))}
        seen: set[tuple[int, int]] = set()
        for buf, lo, hi, w in acc:
            segs = seg_of[buf]
            for s in range(bisect.bisect_left(segs, lo), bisect.bisect_left(segs, hi)):
                key = (buf, s)
                if key in seen:
                    continue
                seen.add(key)
                span = (segs[s], segs[s + 1])
                lw = last_write.get(key)
                if lw is not None and lw != i and not order.before(lw, i):
                    kind = "write-after-write" if key in writes else "read-after-write"
                    hazards.append(Hazard(core, kind, buf, span, names[lw], names[i]))
                if key in writes:
                    for r in reads.get(key, {}).values():
                        if r != i and not order.before(r, i):
                            hazards.append(Hazard(core, "write-after-read", buf, span, names[r], names[i]))
                    last_write[key] = i
                    reads[key] = {}
                else:
                    reads.setdefault(key, {})[order.unit[i]] = i
    return hazards


def program_hazards(prog: CompiledProgram, cm: CompiledModel) -> list[Hazard]:
    """Every hazard of every core's stream of ``prog`` (empty: correct under any legal schedule)."""
    out: list[Hazard] = []
    for st in prog.cores:
        out += stream_hazards(isa.decode(st.words), st.names, st.core, cm)
    return out


def check_programs(cm: CompiledModel, programs: Optional[Iterable[CompiledProgram]] = None) -> int:
    """Raise :class:`HazardError` naming the first hazards of any program; returns how many were checked."""
    progs = list(cm.programs.values()) if programs is None else list(programs)
    for prog in progs:
        hz = program_hazards(prog, cm)
        if hz:
            more = f" (and {len(hz) - 3} more)" if len(hz) > 3 else ""
            raise HazardError(f"program {prog.key}: " + "; ".join(map(str, hz[:3])) + more)
    return len(progs)


__all__ = ["Hazard", "HazardError", "check_programs", "program_hazards", "stream_hazards"]
