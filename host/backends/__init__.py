"""Backends a Session runs on: the functional+timing simulator (default), XRT (a real board), a CUDA GPU."""
from __future__ import annotations

from typing import Any

from llmaccel.host.errors import SessionError

BACKENDS = ("simulator", "xrt", "gpu")


def make_backend(name: str, artifact: Any, **kw: Any):
    if name == "simulator":
        from llmaccel.host.backends.simulator import SimulatorBackend
        return SimulatorBackend(artifact)
    if name == "xrt":
        from llmaccel.host.backends.xrt import XrtBackend
        return XrtBackend(artifact, **kw)
    if name == "gpu":
        from llmaccel.host.backends.gpu import GpuBackend
        return GpuBackend(artifact, **kw)
    raise SessionError(f"backend='{name}' is unknown; allowed: {', '.join(BACKENDS)}")
