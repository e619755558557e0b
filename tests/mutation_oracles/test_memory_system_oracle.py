"""HBM model: the switch rows it is fitted to come back as measured; the kernel clock is validated at 0.

Oracles, not values from the code:
* the two-pseudo-channel random rows of ``hbm_u280.yaml`` (Vitis-Tutorials 07-using-hbm, measured on a
  board) are the data the switch model is fitted to, so the model evaluated at those rows must give the
  measured GB/s back (to float rounding). A different switch probability (``1 - 1/channels``) or a
  scaled pipelined time per byte moves every row by several percent.
* a 0 MHz or negative kernel clock is not a clock; the model must refuse it with one error naming the
  field (a clock of 0 would later divide by zero, a negative one gives negative times).
"""
from __future__ import annotations

import math

import pytest

from llmaccel.simulator.memory_system import MemorySystem, MemorySystemError, load_hbm_measurements

SWITCH_ROWS = [r for r in load_hbm_measurements()
               if r.use == "model" and r.crosses_switch and r.pattern == "random" and r.channels > 1]


@pytest.fixture(scope="module")
def mem() -> MemorySystem:
    return MemorySystem.from_table()


def test_the_fitted_switch_rows_are_reproduced(mem):
    """Fitted rows: exact to 1e-12 relative (float rounding only); measured residue 0 by construction."""
    assert len(SWITCH_ROWS) >= 4, "the table lost its 2-channel random rows through the switch"
    for r in SWITCH_ROWS:
        got = mem.bandwidth_GBps(pattern="random", access_bytes=r.access_bytes, channels=r.channels,
                                 masters_per_channel=r.masters_per_channel, crosses_switch=True)
        assert got == pytest.approx(r.measured_GBps, rel=1e-12), r.label


def test_switch_model_by_hand_at_a_size_between_rows(mem):
    """Between rows: per-byte time = p * t_drain + (1 - p) * t_pipe with p = 1 - 1/k, computed here from
    the table's own measured GB/s (2-channel rows give t_drain; 1-channel rows give t_pipe)."""
    one = {r.access_bytes: r.measured_GBps for r in load_hbm_measurements()
           if r.use == "model" and r.pattern == "random" and r.channels == 1 and r.masters_per_channel == 1
           and not r.crosses_switch}
    two = {r.access_bytes: r.measured_GBps for r in SWITCH_ROWS if r.channels == 2}
    a, b = 128, 256
    assert a in one and b in one and a in two and b in two

    def drain(x):  # drain time per byte of the 2-channel rows: t_obs = 0.5 t_drain + 0.5 t_pipe
        return (1 / two[x] - 0.5 / one[x]) / 0.5

    x = 181                                        # between the rows, interpolated in log2(size)
    w = math.log2(x) - math.log2(a)
    t_pipe = 1 / (one[a] + (one[b] - one[a]) * w)
    t_drain = drain(a) + (drain(b) - drain(a)) * w
    for k in (2, 4):
        p = 1 - 1 / k
        want = 1 / (p * t_drain + (1 - p) * t_pipe)
        got = mem.bandwidth_GBps(pattern="random", access_bytes=x, channels=k, crosses_switch=True)
        assert got == pytest.approx(want, rel=1e-9), k


@pytest.mark.parametrize("mhz", [0.0, -1.0, -225.0, float("nan")])
def test_a_kernel_clock_that_is_not_positive_is_one_error(mhz):
    with pytest.raises(MemorySystemError, match="clock_MHz"):
        MemorySystem.from_table(kernel_clock_MHz=mhz)


def test_a_small_positive_kernel_clock_is_accepted():
    m = MemorySystem.from_table(kernel_clock_MHz=0.5)
    assert m.kernel_clock_MHz == 0.5


@pytest.mark.parametrize("pattern", ["sequential", "random"])
def test_a_one_byte_transfer_still_pays_setup_latency_and_a_beat(mem, pattern):
    """The smallest transfer is not free: the DMA sets it up, the port moves one whole beat (a 512-bit port
    moves aligned 64-byte beats) and the data arrives after the read latency (the method's contract)."""
    one = mem.transfer_cycles(1, pattern=pattern, access_bytes=1)
    assert one >= mem.setup_cycles + mem.latency_cycles(pattern) + 1
    assert mem.moved_bytes(0, 1) == mem.kernel_port_bits // 8 == 64
    assert mem.transfer_cycles(0, pattern=pattern, access_bytes=1) == 0
