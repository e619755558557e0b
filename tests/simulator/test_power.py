"""Power model: measured idle + dynamic power per resource and activity, every coefficient sourced."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from llmaccel.mapping.sim_api import simulate
from llmaccel.simulator.design import load_design
from llmaccel.simulator.power import (BOARD_COEFFICIENTS, DEFAULT_POWER_YAML, FABRIC_COEFFICIENTS, PowerModel,
                             load_power_coefficients)
from llmaccel.simulator.resources import resource_usage
from llmaccel.simulator.specs._yaml import SpecError
from llmaccel.simulator.specs.device import load_device
from llmaccel.simulator.timing import Work

TINY = str(Path(__file__).resolve().parent / "data" / "tiny-u280.yaml")
U280_BOARD_MAX_W = 225.0   # hardware.yaml fpga.alveo_u280.board_max_power_W (xbutil-reported limit)


def _model(design="flightllm-u280", device="alveo-u280", **changes) -> PowerModel:
    d = load_design(design)
    if changes:
        d = dataclasses.replace(d, **changes)
    return PowerModel.build(d, load_device(device))


def _work(cycles: float, busy: dict[str, float], cores: int, **counts) -> Work:
    """A phase in which each unit is busy the given fraction of the time on every core."""
    return Work(cycles=cycles, busy={u: f * cores * cycles for u, f in busy.items()}, **counts)


def test_every_coefficient_has_a_source_and_estimates_say_so():
    data = yaml.safe_load(DEFAULT_POWER_YAML.read_text())
    for fabric, block in data["fabrics"].items():
        assert set(block) == set(FABRIC_COEFFICIENTS), fabric
    for dev in ("alveo-u280", "alveo-u55c", "versal-vhk158"):
        pc = load_power_coefficients(dev)
        for key, src in pc.sources.items():
            assert len(src) > 15, (dev, key)
    u280 = load_power_coefficients("alveo-u280")
    # no 45 nm ASIC figure is used as an FPGA energy: per-resource energies are labelled FPGA estimates
    for key in ("dsp_pJ_per_cycle_full_toggle", "logic_fJ_per_lut_toggle", "clock_fJ_per_ff_cycle",
                "bram36_pJ_per_access", "uram_pJ_per_access"):
        assert u280.get(key).source.startswith("estimate"), key
    assert "UG440" in u280.get("dsp_toggle").source and "UG440" in u280.get("logic_toggle").source


def test_static_power_is_a_measured_idle_reading_not_running_power():
    pc = load_power_coefficients("alveo-u280")
    idle = pc.get("idle_W")
    # the xbutil reading quoted in the source (Xilinx/XRT PR #5184, Alveo U50 at idle): 12 V and 3.3 V PCIe rails
    assert idle.value == pytest.approx(12.213 * 1.363 + 3.300 * 0.223, abs=0.05)
    assert "5184" in idle.source and "idle" in idle.source
    assert "37" not in idle.source          # not the FlexLLM running range the old model used
    assert pc.static_W == pytest.approx(sum(pc.get(k).value for k in BOARD_COEFFICIENTS))
    assert pc.static_W < 37.0


@pytest.mark.parametrize("yaml_text,match", [
    ("idle_W: {value: 17.4}", "no source"),
    ("idle_W: {value: 17.4, source: ''}", "no source"),
    ("idle_W: 17.4", "must be a mapping"),
    ("idle_W: {value: -1, source: x}", ">= 0"),
])
def test_bad_board_coefficient_is_one_error_naming_the_field(tmp_path, yaml_text, match):
    data = yaml.safe_load(DEFAULT_POWER_YAML.read_text())
    key, val = yaml_text.split(":", 1)
    data["boards"]["alveo-u280"][key] = yaml.safe_load(val)
    p = tmp_path / "power.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=match) as exc:
        load_power_coefficients("alveo-u280", p)
    assert "boards.alveo-u280.idle_W" in str(exc.value)


def test_fabric_coefficient_without_source_and_toggle_above_one_are_rejected(tmp_path):
    data = yaml.safe_load(DEFAULT_POWER_YAML.read_text())
    del data["fabrics"]["ultrascale_plus"]["hbm_pJ_per_bit"]["source"]
    p = tmp_path / "power.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=r"ultrascale_plus\.hbm_pJ_per_bit.*no source"):
        load_power_coefficients("alveo-u280", p)
    data = yaml.safe_load(DEFAULT_POWER_YAML.read_text())
    data["fabrics"]["ultrascale_plus"]["logic_toggle"]["value"] = 12.5
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="logic_toggle.*toggle rate"):
        load_power_coefficients("alveo-u280", p)


def test_idle_design_draws_static_clock_tree_and_channel_power_only():
    pm = _model()
    e = pm.phase(_work(225e6, {}, 4), 1.0)
    b = e.dynamic_breakdown_J
    assert b["dsp"] == 0 and b["logic"] > 0 and b["hbm_traffic"] == 0 and b["bram"] == 0 and b["uram"] == 0
    assert b["clock_tree"] > 0 and b["hbm_channels"] > 0
    assert e.static_J == pytest.approx(pm.static_W)


def test_power_scales_with_activity_resources_and_clock():
    busy = {"MPE": 0.7, "LD": 0.9, "SFU": 0.05}
    d = load_design("flightllm-u280")
    d_half = dataclasses.replace(d, matrix_engine=dataclasses.replace(d.matrix_engine, chains_per_core=28))
    full, half = _model(), PowerModel.build(d_half, load_device("alveo-u280"))
    # same busy fractions, same time: the matrix engine's DSP power in proportion to its DSPs
    w = _work(225e6, {"MPE": 0.7}, 4)
    ratio = half.phase(w, 1.0).dynamic_breakdown_J["dsp"] / full.phase(w, 1.0).dynamic_breakdown_J["dsp"]
    assert ratio == pytest.approx(resource_usage(d_half).lines[0].total("DSP") / resource_usage(d).lines[0].total("DSP"))
    assert ratio == pytest.approx(0.5)
    w = _work(225e6, busy, 4, hbm_read_bytes=300e9, buffer_bytes=1e12)
    # the MPE twice as busy (SFU idle, so only the matrix engine's DSPs count): twice the DSP energy
    w1, w2 = _work(225e6, {"MPE": 0.7}, 4), _work(225e6, {"MPE": 0.35}, 4)
    assert full.phase(w1, 1.0).dynamic_breakdown_J["dsp"] == pytest.approx(
        2 * full.phase(w2, 1.0).dynamic_breakdown_J["dsp"])
    # a faster clock over the same second: every per-cycle component grows in proportion
    fast = _model(clock_MHz=450)
    wf = _work(450e6, busy, 4, hbm_read_bytes=300e9, buffer_bytes=1e12)
    for k in ("dsp", "logic", "clock_tree"):
        assert fast.phase(wf, 1.0).dynamic_breakdown_J[k] == pytest.approx(2 * full.phase(w, 1.0).dynamic_breakdown_J[k])
    # HBM energy follows the bytes moved
    w3 = _work(225e6, busy, 4, hbm_read_bytes=600e9, buffer_bytes=1e12)
    assert full.phase(w3, 1.0).dynamic_breakdown_J["hbm_traffic"] == pytest.approx(
        2 * full.phase(w, 1.0).dynamic_breakdown_J["hbm_traffic"])


def test_fewer_hbm_channels_draw_less_channel_power():
    few = _model("tests/simulator/data/tiny-u280.yaml")
    many = _model()
    w = _work(225e6, {}, 1)
    assert few.phase(w, 1.0).dynamic_breakdown_J["hbm_channels"] < many.phase(w, 1.0).dynamic_breakdown_J["hbm_channels"]


def test_simulated_u280_power_is_between_idle_and_board_limit_and_consistent():
    r = simulate("llama2-7b", "flightllm-u280", "flightllm", prefill=128, decode=32, check_fit=False)
    assert r.static_power_W < r.power_W < U280_BOARD_MAX_W
    assert r.tokens_per_J == pytest.approx(32 / (r.power_W * r.decode_s))
    assert set(r.energy_breakdown_decode_J) == {"dsp", "logic", "clock_tree", "bram", "uram", "hbm_traffic",
                                                "hbm_channels"}
    assert r.energy_breakdown_prefill_J["dsp"] / r.prefill_s > r.energy_breakdown_decode_J["dsp"] / r.decode_s, \
        "prefill keeps the MPE busier than decode, so its DSP power is higher"


def test_power_moves_with_the_design_on_the_simulator():
    """Two designs differing in clock: the faster one draws more power (clock tree, logic, DSP per second)."""
    slow = simulate("tiny", TINY, "w4-g128-rtn", prefill=16, decode=8, max_len=256, check_fit=False)
    d = load_design(TINY)
    fast = simulate("tiny", dataclasses.replace(d, clock_MHz=450), "w4-g128-rtn", prefill=16, decode=8,
                    max_len=256, check_fit=False)
    assert fast.power_W > slow.power_W
    assert fast.energy_breakdown_decode_J["clock_tree"] / fast.decode_s > \
        1.9 * slow.energy_breakdown_decode_J["clock_tree"] / slow.decode_s


def test_unknown_power_coefficients_report_none_with_reason():
    r = simulate("llama2-13b", "flightllm-vhk158", "w4-g128-rtn", prefill=128, decode=16, check_fit=False)
    assert r.power_W is None and r.tokens_per_J is None
    assert any("not found" in n and "idle_W" in n for n in r.notes)


def test_fabric_energies_scale_with_vccint_squared():
    """The same design on a board run at 0.72 V (DS923's low-voltage -2L mode) draws (0.72/0.85)^2 of the
    fabric's dynamic energy; HBM energy is on its own supplies and does not change."""
    d, dev = load_design("flightllm-u280"), load_device("alveo-u280")
    low = dataclasses.replace(dev, clock=dataclasses.replace(dev.clock, vccint_V=0.72))
    w = _work(225e6, {"MPE": 0.7, "LD": 0.9}, 4, hbm_read_bytes=300e9, buffer_bytes=1e12)
    a = PowerModel.build(d, dev).phase(w, 1.0).dynamic_breakdown_J
    b = PowerModel.build(d, low).phase(w, 1.0).dynamic_breakdown_J
    for k in ("dsp", "logic", "clock_tree", "bram", "uram"):
        assert b[k] == pytest.approx(a[k] * (0.72 / 0.85) ** 2), k
    assert b["hbm_traffic"] == a["hbm_traffic"] and b["hbm_channels"] == a["hbm_channels"]
