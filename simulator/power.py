"""Board power of a design: measured idle power + dynamic power per resource and activity.

Method (AMD UG440 / UG1556, the XPE and Power Design Manager spreadsheets):
``P = P_idle + sum over resources of count x clock x activity x energy per event``.

* **Static**: a measured idle board reading (plus labelled estimates for what
  differs from the board it was read on), from ``presets/power/default.yaml``.
* **DSP**: the design's DSPs (``simulator.resources``) x cycles x the busy
  fraction of the unit they belong to (matrix engine: MPE, SFU lanes: SFU)
  x XPE's random-data toggle rate x energy per fully toggling cycle.
* **Logic**: LUTs and FFs of each unit x the unit's busy fraction x XPE's
  default logic toggle rate x energy per net transition.
* **Clock tree**: every FF's clock pin switches every cycle, busy or not
  (the designs here do not gate clocks): FFs x cycles x energy.
* **BRAM / URAM**: the buffer traffic the simulation counts (bytes written
  by LD and read by the MPE), in 72-bit port accesses, x energy per access.
* **HBM**: bytes moved x energy per bit, plus each enabled pseudo channel's
  controller and PHY for the whole phase.

So power follows the design's resources, its clock, and the activity the
timing simulation measures. Every coefficient has a source or is labelled an
estimate in the YAML; the loader refuses one without a source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from llmaccel.simulator.resources import resource_usage
from llmaccel.simulator.specs._yaml import SpecError, load_yaml_mapping
from llmaccel.simulator.timing import Work

POWER_DIR = Path(__file__).resolve().parent / "presets" / "power"
DEFAULT_POWER_YAML = POWER_DIR / "default.yaml"
FABRIC_COEFFICIENTS = ("reference_vccint_V", "dsp_pJ_per_cycle_full_toggle", "dsp_toggle", "logic_fJ_per_lut_toggle",
                       "logic_fJ_per_ff_toggle", "logic_toggle", "clock_fJ_per_ff_cycle", "bram36_pJ_per_access",
                       "uram_pJ_per_access", "hbm_pJ_per_bit", "hbm_W_per_enabled_pseudo_channel")
BOARD_COEFFICIENTS = ("idle_W", "die_static_extra_W", "ddr_idle_W")
# fabric energies that scale with VCCINT^2 (the HBM's are on the HBM's own supplies)
VOLTAGE_SCALED = ("dsp_pJ_per_cycle_full_toggle", "logic_fJ_per_lut_toggle", "logic_fJ_per_ff_toggle",
                  "clock_fJ_per_ff_cycle", "bram36_pJ_per_access", "uram_pJ_per_access")
FRACTIONS = ("dsp_toggle", "logic_toggle")
PORT_ACCESS_BYTES = 9   # one 72-bit BRAM/URAM port word (AMD UG573)

# Which timing-engine unit's busy fraction drives each resource line of simulator.resources.
# A line not named here (core control, a unit a caller adds) is taken as active every cycle.
UNIT_ACTIVITY: dict[str, tuple[str, ...]] = {
    "dsp_chain": ("MPE",),        # the sparse DSP chains compute while the MPE is busy
    "weight_decoder": ("LD",),    # decoders run as weight tiles stream in
    "sfu_lane": ("SFU",),
    "hbm_port": ("LD", "ST"),     # AXI masters move data for loads and stores
}


@dataclass(frozen=True)
class Coefficient:
    value: Optional[float]
    source: str


def _coefficient(block: Any, key: str, where: str, fraction: bool = False) -> Coefficient:
    item = block.get(key) if isinstance(block, dict) else None
    if not isinstance(item, dict) or "value" not in item:
        raise SpecError(f"{where}.{key}: a power coefficient must be a mapping {{value: <number or null>, "
                        f"source: <text>}}; got {item!r}")
    src = item.get("source")
    if not isinstance(src, str) or not src.strip():
        raise SpecError(f"{where}.{key}: power coefficient {item.get('value')!r} has no source; allowed: a "
                        f"non-empty 'source' naming where the value comes from, or 'estimate: <how>'")
    v = item["value"]
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v)):
        raise SpecError(f"{where}.{key}: value {v!r} must be a finite number >= 0 or null")
    if fraction and v is not None and v > 1:
        raise SpecError(f"{where}.{key}: value {v!r} is a toggle rate; allowed: 0 <= value <= 1")
    return Coefficient(None if v is None else float(v), src)


@dataclass(frozen=True)
class BoardPowerCoefficients:
    """The coefficients that apply to one board: its fabric's per-resource energies and its static power."""

    device: str
    fabric: str
    fabric_coefficients: dict[str, Coefficient]
    board_coefficients: dict[str, Coefficient]
    path: str

    def get(self, key: str) -> Coefficient:
        if key in self.fabric_coefficients:
            return self.fabric_coefficients[key]
        return self.board_coefficients[key]

    @property
    def static_W(self) -> Optional[float]:
        vals = [self.board_coefficients[k].value for k in BOARD_COEFFICIENTS]
        return None if any(v is None for v in vals) else sum(vals)

    @property
    def missing(self) -> list[str]:
        """Coefficients the device has no value for (power is then not reported)."""
        out = [f"{k} ({self.board_coefficients[k].source})" for k in BOARD_COEFFICIENTS
               if self.board_coefficients[k].value is None]
        out += [f"{self.fabric}.{k} ({self.fabric_coefficients[k].source})" for k in FABRIC_COEFFICIENTS
                if self.fabric_coefficients[k].value is None]
        return out

    @property
    def sources(self) -> dict[str, str]:
        return {k: c.source for k, c in {**self.fabric_coefficients, **self.board_coefficients}.items()}


