"""`llmaccel presets`: lists every bundled preset; --show gives numbers with sources."""
from __future__ import annotations

import json

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


def test_presets_show_device_and_unknown(capsys):
    rc, out = _run(capsys, "--show", "alveo-u280")
    assert rc == 0 and out["kind"] == "device"
    assert out["facts"]["hbm.total_GBps"] == {"value": 460.0, "source": out["facts"]["hbm.capacity_GB"]["source"]}
    assert "DS923" in out["facts"]["clock.dsp_fmax_MHz"]["source"]
    rc, out = _run(capsys, "--show", "nope")
    assert rc == 2 and "is not a preset" in out["error"] and "flightllm-u280" in out["error"]
