"""Energy model: every constant has a source; power and tokens/J follow from counted events."""
import pytest

from mapping.sim_api import simulate
from simulator.energy import load_energy, phase_energy
from simulator.specs._yaml import SpecError
from simulator.timing import Work


def test_every_constant_names_its_source():
    ec = load_energy("alveo-u280")
    for key in ("int8_mac_pJ", "decode_weight_pJ", "sfu_elem_phase_pJ", "buffer_pJ_per_byte", "hbm_pJ_per_bit",
                "static_W"):
        assert ec.sources[key] and len(ec.sources[key]) > 10, key
    assert "Horowitz" in ec.sources["int8_mac_pJ"] and "hardware.yaml" in ec.sources["static_W"]


def test_phase_energy_is_static_plus_counted_events():
    ec = load_energy("alveo-u280")
    w = Work(cycles=1, hbm_read_bytes=1e9, macs=2e12, sfu_elems=1e6, decoded_weights=1e9, buffer_bytes=4e9)
    e = phase_energy(w, 0.5, ec)
    hbm_J = 1e9 * 8 * ec.hbm_pJ_per_bit * 1e-12
    mac_J = 2e12 * ec.int8_mac_pJ * 1e-12
    assert e.dynamic_breakdown_J["hbm"] == pytest.approx(hbm_J)
    assert e.dynamic_breakdown_J["dsp_mac"] == pytest.approx(mac_J)
    assert e.static_J == pytest.approx(0.5 * ec.static_W)
    assert e.power_W == pytest.approx((e.static_J + e.dynamic_J) / 0.5)


def test_simulated_power_between_static_and_board_limit_and_tokens_per_J_consistent():
    r = simulate("llama2-7b", "flightllm-u280", "flightllm", prefill=128, decode=32, check_fit=False)
    static = load_energy("alveo-u280").static_W
    assert static < r.power_W < 225.0       # U280 board limit (hardware.yaml)
    decode_J = r.power_W * r.decode_s
    assert r.tokens_per_J == pytest.approx(32 / decode_J)


def test_unknown_static_power_reports_none_with_reason():
    r = simulate("llama2-7b", "flightllm-vhk158", "w4-g128-rtn", prefill=128, decode=16, check_fit=False)
    assert r.power_W is None and r.tokens_per_J is None
    assert any("static" in n or "not found" in n for n in r.notes)


def test_constant_without_source_is_rejected(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("ops:\n  int8_mac_pJ: {value: 0.3}\n")
    with pytest.raises(SpecError, match="int8_mac_pJ"):
        load_energy("alveo-u280", p)
