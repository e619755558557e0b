"""Resource counts of the RTL units from yosys ``synth_xilinx -family xcup`` (UltraScale+).

``synth_unit`` runs yosys on one configuration and parses its ``stat -json``;
``python -m llmaccel.sparse_dsp.rtl.synth --write`` synthesizes the standard grid and rewrites
``resources.json`` (atomically), which :mod:`sparse_dsp.unit_costs` serves to the simulator.

Counting rules (what a Vivado utilization report would call them):
  DSP48E2 = DSP48E2 cells; LUT = LUT1..LUT6 plus the LUTs that LUT-based memories/shift
  registers occupy (SRL16E = 1, RAM64M8 = 8, ...), also split as LUT_logic/LUT_memory; FF = FDRE/FDSE/
  FDCE/FDPE; BRAM36 = RAMB36E2 + RAMB18E2/2; CARRY = CARRY4/CARRY8 cells.
After synth_xilinx the script merges identical primitive cells (``opt_merge -share_all``):
yosys 0.23 otherwise leaves one LUT2 per flip-flop computing the same shared clock enable.
Known limitation of yosys 0.23: for DSP48E2 (xcu/xcup) its xilinx_dsp pass packs the
multiplier and its A/B/M registers but not the post-adder/PREG/PCIN cascade (it does for
DSP48E1), so the chains' 48-bit cascade adders are counted in LUT/CARRY/FF: an upper bound
on what Vivado would use.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.rtl.sim import HDL_DIR, SOURCES, require_tool
from llmaccel.sparse_dsp.rtl.units import UNITS, get_unit
from llmaccel.sparse_dsp.safe_paths import check_output_dir

FAMILY = "xcup"
RESOURCES_JSON = Path(__file__).resolve().parent / "resources.json"
UNIT_TOPS = {u.name: u.top for u in UNITS.values()}   # from the unit registry (sparse_dsp.rtl.units)

_LUT_LOGIC = {f"LUT{i}" for i in range(1, 7)}
# LUT-based memories and shift registers, in physical LUTs per cell (UltraScale+ CLB: a
# RAM64M8 / RAM32M16 macro occupies all 8 LUTs of a SLICEM, RAM32M / RAM64M four, ...).
_LUT_MEMORY = {"SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM32X1D": 2,
               "RAM64X1D": 2, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4,
               "RAM32M16": 8, "RAM64M8": 8}
_FF = {"FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"}


def parse_stat_json(text: str) -> dict:
    """Pure parser: yosys ``stat -json`` output -> resource counts (whole design)."""
    data = json.loads(text)
    design = data.get("design")
    if design is None:
        mods = data.get("modules", {})
        if len(mods) != 1:
            raise LlmaccelError("yosys stat JSON has no 'design' section and not exactly one module")
        design = next(iter(mods.values()))
    return counts_from_cells({k: int(v) for k, v in design.get("num_cells_by_type", {}).items()})


def counts_from_cells(cells: dict[str, int]) -> dict:
    """Resource counts from a cell-type histogram (the counting rules in the module docstring)."""
    lut_logic = sum(v for k, v in cells.items() if k in _LUT_LOGIC)
    lut_mem = sum(v * _LUT_MEMORY[k] for k, v in cells.items() if k in _LUT_MEMORY)
    return {
        "DSP48E2": cells.get("DSP48E2", 0),
        "LUT": lut_logic + lut_mem,
        "LUT_logic": lut_logic,
        "LUT_memory": lut_mem,
        "FF": sum(v for k, v in cells.items() if k in _FF),
        "BRAM36": cells.get("RAMB36E2", 0) + cells.get("RAMB18E2", 0) / 2,
        "URAM288": cells.get("URAM288", 0),
        "CARRY": cells.get("CARRY4", 0) + cells.get("CARRY8", 0),
        "cells": dict(sorted(cells.items())),
    }


def hdl_parameters(unit: str, params: dict) -> dict:
    """Validated unit parameters (Python names) -> Verilog parameters of the unit's top."""
    return get_unit(unit).hdl_parameters(params)


def canonical_params(unit: str, params: dict) -> dict:
    """The parameter record stored in resources.json (all knobs explicit, nm as a string)."""
    return get_unit(unit).canonical(params)


def yosys_script(top: str, hdl_params: dict, stat_path: Path) -> str:
    srcs = " ".join(str(HDL_DIR / f) for f in SOURCES[top])
    chparam = " ".join(f"-set {k} {v}" for k, v in hdl_params.items())
    return "\n".join([
        f"read_verilog -defer {srcs}",
        f"chparam {chparam} {top}",
        f"synth_xilinx -family {FAMILY} -flatten -noiopad -noclkbuf -top {top}",
        # xilinx_dffopt leaves one identical LUT2 per flip-flop for a shared clock enable
        # (the chain's global stall); merge identical primitives as Vivado's opt_design would.
        "opt_merge -share_all",
        "opt_clean",
        f"tee -q -o {stat_path} stat -json",
        "",
    ])


