"""Clock checks: each clock a design runs against the datasheet Fmax of what it clocks.

A design's clocks are its own choice, but a clock is bounded by the primitives
it drives: the compute (kernel) clock drives the DSP chains and the on-chip
buffers, so it may not exceed the DSP, block RAM or UltraRAM Fmax of the
device's speed grade; an HBM-side clock drives the HBM controller's AXI ports,
bounded by the controller's port Fmax (AMD PG276 for UltraScale+ HBM: 450 MHz).
The limits live in the device YAML (``clock:`` block, each with its source).

Only datasheet limits are applied. Routed designs close timing well below
them (AutoBridge reports 297 MHz on average for floorplanned U280 HLS designs,
hardware.yaml ``clocks.achieved_kernel_clocks_on_u280``); no utilisation
derating is applied here, so passing this check does not mean a design will
close timing at its clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from llmaccel.simulator.specs.device import FpgaDevice
from llmaccel.errors import LlmaccelError

# Which device limits bound which design clock field. A design's compute clock drives the DSP chains
# and every on-chip buffer; the HBM-side clock (when the design has one) drives the HBM AXI ports.
# A design without an HBM-side clock reaches the HBM through a converter whose HBM side is the
# platform's, so there is no design clock to check against the AXI port limit.
COMPUTE_CLOCK_FIELD = "clock_MHz"
HBM_CLOCK_FIELDS = ("hbm_clock_MHz",)   # the design's HBM-side clock field (simulator.design)
LIMIT_LABELS = {
    "dsp_fmax_MHz": "DSP Fmax",
    "bram_fmax_MHz": "block RAM Fmax",
    "uram_fmax_MHz": "UltraRAM Fmax",
    "hbm_axi_fmax_MHz": "HBM AXI port Fmax",
}


class ClockLimitError(LlmaccelError):
    """A design clock above what its device's datasheet allows."""


@dataclass(frozen=True)
class ClockCheck:
    """One (design clock, device limit) pair: the clock, the limit and where the limit comes from."""

    clock_field: str
    clock_MHz: float
    limit: str                     # device ClockLimits field, e.g. 'dsp_fmax_MHz'
    limit_MHz: Optional[float]     # None: the device spec does not know it (unchecked)
    source: str

    @property
    def ok(self) -> Optional[bool]:
        return None if self.limit_MHz is None else self.clock_MHz <= self.limit_MHz

    @property
    def headroom(self) -> Optional[float]:
        """limit / clock (>= 1 passes)."""
        return None if self.limit_MHz is None else self.limit_MHz / self.clock_MHz

    def problem(self, design_name: str, device_name: str) -> str:
        return (f"design '{design_name}' field '{self.clock_field}' = {self.clock_MHz:g} MHz is above the "
                f"{LIMIT_LABELS[self.limit]} of device '{device_name}' ({self.limit_MHz:g} MHz; allowed: "
                f"{self.clock_field} <= {self.limit_MHz:g}; source: {self.source})")


@dataclass(frozen=True)
class ClockReport:
    design: str
    device: str
    checks: tuple[ClockCheck, ...] = field(default_factory=tuple)

    @property
    def problems(self) -> list[str]:
        return [c.problem(self.design, self.device) for c in self.checks if c.ok is False]

    @property
    def unchecked(self) -> list[str]:
        return [f"{c.clock_field}: {c.clock_MHz:g} MHz; device {LIMIT_LABELS[c.limit]} not found"
                for c in self.checks if c.ok is None]

    def to_dict(self) -> dict[str, Any]:
        return {"design": self.design, "device": self.device,
                "checks": [{"clock": c.clock_field, "clock_MHz": c.clock_MHz, "limit": c.limit,
                            "limit_MHz": c.limit_MHz, "ok": c.ok, "source": c.source} for c in self.checks]}


def _memories_used(design: Any) -> set[str]:
    """The on-chip memory primitives the design's buffers use ('URAM', 'BRAM'). The HBM port FIFOs and
    core control of :mod:`simulator.resources` take block RAM in every design, so BRAM is always clocked."""
    return {b.memory for b in design.buffers} | {"BRAM"}


def _hbm_clock(design: Any) -> Optional[tuple[str, float]]:
    for name in HBM_CLOCK_FIELDS:
        v = getattr(design, name, None)
        if v is not None:
            return name, float(v)
    return None


def clock_report(design: Any, device: FpgaDevice) -> ClockReport:
    """Every design clock against every device limit that bounds it (no exception; see :func:`check_clocks`)."""
    lim = device.clock
    compute = float(getattr(design, COMPUTE_CLOCK_FIELD))
    pairs = [(COMPUTE_CLOCK_FIELD, compute, "dsp_fmax_MHz")]
    mems = _memories_used(design)
    if "BRAM" in mems:
        pairs.append((COMPUTE_CLOCK_FIELD, compute, "bram_fmax_MHz"))
    if "URAM" in mems:
        pairs.append((COMPUTE_CLOCK_FIELD, compute, "uram_fmax_MHz"))
    hbm = _hbm_clock(design)
    if hbm is not None and device.hbm is not None:
        pairs.append((hbm[0], hbm[1], "hbm_axi_fmax_MHz"))
    checks = tuple(ClockCheck(f, mhz, limit, getattr(lim, limit), lim.source_of(limit)) for f, mhz, limit in pairs)
    return ClockReport(design.name, device.name, checks)


def check_clocks(design: Any, device: FpgaDevice) -> ClockReport:
    """Raise one :class:`ClockLimitError` naming every clock over its limit; return the report otherwise."""
    report = clock_report(design, device)
    if report.problems:
        raise ClockLimitError("; ".join(report.problems))
    return report
