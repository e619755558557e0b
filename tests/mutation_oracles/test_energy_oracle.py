"""Every energy term of simulator.power against a hand computation on round numbers.

The model is built field by field (no YAML, no design), so every number below is worked out on
paper from the formulas in simulator/power.py's docstring (UG440 method):
    dsp   = DSP x activity x cycles x pJ/cycle x toggle
    logic = (LUT x fJ/LUT + FF x fJ/FF) x toggle x activity x cycles
    clock = all FFs x cycles x fJ/FF/cycle
    bram/uram = buffer bytes / 9 (72-bit port words) x share x pJ/access
    hbm   = bytes x 8 x pJ/bit;  channels = enabled channels x W x seconds;  static = idle sum x seconds
"""
from __future__ import annotations

import pytest

from llmaccel.simulator.power import (BOARD_COEFFICIENTS, FABRIC_COEFFICIENTS, ActivityLine, BoardPowerCoefficients,
                             Coefficient, PowerModel)
from llmaccel.simulator.timing import Work

FAB = {"reference_vccint_V": 0.8, "dsp_pJ_per_cycle_full_toggle": 4.0, "dsp_toggle": 0.5,
       "logic_fJ_per_lut_toggle": 10.0, "logic_fJ_per_ff_toggle": 5.0, "logic_toggle": 0.25,
       "clock_fJ_per_ff_cycle": 2.0, "bram36_pJ_per_access": 20.0, "uram_pJ_per_access": 40.0,
       "hbm_pJ_per_bit": 3.0, "hbm_W_per_enabled_pseudo_channel": 0.1}
BOARD = {"idle_W": 10.0, "die_static_extra_W": 1.0, "ddr_idle_W": 2.0}


def _model(vccint=None) -> PowerModel:
    assert set(FAB) == set(FABRIC_COEFFICIENTS) and set(BOARD) == set(BOARD_COEFFICIENTS)
    coeff = BoardPowerCoefficients("board", "fabric", {k: Coefficient(v, "test") for k, v in FAB.items()},
                                   {k: Coefficient(v, "test") for k, v in BOARD.items()}, "<test>")
    lines = (ActivityLine("dsp_chain", ("MPE",), LUT=1000, FF=2000, DSP=100),
             ActivityLine("control", (), LUT=500, FF=400, DSP=0),
             ActivityLine("hbm_port", ("LD", "ST"), LUT=200, FF=100, DSP=10))
    return PowerModel("d", "board", clock_hz=100e6, cores=2, hbm_channels=4, lines=lines, ff_total=2500.0,
                      uram_traffic_share=0.25, coefficients=coeff, vccint_V=vccint)


def _work() -> Work:
    cyc = 5e7                      # 0.5 s at 100 MHz
    # busy cycles summed over 2 cores: MPE 60 %, LD 50 % + ST 70 % (their port saturates at 100 %)
    return Work(cycles=cyc, busy={"MPE": 0.6 * 2 * cyc, "LD": 0.5 * 2 * cyc, "ST": 0.7 * 2 * cyc},
                buffer_bytes=9e9, hbm_read_bytes=1e9, hbm_write_bytes=0.25e9)


HAND = {
    # 100 DSP x 0.6 x 5e7 x 4 pJ x 0.5 = 6e-3 J; 10 DSP x 1.0 (LD+ST capped) x 5e7 x 4 pJ x 0.5 = 1e-3 J
    "dsp": 7e-3,
    # (1000x10 + 2000x5) fJ x 0.25 x 0.6 x 5e7 = 1.5e-4; (500x10 + 400x5) x 0.25 x 1 x 5e7 = 8.75e-5;
    # (200x10 + 100x5) x 0.25 x 1 x 5e7 = 3.125e-5
    "logic": 1.5e-4 + 8.75e-5 + 3.125e-5,
    "clock_tree": 2500 * 5e7 * 2e-15,          # 2.5e-4
    "bram": 1e9 * 0.75 * 20e-12,               # 9e9 B / 9 = 1e9 accesses; 0.015
    "uram": 1e9 * 0.25 * 40e-12,               # 0.01
    "hbm_traffic": 1.25e9 * 8 * 3e-12,         # 0.03
    "hbm_channels": 4 * 0.1 * 0.5,             # 0.2
}


def test_each_energy_term_equals_the_hand_computation():
    e = _model().phase(_work(), 0.5)
    assert set(e.dynamic_breakdown_J) == set(HAND)
    for k, v in HAND.items():
        assert e.dynamic_breakdown_J[k] == pytest.approx(v, rel=1e-12), k
    assert e.static_J == pytest.approx(13.0 * 0.5, rel=1e-12)
    assert e.dynamic_J == pytest.approx(sum(HAND.values()), rel=1e-12)
    assert e.total_J == pytest.approx(6.5 + sum(HAND.values()), rel=1e-12)
    assert e.power_W == pytest.approx((6.5 + sum(HAND.values())) / 0.5, rel=1e-12)
    assert e.power_breakdown_W["static"] == pytest.approx(13.0) and \
        e.power_breakdown_W["hbm_channels"] == pytest.approx(0.4)


def test_voltage_scales_fabric_terms_only():
    # VCCINT 0.4 V on a fabric characterised at 0.8 V: (0.4/0.8)^2 = 0.25 on the fabric's energies
    e = _model(vccint=0.4).phase(_work(), 0.5)
    for k in ("dsp", "logic", "clock_tree", "bram", "uram"):
        assert e.dynamic_breakdown_J[k] == pytest.approx(HAND[k] * 0.25, rel=1e-12), k
    for k in ("hbm_traffic", "hbm_channels"):
        assert e.dynamic_breakdown_J[k] == pytest.approx(HAND[k], rel=1e-12), k


def test_busy_fractions_are_per_core_cycle():
    assert _model().busy_fractions(_work()) == pytest.approx({"MPE": 0.6, "LD": 0.5, "ST": 0.7})