def load_power_coefficients(device_name: str, path: Optional[str | Path] = None) -> BoardPowerCoefficients:
    """The coefficients of ``device_name`` from the power YAML (``presets/power/default.yaml`` by default)."""
    p = Path(path) if path else DEFAULT_POWER_YAML
    data = load_yaml_mapping(p)
    boards = data.get("boards")
    fabrics = data.get("fabrics")
    if not isinstance(boards, dict) or not isinstance(fabrics, dict):
        raise SpecError(f"{p}: needs top-level mappings 'fabrics' and 'boards'")
    if device_name not in boards:
        raise SpecError(f"{p}: no power entry for device '{device_name}'; boards with one: {', '.join(sorted(boards))}")
    board = boards[device_name]
    fabric = board.get("fabric") if isinstance(board, dict) else None
    if fabric not in fabrics:
        raise SpecError(f"{p}: boards.{device_name}.fabric={fabric!r}; allowed: {', '.join(sorted(fabrics))}")
    fab = {k: _coefficient(fabrics[fabric], k, f"{p}: fabrics.{fabric}", k in FRACTIONS) for k in FABRIC_COEFFICIENTS}
    brd = {k: _coefficient(board, k, f"{p}: boards.{device_name}") for k in BOARD_COEFFICIENTS}
    return BoardPowerCoefficients(device_name, fabric, fab, brd, str(p))


@dataclass(frozen=True)
class ActivityLine:
    """Resources of one unit kind of the design and the timing units whose busy fraction drives them."""

    unit: str
    drivers: tuple[str, ...]       # () = active every cycle
    LUT: float
    FF: float
    DSP: float


@dataclass(frozen=True)
class PhaseEnergy:
    """Energy of one phase (prefill or decode): static + dynamic, with the dynamic part by component."""

    seconds: float
    static_J: Optional[float]
    dynamic_J: Optional[float]
    dynamic_breakdown_J: dict[str, float] = field(default_factory=dict)

    @property
    def total_J(self) -> Optional[float]:
        if self.static_J is None or self.dynamic_J is None:
            return None
        return self.static_J + self.dynamic_J

    @property
    def power_W(self) -> Optional[float]:
        t = self.total_J
        return None if t is None or self.seconds <= 0 else t / self.seconds

    @property
    def power_breakdown_W(self) -> dict[str, float]:
        if self.seconds <= 0:
            return {}
        out = {k: v / self.seconds for k, v in self.dynamic_breakdown_J.items()}
        if self.static_J is not None:
            out["static"] = self.static_J / self.seconds
        return out


