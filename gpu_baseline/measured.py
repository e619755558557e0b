"""The schema of a GPU measurement file (``gpu_baseline/measurements/*.json``), and its loader.

Why a schema: ``llmaccel gpu-bench`` writes these files on a lent GPU, and the
GPU performance model (:mod:`gpu_baseline.perf_model`) and the reports read
them back on machines without one. A figure in a report that says
``measured`` must be traceable to one of these files, so every figure here is
tagged ``provenance: "measured"`` (the literal is the only value allowed), the
file names the GPU it ran on (NVML name, driver, clocks, the simulator device
preset it corresponds to), the software (torch, triton) and the commit.

Units are in the field names. Derived figures are checked against the
figures they derive from (``tokens_per_s`` against ``ms_per_token``,
``share_of_peak`` against ``GBps / peak_GBps``, ...), so a file with a unit
slip fails to load instead of feeding a report.

Conventions:

* ``ms_per_token`` of a prefill run is the prefill time divided by the
  prompt tokens (TTFT / prefill); of a decode run the median time of one
  decode step.
* Copy bandwidth counts bytes read plus bytes written (a copy of B bytes moves
  2B), the convention of STREAM's Copy and of NVIDIA's bandwidthTest.
* Energy is the delta of NVML's total-energy counter
  (``nvmlDeviceGetTotalEnergyConsumption``, mJ, converted to J) over the phase
  of one run: board energy, so it includes the idle power, which is measured
  and reported separately in ``idle_power``.
"""
from __future__ import annotations

import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmaccel import strict_json
from llmaccel.errors import LlmaccelError

SCHEMA_VERSION = 1
MEASUREMENTS_DIR = Path(__file__).resolve().parent / "measurements"

# Derived figures must agree with what they derive from to this relative
# tolerance: they are computed from the same medians, so only rounding of the
# printed numbers separates them (3 significant digits at least, 0.5 %).
_DERIVED_RTOL = 5e-3
# Average power against energy / time: energy and time are medians over
# repeats taken separately, and NVML's counter updates in steps, so they can
# disagree by some percent; 25 % still catches a unit slip (mJ as J is x1000).
_POWER_RTOL = 0.25

Measured = Literal["measured"]


