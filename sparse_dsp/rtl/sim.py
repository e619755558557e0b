"""Run a cocotb bench on Icarus Verilog through ``cocotb_tools.runner`` (pytest and the CLI use this).

A bench is configured through one JSON environment variable (``SDSP_BENCH``): the HDL
parameters, the stimulus seed and shape, gap/stall probabilities, and where to write the
bench's report (measured cycles, mismatch count).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Optional

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.rtl.units import UNITS

HDL_DIR = Path(__file__).resolve().parent / "hdl"
# Derived from the unit registry (sparse_dsp.rtl.units): Verilog top -> sources, top -> bench module.
SOURCES: dict[str, list[str]] = {u.top: list(u.sources) for u in UNITS.values()}
BENCH_MODULES = {u.top: u.bench for u in UNITS.values()}
ENV_VAR = "SDSP_BENCH"


class RtlToolMissing(LlmaccelError):
    """A tool the RTL flow needs (iverilog, cocotb, yosys, verilator) is not installed."""


def require_tool(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RtlToolMissing(f"'{tool}' was not found on PATH; install it (Debian: apt-get install {tool}, "
                             f"or run scripts/setup.sh)")
    return path


def require_cocotb() -> None:
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        raise RtlToolMissing("cocotb is not installed; install it with `pip install 'llmaccel[rtl]'` "
                             "(cocotb>=2.0)") from None


def sources(top: str, hdl_dir: Optional[Path] = None) -> list[Path]:
    if top not in SOURCES:
        raise LlmaccelError(f"top='{top}' is not an RTL unit; allowed: {sorted(SOURCES)}")
    return [Path(hdl_dir or HDL_DIR) / f for f in SOURCES[top]]


def run_bench(top: str, parameters: dict, spec: dict, build_dir: Path, *, waves: bool = False,
              sim: str = "icarus", hdl_dir: Optional[Path] = None) -> dict:
    """Build ``top`` with ``parameters`` in ``build_dir`` (own directory per call), run its bench.

    Returns the bench report (a dict with at least ``mismatches`` and ``failed``). ``hdl_dir``
    replaces the shipped Verilog (the tests use it to prove a bench catches a broken design).
    """
    require_cocotb()
    require_tool("iverilog")
    require_tool("vvp")
    waves = waves or os.environ.get("WAVES") == "1"
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    report_path = build_dir / "bench_report.json"
    if report_path.exists():
        report_path.unlink()
    spec = dict(spec, report=str(report_path), parameters=parameters)
    runner = get_runner(sim)
    runner.build(sources=sources(top, hdl_dir), hdl_toplevel=top, parameters=parameters, build_dir=build_dir,
                 always=True, timescale=("1ns", "1ps"), waves=waves,
                 # cocotb's Icarus dump module (waves) is SystemVerilog; our sources are Verilog-2005
                 # and compile unchanged as 2012, so the standard is raised only when waves are on.
                 build_args=["-g2012" if waves else "-g2005"], log_file=build_dir / "build.log")
    results = build_dir / "results.xml"
    try:
        runner.test(test_module=BENCH_MODULES[top], hdl_toplevel=top, build_dir=build_dir,
                    test_dir=build_dir, extra_env={ENV_VAR: json.dumps(spec)}, waves=waves,
                    results_xml=str(results), log_file=build_dir / "sim.log")
    except SystemExit:
        pass  # the runner exits on a failed bench; the results file says what failed
    if not results.exists():
        raise LlmaccelError(f"the {top} bench produced no results; see {build_dir / 'sim.log'}")
    num_tests, num_failed = get_results(results)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report.update(tests=num_tests, failed=num_failed, build_dir=str(build_dir))
    if waves:
        wave_file = build_dir / f"{top}.fst"
        if not wave_file.is_file():
            raise LlmaccelError(f"waves were asked for but {wave_file} was not written; see {build_dir / 'sim.log'}")
        report["waves"] = str(wave_file)
    return report


def bench_spec() -> dict:
    """The spec a bench module reads (inside the simulator process)."""
    text = os.environ.get(ENV_VAR)
    if not text:
        raise LlmaccelError(f"{ENV_VAR} is not set: run benches through sparse_dsp.rtl.sim.run_bench")
    return json.loads(text)


def write_report(spec: dict, report: dict) -> None:
    path: Optional[str] = spec.get("report")
    if path:
        tmp = Path(path).with_suffix(".tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(path)
