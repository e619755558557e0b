"""Write a Vitis HLS project directory for one kernel configuration.

Layout: ``src/`` (the library headers, the top, the generated instance
header), ``tb/`` (the family's testbench, shared helpers, golden vectors),
``build_prj.tcl`` (csim / csynth / cosim / export for the device's part and
clock) and ``project.json``. The directory is assembled under a temporary
name and renamed into place (sparse_dsp.safe_paths), so a half-written
project never looks complete; ``overwrite`` replaces only a directory that is
one of our projects holding nothing but what we and the HLS flow write there.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Optional

from llmaccel.hls_kernels.build import INCLUDE_DIR
from llmaccel.hls_kernels.configs import HlsConfigError, family_of
from llmaccel.hls_kernels.flow.vectors import golden_case, vectors_header
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.safe_paths import check_output_dir, write_dir_atomically

TEMPLATES = Path(__file__).parent / "templates"
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
    from llmaccel.simulator.specs.device import load_device  # noqa: PLC0415

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
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise LlmaccelError(f"output directory {out} already exists (pass overwrite/--force to replace it)")
    check_output_dir(out_dir, "--out", overwrite, _is_our_project, "HLS project")
    target = device_target(device, clock_mhz)
    fam = family_of(config)          # the registry record: top, testbench (hls_kernels.configs.FAMILIES)
    family, top = fam.name, fam.top

    def build(tmp: Path) -> None:
        src, tb = tmp / "src", tmp / "tb"
        # copyfile, not copy/copy2: new files get the user's umask, not the package's modes
        shutil.copytree(INCLUDE_DIR, src / "include", copy_function=shutil.copyfile)
        shutil.copyfile(fam.top_source, src / f"{top}.cpp")
        (src / "llmaccel_instance.hpp").write_text(config.instance_header())
        tb.mkdir()
        (tb / f"tb_{family}.cpp").write_text(Template(fam.testbench.read_text()).substitute(name=config.name))
        shutil.copyfile(TEMPLATES / "tb_common.h", tb / "tb_common.h")
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

    return write_dir_atomically(out_dir, build, "--out", overwrite, _is_our_project, "HLS project")


# What the HLS flow itself writes into a project besides our files (hls_kernels.flow.backend, Vitis).
_FLOW_OUTPUTS = ("csim_gxx", "vitis_hls_run.log", "vitis_hls.log", ".Xil")


def _is_our_project(path: Path) -> Optional[str]:
    """None when ``path`` is a project :func:`write_project` wrote (with the flow's outputs), else why not."""
    try:
        meta = json.loads((path / "project.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "it has no readable project.json"
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in ("tcl", "hls_project", "top")):
        return "its project.json is not one llmaccel writes"
    ours = {"src", "tb", "project.json", meta["tcl"], meta["hls_project"], *_FLOW_OUTPUTS}
    extra = sorted(set(os.listdir(path)) - ours)
    if extra:
        return "it holds files llmaccel did not write: " + ", ".join(extra[:8])
    return None




def testbench_compile_command(project: Path, cxx: str, ap_types: Path, exe: Path) -> list[str]:
    """g++ command that builds the emitted testbench + top as Vitis csim would (used here without Vitis)."""
    meta = json.loads((project / "project.json").read_text())
    return [cxx, "-std=c++14", "-O1", "-ffp-contract=off", "-fno-fast-math", "-Wno-unknown-pragmas",
            f"-I{project / 'src'}", f"-I{project / 'src' / 'include'}", f"-I{project / 'tb'}", f"-I{ap_types}",
            str(project / "src" / f"{meta['top']}.cpp"), str(project / meta["testbench"]), "-o", str(exe)]
