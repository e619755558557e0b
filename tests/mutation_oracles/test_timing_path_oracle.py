"""Oracles for the timing path's counters and the power table's fraction bound (issue 15 survivors).

Expected values are hand computations from the documented definitions, never values read from the code.
"""
from __future__ import annotations

import pytest

from simulator.isa import UNITS
from simulator.power import _coefficient
from simulator.specs._yaml import SpecError
from simulator.timing import _work
from simulator.timing_engine import TimedOp, run

LD = UNITS.index("LD")


def test_buffer_traffic_is_each_decoded_weight_and_each_read_byte_written_once_and_read_once():
    # one LD: 40 bytes from HBM, 100 INT8 weights decoded into the weight buffer. The model (simulator.timing:
    # "every decoded weight written once and read once ..., every KV byte written once and read once") gives
    # 2 * 100 + 2 * 40 = 280 bytes of on-chip buffer traffic.
    ops = [TimedOp(0, LD, 10, hbm_read_bytes=40, buf_bytes=100, channel=0)]
    w = _work(ops, run(ops, 1), hw=None)
    assert (w.decoded_weights, w.hbm_read_bytes) == (100, 40)
    assert w.buffer_bytes == 280


def test_a_toggle_rate_of_exactly_one_is_allowed_and_above_one_is_an_error():
    # a toggle rate is a fraction of cycles: 0 <= value <= 1, so 1 (toggling every cycle) is valid
    c = _coefficient({"dsp_toggle": {"value": 1, "source": "hand"}}, "dsp_toggle", "t", fraction=True)
    assert c.value == 1.0
    with pytest.raises(SpecError, match="toggle rate"):
        _coefficient({"dsp_toggle": {"value": 1.01, "source": "hand"}}, "dsp_toggle", "t", fraction=True)
