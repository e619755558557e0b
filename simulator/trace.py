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
import tempfile
from pathlib import Path
from typing import Iterable

from simulator.timing import Program, schedule
from simulator.timing_engine import UNITS
from simulator.timing_params import HwParams


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


def write_trace(path: str | os.PathLike, segments: Iterable[tuple[str, Program]], hw: HwParams) -> Path:
    """Write atomically (temp file, then rename) so a partial trace never looks complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"traceEvents": trace_events(segments, hw), "displayTimeUnit": "ns",
            "otherData": {"design": hw.name, "clock_MHz": hw.clock_hz / 1e6}}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
