"""Component-by-component validation: published measurements replayed through the simulator's own code.

Each check is a registered function returning :class:`ValidationRow` s: the
component, what was measured, its source, the measured value and the value the
simulator's component model gives for the same setup (computed by the same
code the simulation uses: ``MemorySystem``, ``simulator.clocks``,
``PowerModel``), and the error. Rules that keep this honest:

* A row compares against a measurement the model was **not built from**: the
  HBM rows replay only the ``use: check`` rows of the memory table, never the
  ``use: model`` rows the model interpolates.
* A **bound** row checks that a published figure lies on the right side of a
  model limit (achieved clocks below the datasheet Fmax).
* An **end_to_end** row compares a whole accelerator's published figure; it is
  a check only and never sets or chooses a constant (``DESIGN.md``). It needs
  the compiler (``mapping``, above this package), so ``llmaccel validate``
  registers it (``llmaccel/commands/validate.py``).
* Where no held-out measurement exists the row says **not_checked** and why,
  instead of comparing the model against its own input.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Callable, Optional

from llmaccel.simulator.clocks import clock_report
from llmaccel.simulator.design import load_design
from llmaccel.simulator.memory_system import MemorySystem, load_hbm_measurements
from llmaccel.simulator.power import PowerModel
from llmaccel.simulator.specs.device import load_device
from llmaccel.simulator.timing import Work

KINDS = ("check", "bound", "end_to_end", "not_checked")


@dataclass(frozen=True)
class ValidationRow:
    component: str
    name: str
    source: str
    measured: Optional[float]          # for a range (end_to_end power), the low end; see measured_high
    model: Optional[float]
    unit: str
    kind: str = "check"
    note: str = ""
    measured_high: Optional[float] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}; allowed: {', '.join(KINDS)}")
        if not self.source:
            raise ValueError(f"validation row '{self.name}' has no source")

    @property
    def error(self) -> Optional[float]:
        """(model - measured) / measured; for a measured range, the distance to the nearer end (0 inside)."""
        if self.measured is None or self.model is None or self.kind == "bound":
            return None
        if self.measured_high is not None:
            if self.measured <= self.model <= self.measured_high:
                return 0.0
            end = self.measured if self.model < self.measured else self.measured_high
            return (self.model - end) / end
        return (self.model - self.measured) / self.measured

    @property
    def holds(self) -> Optional[bool]:
        """For a bound row: the measured figure is within the model's limit."""
        if self.kind != "bound" or self.measured is None or self.model is None:
            return None
        return self.measured <= self.model

    def text_cells(self, range_digits: int = 4, percent: str = " %",
                   unchecked: Optional[str] = None) -> tuple[str, str, str]:
        """(measured, model, error) as shown in a table: one formatting for the markdown report and the
        CLI, which differ only in the room they give a range and how they mark an unchecked row."""
        if self.measured is None:
            meas = "-"
        elif self.measured_high is None:
            meas = f"{self.measured:.4g}"
        else:
            meas = f"{self.measured:.{range_digits}g}-{self.measured_high:.{range_digits}g}"
        model = "-" if self.model is None else f"{self.model:.4g}"
        if self.kind == "bound":
            err = "holds" if self.holds else "VIOLATED"
        elif self.kind == "not_checked" and unchecked is not None:
            err = unchecked
        else:
            err = "-" if self.error is None else f"{100 * self.error:+.1f}{percent}"
        return meas, model, err

    def to_dict(self) -> dict:
        d = asdict(self)
        d["error"] = self.error
        d["holds"] = self.holds
        return d


CheckFn = Callable[[], list[ValidationRow]]
REGISTRY: dict[str, CheckFn] = {}


