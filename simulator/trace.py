"""Chrome / Perfetto trace JSON ("Trace Event Format") of simulated programs.

One process per core, one thread per unit (LD, ST, MPE, SFU); each
instruction is a complete event ("ph": "X") with microsecond timestamps at
the design clock. Open the file at https://ui.perfetto.dev or chrome://tracing.
The trace shows the simulated layer programs back to back (what the engine
actually ran), not the scaled-up whole run.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional

from llmaccel.sparse_dsp.safe_paths import check_output_file, write_file_atomically

from llmaccel.simulator.timing import Program, schedule
from llmaccel.simulator.timing_engine import UNITS
from llmaccel.simulator.timing_params import HwParams


def trace_events(segments: Iterable[tuple[str, Program]], hw: HwParams) -> list[dict]:
    events: list[dict] = []
    for c in range(hw.n_cores):
        events.append({"name": "process_name", "ph": "M", "pid": c, "args": {"name": f"core {c}"}})
        for u, name in enumerate(UNITS):
            events.append({"name": "thread_name", "ph": "M", "pid": c, "tid": u, "args": {"name": name}})
    us_per_cycle = 1e6 / hw.clock_hz
    t_base = 0
    for label, prog in segments:
        ops, sch, _ = schedule(prog, hw, 1, allow_symmetry=False)
        for op, s, e in zip(ops, sch.start, sch.end):
            events.append({"name": op.name, "cat": label, "ph": "X", "pid": op.core, "tid": op.unit,
                           "ts": (t_base + s) * us_per_cycle, "dur": max(e - s, 0) * us_per_cycle,
                           "args": {"phase": label, "hbm_bytes": op.hbm_read_bytes + op.hbm_write_bytes,
                                    "macs": op.macs}})
        t_base += sch.makespan
    return events


GENERATOR = "llmaccel"


def _is_our_trace(path: Path) -> Optional[str]:
    """None when ``path`` is a trace this module wrote (its otherData names us), else why not."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return "not a JSON trace"
    other = data.get("otherData") if isinstance(data, dict) else None
    if not isinstance(other, dict) or other.get("generator") != GENERATOR:
        return "not a trace llmaccel wrote"
    return None


def check_trace_dest(path: str | os.PathLike, flag: str = "--trace") -> Path:
    """Refuse a bad trace path before simulating (a directory, an unwritable place, someone's file)."""
    return check_output_file(path, flag, _is_our_trace, "trace")


def write_trace(path: str | os.PathLike, segments: Iterable[tuple[str, Program]], hw: HwParams,
                flag: str = "--trace") -> Path:
    """Write atomically (sparse_dsp.safe_paths) so a partial trace never looks complete."""
    data = {"traceEvents": trace_events(segments, hw), "displayTimeUnit": "ns",
            "otherData": {"design": hw.name, "clock_MHz": hw.clock_hz / 1e6, "generator": GENERATOR}}

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
    return write_file_atomically(path, write, flag, _is_our_trace, "trace")
