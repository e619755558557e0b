"""The HBM memory-system model: its table's rules, its held-out checks, and each component's effect.

Tolerances against held-out measurements are argued per test from the model's construction; every
other assertion is a direction or a bound that follows from the physics, not a number read back
from the code.
"""
import dataclasses
import math

import pytest
import yaml

from llmaccel.simulator.design import load_design
from llmaccel.simulator.memory_system import (DEFAULT_TABLE, MemorySystem, MemorySystemError, check_efficiency,
                                     load_hbm_measurements)
from llmaccel.simulator.specs.device import load_device
from llmaccel.simulator import isa
from llmaccel.simulator.timing_costs import costs


def cycles(ins, hw, core=0):
    return costs(ins, core, 0, hw).cycles
from llmaccel.simulator.timing_params import TimingParamsError, hw_from_design
from llmaccel.errors import LlmaccelError


@pytest.fixture(scope="module")
def mem() -> MemorySystem:
    return MemorySystem.from_table()


def _table_with(tmp_path, edit):
    data = yaml.safe_load(DEFAULT_TABLE.read_text())
    edit(data)
    p = tmp_path / "table.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


# ---------------------------------------------------------------- the table and its rules
def test_every_row_has_a_source_and_both_uses_exist():
    rows = load_hbm_measurements()
    assert all(r.source.strip() for r in rows)
    assert {r.use for r in rows} == {"model", "check"}
    assert all(r.measured_GBps > 0 and r.access_bytes > 0 for r in rows)


def test_row_without_source_is_one_error_naming_the_field(tmp_path):
    p = _table_with(tmp_path, lambda d: d["measurements"][3].pop("source"))
    with pytest.raises(MemorySystemError, match=r"measurements\[3\]\.source is missing"):
        load_hbm_measurements(p)


@pytest.mark.parametrize("field,value,msg", [("measured_GBps", -1.0, "finite number > 0"),
                                             ("measured_GBps", float("nan"), "finite number > 0"),
                                             ("pattern", "zigzag", "allowed: sequential, strided, random"),
                                             ("access_bytes", 0, "positive integer"),
                                             ("use", "fit", "allowed: model, check")])
def test_bad_row_values_are_one_error_naming_the_field(tmp_path, field, value, msg):
    p = _table_with(tmp_path, lambda d: d["measurements"][0].update({field: value}))
    with pytest.raises(MemorySystemError, match=rf"measurements\[0\]\.{field}.*{msg}"):
        load_hbm_measurements(p)


def test_an_efficiency_outside_0_1_is_an_error(tmp_path):
    # a one-channel model row faster than the pseudo channel's peak is an efficiency above 1
    p = _table_with(tmp_path, lambda d: d["measurements"][0].update({"measured_GBps": 20.0}))
    with pytest.raises(MemorySystemError, match=r"outside \(0, 1\]"):
        MemorySystem.from_table(path=p)
    for bad in (0.0, 1.5, -0.1, float("inf")):
        with pytest.raises(MemorySystemError, match=r"outside \(0, 1\]"):
            check_efficiency("x", bad)
    assert check_efficiency("x", 1.0) == 1.0


def test_check_rows_are_not_read_by_the_model(tmp_path):
    # changing a held-out row must not change the model: validation against it is not circular
    def edit(d):
        for r in d["measurements"]:
            if r.get("use") == "check":
                r["measured_GBps"] = r["measured_GBps"] * 0.5
    a = MemorySystem.from_table()
    b = MemorySystem.from_table(path=_table_with(tmp_path, edit))
    q = dict(pattern="sequential", access_bytes=1024, channels=32)
    assert a.bandwidth_GBps(**q) == b.bandwidth_GBps(**q)
    assert a.bandwidth_GBps(pattern="random", access_bytes=256, channels=4, crosses_switch=True) == \
        b.bandwidth_GBps(pattern="random", access_bytes=256, channels=4, crosses_switch=True)


# ---------------------------------------------------------------- held-out measurements
@pytest.mark.parametrize("row", [r for r in load_hbm_measurements() if r.use == "check"], ids=lambda r: r.label)
def test_model_predicts_held_out_rows(mem, row):
    got = mem.bandwidth_GBps(pattern=row.pattern, access_bytes=row.access_bytes, channels=row.channels,
                             masters_per_channel=row.masters_per_channel, crosses_switch=row.crosses_switch)
    # Sequential aggregates: the model is 13.1 GB/s per channel from the one-channel rows, the held-out
    # aggregates are 12.9-13.3 per channel (different boards, buffer placements): 3 % covers that spread.
    # Random through the switch at 4 channels is predicted from the 2-channel rows by the single-ID drain
    # argument; its error grows with transaction size (the drain is not exactly size-proportional): 10 %.
    tol = 0.03 if row.pattern == "sequential" else 0.10
    assert got == pytest.approx(row.measured_GBps, rel=tol)


