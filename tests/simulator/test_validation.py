"""Validation registry: component measurements replayed through the simulator's own code, never circularly."""
from __future__ import annotations

import dataclasses

import pytest

from llmaccel.simulator.clocks import clock_report
from llmaccel.simulator.design import load_design
from llmaccel.simulator.memory_system import MemorySystem, load_hbm_measurements
from llmaccel.simulator.power import DEFAULT_POWER_YAML
from llmaccel.simulator.specs.device import load_device
from llmaccel.simulator.validation import REGISTRY, ValidationRow, run_validation
from llmaccel.errors import LlmaccelError

REQUIRED = ("hbm_bandwidth", "hbm_latency", "fmax", "power_idle", "power_dynamic")


@pytest.fixture(scope="module")
def report():
    return run_validation(list(REQUIRED))


def test_registry_covers_the_required_components(report):
    assert set(REQUIRED) <= set(REGISTRY)
    assert {r.component for r in report.rows} == set(REQUIRED)
    for r in report.rows:
        assert r.source and r.unit and r.kind in ("check", "bound", "not_checked", "end_to_end")


def test_hbm_rows_are_exactly_the_held_out_rows(report):
    """Only `use: check` rows are replayed: a model row in the table would make the check circular."""
    held_out = [m for m in load_hbm_measurements() if m.use == "check"]
    modelled = {(m.label, m.source) for m in load_hbm_measurements() if m.use == "model"}
    rows = [r for r in report.rows if r.component == "hbm_bandwidth"]
    assert len(rows) == len(held_out) >= 3
    assert [(r.name, r.source, r.measured) for r in rows] == [(m.label, m.source, m.measured_GBps) for m in held_out]
    assert not {(r.name, r.source) for r in rows} & modelled


def test_hbm_model_values_come_from_the_memory_system(report):
    """The model column is what MemorySystem gives for the measurement's setup, not a number of its own."""
    rows = {r.name: r for r in report.rows if r.component == "hbm_bandwidth"}
    for m in load_hbm_measurements():
        if m.use != "check":
            continue
        bits, mhz = (256, 450.0) if "Shuhai" in m.source else (512, 300.0)
        ms = MemorySystem.from_table(kernel_port_bits=bits, kernel_clock_MHz=mhz)
        want = ms.bandwidth_GBps(pattern=m.pattern, access_bytes=m.access_bytes, channels=m.channels,
                                 masters_per_channel=m.masters_per_channel, crosses_switch=m.crosses_switch)
        assert rows[m.label].model == pytest.approx(want)


def test_latency_is_reported_as_not_checked_rather_than_compared_with_its_own_input(report):
    (row,) = [r for r in report.rows if r.component == "hbm_latency"]
    assert row.kind == "not_checked" and row.measured is None and row.error is None
    assert row.model == pytest.approx(MemorySystem.from_table().read_latency_ns("sequential"))


def test_fmax_bounds_use_the_clock_model(report):
    rows = [r for r in report.rows if r.component == "fmax"]
    assert rows and all(r.kind == "bound" and r.holds for r in rows)
    lim = [c.limit_MHz for c in clock_report(load_design("flightllm-u280"), load_device("alveo-u280")).checks
           if c.limit_MHz is not None and c.clock_field == "clock_MHz"]   # the kernel clock's limits
    assert all(r.model == min(lim) for r in rows)
    over = dataclasses.replace(rows[0], measured=min(lim) + 1)
    assert over.holds is False


def test_error_arithmetic_and_ranges():
    r = ValidationRow("x", "n", "src", 100.0, 110.0, "W")
    assert r.error == pytest.approx(0.10)
    inside = ValidationRow("x", "n", "src", 37.0, 45.0, "W", "end_to_end", measured_high=60.0)
    below = ValidationRow("x", "n", "src", 37.0, 33.3, "W", "end_to_end", measured_high=60.0)
    above = ValidationRow("x", "n", "src", 37.0, 66.0, "W", "end_to_end", measured_high=60.0)
    assert inside.error == 0.0 and below.error == pytest.approx(-0.1) and above.error == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no source"):
        ValidationRow("x", "n", "", 1.0, 1.0, "W")


def test_power_rows_are_not_the_figures_the_model_was_built_from(report):
    text = DEFAULT_POWER_YAML.read_text()
    for r in report.rows:
        if r.component.startswith("power"):
            assert r.kind == "check"
    # the idle check's reading (XRT PR #3697) and the HBM check's xbtest figure are not in the coefficients
    assert "3697" not in text and "xbtest" not in text
    # and no published accelerator's running power sets a coefficient
    assert "FlexLLM" not in text and "37-60" not in text


def test_unknown_component_is_one_error():
    with pytest.raises(LlmaccelError, match="unknown validation component 'nope'.*hbm_bandwidth"):
        run_validation(["nope"])
