"""The RTL unit registry: every unit generates, builds under Icarus and passes its cocotb bench
(smallest configuration), and the CLI, runner, generator and yosys flow all read the registry."""
from __future__ import annotations

import json
import shutil

import pytest

from llmaccel.cli import main
from llmaccel.sparse_dsp.rtl.gen import generate
from llmaccel.sparse_dsp.rtl.sim import BENCH_MODULES, HDL_DIR, SOURCES, run_bench
from llmaccel.sparse_dsp.rtl.synth import UNIT_TOPS
from llmaccel.sparse_dsp.rtl.units import UNITS, get_unit



@pytest.mark.parametrize("unit", sorted(UNITS))
@pytest.mark.iverilog
def test_every_unit_generates_builds_and_passes_its_bench(unit, tmp_path):
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog (iverilog) is not installed")
    pytest.importorskip("cocotb_tools.runner", reason="cocotb is not installed")
    u = UNITS[unit]
    man = generate(unit, u.smallest, tmp_path / "gen", part="xcu280-fsvh2892-2L-e", clock_MHz=225.0)
    assert man["files"] == [*u.sources, f"{man['top']}.v"]
    assert all((tmp_path / "gen" / f).is_file() for f in man["files"])
    rep = run_bench(u.top, u.hdl_parameters(u.smallest), {"seed": 1, "gap_prob": 0.3, "stall_prob": 0.3,
                                                          **u.smallest_stimulus}, tmp_path / "build")
    assert rep["failed"] == 0 and rep["tests"] == 1 and rep["mismatches"] == 0, rep
    assert rep["model"] is not None


def test_runner_generator_and_synth_tables_are_the_registry():
    assert UNIT_TOPS == {u.name: u.top for u in UNITS.values()}
    assert SOURCES == {u.top: list(u.sources) for u in UNITS.values()}
    assert BENCH_MODULES == {u.top: u.bench for u in UNITS.values()}
    shipped = {p.name for p in HDL_DIR.glob("*.v")}
    assert set().union(*(u.sources for u in UNITS.values())) == shipped     # no orphan Verilog


def test_cli_takes_every_registered_name_and_refuses_others(tmp_path, capsys):
    for u in UNITS.values():
        for name in (u.name, *u.aliases):
            assert get_unit(name) is u
    assert main(["rtl", "gen", "--unit", "decoder", "--out", str(tmp_path / "d"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unit"] == "weight_decoder"
    assert main(["rtl", "gen", "--unit", "alu", "--out", str(tmp_path / "x"), "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert "--unit 'alu'" in err and all(u.name in err for u in UNITS.values())


def test_a_knob_the_unit_does_not_take_is_refused():
    with pytest.raises(Exception, match="takes chain_len, nm, cascade_groups; not bits"):
        UNITS["dsp_chain"].hdl_parameters({"chain_len": 8, "bits": 4})
