"""Write a Vitis HLS project directory for one kernel configuration.

Layout: ``src/`` (the library headers, the top, the generated instance
header), ``tb/`` (the family's testbench, shared helpers, golden vectors),
``build_prj.tcl`` (csim / csynth / cosim / export for the device's part and
clock) and ``project.json``. The directory is assembled under a temporary
name and renamed into place, so a half-written project never looks complete.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Optional

from hls_kernels.build import INCLUDE_DIR, TOPS_DIR
from hls_kernels.configs import HlsConfigError
from hls_kernels.flow.vectors import golden_case, vectors_header
from sparse_dsp.errors import LlmaccelError

TEMPLATES = Path(__file__).parent / "templates"
TOPS = {"linear_mv": "linear_mv_top", "linear_mm": "linear_mm_top", "weight_decode": "weight_decode_top",
        "weight_decode_stream": "weight_decode_stream_top", "sfu": "sfu_top", "attention": "attention_top", "decoder_layer": "decoder_layer_top"}
# Default kernel clock: FlightLLM's U280 design clock, 225 MHz (shared/anchors/hardware.yaml
# flightllm_u280.clock_MHz, from the FlightLLM paper). A target, not a promise: csynth reports the estimate.
DEFAULT_CLOCK_MHZ = 225.0


@dataclass(frozen=True)
class DeviceTarget:
    name: str
    part: str
    clock_mhz: float


def device_target(device: str, clock_mhz: Optional[float] = None) -> DeviceTarget:
    """Part from the device preset (simulator.specs.device), clock from the caller or the default."""
    from simulator.specs.device import load_device  # noqa: PLC0415

    dev = load_device(device)
    part = getattr(dev, "part", None)
    if not part:
        raise HlsConfigError(f"device '{device}' has no FPGA part (kind={getattr(dev, 'kind', '?')}); "
                             "choose an FPGA preset such as alveo-u280 or alveo-u55c")
    clock = DEFAULT_CLOCK_MHZ if clock_mhz is None else float(clock_mhz)
    if not 50.0 <= clock <= 800.0:
        raise HlsConfigError(f"clock_mhz={clock} is outside 50..800 MHz")
    return DeviceTarget(dev.name, part, clock)


def _render(template: str, **values) -> str:
    return Template((TEMPLATES / template).read_text()).substitute(**values)


def write_project(config, out_dir: str | os.PathLike, device: str = "alveo-u280", clock_mhz: Optional[float] = None,
                  seed: int = 0, overwrite: bool = False, case: Optional[dict] = None,
                  provenance: Optional[dict] = None) -> Path:
    """Write the project for ``config`` at ``out_dir`` and return its path.

    ``case``: golden vectors to use instead of seeded random ones (a user's model's weights and
    inputs, from ``flow.model_emit``); ``provenance`` is recorded in project.json.
    """
    out = Path(out_dir)
    _check_replaceable(out, overwrite)
    target = device_target(device, clock_mhz)
    family = config.family
    if family not in TOPS:
        raise HlsConfigError(f"emit has no testbench for kernel family '{family}'; families with one: "
                             f"{sorted(TOPS)}")
    top = TOPS[family]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        src, tb = tmp / "src", tmp / "tb"
        shutil.copytree(INCLUDE_DIR, src / "include")
        shutil.copy(TOPS_DIR / f"{top}.cpp", src / f"{top}.cpp")
        (src / "llmaccel_instance.hpp").write_text(config.instance_header())
        tb.mkdir()
        (tb / f"tb_{family}.cpp").write_text(_render(f"tb_{family}.cpp", name=config.name))
        shutil.copy(TEMPLATES / "tb_common.h", tb / "tb_common.h")
        (tb / "golden_vectors.h").write_text(vectors_header(case if case is not None else golden_case(config, seed),
                                                            config.name))
        (tmp / "build_prj.tcl").write_text(_render(
            "build_prj.tcl", name=config.name, device=target.name, part=target.part, clock_mhz=target.clock_mhz,
            project_name=f"prj_{config.name}", top=top, top_file=f"{top}.cpp", tb_file=f"tb_{family}.cpp",
            period_ns=f"{1000.0 / target.clock_mhz:.3f}"))
        (tmp / "project.json").write_text(json.dumps({
            "name": config.name, "family": family, "top": top, "device": target.name, "part": target.part,
            "clock_MHz": target.clock_mhz, "seed": seed, "tcl": "build_prj.tcl",
            "testbench": f"tb/tb_{family}.cpp", "hls_project": f"prj_{config.name}",
            "vectors": provenance or {"source": "seeded random", "seed": seed}}, indent=2))
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _is_our_project(path: Path) -> bool:
    """A directory `llmaccel hls emit` wrote: it holds our project.json (name, family, top, hls_project)."""
    try:
        meta = json.loads((path / "project.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and {"name", "family", "top", "hls_project"} <= set(meta)


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """``--out`` may be new or an empty directory; with ``overwrite`` also a project we emitted before.
    Nothing else is ever replaced: the current directory, a parent, a file or a user's folder."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
        return
    if not overwrite:
        raise LlmaccelError(f"output directory {out} already exists and is not empty "
                            f"(--force replaces only a project written by `llmaccel hls emit`)")
    if out.is_symlink() or not out.is_dir() or not _is_our_project(out) \
            or out.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
        raise LlmaccelError(f"--out {out} is not an HLS project written by `llmaccel hls emit` (no project.json "
                            f"of ours); --force replaces only such a project, never another directory")


def _install(tmp: Path, out: Path) -> None:
    """Move the complete new tree into place; an old project is moved aside first and removed last."""
    if out.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, aside / "project")
        os.replace(tmp, out)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, out)


def testbench_compile_command(project: Path, cxx: str, ap_types: Path, exe: Path) -> list[str]:
    """g++ command that builds the emitted testbench + top as Vitis csim would (used here without Vitis)."""
    meta = json.loads((project / "project.json").read_text())
    return [cxx, "-std=c++14", "-O1", "-ffp-contract=off", "-fno-fast-math", "-Wno-unknown-pragmas",
            f"-I{project / 'src'}", f"-I{project / 'src' / 'include'}", f"-I{project / 'tb'}", f"-I{ap_types}",
            str(project / "src" / f"{meta['top']}.cpp"), str(project / meta["testbench"]), "-o", str(exe)]
