"""HBM efficiency against the measured rows it is fitted to, exactly, not within a band.

The held-out checks in tests/simulator/test_memory_system.py allow 3-10 % (different boards);
a fitted model row, though, must come back as measured: the model is an interpolation through
those points (linear in log2 of the access size), so an efficiency scaled by 1.1 or an
interpolation in linear size fails here by far more than rounding.
"""
from __future__ import annotations

import math

import pytest

from llmaccel.simulator.memory_system import MemorySystem, load_hbm_measurements

ROWS = [r for r in load_hbm_measurements()
        if r.use == "model" and r.channels == 1 and r.masters_per_channel == 1 and not r.crosses_switch]


@pytest.fixture(scope="module")
def mem() -> MemorySystem:
    return MemorySystem.from_table()


def test_random_model_rows_are_reproduced_exactly(mem):
    rnd = [r for r in ROWS if r.pattern == "random"]
    assert len(rnd) >= 4
    for r in rnd:
        got = mem.bandwidth_GBps(pattern="random", access_bytes=r.access_bytes, channels=1, masters_per_channel=1,
                                 crosses_switch=False)
        assert got == pytest.approx(r.measured_GBps, rel=1e-12), r.label


def test_efficiency_ratios_follow_the_rows_and_interpolate_in_log2(mem):
    by = {(r.pattern, r.access_bytes): r.measured_GBps for r in ROWS}
    for (p, a), bw in by.items():
        for (p2, b), bw2 in by.items():
            if p == p2:
                assert mem.efficiency(p, a) / mem.efficiency(p, b) == pytest.approx(bw / bw2, rel=1e-12)
    e128, e256 = mem.efficiency("random", 128), mem.efficiency("random", 256)
    want = e128 + (e256 - e128) * (math.log2(181) - 7)        # by hand: linear in log2(size)
    assert mem.efficiency("random", 181) == pytest.approx(want, rel=1e-12)
    # below the smallest row: proportional to the size (half the bytes, half the efficiency)
    assert mem.efficiency("random", 32) == pytest.approx(mem.efficiency("random", 64) / 2, rel=1e-12)