# ---------------------------------------------------------------- components
def test_efficiency_interpolates_monotonically_between_rows(mem):
    sizes = [64, 80, 96, 128, 200, 256, 400, 512, 1024]
    e = [mem.efficiency("random", a) for a in sizes]
    assert all(x <= y for x, y in zip(e, e[1:]))
    lo, hi = mem.efficiency("random", 64), mem.efficiency("random", 128)
    assert lo < mem.efficiency("random", 90) < hi
    # below the smallest measured size the per-access cost dominates: 32 B random is worse than 64 B
    assert mem.efficiency("random", 32) < lo
    assert all(0 < x <= 1 for x in e)


def test_random_small_accesses_are_slower_than_sequential(mem):
    seq = mem.bandwidth_GBps(pattern="sequential", access_bytes=1024)
    rnd = mem.bandwidth_GBps(pattern="random", access_bytes=64)
    assert rnd < 0.5 * seq


def test_kernel_port_width_and_clock_cap_the_channel():
    wide = MemorySystem.from_table(kernel_port_bits=512, kernel_clock_MHz=225.0)
    narrow = MemorySystem.from_table(kernel_port_bits=256, kernel_clock_MHz=225.0)
    assert narrow.ceiling_GBps == pytest.approx(256 / 8 * 225e6 / 1e9)          # 7.2 GB/s
    assert narrow.bandwidth_GBps(pattern="sequential", access_bytes=1024) <= 7.2 + 1e-9
    assert wide.bandwidth_GBps(pattern="sequential", access_bytes=1024) > \
        1.7 * narrow.bandwidth_GBps(pattern="sequential", access_bytes=1024)
    # the HBM side: 256 bits at 225 MHz also caps a 512-bit kernel port
    slow_axi = MemorySystem.from_table(kernel_port_bits=512, kernel_clock_MHz=225.0, hbm_clock_MHz=225.0)
    assert slow_axi.ceiling_GBps == pytest.approx(7.2)


def test_ports_the_hbm_cannot_take_are_errors():
    with pytest.raises(MemorySystemError, match=r"hbm_clock_MHz=500.*allowed \(0, 450\] MHz"):
        MemorySystem.from_table(hbm_clock_MHz=500)
    with pytest.raises(MemorySystemError, match=r"hbm_port_bits=384.*32, 64, 128, 256, 512"):
        MemorySystem.from_table(kernel_port_bits=384)
    with pytest.raises(MemorySystemError, match=r"hbm_max_burst_beats=128.*allowed 1\.\.64"):
        MemorySystem.from_table(max_burst_beats=128)          # 128 x 64 B would cross 4 KB


def test_outstanding_transactions_bound_bandwidth():
    bws = [MemorySystem.from_table(read_outstanding=n).bandwidth_GBps(pattern="sequential", access_bytes=1024)
           for n in (1, 2, 16, 64)]
    assert all(a <= b for a, b in zip(bws, bws[1:]))
    # one transaction in flight: at most one 1 KB burst per round trip, and the round trip is at least
    # the page-hit latency Shuhai measured (106.7 ns) -> below 9.6 GB/s
    assert bws[0] < 1024 / 106.7


def test_read_latency_is_page_hit_for_sequential_and_miss_for_random(mem):
    assert 100 < mem.read_latency_ns("sequential") < mem.read_latency_ns("random") < 300
    assert mem.latency_cycles("sequential") == math.ceil(mem.read_latency_ns("sequential") * 0.225)


def test_switch_crossing_costs_bandwidth(mem):
    own = mem.bandwidth_GBps(pattern="sequential", access_bytes=1024, channels=2)
    lateral = mem.bandwidth_GBps(pattern="sequential", access_bytes=1024, channels=2, crosses_switch=True)
    assert lateral == pytest.approx(0.5 * own)        # PG276: lateral access at most half the bandwidth
    assert mem.bandwidth_GBps(pattern="random", access_bytes=64, channels=2, crosses_switch=True) < \
        mem.bandwidth_GBps(pattern="random", access_bytes=64, channels=1)


