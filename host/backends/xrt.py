"""The XRT backend: the same session on a real Alveo board through pyxrt.

What it does where XRT and a board exist: opens the device, loads the
design's xclbin, allocates one buffer object per HBM bank on the memory
group of that bank's kernel port (``xrt_layout.buffer_layout``), writes the
packed weight rows, the artifact's instruction words and zeroed KV regions
at their placed offsets, syncs them to the device, and per step writes the
token's embedding and position, starts the kernel on the step's programs,
waits, and reads the logits slices back.

The kernel is the ISA top ``llmaccel_isa_top`` (hls_kernels/tops/isa_top.cpp,
C-simulated under g++ by tests/hls/test_isa_top.py). The xclbin built from it
for a design is named by :func:`xclbin_name`, and :func:`vpp_link_config`
writes the ``v++ --link`` configuration (compute unit, memory connectivity,
kernel clock) it is linked with; neither Vitis nor a board exists here, so the
xclbin is named and configured, never built.

Here (no pyxrt, no board) constructing it is one clear
:class:`~host.errors.BackendUnavailable` saying what is missing. The buffer
layout is pure code and is tested against the compiler's placement without
hardware (tests/host/test_xrt_layout.py); the run path itself has never
executed on a board in this project, which the report states.
"""
from __future__ import annotations

from typing import Any, Optional


from llmaccel.host.backends.simulator import StepOutcome
from llmaccel.host.backends.xrt_layout import layout_for_artifact  # noqa: F401  (weight_bank_images: the weight bytes)
from llmaccel.host.errors import BackendUnavailable

KERNEL_NAME = "llmaccel_isa_top"     # the function name of hls_kernels/tops/isa_top.cpp (a test checks it)
CU_NAME = f"{KERNEL_NAME}_1"
# the top's m_axi ports (hls_kernels/tops/isa_top.cpp INTERFACE pragmas): hbm spans the core's pseudo channels
TOP_PORTS = ("instr", "regions", "hbm", "x_in", "out", "status")


def xclbin_name(design_name: str) -> str:
    """The file the xclbin of ``design_name``'s ISA top is built to (what ``--xclbin`` should point at)."""
    return f"{KERNEL_NAME}.{design_name}.xclbin"


def vpp_link_config(design_name: str, clock_mhz: float, hbm_channels: int, instruction_memory: str = "ddr",
                    platform: str = "xilinx_u280_gen3x16_xdma_1_202211_1") -> str:
    """The ``v++ -l --config`` file that links the ISA top into :func:`xclbin_name` (UG1702 --connectivity).

    One compute unit; its ``hbm`` port reaches every pseudo channel the design uses (HBM[0:n-1]); the
    instruction and region-table ports sit where the design keeps instructions (DDR or HBM[0]); the
    embedding, logits and status ports on HBM[0]. ``platform`` must name the installed shell of the board.
    """
    if hbm_channels < 1:
        raise BackendUnavailable(f"design '{design_name}' uses {hbm_channels} HBM channels; the top needs >= 1")
    instr_mem = "DDR[0]" if instruction_memory == "ddr" else "HBM[0]"
    lines = [f"# v++ -l -t hw --config {KERNEL_NAME}.{design_name}.cfg -o {xclbin_name(design_name)} "
             f"{KERNEL_NAME}.xo", f"platform={platform}", "", "[connectivity]", f"nk={KERNEL_NAME}:1:{CU_NAME}",
             f"sp={CU_NAME}.hbm:HBM[0:{hbm_channels - 1}]", f"sp={CU_NAME}.instr:{instr_mem}",
             f"sp={CU_NAME}.regions:{instr_mem}"]
    lines += [f"sp={CU_NAME}.{port}:HBM[0]" for port in ("x_in", "out", "status")]
    lines += ["", "[clock]", f"freqHz={int(round(clock_mhz * 1e6))}:{CU_NAME}", ""]
    return "\n".join(lines)
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
                                     f"'{artifact.design_name}' ({xclbin_name(artifact.design_name)}, linked with "
                                     f"llmaccel.host.backends.xrt.vpp_link_config); none was given (xclbin=PATH)")
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
        raise BackendUnavailable(f"backend 'xrt': the board-side kernel {KERNEL_NAME} (hls_kernels/tops/isa_top.cpp) "
                                 "is C-simulated in this project but has never been built into an xclbin or run "
                                 "on a board, so this backend does not drive one yet")

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
