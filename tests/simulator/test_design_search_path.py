"""Designs are found on a preset search path: bundled presets, $LLMACCEL_PRESET_PATH, --preset-path."""
from __future__ import annotations

import json

import pytest
import yaml

from llmaccel.cli import main
from llmaccel.simulator.design import BUNDLED_DESIGNS, PRESET_PATH_ENV, find_design, list_designs, load_design
from llmaccel.simulator.specs._yaml import SpecError


def _write(dirpath, name, clock=200):
    d = yaml.safe_load((BUNDLED_DESIGNS / "flightllm-u280.yaml").read_text())
    d["name"], d["clock_MHz"] = name, clock
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / f"{name}.yaml").write_text(yaml.safe_dump(d))
    return dirpath / f"{name}.yaml"


def test_bundled_presets_include_the_2of4_design():
    assert {"flightllm-u280", "flightllm-u280-2of4"} <= set(list_designs())
    d = load_design("flightllm-u280-2of4")
    assert "2:4" in d.matrix_engine.supported_nm
    base = load_design("flightllm-u280")
    # the variant differs from flightllm-u280 in its N:M list (and name/description/notes) only
    import dataclasses
    same = dataclasses.replace(d, name=base.name, description=base.description, notes=base.notes,
                               matrix_engine=dataclasses.replace(d.matrix_engine,
                                                                 supported_nm=base.matrix_engine.supported_nm))
    assert same == base


def test_env_path_then_option_path(tmp_path, monkeypatch):
    p1 = _write(tmp_path / "a", "env-design")
    p2 = _write(tmp_path / "b", "opt-design", clock=210)
    monkeypatch.setenv(PRESET_PATH_ENV, str(tmp_path / "a"))
    assert find_design("env-design") == p1 and load_design("env-design").clock_MHz == 200
    with pytest.raises(SpecError, match="unknown design preset 'opt-design'"):
        find_design("opt-design")
    assert load_design("opt-design", [tmp_path / "b"]).clock_MHz == 210
    assert {"env-design", "opt-design"} <= set(list_designs([tmp_path / "b"]))
    assert find_design(str(p2)) == p2           # an explicit path is taken as given


def test_a_name_found_twice_names_both_files(tmp_path, monkeypatch):
    p1 = _write(tmp_path / "a", "twin")
    p2 = _write(tmp_path / "b", "twin")
    monkeypatch.setenv(PRESET_PATH_ENV, f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    with pytest.raises(SpecError, match="found twice") as e:
        load_design("twin")
    assert str(p1) in str(e.value) and str(p2) in str(e.value)
    # shadowing a bundled preset is the same error, not a silent override
    _write(tmp_path / "a", "flightllm-u280")
    with pytest.raises(SpecError, match="'flightllm-u280' is found twice"):
        load_design("flightllm-u280")


def test_a_missing_directory_on_the_path_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(PRESET_PATH_ENV, str(tmp_path / "nope"))
    with pytest.raises(SpecError, match=r"\$LLMACCEL_PRESET_PATH entry .*nope' is not a directory"):
        load_design("flightllm-u280")


def test_simulate_takes_preset_path(tmp_path, capsys):
    _write(tmp_path / "mine", "cli-design", clock=180)
    rc = main(["simulate", "--design", "cli-design", "--preset-path", str(tmp_path / "mine"), "--prefill", "16",
               "--decode", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["design"] == "cli-design"
    rc = main(["simulate", "--design", "cli-design", "--prefill", "16", "--decode", "4", "--json"])
    assert rc == 2 and "unknown design preset 'cli-design'" in json.loads(capsys.readouterr().out)["error"]
