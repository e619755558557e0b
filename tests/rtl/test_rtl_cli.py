"""`llmaccel rtl gen|sim|synth`: outputs, and one clear error per bad input or missing tool."""
from __future__ import annotations

import json
from pathlib import Path
import shutil
import subprocess

import pytest

from llmaccel.errors import LlmaccelError

from llmaccel.cli import main


def _run(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_gen_writes_a_configured_design(tmp_path, capsys):
    out = tmp_path / "chain"
    rc, stdout, _ = _run(capsys, ["rtl", "--json", "gen", "--unit", "chain", "--chain-len", "8", "--nm", "2:4",
                                  "--out", str(out)])
    assert rc == 0
    manifest = json.loads(stdout)
    assert manifest["top"] == "chain_l8_n2m4_c4" and manifest["model"]["latency_cycles"] == 13
    top = (out / "chain_l8_n2m4_c4.v").read_text()
    assert "sdsp_chain #(.CHAIN_LEN(8), .N(2), .M(4), .CASCADE_GROUPS(4))" in top
    ooc = ["files.f", "constraints_ooc.xdc", "synth_ooc.tcl"]
    assert sorted(p.name for p in out.iterdir()) == sorted(manifest["files"] + ["config.json"] + ooc)
    if shutil.which("iverilog"):
        files = [str(out / f) for f in manifest["files"]]
        proc = subprocess.run(["iverilog", "-g2005", "-s", manifest["top"], "-o", str(tmp_path / "a.vvp")] + files,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_gen_refuses_a_non_empty_directory(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("x")
    rc, _, err = _run(capsys, ["rtl", "gen", "--out", str(tmp_path)])
    assert rc == 2 and "not empty" in err
    assert (tmp_path / "keep.txt").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--unit", "chain", "--chain-len", "7"], "chain_len=7"),
    (["--unit", "chain", "--chain-len", "26"], "chain_len=26"),
    (["--unit", "chain", "--nm", "3:16"], "nm=3:16"),
    (["--unit", "chain", "--nm", "banana"], "nm='banana'"),
    (["--unit", "chain", "--chain-len", "16", "--cascade-groups", "8"], "cascade_groups=8"),
    (["--unit", "decoder", "--bits", "5"], "bits=5"),
    (["--unit", "decoder", "--bits", "8", "--asym"], "asymmetric"),
    (["--unit", "tile", "--n-chains", "0"], "n_chains=0"),
    (["--unit", "fpu"], "--unit 'fpu'"),
])
@pytest.mark.parametrize("action", ["gen", "sim", "synth"])
def test_bad_configuration_is_one_clear_error(tmp_path, capsys, action, argv, needle):
    extra = ["--out", str(tmp_path / "o")] if action == "gen" else []
    rc, _, err = _run(capsys, ["rtl", action] + argv + extra)
    assert rc == 2
    assert needle in err and err.count("error:") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_missing_simulator_is_one_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))          # nothing on PATH: no iverilog
    rc, _, err = _run(capsys, ["rtl", "sim", "--unit", "chain"])
    assert rc == 2 and "'iverilog' was not found" in err


def test_missing_yosys_is_one_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    rc, _, err = _run(capsys, ["rtl", "synth", "--unit", "chain"])
    assert rc == 2 and "'yosys' was not found" in err


@pytest.mark.iverilog
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) is not installed")
def test_sim_runs_the_bench_and_reports_cycles(tmp_path, capsys):
    pytest.importorskip("cocotb_tools.runner", reason="cocotb is not installed")
    rc, stdout, _ = _run(capsys, ["rtl", "--json", "sim", "--unit", "decoder", "--bits", "3", "--nm", "2:16",
                                  "--chain-len", "4", "--k", "128", "--group-size", "64", "--rows", "2",
                                  "--build-dir", str(tmp_path / "b")])
    assert rc == 0
    res = json.loads(stdout)
    assert res["passed"] and res["mismatches"] == 0
    assert res["timing_phase"]["total_cycles_seen"] == res["model"]["total_cycles"]