class MeasurementError(LlmaccelError):
    """A measurement file that is missing, malformed or fails the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _close(a: float, b: float, rtol: float) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)


class GpuIdentity(_Strict):
    """Which GPU, driver and software produced the figures (from NVML, torch and triton)."""

    name: str = Field(min_length=1, description="NVML device name, e.g. 'NVIDIA H100 80GB HBM3'")
    device_preset: str = Field(min_length=1, description="simulator GPU device preset this GPU is, e.g. h100-sxm-80gb")
    driver_version: str = Field(min_length=1)
    cuda_version: Optional[str] = None
    memory_total_MiB: float = Field(gt=0)
    power_limit_W: Optional[float] = Field(default=None, gt=0)
    sm_clock_max_MHz: Optional[float] = Field(default=None, gt=0)
    mem_clock_max_MHz: Optional[float] = Field(default=None, gt=0)
    sm_clock_MHz: Optional[float] = Field(default=None, gt=0, description="SM clock read at the start of the run")
    mem_clock_MHz: Optional[float] = Field(default=None, gt=0)
    torch_version: str = Field(min_length=1)
    triton_version: str = Field(min_length=1)
    nvml_version: Optional[str] = None

    @field_validator("device_preset")
    @classmethod
    def _is_gpu_preset(cls, v: str) -> str:
        from llmaccel.simulator.specs.device import list_devices, load_device
        names = list_devices()
        if v not in names or load_device(v).kind != "gpu":
            gpus = [n for n in names if load_device(n).kind == "gpu"]
            raise ValueError(f"'{v}' is not a GPU device preset; allowed: {', '.join(gpus)}")
        return v


class CopyBandwidth(_Strict):
    """A device-to-device copy kernel measured in the same run: the achievable HBM bandwidth."""

    provenance: Measured
    bytes_copied: int = Field(gt=0, description="size of the source buffer (the copy moves twice this)")
    repeats: int = Field(ge=1)
    GBps: float = Field(gt=0, description="(read + written bytes) / median time, 1e9 bytes per GB")
    peak_GBps: float = Field(gt=0, description="datasheet HBM bandwidth of the device preset")
    share_of_peak: float = Field(gt=0)

    @model_validator(mode="after")
    def _share(self) -> "CopyBandwidth":
        if not _close(self.share_of_peak, self.GBps / self.peak_GBps, _DERIVED_RTOL):
            raise ValueError(f"share_of_peak={self.share_of_peak} but GBps/peak_GBps="
                             f"{self.GBps / self.peak_GBps:.4f}")
        return self


class IdlePower(_Strict):
    """Board power with nothing running, from the NVML energy counter over a quiet interval."""

    provenance: Measured
    W: float = Field(gt=0)
    seconds: float = Field(gt=0)


class ModelRun(_Strict):
    """One phase (prefill or decode) of a whole-model run at given lengths and recipe."""

    provenance: Measured
    phase: Literal["prefill", "decode"]
    model: str = Field(min_length=1, description="model preset whose shapes ran, e.g. llama2-7b")
    recipe: str = Field(min_length=1, description="'fp16' (dense baseline) or a mapping recipe name")
    impl: str = Field(min_length=1, description="what ran, e.g. 'triton-int8act', 'triton-fp16act', 'hf-fp16'")
    weights: Literal["synthetic", "checkpoint"]
    prefill: int = Field(ge=0)
    decode: int = Field(ge=0)
    repeats: int = Field(ge=1)
    cuda_graphs: Optional[bool] = None
    ms_per_token: float = Field(gt=0)
    tokens_per_s: float = Field(gt=0)
    energy_J: Optional[float] = Field(default=None, gt=0, description="NVML energy of the phase of one run")
    avg_power_W: Optional[float] = Field(default=None, gt=0)
    tokens_per_J: Optional[float] = Field(default=None, gt=0)

    @property
    def tokens(self) -> int:
        """Tokens of this phase: the prompt for prefill, the generated tokens for decode."""
        return self.prefill if self.phase == "prefill" else self.decode

    @model_validator(mode="after")
    def _consistent(self) -> "ModelRun":
        if self.tokens <= 0:
            raise ValueError(f"a {self.phase} run needs {self.phase} > 0 tokens")
        if not _close(self.tokens_per_s, 1e3 / self.ms_per_token, _DERIVED_RTOL):
            raise ValueError(f"tokens_per_s={self.tokens_per_s} but 1000/ms_per_token={1e3 / self.ms_per_token:.4g}")
        energy = (self.energy_J, self.avg_power_W, self.tokens_per_J)
        if any(v is not None for v in energy) and any(v is None for v in energy):
            raise ValueError("energy_J, avg_power_W and tokens_per_J come together (all measured or all null)")
        if self.energy_J is not None:
            if not _close(self.tokens_per_J, self.tokens / self.energy_J, _DERIVED_RTOL):
                raise ValueError(f"tokens_per_J={self.tokens_per_J} but {self.phase} tokens/energy_J="
                                 f"{self.tokens / self.energy_J:.4g}")
            seconds = self.tokens * self.ms_per_token / 1e3
            if not _close(self.avg_power_W, self.energy_J / seconds, _POWER_RTOL):
                raise ValueError(f"avg_power_W={self.avg_power_W} but energy_J/time={self.energy_J / seconds:.4g} W")
        return self


class KernelBench(_Strict):
    """One kernel benchmark row (a decode GEMV, a prefill GEMM, decode attention, ...)."""

    provenance: Measured
    kernel: str = Field(min_length=1, description="e.g. decode_gemv, prefill_gemm, decode_attention")
    format: str = Field(min_length=1, description="weight/KV format, e.g. w4-g128-sym, w4-g128-2:4, kv-int8")
    activation: Literal["int8", "fp16"]
    shape: dict[str, int] = Field(description="named sizes, e.g. out_features, in_features, tokens, context")
    split_k: Optional[int] = Field(default=None, ge=1)
    repeats: int = Field(ge=1)
    ms: float = Field(gt=0, description="median time of one call")
    bytes_moved: int = Field(gt=0)
    GBps: float = Field(gt=0)
    share_of_copy: Optional[float] = Field(default=None, gt=0, description="GBps / copy_bandwidth.GBps")
    TFLOPS: Optional[float] = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> "KernelBench":
        if not self.shape or any(v <= 0 for v in self.shape.values()):
            raise ValueError(f"shape={self.shape} must name at least one size, all > 0")
        if not _close(self.GBps, self.bytes_moved / (self.ms * 1e-3) / 1e9, _DERIVED_RTOL):
            raise ValueError(f"GBps={self.GBps} but bytes_moved/ms={self.bytes_moved / (self.ms * 1e6):.4g} GB/s")
        return self


class GpuMeasurement(_Strict):
    """One ``gpu-bench`` run on one GPU: identity, copy bandwidth, idle power, model runs, kernel rows."""

    schema_version: Literal[1]
    provenance: Measured
    date: datetime = Field(description="ISO 8601 with time zone, when the run started")
    commit: str = Field(pattern=r"^[0-9a-f]{7,40}(-dirty)?$")
    command: str = Field(min_length=1, description="the command line that produced the file")
    gpu: GpuIdentity
    copy_bandwidth: Optional[CopyBandwidth] = None
    idle_power: Optional[IdlePower] = None
    runs: list[ModelRun] = Field(default_factory=list)
    kernels: list[KernelBench] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    # Set by load_measurements (the file it came from); never written.
    source_file: Optional[str] = Field(default=None, exclude=True)

    @field_validator("date")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("date must carry a time zone (e.g. 2026-12-01T09:30:00Z)")
        return v

    @model_validator(mode="after")
    def _kernel_shares(self) -> "GpuMeasurement":
        if not self.runs and not self.kernels and self.copy_bandwidth is None:
            raise ValueError("a measurement holds at least one of copy_bandwidth, runs, kernels")
        for i, k in enumerate(self.kernels):
            if k.share_of_copy is None:
                continue
            if self.copy_bandwidth is None:
                raise ValueError(f"kernels.{i}.share_of_copy is given but copy_bandwidth is absent")
            if not _close(k.share_of_copy, k.GBps / self.copy_bandwidth.GBps, _DERIVED_RTOL):
                raise ValueError(f"kernels.{i}.share_of_copy={k.share_of_copy} but GBps/copy GBps="
                                 f"{k.GBps / self.copy_bandwidth.GBps:.4f}")
        return self

    def runs_of(self, phase: str, model: Optional[str] = None, recipe: Optional[str] = None) -> list[ModelRun]:
        """Model runs of one phase, optionally of one model and recipe."""
        return [r for r in self.runs if r.phase == phase and (model is None or r.model == model)
                and (recipe is None or r.recipe == recipe)]


def _first_error(exc: ValidationError) -> str:
    errs = exc.errors(include_url=False)
    e = errs[0]
    loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
    msg = e["msg"].removeprefix("Value error, ")
    more = f" (and {len(errs) - 1} more error(s))" if len(errs) > 1 else ""
    return f"field '{loc}': {msg}{more}"


def parse_measurement(path: str | Path) -> GpuMeasurement:
    """One measurement file, validated; a bad file raises one MeasurementError naming file and field."""
    path = Path(path)
    data = strict_json.read(path, MeasurementError, expect_object=True)  # no duplicate keys, NaN, Infinity
    data.pop("source_file", None)
    try:
        m = GpuMeasurement.model_validate(data)
    except ValidationError as exc:
        raise MeasurementError(f"{path}: {_first_error(exc)}") from None
    return m.model_copy(update={"source_file": path.name})


def load_measurements(root: str | Path | None = None, device: Optional[str] = None) -> list[GpuMeasurement]:
    """Every ``*.json`` under ``root`` (default ``gpu_baseline/measurements/``), validated, oldest first.

    ``device`` keeps only the files measured on that GPU device preset
    (``gpu.device_preset``). A missing default folder means no measurements;
    a missing ``root`` given by the caller is an error.
    """
    folder = MEASUREMENTS_DIR if root is None else Path(root)
    if not folder.is_dir():
        if root is None:
            return []
        raise MeasurementError(f"{folder}: measurement folder not found")
    found = [parse_measurement(p) for p in sorted(folder.glob("*.json"))]
    if device is not None:
        found = [m for m in found if m.gpu.device_preset == device]
    return sorted(found, key=lambda m: (m.date, m.source_file or ""))


def write_measurement(m: GpuMeasurement, path: str | Path) -> Path:
    """Write a measurement atomically (temporary name, then rename); refuses to overwrite a file."""
    path = Path(path)
    if path.exists():
        raise MeasurementError(f"{path}: exists; measurements are never overwritten (choose a new name)")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = m.model_dump_json(indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# NVML device names -> simulator device presets, for gpu-bench to fill gpu.device_preset.
# Names as NVML reports them (nvidia-smi --query-gpu=name); an unknown GPU gets None and the
# caller must name the preset.
_NVML_NAMES = (
    ("H200 NVL", None),          # different TDP and clocks from the SXM part; no preset yet
    ("H200", "h200-sxm-141gb"),
    ("H100 80GB HBM3", "h100-sxm-80gb"),
    ("H100 SXM", "h100-sxm-80gb"),
    ("A100-SXM4-80GB", "a100-sxm-80gb"),
    ("A100-PCIE-40GB", "a100-pcie-40gb"),
    ("V100S-PCIE-32GB", "v100s-pcie-32gb"),
)


def preset_for_gpu_name(nvml_name: str) -> Optional[str]:
    """The device preset of a GPU by its NVML name, or None when no preset describes it."""
    for needle, preset in _NVML_NAMES:
        if needle.lower() in nvml_name.lower():
            return preset
    return None