def component(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check under a component name (one place lists what `llmaccel validate` covers)."""
    def deco(fn: CheckFn) -> CheckFn:
        if name in REGISTRY:
            raise ValueError(f"component '{name}' registered twice")
        REGISTRY[name] = fn
        return fn
    return deco


# ---------------------------------------------------------------------------------------------- HBM
# The measurement setups of the held-out rows: Vitis examples and tutorials use 512-bit HLS m_axi
# masters at the platform's default kernel clock (300 MHz, hardware.yaml clocks.platform_default_kernel_clock_MHz,
# uncertain); Shuhai's RTL traffic generators drive the 256-bit HBM AXI ports at 450 MHz.
def _setup(source: str) -> tuple[int, float, str]:
    if "Shuhai" in source:
        return 256, 450.0, "256-bit master at 450 MHz (Shuhai's RTL traffic generators on the HBM AXI ports)"
    return 512, 300.0, ("512-bit HLS m_axi at 300 MHz (platform default kernel clock, hardware.yaml; "
                        "uncertain)")


@component("hbm_bandwidth")
def hbm_bandwidth() -> list[ValidationRow]:
    rows = []
    for m in load_hbm_measurements():
        if m.use != "check":
            continue      # the model interpolates 'use: model' rows: comparing with them would be circular
        bits, mhz, setup = _setup(m.source)
        ms = MemorySystem.from_table(kernel_port_bits=bits, kernel_clock_MHz=mhz)
        model = ms.bandwidth_GBps(pattern=m.pattern, access_bytes=m.access_bytes, channels=m.channels,
                                  masters_per_channel=m.masters_per_channel, crosses_switch=m.crosses_switch)
        note = "; ".join(x for x in (setup, m.note, f"uncertain: {m.uncertain}" if m.uncertain else "") if x)
        rows.append(ValidationRow("hbm_bandwidth", m.label, m.source, m.measured_GBps, model, "GB/s",
                                  "check", note))
    return rows


@component("hbm_latency")
def hbm_latency() -> list[ValidationRow]:
    ms = MemorySystem.from_table()
    return [ValidationRow(
        "hbm_latency", "idle read latency, one access (sequential, page hit)",
        "model input: Wang et al., Shuhai, FCCM 2020 idle-latency table (presets/memory/hbm_u280.yaml latency_ns)",
        None, ms.read_latency_ns("sequential"), "ns", "not_checked",
        "no held-out latency measurement: the model's latency IS the Shuhai figure (plus the converter "
        "estimate), so comparing them would be circular; the latency is exercised indirectly by the "
        "outstanding-transactions bound inside the held-out bandwidth rows")]


# ---------------------------------------------------------------------------------------------- clocks
# Kernel clocks achieved on the U280 by published designs (hardware.yaml clocks.achieved_kernel_clocks_on_u280,
# published_accelerator_architectures). Each must lie below the datasheet limit the clock model applies.
_ACHIEVED_U280 = (
    ("HLS designs with floorplanning, average of 43 configs", 297.0, "Guo et al., AutoBridge, FPGA 2021 (abstract)"),
    ("Serpens SpMV, 24 HBM channels", 270.0, "UCLA-VAST/tapa README (second_hand)"),
    ("FlightLLM Llama2-7B accelerator", 225.0, "FlightLLM, FPGA 2024 (hardware.yaml flightllm_u280.clock_MHz)"),
)


@component("fmax")
def fmax() -> list[ValidationRow]:
    dev = load_device("alveo-u280")
    base = load_design("flightllm-u280")
    rows = []
    for what, mhz, src in _ACHIEVED_U280:
        rep = clock_report(dataclasses.replace(base, clock_MHz=mhz, hbm_clock_MHz=None), dev)
        limits = [c for c in rep.checks if c.limit_MHz is not None]
        tight = min(limits, key=lambda c: c.limit_MHz)
        rows.append(ValidationRow("fmax", f"achieved kernel clock: {what}", src, mhz, tight.limit_MHz, "MHz", "bound",
                                  f"model limit: {tight.limit} ({tight.source}); a datasheet Fmax is an upper "
                                  f"bound, routed designs close well below it"))
    return rows


# ---------------------------------------------------------------------------------------------- power
@component("power_idle")
def power_idle() -> list[ValidationRow]:
    pm = PowerModel.build(load_design("flightllm-u280"), load_device("alveo-u280"))
    idle = pm.coefficients.get("idle_W")
    # xbutil examine on another Alveo card (Xilinx/XRT PR #3697): "Power : 17.423810 Watts"; the card is not
    # named in the thread (it has DDR rails and a fan), and that reading was not used to build the model.
    return [ValidationRow(
        "power_idle", "Alveo board idle power (the model's idle proxy vs another card's reading)",
        "Xilinx/XRT PR #3697, xbutil examine electrical: 17.42 W (card not named, no kernel stated)",
        17.42, idle.value, "W", "check",
        f"model idle proxy: {idle.source}. Checks that the proxy is representative of an idle Alveo card; "
        f"the U280's own adders ({pm.static_W - idle.value:.1f} W, estimates) are not checked by it")]


@component("power_dynamic")
def power_dynamic() -> list[ValidationRow]:
    pm = PowerModel.build(load_design("flightllm-u280"), load_device("alveo-u280"))
    bw = 400e9
    e = pm.phase(Work(cycles=pm.clock_hz, hbm_read_bytes=bw), 1.0)
    hbm_W = e.dynamic_breakdown_J["hbm_traffic"] + e.dynamic_breakdown_J["hbm_channels"]
    return [ValidationRow(
        "power_dynamic", "HBM subsystem power at about 400 GB/s (traffic + 32 enabled pseudo channels)",
        "AMD xbtest calibration documentation: HBM can draw about 40 W at about 400 GB/s (hardware.yaml "
        "fpga.alveo_u280.hbm_power_note, second_hand)",
        40.0, hbm_W, "W", "check",
        "second_hand 'about' figure; it may include the xbtest memory CU logic and regulator losses, which the "
        "model books elsewhere (logic, clock tree) or not at all")]


@dataclass(frozen=True)
class ValidationReport:
    rows: tuple[ValidationRow, ...]

    @property
    def summary(self) -> dict:
        errs = [abs(r.error) for r in self.rows if r.kind == "check" and r.error is not None]
        return {"rows": len(self.rows),
                "checks": sum(r.kind == "check" for r in self.rows),
                "bounds_hold": sum(bool(r.holds) for r in self.rows if r.kind == "bound"),
                "bounds": sum(r.kind == "bound" for r in self.rows),
                "not_checked": sum(r.kind == "not_checked" for r in self.rows),
                "median_abs_error": sorted(errs)[len(errs) // 2] if errs else None,
                "max_abs_error": max(errs) if errs else None}

    def to_dict(self) -> dict:
        return {"summary": self.summary, "rows": [r.to_dict() for r in self.rows]}

    def markdown(self) -> str:
        head = ("| component | measurement | kind | measured | model | error | source |\n"
                "| --- | --- | --- | --- | --- | --- | --- |")
        lines = [head]
        for r in self.rows:
            meas, model, err = r.text_cells()
            lines.append(f"| {r.component} | {r.name} | {r.kind} | {meas} {r.unit} | {model} {r.unit} | {err} | "
                         f"{r.source} |")
        return "\n".join(lines)


def run_validation(components: Optional[list[str]] = None) -> ValidationReport:
    """Run the registered checks (all, or the named components) in registration order."""
    names = list(REGISTRY) if not components else components
    bad = [n for n in names if n not in REGISTRY]
    if bad:
        from llmaccel.errors import LlmaccelError
        raise LlmaccelError(f"unknown validation component '{bad[0]}'; allowed: {', '.join(REGISTRY)}")
    rows: list[ValidationRow] = []
    for n in names:
        rows.extend(REGISTRY[n]())
    return ValidationReport(tuple(rows))
