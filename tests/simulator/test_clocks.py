"""Clock checks: a design clock above the device's datasheet Fmax is one error that names the limit."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from llmaccel.cli import main
from llmaccel.mapping.sim_api import build_compiler
from llmaccel.simulator.clocks import ClockLimitError, check_clocks, clock_report
from llmaccel.simulator.design import load_design
from llmaccel.simulator.resources import DesignFitError, fit_check
from llmaccel.simulator.specs.device import load_device

HARDWARE_YAML = Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "hardware.yaml"  # ../shared of the repository
TINY = Path(__file__).resolve().parent / "data" / "tiny-u280.yaml"


def _u280_at(mhz: float):
    return dataclasses.replace(load_design("flightllm-u280"), clock_MHz=mhz)


def test_u280_dsp_fmax_is_the_ds923_figure():
    """The U280 limit is DS923's fully pipelined DSP48E2 Fmax at -2 / 0.85 V, with its source."""
    u280 = load_device("alveo-u280")
    assert u280.clock.dsp_fmax_MHz == 775
    assert "DS923" in u280.clock.source_of("dsp_fmax_MHz")
    assert u280.clock.hbm_axi_fmax_MHz == 450 and "PG276" in u280.clock.source_of("hbm_axi_fmax_MHz")
    assert u280.clock.source_of("bram_fmax_MHz") == "not found"


def test_fmax_agrees_with_hardware_anchors():
    a = yaml.safe_load(HARDWARE_YAML.read_text())
    ds923 = a["clocks"]["dsp48e2_fmax_MHz"]["all_registers"]["vccint_0.85V_speed_-2"]
    assert load_device("alveo-u280").clock.dsp_fmax_MHz == ds923
    assert load_device("alveo-u55c").clock.dsp_fmax_MHz == ds923
    assert load_device("versal-vhk158").clock.dsp_fmax_MHz == a["fpga"]["versal_vhk158"]["dsp58_fmax_MHz"][
        "speed_grade_-2"]
    assert load_device("alveo-u280").clock.hbm_axi_fmax_MHz == a["memory_system"]["hbm_axi_ports"][
        "axi_clock_to_match_hbm_MHz"]


def test_900_MHz_u280_design_is_rejected_naming_the_limit():
    with pytest.raises(ClockLimitError) as exc:
        check_clocks(_u280_at(900), load_device("alveo-u280"))
    msg = str(exc.value)
    assert "clock_MHz" in msg and "900" in msg and "775" in msg and "DS923" in msg


def test_limit_is_inclusive_and_exact():
    dev = load_device("alveo-u280")
    assert check_clocks(_u280_at(775), dev).problems == []
    with pytest.raises(ClockLimitError, match="775"):
        check_clocks(_u280_at(775.5), dev)


def test_fit_check_refuses_an_overclocked_design_and_lists_unknown_limits():
    dev = load_device("alveo-u280")
    report = fit_check(load_design("flightllm-u280"), dev)
    assert any("block RAM Fmax not found" in u for u in report.unchecked)
    with pytest.raises(DesignFitError, match="above the DSP Fmax"):
        fit_check(_u280_at(900), dev)


def test_simulate_path_rejects_overclock_before_compiling():
    with pytest.raises(DesignFitError, match="775"):
        build_compiler("llama2-7b", _u280_at(900), "flightllm")


def test_cli_simulate_at_900_MHz_exits_2_naming_the_limit(tmp_path, capsys):
    d = yaml.safe_load(TINY.read_text())
    d["clock_MHz"] = 900
    p = tmp_path / "fast.yaml"
    p.write_text(yaml.safe_dump(d))
    rc = main(["simulate", "--json", "--model", "tiny", "--design", str(p), "--recipe", "w4-g128-rtn",
               "--prefill", "8", "--decode", "1", "--max-len", "256"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 2
    assert "clock_MHz" in out["error"] and "775" in out["error"] and "DS923" in out["error"]


def test_vhk158_limit_is_ds960():
    rep = clock_report(load_design("flightllm-vhk158"), load_device("versal-vhk158"))
    dsp = [c for c in rep.checks if c.limit == "dsp_fmax_MHz"][0]
    assert dsp.limit_MHz == 1070 and "DS960" in dsp.source and dsp.ok
    with pytest.raises(ClockLimitError, match="1070"):
        check_clocks(dataclasses.replace(load_design("flightllm-vhk158"), clock_MHz=1100), load_device("versal-vhk158"))


def test_hbm_side_clock_is_checked_against_pg276():
    """A design may run its HBM-side logic on its own clock; that clock is bound by the HBM AXI port Fmax."""
    dev = load_device("alveo-u280")
    d = dataclasses.replace(load_design("flightllm-u280"), hbm_clock_MHz=450)
    assert [c.limit for c in check_clocks(d, dev).checks if c.clock_field == "hbm_clock_MHz"] == ["hbm_axi_fmax_MHz"]
    with pytest.raises(ClockLimitError) as exc:
        check_clocks(dataclasses.replace(d, hbm_clock_MHz=500), dev)
    msg = str(exc.value)
    assert "hbm_clock_MHz" in msg and "450" in msg and "PG276" in msg and "field 'clock_MHz'" not in msg
    # Versal HBM: DS960's AXI clock limit (500 MHz at -2, 0.80 V)
    v = dataclasses.replace(load_design("flightllm-vhk158"), hbm_clock_MHz=520)
    with pytest.raises(ClockLimitError, match="500"):
        check_clocks(v, load_device("versal-vhk158"))
