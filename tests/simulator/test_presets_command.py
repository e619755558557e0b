"""`llmaccel presets`: lists every bundled preset; --show gives numbers with sources."""
from __future__ import annotations

import json

import pytest

from llmaccel.cli import main
from llmaccel.simulator.design import list_designs
from llmaccel.simulator.specs import list_devices, list_models


def _run(capsys, *argv):
    rc = main(["presets", "--json", *argv])
    return rc, json.loads(capsys.readouterr().out)


def test_presets_json_lists_everything(capsys):
    rc, out = _run(capsys)
    assert rc == 0
    assert [r["name"] for r in out["devices"]] == list_devices()
    assert [r["name"] for r in out["models"]] == list_models()
    assert [r["name"] for r in out["designs"]] == list_designs()
    designs = {r["name"]: r for r in out["designs"]}
    assert designs["flightllm-u280"]["fits"] is True
    assert designs["flightllm-vhk158"]["fits"] is None  # VHK158 resource counts not found: not claimed to fit
    assert designs["flightllm-u280"]["resources"]["DSP"] > 0
    # the peak is in the engine's own datatype, from the design's counts: 4 cores x 56 chains x 16 DSPs x 2
    # INT8 MACs per DSP (AMD WP486's packing: two products share one operand) x 2 ops at 225 MHz;
    # DFX-style FP16: 4 cores x 16 chains x 32 FP16 MAC units x 2 ops at 200 MHz, and no INT8 figure
    assert designs["flightllm-u280"]["peak_TOPS"] == pytest.approx(4 * 56 * 16 * 2 * 2 * 225e6 / 1e12)
    assert designs["flightllm-u280"]["peak_int8_TOPS"] == designs["flightllm-u280"]["peak_TOPS"]
    assert designs["dfx-u280"]["mac_dtype"] == "fp16" and designs["dfx-u280"]["peak_int8_TOPS"] is None
    assert designs["dfx-u280"]["peak_TOPS"] == pytest.approx(4 * 16 * 32 * 2 * 200e6 / 1e12)


def test_presets_show_device_and_unknown(capsys):
    rc, out = _run(capsys, "--show", "alveo-u280")
    assert rc == 0 and out["kind"] == "device"
    assert out["facts"]["hbm.total_GBps"] == {"value": 460.0, "source": out["facts"]["hbm.capacity_GB"]["source"]}
    assert "DS923" in out["facts"]["clock.dsp_fmax_MHz"]["source"]
    rc, out = _run(capsys, "--show", "nope")
    assert rc == 2 and "is not a preset" in out["error"] and "flightllm-u280" in out["error"]