def test_refresh_rate_multiplier_lowers_bandwidth():
    a = MemorySystem.from_table()
    b = MemorySystem.from_table(refresh_multiplier=2.0)     # temperature-controlled 2x refresh
    assert b.bandwidth_GBps(pattern="sequential", access_bytes=1024) < a.bandwidth_GBps(pattern="sequential",
                                                                                         access_bytes=1024)


def test_unaligned_runs_move_whole_beats(mem):
    assert mem.beat_bytes == 64
    assert mem.moved_bytes(0, 128) == 128
    assert mem.moved_bytes(132, 132) == 192      # bytes 132..263 touch beats 2, 3, 4
    assert mem.moved_bytes(60, 8) == 128         # 8 bytes across a beat boundary: two beats
    assert mem.transactions(0, 4096) == 4        # 16-beat bursts of 64 B
    assert MemorySystem.from_table(max_burst_beats=64).transactions(2048, 4096) == 2   # split at 4 KB


def test_transfer_cycles_include_setup_and_latency(mem):
    t = mem.transfer_cycles(1 << 20, pattern="sequential", access_bytes=1024, channel_count=8)
    stream = mem.occupancy_cycles(1 << 17, pattern="sequential", access_bytes=1024)
    assert t == stream + mem.setup_cycles + mem.latency_cycles("sequential")
    # 128 KiB per channel at <= 14.375 GB/s and 225 MHz is at least 2050 cycles
    assert stream >= (1 << 17) / (14.375e9 / 225e6)


# ---------------------------------------------------------------- used by LD/ST
def _hw(design="flightllm-u280", **changes):
    d = load_design(design)
    if changes:
        d = dataclasses.replace(d, **changes)
    return hw_from_design(d, load_device(d.device))


def test_ld_cost_follows_the_port_width():
    ld = isa.LD(kind="kv_cache", channel=0, rows=512, row_elems=124, length_lines=1024)     # 512 x 128 B = 64 KB
    assert cycles(ld, _hw(hbm_port_bits=256)) > 1.8 * cycles(ld, _hw(hbm_port_bits=512))


def test_unaligned_kv_rows_cost_more_than_aligned(mem):
    hw = _hw()
    # 128 B at a beat boundary is two 64-byte beats; 32 bytes further it touches three
    aligned = isa.LD(kind="kv_cache", channel=0, rows=1, row_elems=124, length_lines=2)
    unaligned = dataclasses.replace(aligned, src_byte_offset=32, length_lines=3)
    assert cycles(unaligned, hw) > cycles(aligned, hw)


def test_ld_to_another_cores_channel_crosses_the_switch():
    hw = _hw()
    own = isa.LD(kind="kv_cache", channel=1, rows=256, row_elems=124, length_lines=512)   # 32 KB
    other = dataclasses.replace(own, channel=hw.channels_per_core + 1)    # core 1's channel, read by core 0
    assert cycles(other, hw) > 1.8 * cycles(own, hw)


def test_design_with_a_port_the_hbm_cannot_take_fails_with_the_field():
    with pytest.raises(LlmaccelError, match=r"hbm_clock_MHz=600"):
        _hw(hbm_clock_MHz=600.0)
    with pytest.raises(LlmaccelError, match=r"hbm_port_bits=1024"):
        _hw(hbm_port_bits=1024)


def test_instructions_in_ddr_need_a_device_with_ddr():
    with pytest.raises(TimingParamsError, match=r"instruction_memory='ddr'.*has no DDR"):
        _hw("flightllm-u55c", instruction_memory="ddr")
    ddr, onchip = _hw(instruction_memory="ddr"), _hw(instruction_memory="on_chip")
    assert ddr.ifetch_latency_cycles > onchip.ifetch_latency_cycles
    assert ddr.ifetch_bytes_per_cycle < onchip.ifetch_bytes_per_cycle


def test_device_without_a_channel_count_uses_the_designs_channels_for_the_peak():
    # the VHK158 spec gives only total_GBps (819.2) and no pseudo-channel count; the design's 32 channels
    # split it (25.6 GB/s each) and the HBM-side port (256 b x 500 MHz = 16 GB/s) is then the ceiling
    hw = _hw("flightllm-vhk158")
    assert hw.mem.channel_peak_GBps == pytest.approx(819.2 / 32)
    assert hw.mem.ceiling_GBps == pytest.approx(16.0)
    assert hw.hbm_channel_GBps == pytest.approx(16.0)
