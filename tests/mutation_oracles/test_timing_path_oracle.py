"""Oracles for the timing path's counters and the power table's fraction bound (issue 15 survivors).

Expected values are hand computations from the documented definitions, never values read from the code.
"""
from __future__ import annotations

import pytest

from llmaccel.simulator.isa import UNITS
from llmaccel.simulator.power import _coefficient
from llmaccel.simulator.specs._yaml import SpecError
from llmaccel.simulator.timing import _work
from llmaccel.simulator.timing_engine import TimedOp, run

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


def test_the_time_breakdown_counts_core_0_only():
    # core 0: one MPE op of 10 cycles (compute); core 1: an SFU op of 20 cycles. time_breakdown's window is
    # core 0's: [0, 20) holds 10 cycles of compute and 10 idle; core 1's SFU is not core 0's time.
    from llmaccel.simulator.timing import CAT, time_breakdown
    mpe, sfu = UNITS.index("MPE"), UNITS.index("SFU")
    ops = [TimedOp(0, mpe, 10, cat=CAT["compute"]), TimedOp(1, sfu, 20, cat=CAT["sfu"])]
    sch = run(ops, 2)
    out = time_breakdown(ops, sch, 0, 20)
    assert (out["compute"], out["sfu"], out["idle"]) == (10.0, 0.0, 10.0)


def test_a_program_starts_with_one_all_gather_token_for_its_first_rmsnorm():
    # initial_tokens: "the previous layer's all-gather (SYS -> SFU) that the first RMSNorm waits on": one token.
    # SFU#1 takes it at 0; SFU#2 must wait for this program's own SYS (ends at 30), not start at SFU#1's end (5).
    from types import SimpleNamespace
    from llmaccel.simulator.timing import initial_tokens
    sfu, sys_ = UNITS.index("SFU"), UNITS.index("SYS")
    b_sys, b_sfu = 1 << sys_, 1 << sfu
    ops = [TimedOp(0, sfu, 5, wait=b_sys, name="rmsnorm0"), TimedOp(0, sys_, 30, release=b_sfu, name="gather"),
           TimedOp(0, sfu, 5, wait=b_sys, name="rmsnorm1")]
    init = {k: v for k, v in initial_tokens(SimpleNamespace(n_cores=1)).items() if k[1] != UNITS.index("MPE")}
    sch = run(ops, 1, initial_tokens=init)
    assert sch.start[0] == 0
    assert sch.start[2] >= sch.end[1] == 30


def test_a_kv_cache_transfer_starts_at_its_line_plus_its_byte_offset():
    # ISA: a kv_cache LD's rows start at byte src_byte_offset of line src_addr_lines (64-byte lines), so the
    # channel-local byte address is 3 * 64 + 40 = 232; two rows of 64 INT8 + 4 scale bytes are 136 bytes
    from llmaccel.simulator import isa
    from llmaccel.simulator.timing_costs import transfer
    ld = isa.LD(channel=0, dst_buffer=0, kind="kv_cache", src_addr_lines=3, src_byte_offset=40, rows=2,
                row_elems=64, length_lines=3)
    assert transfer(ld) == (232, 136)
