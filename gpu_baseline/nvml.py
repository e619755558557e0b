"""NVML (nvidia-ml-py) for GPU identity and energy: the total-energy counter, clocks, driver.

Energy is the delta of ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the
driver loaded; Volta and newer): board energy over an interval, so it
includes the idle power, which :func:`measure_idle_power` measures on its own.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

from llmaccel.errors import LlmaccelError


class NvmlUnavailable(LlmaccelError):
    """NVML is absent: the nvidia-ml-py package or the driver's libnvidia-ml is missing, or no GPU answers."""


@dataclass
class Nvml:
    """An initialised NVML handle for one GPU (index as CUDA numbers it, assuming no CUDA_VISIBLE_DEVICES remap)."""

    lib: Any
    handle: Any
    index: int

    @classmethod
    def open(cls, index: int = 0) -> "Nvml":
        try:
            import pynvml
        except ImportError:
            raise NvmlUnavailable("NVML absent: the nvidia-ml-py package is not installed; allowed: "
                                  "pip install 'llmaccel[gpu]' (or bash scripts/setup.sh), or --no-energy") from None
        try:
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(f"NVML absent: {exc} (nvidia-ml-py needs the NVIDIA driver's libnvidia-ml and a "
                                  f"GPU at index {index}); allowed: a machine with the NVIDIA driver, or "
                                  f"--no-energy") from None
        return cls(pynvml, handle, index)

    def _str(self, v) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    def energy_J(self) -> float:
        """The board's total-energy counter now, in J."""
        return self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1e3

    def name(self) -> str:
        return self._str(self.lib.nvmlDeviceGetName(self.handle))

    def driver_version(self) -> str:
        return self._str(self.lib.nvmlSystemGetDriverVersion())

    def nvml_version(self) -> str:
        return self._str(self.lib.nvmlSystemGetNVMLVersion())

    def _maybe(self, fn, *args) -> Optional[float]:
        try:
            v = float(fn(self.handle, *args))
        except self.lib.NVMLError:
            return None
        return v if v > 0 else None     # 0 means "not reported" for clocks and limits

    def clocks(self) -> dict[str, Optional[float]]:
        L = self.lib
        return {"sm_clock_MHz": self._maybe(L.nvmlDeviceGetClockInfo, L.NVML_CLOCK_SM),
                "mem_clock_MHz": self._maybe(L.nvmlDeviceGetClockInfo, L.NVML_CLOCK_MEM),
                "sm_clock_max_MHz": self._maybe(L.nvmlDeviceGetMaxClockInfo, L.NVML_CLOCK_SM),
                "mem_clock_max_MHz": self._maybe(L.nvmlDeviceGetMaxClockInfo, L.NVML_CLOCK_MEM)}

    def power_limit_W(self) -> Optional[float]:
        mw = self._maybe(self.lib.nvmlDeviceGetEnforcedPowerLimit)
        return None if mw is None else mw / 1e3

    def memory_total_MiB(self) -> float:
        return self.lib.nvmlDeviceGetMemoryInfo(self.handle).total / 2 ** 20


def measure_idle_power(nvml: Nvml, seconds: float = 3.0) -> tuple[float, float]:
    """(W, seconds): energy-counter delta over a quiet interval with nothing launched."""
    import torch
    torch.cuda.synchronize()
    e0, t0 = nvml.energy_J(), time.perf_counter()
    time.sleep(seconds)
    e1, t1 = nvml.energy_J(), time.perf_counter()
    return (e1 - e0) / (t1 - t0), t1 - t0