@dataclass(frozen=True)
class PowerModel:
    """What power needs to know about one design on one board (built once, applied to each phase)."""

    design: str
    device: str
    clock_hz: float
    cores: int
    hbm_channels: int
    lines: tuple[ActivityLine, ...]
    ff_total: float
    uram_traffic_share: float        # share of buffer traffic that goes to URAM (the rest to BRAM)
    coefficients: BoardPowerCoefficients
    vccint_V: Optional[float] = None  # the device's VCCINT (device YAML clock.vccint_V); None: the fabric's reference

    @classmethod
    def build(cls, design: Any, device: Any, path: Optional[str | Path] = None,
              costs: Optional[Mapping[str, Any]] = None) -> "PowerModel":
        usage = resource_usage(design, costs)
        lines = tuple(ActivityLine(ln.unit, UNIT_ACTIVITY.get(ln.unit, ()), ln.total("LUT"), ln.total("FF"),
                                   ln.total("DSP")) for ln in usage.lines if not ln.unit.startswith("buffer:"))
        per_core = [b for b in design.buffers if b.scope == "core"]
        total = sum(b.size_bytes for b in per_core)
        uram = sum(b.size_bytes for b in per_core if b.memory == "URAM")
        return cls(design.name, device.name, design.clock_hz, design.cores, design.hbm_channels, lines,
                   float(usage.total("FF")), uram / total if total else 0.0,
                   load_power_coefficients(device.name, path), getattr(device.clock, "vccint_V", None))

    @property
    def voltage_scale(self) -> Optional[float]:
        """(VCCINT / the fabric energies' reference VCCINT)^2; 1 when the device does not state its VCCINT."""
        ref = self.coefficients.get("reference_vccint_V").value
        if ref is None:
            return None
        return 1.0 if self.vccint_V is None else (self.vccint_V / ref) ** 2

    @property
    def static_W(self) -> Optional[float]:
        return self.coefficients.static_W

    @property
    def unavailable_reason(self) -> Optional[str]:
        """Why power cannot be reported for this board, or None when it can."""
        miss = self.coefficients.missing
        return None if not miss else f"device '{self.device}' power coefficients not found: " + "; ".join(miss)

    @property
    def sources(self) -> dict[str, str]:
        out = dict(self.coefficients.sources)
        out["uram_traffic_share"] = (f"estimate: buffer traffic split between URAM and BRAM in proportion to the "
                                     f"design's per-core buffer capacity ({self.uram_traffic_share:.2f} URAM)")
        out["activity"] = ("simulation: busy fraction of the timing unit driving each resource line "
                           f"{dict(UNIT_ACTIVITY)}; other lines active every cycle")
        return out

    def busy_fractions(self, work: Work) -> dict[str, float]:
        if work.cycles <= 0:
            return {}
        return {u: b / (self.cores * work.cycles) for u, b in work.busy.items()}

    def _activity(self, line: ActivityLine, busy: dict[str, float]) -> float:
        if not line.drivers:
            return 1.0
        return min(1.0, sum(busy.get(u, 0.0) for u in line.drivers))   # LD and ST share a port: at most always on

    def phase(self, work: Work, seconds: float) -> PhaseEnergy:
        """Energy of a phase that took ``seconds`` and did ``work`` (counts summed over all cores)."""
        c = {k: self.coefficients.get(k).value for k in (*FABRIC_COEFFICIENTS, *BOARD_COEFFICIENTS)}
        static = None if self.static_W is None else self.static_W * seconds
        if any(c[k] is None for k in FABRIC_COEFFICIENTS):
            return PhaseEnergy(seconds, static, None, {})
        for k in VOLTAGE_SCALED:
            c[k] *= self.voltage_scale
        cycles = seconds * self.clock_hz
        busy = self.busy_fractions(work)
        dsp = logic = 0.0
        for line in self.lines:
            a = self._activity(line, busy)
            dsp += line.DSP * a * cycles * c["dsp_pJ_per_cycle_full_toggle"] * c["dsp_toggle"] * 1e-12
            logic += ((line.LUT * c["logic_fJ_per_lut_toggle"] + line.FF * c["logic_fJ_per_ff_toggle"])
                      * c["logic_toggle"] * a * cycles * 1e-15)
        accesses = work.buffer_bytes / PORT_ACCESS_BYTES
        uram = accesses * self.uram_traffic_share * c["uram_pJ_per_access"] * 1e-12
        bram = accesses * (1 - self.uram_traffic_share) * c["bram36_pJ_per_access"] * 1e-12
        hbm_bytes = work.hbm_read_bytes + work.hbm_write_bytes
        dyn = {
            "dsp": dsp,
            "logic": logic,
            "clock_tree": self.ff_total * cycles * c["clock_fJ_per_ff_cycle"] * 1e-15,
            "bram": bram,
            "uram": uram,
            "hbm_traffic": hbm_bytes * 8 * c["hbm_pJ_per_bit"] * 1e-12,
            "hbm_channels": self.hbm_channels * c["hbm_W_per_enabled_pseudo_channel"] * seconds,
        }
        return PhaseEnergy(seconds, static, sum(dyn.values()), dyn)
