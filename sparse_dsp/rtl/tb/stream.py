"""Reusable valid/ready stream components for the cocotb benches.

* :class:`StreamSource` drives a valid/ready source with random gaps (holds a beat until taken).
* :class:`StreamSink` drives ``ready`` with random back-pressure.
* :class:`PortTrace` samples named signals at every rising edge (after the edge, i.e. the
  values the flops saw), so a bench can replay the DUT's own port traces on the Python cycle
  model and compare handshake edges exactly.
* :class:`StreamMonitor` hands every handshake (edge, fields) to callbacks.
* :class:`Scoreboard` compares in order against the model and counts every mismatch; the
  test asserts the count is zero at the end.
All are start/stop-able.
"""
from __future__ import annotations

import random
from collections import deque
from typing import Callable, Iterable, Optional

import cocotb
from cocotb.triggers import RisingEdge


def pack_ints(values: Iterable[int], width: int) -> int:
    """Little-endian concatenation of ``values`` as ``width``-bit two's complement fields."""
    out, mask = 0, (1 << width) - 1
    for i, v in enumerate(values):
        out |= (int(v) & mask) << (i * width)
    return out


def signed(v: int, width: int) -> int:
    v &= (1 << width) - 1
    return v - (1 << width) if v >> (width - 1) else v


def read_int(sig) -> int:
    return int(sig.value)


class _Task:
    def __init__(self) -> None:
        self._task = None

    def start(self) -> None:
        if self._task is None:
            self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self):  # pragma: no cover - overridden
        raise NotImplementedError


class StreamSource(_Task):
    """Presents queued beats on ``valid`` + data signals; a beat stays until ``ready`` takes it."""

    def __init__(self, clk, valid, ready, signals: dict, *, gap_prob: float = 0.0,
                 rng: Optional[random.Random] = None) -> None:
        super().__init__()
        self.clk, self.valid, self.ready, self.signals = clk, valid, ready, signals
        self.gap_prob = gap_prob
        self.rng = rng or random.Random(0)
        self.queue: deque = deque()
        self.sent = 0
        self.valid.value = 0

    def append(self, beat: dict) -> None:
        self.queue.append(beat)

    def extend(self, beats: Iterable[dict]) -> None:
        self.queue.extend(beats)

    @property
    def idle(self) -> bool:
        return not self.queue

    def _present(self) -> None:
        if self.queue and self.rng.random() >= self.gap_prob:
            for name, val in self.queue[0].items():
                self.signals[name].value = val
            self.valid.value = 1
        else:
            self.valid.value = 0

    async def _run(self):
        self._present()
        while True:
            await RisingEdge(self.clk)
            presenting = int(self.valid.value) == 1
            if presenting and int(self.ready.value) == 1:
                self.queue.popleft()
                self.sent += 1
                presenting = False
            if not presenting:
                self._present()


class StreamSink(_Task):
    """Drives ``ready``: high with probability ``1 - stall_prob`` each cycle."""

    def __init__(self, clk, ready, *, stall_prob: float = 0.0, rng: Optional[random.Random] = None) -> None:
        super().__init__()
        self.clk, self.ready, self.stall_prob = clk, ready, stall_prob
        self.rng = rng or random.Random(1)
        self.ready.value = 0 if stall_prob >= 1 else 1

    async def _run(self):
        while True:
            self.ready.value = 0 if self.rng.random() < self.stall_prob else 1
            await RisingEdge(self.clk)


class PortTrace(_Task):
    """Records named signals at every rising edge: ``trace[name][edge]``."""

    def __init__(self, clk, signals: dict) -> None:
        super().__init__()
        self.clk, self.signals = clk, signals
        self.trace: dict[str, list[int]] = {k: [] for k in signals}
        self.edges = 0

    async def _run(self):
        while True:
            await RisingEdge(self.clk)
            for name, sig in self.signals.items():
                self.trace[name].append(int(sig.value))
            self.edges += 1

    def handshakes(self, valid: str, ready: str) -> list[int]:
        return [e for e, (v, r) in enumerate(zip(self.trace[valid], self.trace[ready])) if v and r]


class StreamMonitor(_Task):
    """Calls ``callback(edge, fields)`` for every beat taken on a valid/ready port."""

    def __init__(self, clk, valid, ready, signals: dict, callback: Callable[[int, dict], None]) -> None:
        super().__init__()
        self.clk, self.valid, self.ready, self.signals, self.callback = clk, valid, ready, signals, callback
        self.count = 0

    async def _run(self):
        edge = 0
        while True:
            await RisingEdge(self.clk)
            if int(self.valid.value) and int(self.ready.value):
                self.callback(edge, {k: int(s.value) for k, s in self.signals.items()})
                self.count += 1
            edge += 1


class Scoreboard:
    """In-order comparison against expected transactions; counts every mismatch."""

    def __init__(self, name: str, expected: Iterable, log=None) -> None:
        self.name = name
        self.expected = deque(expected)
        self.total = len(self.expected)
        self.mismatches = 0
        self.matched = 0
        self.log = log

    def check(self, got, what: str = "") -> None:
        if not self.expected:
            self.mismatches += 1
            self._say(f"{self.name}: unexpected extra transaction {got} {what}")
            return
        exp = self.expected.popleft()
        if got != exp:
            self.mismatches += 1
            self._say(f"{self.name}: mismatch {what}: got {got}, expected {exp}")
        else:
            self.matched += 1

    def compare_all(self, got: list, expected: list, what: str) -> None:
        """Whole-sequence comparison (e.g. handshake edges): one mismatch per differing item."""
        n = max(len(got), len(expected))
        bad = sum(1 for i in range(n) if i >= len(got) or i >= len(expected) or got[i] != expected[i])
        if bad:
            self._say(f"{self.name}: {what}: {bad} of {n} differ; first got {got[:8]}, expected {expected[:8]}")
        self.mismatches += bad

    def expect(self, ok: bool, msg: str) -> None:
        """A single checked property (a latency, an interval, a total cycle count): one mismatch if false."""
        if not ok:
            self.mismatches += 1
            self._say(f"{self.name}: {msg}")

    @property
    def missing(self) -> int:
        return len(self.expected)

    def _say(self, msg: str) -> None:
        if self.log is not None:
            self.log.error(msg)


class VectorPort:
    """A packed vector port shared by several streams (e.g. ``s_code_valid[NCH-1:0]``).

    Writes go through one shadow value, so lanes written in the same step do not clobber
    each other (a read-modify-write of the signal would see the old value).
    """

    def __init__(self, sig) -> None:
        self.sig = sig
        self.shadow = 0
        sig.value = 0

    def lane(self, offset: int, width: int = 1) -> "Lane":
        return Lane(self, offset, width)


class _Val(int):
    """An int that also answers ``.value`` style reads (``int(x)``)."""


class Lane:
    """A slice of a :class:`VectorPort` (or of any signal, read-only) usable where a signal is."""

    def __init__(self, port, offset: int, width: int) -> None:
        self.port, self.offset, self.width = port, offset, width

    @property
    def value(self) -> int:
        sig = self.port.sig if isinstance(self.port, VectorPort) else self.port
        return _Val((int(sig.value) >> self.offset) & ((1 << self.width) - 1))

    @value.setter
    def value(self, v: int) -> None:
        if not isinstance(self.port, VectorPort):
            raise TypeError("read-only lane")
        mask = ((1 << self.width) - 1) << self.offset
        self.port.shadow = (self.port.shadow & ~mask) | ((int(v) << self.offset) & mask)
        self.port.sig.value = self.port.shadow
