"""Device specs (FPGA boards and GPUs) with the source of every number.

The facts come from ``shared/anchors/hardware.yaml``; each block carries the
``source`` it was read from, and ``sources`` overrides it for single fields
(a derived figure, a second-hand one, a labelled guess). A fact that was not
found stays ``None`` and :meth:`source_of` says "not found": models must
refuse to use it rather than invent it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

from llmaccel.simulator.specs._yaml import SpecError, build, load_yaml_mapping, preset_names, preset_path

NOT_FOUND = "not found"
FPGA_RESOURCES = ("LUT", "FF", "DSP", "BRAM36", "URAM")


class _Sourced:
    """Mixin: ``source_of(field)`` gives the source of one number of a block."""

    source: str
    sources: dict[str, str]

    def source_of(self, name: str) -> str:
        if getattr(self, name) is None:
            return NOT_FOUND
        return self.sources.get(name, self.source)

    def __post_init__(self) -> None:
        names = {f.name for f in dataclasses.fields(self)} - {"source", "sources"}
        for key in self.sources:
            if key not in names:
                raise SpecError(f"sources.{key}: no such field; fields with numbers: {', '.join(sorted(names))}")
        for name in names:
            v = getattr(self, name)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
                raise SpecError(f"{name}={v} must be >= 0")


@dataclass(frozen=True)
class FpgaResources(_Sourced):
    """Resource counts of a device or of the user region a shell leaves free."""

    LUT: Optional[int] = None
    FF: Optional[int] = None
    DSP: Optional[int] = None
    BRAM36: Optional[int] = None
    URAM: Optional[int] = None
    source: str = NOT_FOUND
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _Sourced.__post_init__(self)


@dataclass(frozen=True)
class HbmSpec(_Sourced):
    capacity_GB: Optional[float] = None
    pseudo_channels: Optional[int] = None
    per_channel_GBps: Optional[float] = None
    total_GBps: Optional[float] = None
    generation: Optional[str] = None
    source: str = NOT_FOUND
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _Sourced.__post_init__(self)
        if self.pseudo_channels is not None and self.pseudo_channels <= 0:
            raise SpecError(f"pseudo_channels={self.pseudo_channels} must be > 0")

    @property
    def capacity_bytes(self) -> Optional[int]:
        return None if self.capacity_GB is None else int(self.capacity_GB * (1 << 30))

    @property
    def channel_capacity_bytes(self) -> Optional[int]:
        if self.capacity_bytes is None or not self.pseudo_channels:
            return None
        return self.capacity_bytes // self.pseudo_channels


@dataclass(frozen=True)
class DdrSpec(_Sourced):
    capacity_GB: Optional[float] = None
    total_GBps: Optional[float] = None
    source: str = NOT_FOUND
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _Sourced.__post_init__(self)


@dataclass(frozen=True)
class BoardPower(_Sourced):
    board_max_W: Optional[float] = None
    measured_llm_W: Optional[str] = None  # free text: measured ranges quoted from their sources
    hbm_power_note: Optional[str] = None
    source: str = NOT_FOUND
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _Sourced.__post_init__(self)


@dataclass(frozen=True)
class ClockLimits(_Sourced):
    """Datasheet clock limits of the device's primitives at its speed grade and VCCINT.

    The design's clocks are its own choice; :mod:`simulator.clocks` checks them
    against these. A limit that was not found stays ``None`` and is reported as
    unchecked, never assumed.
    """

    dsp_fmax_MHz: Optional[float] = None       # DSP48E2 / DSP58, fully pipelined
    bram_fmax_MHz: Optional[float] = None      # block RAM (RAMB36)
    uram_fmax_MHz: Optional[float] = None      # UltraRAM (URAM288)
    hbm_axi_fmax_MHz: Optional[float] = None   # the HBM controller's AXI port clock
    speed_grade: Optional[str] = None
    vccint_V: Optional[float] = None
    source: str = NOT_FOUND
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _Sourced.__post_init__(self)


@dataclass(frozen=True)
class AieSpec(_Sourced):
    tiles: Optional[int] = None
    int8_TOPS: Optional[float] = None
    source: str = NOT_FOUND
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _Sourced.__post_init__(self)


@dataclass(frozen=True)
class FpgaDevice:
    """An FPGA board: part, resources, off-chip memories, power facts."""

    name: str
    kind: Literal["fpga"]
    part: str
    dsp_primitive: Literal["DSP48E2", "DSP58"]
    resources_full_device: FpgaResources
    resources_user_region: Optional[FpgaResources] = None
    user_region_name: Optional[str] = None
    hbm: Optional[HbmSpec] = None
    ddr: Optional[DdrSpec] = None
    power: BoardPower = field(default_factory=BoardPower)
    clock: ClockLimits = field(default_factory=ClockLimits)
    aie: Optional[AieSpec] = None
    notes: str = ""

    def available(self, resource: str) -> tuple[Optional[int], str, str]:
        """``(count, source, region)`` of a resource a design may use: the shell's user region
        where known (a design cannot use what the shell occupies), else the full device."""
        if resource not in FPGA_RESOURCES:
            raise SpecError(f"unknown FPGA resource '{resource}'; allowed: {', '.join(FPGA_RESOURCES)}")
        user = self.resources_user_region
        if user is not None and getattr(user, resource) is not None:
            return getattr(user, resource), user.source_of(resource), f"user region ({self.user_region_name})"
        full = self.resources_full_device
        return getattr(full, resource), full.source_of(resource), "full device"


@dataclass(frozen=True)
class GpuDevice(_Sourced):
    """A GPU: datasheet bandwidth, peak tensor throughput, TDP."""

    name: str
    kind: Literal["gpu"]
    memory_GB: Optional[float] = None
    hbm_GBps: Optional[float] = None
    fp16_tensor_TFLOPS_dense: Optional[float] = None
    bf16_tensor_TFLOPS_dense: Optional[float] = None
    int8_TOPS_dense: Optional[float] = None
    tdp_W: Optional[float] = None
    source: str = NOT_FOUND
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _Sourced.__post_init__(self)


Device = Union[FpgaDevice, GpuDevice]
_KINDS = {"fpga": FpgaDevice, "gpu": GpuDevice}


def list_devices() -> list[str]:
    """Names of the bundled device presets."""
    return preset_names("devices")


def load_device(name_or_path: str | Path) -> Device:
    """A device preset by name (``alveo-u280``) or a device YAML file of the same form."""
    text = str(name_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) else preset_path("devices", text)
    data = load_yaml_mapping(path)
    kind = data.get("kind")
    if kind not in _KINDS:
        raise SpecError(f"{path}: field 'kind' must be one of {', '.join(repr(k) for k in _KINDS)}, got {kind!r}")
    return build(_KINDS[kind], data, path)


def sourced_facts(obj: Any, prefix: str = "") -> dict[str, tuple[Any, str]]:
    """Every number of a spec with its source: ``{"hbm.total_GBps": (460.0, "AMD UG1393 ..."), ...}``.

    Reports and the ``presets`` command print this, so a reader sees where each
    figure comes from; ``None`` values appear with source "not found".
    """
    out: dict[str, tuple[Any, str]] = {}
    for f in dataclasses.fields(obj):
        if f.name in ("source", "sources"):
            continue
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            out.update(sourced_facts(v, f"{prefix}{f.name}."))
        elif isinstance(obj, _Sourced) and (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))):
            out[prefix + f.name] = (v, obj.source_of(f.name))
    return out
