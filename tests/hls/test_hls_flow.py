"""`llmaccel hls emit|run`: the emitted project's testbench compiles and passes with g++ here,
fails when a golden vector is wrong, and carries the device preset's part and clock."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from llmaccel.hls_kernels.configs import REGISTRY
from llmaccel.hls_kernels.flow.backend import run_gxx_testbench
from llmaccel.hls_kernels.flow.writer import write_project
from llmaccel.cli import main
from llmaccel.errors import LlmaccelError


@pytest.mark.gxx
@pytest.mark.parametrize("kernel,device,part", [
    ("mv_n2m16_w4_g64_k256_o64_c4", "u280", "xcu280-fsvh2892-2L-e"),
    ("attn_h8kv4_d32_s64_l4", "alveo-u55c", "xcu55c-fsvh2892-2L-e"),
])
def test_emitted_project_compiles_and_passes(tmp_path, capsys, kernel, device, part):
    out = tmp_path / "prj"
    assert main(["hls", "emit", "--kernel", kernel, "--device", device, "--clock-mhz", "250", "--out", str(out),
                 "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["part"] == part and meta["name"] == kernel
    tcl = (out / "build_prj.tcl").read_text()
    assert f"set_part {{{part}}}" in tcl and "create_clock -period 4.000" in tcl
    for step in ("csim_design", "csynth_design", "cosim_design", "export_design"):
        assert step in tcl
    assert (out / "src" / "include" / "llmaccel_hls" / "kernels" / "linear.hpp").is_file()
    assert main(["hls", "run", str(out), "--gxx", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and f"PASS {kernel}" in result["output"]


@pytest.mark.gxx
def test_emitted_testbench_fails_on_a_wrong_golden_value(tmp_path):
    out = write_project(REGISTRY["mv_n2m16_w4_g64_k256_o64_c4"], tmp_path / "prj")
    vec = out / "tb" / "golden_vectors.h"
    text = vec.read_text()
    m = re.search(r"expect_y_bits\[\d+\] = \{0x([0-9a-f]{8})u", text)
    flipped = f"{int(m.group(1), 16) ^ 1:08x}"  # one ULP off in the first output
    vec.write_text(text[:m.start(1)] + flipped + text[m.end(1):])
    result = run_gxx_testbench(out)
    assert not result["passed"] and result["returncode"] != 0 and "FAIL" in result["output"]


def test_emit_refuses_existing_dir_unknown_kernel_and_gpu_device(tmp_path):
    (tmp_path / "exists").mkdir()
    with pytest.raises(LlmaccelError, match="already exists"):
        write_project(REGISTRY["sfu_n1024_u1"], tmp_path / "exists")
    assert main(["hls", "emit", "--kernel", "mv_bogus", "--out", str(tmp_path / "x")]) == 2
    with pytest.raises(LlmaccelError, match="no FPGA part"):
        write_project(REGISTRY["sfu_n1024_u1"], tmp_path / "gpu", device="h100-sxm-80gb")
    assert not (tmp_path / "gpu").exists() and not any(p.name.startswith(".gpu") for p in tmp_path.iterdir())


def test_run_without_vitis_names_what_to_install(tmp_path, monkeypatch, capsys):
    if shutil.which("vitis_hls") or shutil.which("vitis-run"):
        pytest.skip("Vitis HLS is installed here")
    out = write_project(REGISTRY["mv_n2m16_w4_g64_k256_o64_c4"], tmp_path / "prj")
    assert main(["hls", "run", str(out), "--steps", "csim,csynth", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)["error"]
    assert "vitis_hls" in err and "vitis-run" in err and "install AMD Vitis HLS" in err
    assert main(["hls", "run", str(out), "--steps", "synth", "--json"]) == 2
    assert "allowed: csim, csynth, cosim, export" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.vitis
def test_vitis_csim_and_csynth_where_installed(tmp_path):
    """Opt-in: runs only where Vitis HLS is on PATH; the report must parse and name our top."""
    if not (shutil.which("vitis_hls") or shutil.which("vitis-run")):
        pytest.skip("Vitis HLS not installed")
    from llmaccel.hls_kernels.flow.backend import run_vitis
    from llmaccel.hls_kernels.flow.report import parse_csynth

    out = write_project(REGISTRY["mv_n2m16_w4_g64_k256_o64_c4"], tmp_path / "prj")
    res = run_vitis(out, ["csim", "csynth"])
    rep = parse_csynth(res["csynth_xml"])
    assert rep["top"] == "linear_mv_top" and rep["resources_used"]["DSP"] is not None