def synth_unit(unit: str, params: dict, workdir: Optional[Path] = None) -> dict:
    """Run yosys on one unit configuration; returns counts + canonical params + tool info.

    ``workdir`` (kept for the user) must be new, empty, or hold only the files a previous run wrote
    there: they are overwritten, nothing else is (sparse_dsp.safe_paths)."""
    if workdir is not None:
        check_output_dir(workdir, "--workdir", True, _is_our_workdir, "yosys work directory")
    yosys = require_tool("yosys")
    hp = hdl_parameters(unit, params)
    top = UNIT_TOPS[unit]
    with tempfile.TemporaryDirectory(prefix="sdsp_synth_") as tmp:
        wd = Path(workdir) if workdir else Path(tmp)
        wd.mkdir(parents=True, exist_ok=True)
        stat = wd / "stat.json"
        script = wd / "synth.ys"
        script.write_text(yosys_script(top, hp, stat))
        t0 = time.time()
        proc = subprocess.run([yosys, "-q", "-l", str(wd / "yosys.log"), "-s", str(script)],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not stat.exists():
            tail = (proc.stderr or proc.stdout or "")[-800:]
            raise LlmaccelError(f"yosys failed on {unit} {hp} (exit {proc.returncode}): {tail}")
        counts = parse_stat_json(stat.read_text())
    counts.update(params=canonical_params(unit, params), hdl_parameters=hp, yosys_seconds=round(time.time() - t0, 1))
    return counts


_WORKDIR_FILES = ("stat.json", "synth.ys", "yosys.log")


def _is_our_workdir(path: Path) -> Optional[str]:
    extra = sorted(set(os.listdir(path)) - set(_WORKDIR_FILES))
    return None if not extra else "it holds files a synthesis run does not write: " + ", ".join(extra[:8])


def yosys_version() -> str:
    yosys = require_tool("yosys")
    return subprocess.run([yosys, "-V"], capture_output=True, text=True).stdout.strip()


# The measured grid: chain lengths / sparsity / cascade for the chain, every bit width for the
# decoder, two tiles. Layer shape for decoder/tile: K=4096, G=128 (Llama-7B hidden size).
STANDARD_GRID: list[tuple[str, dict]] = (
    [("dsp_chain", {"chain_len": 2, "nm": None})]
    + [("dsp_chain", {"chain_len": 8, "nm": None, "cascade_groups": c}) for c in (1, 2, 4)]
    + [("dsp_chain", {"chain_len": 8, "nm": nm}) for nm in ((2, 4), (4, 8), (2, 16))]
    + [("dsp_chain", {"chain_len": 16, "nm": nm}) for nm in (None, (2, 16), (4, 16), (8, 16))]
    + [("dsp_chain", {"chain_len": 24, "nm": None})]
    + [("weight_decoder", {"bits": b, "nm": None, "chain_len": 8}) for b in (2, 3, 4, 8)]
    + [("weight_decoder", {"bits": b, "nm": (2, 16), "chain_len": 8}) for b in (3, 4)]
    + [("weight_decoder", {"bits": 4, "nm": (8, 16), "chain_len": 16, "symmetric": False})]
    + [("mv_tile", {"n_chains": 2, "chain_len": 8, "nm": None, "bits": 4, "k": 1024}),
       ("mv_tile", {"n_chains": 4, "chain_len": 8, "nm": (2, 16), "bits": 4, "k": 4096})]
)


def synth_grid(grid=STANDARD_GRID, jobs: int = 2) -> dict:
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda up: (up[0], synth_unit(up[0], up[1])), grid))
    units: dict[str, list] = {}
    for unit, res in results:
        units.setdefault(unit, []).append(res)
    return {"schema_version": 1, "status": "measured", "tool": f"{yosys_version()}, synth_xilinx -family {FAMILY}",
            "counting": "LUT = LUT1-6 + LUT memories/SRLs; FF = FD*; BRAM36 = RAMB36E2 + RAMB18E2/2; "
                        "chain cascade adders counted in fabric (yosys 0.23 does not pack the DSP48E2 post-adder)",
            "units": units}


def write_resources(table: dict, path: Path = RESOURCES_JSON) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(table, indent=1) + "\n")
    tmp.replace(path)


def markdown_table(table: dict) -> str:
    """The docs/rtl.md resource table, rendered from a resources.json table."""
    lines = ["| unit | configuration | DSP48E2 | LUT (logic + memory) | FF | BRAM36 | CARRY |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for unit, entries in table["units"].items():
        for e in entries:
            p = ", ".join(f"{k}={v}" for k, v in e["params"].items())
            lines.append(f"| {unit} | {p} | {e['DSP48E2']} | {e['LUT']} ({e['LUT_logic']} + {e['LUT_memory']}) "
                         f"| {e['FF']} | {e['BRAM36']:g} | {e['CARRY']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"rewrite {RESOURCES_JSON.name} with the standard grid")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--markdown", action="store_true", help="print the committed table as markdown, run nothing")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown_table(json.loads(RESOURCES_JSON.read_text())))
        return 0
    table = synth_grid(jobs=args.jobs)
    if args.write:
        write_resources(table)
    print(json.dumps({u: [{k: e[k] for k in ("params", "DSP48E2", "LUT", "FF", "BRAM36")} for e in es]
                      for u, es in table["units"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
