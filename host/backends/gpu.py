"""The gpu backend: the whole compressed model on a CUDA GPU through the Triton kernels (gpu_baseline).

Prefill runs the GEMM kernels over the prompt; decode runs the GEMV kernels and
the INT8-KV attention, captured once as a CUDA graph and replayed per token.
Step times are measured on the device (synchronised wall clock), not
simulated; energy per step is not measured here (NVML's counter is too coarse
for one step; ``llmaccel gpu-bench`` measures energy over many).

On a machine without CUDA the backend refuses with one error, unless Triton's
interpreter is on (``TRITON_INTERPRET=1``) and ``device='cpu'`` is asked for:
then the same code runs on CPU tensors, which is how CI checks its tokens.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import numpy as np

from llmaccel.host.backends.simulator import StepOutcome
from llmaccel.host.errors import BackendUnavailable


def resolve_device(device: Optional[str]):
    """The torch device the backend runs on, or one BackendUnavailable naming what is missing."""
    import os

    import torch
    interpreted = os.environ.get("TRITON_INTERPRET", "0") == "1"
    dev = torch.device(device or "cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise BackendUnavailable(
            f"backend 'gpu' needs a CUDA device, but torch.cuda.is_available() is False ({why}; torch "
            f"{torch.__version__}); allowed: a machine with an NVIDIA GPU and a CUDA build of torch, or "
            f"TRITON_INTERPRET=1 with device='cpu' to run the same kernels in Triton's interpreter")
    if dev.type == "cpu" and not interpreted:
        raise BackendUnavailable("backend 'gpu' on device='cpu' needs TRITON_INTERPRET=1 (Triton's interpreter) "
                                 "set before start; allowed devices: cuda, cuda:N")
    if dev.type not in ("cuda", "cpu"):
        raise BackendUnavailable(f"backend 'gpu' device='{device}' is unsupported; allowed: cuda, cuda:N")
    try:
        import triton  # noqa: F401
    except ImportError:
        raise BackendUnavailable("backend 'gpu' needs triton, which is not installed; allowed: "
                                 "pip install 'llmaccel[gpu]' (or bash scripts/setup.sh)") from None
    return dev


class GpuBackend:
    name = "gpu"
    simulated = False

    def __init__(self, artifact: Any, device: Optional[str] = None, cuda_graphs: bool = True,
                 activations: str = "int8"):
        dev = resolve_device(device)
        from llmaccel.gpu_baseline.triton_model import DecodeGraph, TritonModel
        self.artifact = artifact
        self.model = TritonModel.from_compressed(artifact.compressed, dev, artifact.max_len, activations)
        self.graph = DecodeGraph(self.model) if (cuda_graphs and dev.type == "cuda") else None

    @property
    def length(self) -> int:
        return self.model.length

    @property
    def max_len(self) -> int:
        return self.model.max_len

    def _timed(self, fn, *args) -> StepOutcome:
        import torch
        cuda = self.model.device.type == "cuda"
        t0 = time.perf_counter()
        logits = fn(*args)
        if cuda:
            torch.cuda.synchronize(self.model.device)
        seconds = time.perf_counter() - t0
        out = logits[-1].float().cpu().numpy().astype(np.float32)
        return StepOutcome(out, seconds if cuda else None, None)

    def prefill(self, ids: list[int]) -> StepOutcome:
        return self._timed(self.model.prefill, ids)

    def decode(self, token: int) -> StepOutcome:
        step = self.graph.decode if self.graph is not None else self.model.decode
        return self._timed(step, token)

    def reset(self) -> None:
        self.model.length = 0
