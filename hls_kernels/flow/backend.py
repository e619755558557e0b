"""Run an emitted project: Vitis HLS where installed, g++ C-simulation of the testbench everywhere."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Sequence

from llmaccel.hls_kernels.build import HlsToolError, find_ap_types, find_cxx
from llmaccel.hls_kernels.flow.writer import testbench_compile_command
from llmaccel import strict_json
from llmaccel.errors import LlmaccelError

STEPS = ("csim", "csynth", "cosim", "export")
VITIS_TOOLS = ("vitis_hls", "vitis-run")


def find_vitis() -> tuple[str, str]:
    """(tool name, path): vitis_hls (<= 2024.1) or vitis-run (2023.2+); one clear error if neither."""
    for tool in VITIS_TOOLS:
        path = shutil.which(tool)
        if path:
            return tool, path
    raise HlsToolError("neither vitis_hls nor vitis-run is on PATH: install AMD Vitis HLS (Vitis 2022.1 or "
                       "later) and source <install>/settings64.sh; the C-simulation path "
                       "('llmaccel hls run --gxx') needs only g++ and hls4ml")


def _project(path: Path) -> dict:
    meta = Path(path) / "project.json"
    if not meta.is_file():
        raise LlmaccelError(f"{path} is not an emitted HLS project (no project.json); run 'llmaccel hls emit'")
    return strict_json.read(meta, LlmaccelError, expect_object=True)


def check_steps(steps: Sequence[str]) -> list[str]:
    bad = [s for s in steps if s not in STEPS]
    if bad or not steps:
        raise LlmaccelError(f"steps {list(steps)} invalid; allowed: {', '.join(STEPS)}")
    return list(steps)


def run_vitis(project: Path, steps: Sequence[str] = STEPS, timeout_s: Optional[float] = None) -> dict:
    """Run the project's TCL with Vitis HLS; returns the log path and the csynth report path if made."""
    project = Path(project)
    meta = _project(project)
    steps = check_steps(steps)
    tool, path = find_vitis()
    cmd = [path, "-f", "build_prj.tcl"] if tool == "vitis_hls" else [path, "--mode", "hls", "--tcl", "build_prj.tcl"]
    env = dict(os.environ, LLMACCEL_HLS_STEPS=",".join(steps))
    log = project / "vitis_hls_run.log"
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=project, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout_s)
    report = project / meta["hls_project"] / "solution1" / "syn" / "report" / "csynth.xml"
    if proc.returncode != 0:
        raise HlsToolError(f"{tool} failed (exit {proc.returncode}); see {log}")
    return {"tool": tool, "steps": steps, "log": str(log), "csynth_xml": str(report) if report.is_file() else None}


def run_gxx_testbench(project: Path, timeout_s: float = 300.0) -> dict:
    """Compile the emitted testbench and top with g++ and ap_types, run it; passed = exit 0 and a PASS line."""
    project = Path(project).resolve()
    meta = _project(project)
    exe = project / "csim_gxx" / "tb.exe"
    exe.parent.mkdir(exist_ok=True)
    cmd = testbench_compile_command(project, find_cxx(), find_ap_types(), exe)
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if build.returncode != 0:
        raise HlsToolError(f"g++ could not build the testbench of {meta['name']}:\n{build.stderr[-3000:]}")
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout_s, cwd=exe.parent)
    passed = run.returncode == 0 and f"PASS {meta['name']}" in run.stdout
    return {"name": meta["name"], "passed": passed, "returncode": run.returncode, "output": run.stdout[-4000:]}