@pytest.mark.yosys
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")
def test_synth_json_matches_the_committed_table(capsys):
    from llmaccel.sparse_dsp.unit_costs import unit_resources
    rc, stdout, _ = _run(capsys, ["rtl", "synth", "--json", "--unit", "chain", "--chain-len", "2"])
    assert rc == 0
    res = json.loads(stdout)
    assert res["DSP48E2"] == 2
    committed = unit_resources("dsp_chain", chain_len=2, nm="dense")
    assert {k: res[k] for k in ("DSP48E2", "LUT", "FF", "BRAM36")} == \
        {k: committed[k] for k in ("DSP48E2", "LUT", "FF", "BRAM36")}


def test_gen_writes_an_out_of_context_vivado_flow_at_the_design_clock(tmp_path, capsys):
    """The file list names every Verilog file, the XDC clock is the design's, the TCL parses and runs its
    own Tcl (file list, paths) under tclsh. Vivado's commands are recorded, not executed: Vivado is not
    installed here, so this checks our script, not synthesis."""
    from llmaccel.simulator.design import load_design
    out = tmp_path / "tile"
    rc, stdout, _ = _run(capsys, ["rtl", "--json", "gen", "--unit", "tile", "--out", str(out),
                                  "--design", "flightllm-u55c"])
    assert rc == 0
    manifest = json.loads(stdout)
    d = load_design("flightllm-u55c")
    assert manifest["ooc_synthesis"]["clock_MHz"] == d.clock_MHz
    listed = (out / "files.f").read_text().split()
    assert listed == manifest["files"] and all((out / f).is_file() for f in listed)
    xdc = (out / "constraints_ooc.xdc").read_text()
    period = float(xdc.split("-period")[1].split()[0])
    assert period == pytest.approx(1000.0 / d.clock_MHz, abs=1e-4)
    if shutil.which("tclsh") is None:
        pytest.skip("tclsh is not installed")
    recorder = tmp_path / "record.tcl"
    recorder.write_text(r"""set log [open [lindex $argv 0] w]
foreach cmd {read_verilog read_xdc synth_design report_utilization report_timing_summary} {
    proc $cmd {args} "puts \$::log \"$cmd \[join \$args\]\""
}
source [lindex $argv 1]
close $log
""")
    log = tmp_path / "calls.txt"
    proc = subprocess.run(["tclsh", str(recorder), str(log), str(out / "synth_ooc.tcl")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["read_verilog", "read_xdc", "synth_design", "report_utilization",
                                             "report_timing_summary"]
    read = calls[0].split()[1:]
    assert [Path(f).name for f in read] == listed and all(Path(f).is_file() for f in read)
    assert f"-top {manifest['top']}" in calls[2] and "-mode out_of_context" in calls[2]
    assert load_device_part(d.device) in calls[2]


def load_device_part(device: str) -> str:
    from llmaccel.simulator.specs.device import load_device
    return load_device(device).part


def test_gen_rejects_a_bad_clock_for_the_ooc_flow(tmp_path):
    from llmaccel.sparse_dsp.rtl.gen import ooc_synthesis_files
    with pytest.raises(LlmaccelError, match="clock_MHz"):
        ooc_synthesis_files("top", ["a.v"], "xcu280-fsvh2892-2L-e", 225e6)


@pytest.mark.iverilog
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) is not installed")
def test_sim_waves_writes_an_fst_and_names_it(tmp_path, capsys):
    pytest.importorskip("cocotb_tools.runner", reason="cocotb is not installed")
    rc, stdout, _ = _run(capsys, ["rtl", "--json", "sim", "--unit", "chain", "--chain-len", "4", "--k", "64",
                                  "--group-size", "32", "--rows", "1", "--waves", "--build-dir", str(tmp_path / "b")])
    assert rc == 0
    res = json.loads(stdout)
    wave = Path(res["waves"])
    assert res["passed"] and wave.parent == (tmp_path / "b").resolve() and wave.suffix == ".fst"
    assert wave.stat().st_size > 1000   # an FST with the bench's signals, not an empty header
