"""Energy and power per phase: static board power x time + dynamic energy per counted event.

Events come from the timing run (``simulator.timing.Work``): INT8 MACs on the
DSP chains, decoded weights, SFU element-phases, on-chip buffer bytes, HBM
bits. Constants live in ``simulator/presets/energy/default.yaml``, each with
its source; the loader refuses a constant without one.
"""
from __future__ import annotations

import math

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from simulator.specs import schema
from simulator.specs._yaml import SpecError, load_yaml_mapping
from simulator.timing import Work

ENERGY_DIR = Path(__file__).resolve().parent / "presets" / "energy"


@dataclass(frozen=True)
class EnergyConstants:
    int8_mac_pJ: float
    decode_weight_pJ: float
    sfu_elem_phase_pJ: float
    buffer_pJ_per_byte: float
    hbm_pJ_per_bit: float
    static_W: Optional[float]
    sources: dict[str, str]


def _sourced(block: dict, key: str, where: str) -> tuple[Any, str]:
    item = block.get(key)
    if not isinstance(item, dict) or "value" not in item or not item.get("source"):
        raise SpecError(f"{where}: energy constant '{key}' must be a mapping with 'value' and 'source'")
    v = item["value"]
    if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v < math.inf):
        raise SpecError(f"{where}: energy constant '{key}' value {v!r} must be a finite number >= 0 or null"
                        + schema.quoted_hint(v, "number"))
    return v, item["source"]


def load_energy(device_name: str, path: Optional[str | Path] = None) -> EnergyConstants:
    p = Path(path) if path else ENERGY_DIR / "default.yaml"
    data = load_yaml_mapping(p)
    vals, src = {}, {}
    for key in ("int8_mac_pJ", "decode_weight_pJ", "sfu_elem_phase_pJ", "buffer_pJ_per_byte"):
        vals[key], src[key] = _sourced(data.get("ops", {}), key, str(p))
    vals["hbm_pJ_per_bit"], src["hbm_pJ_per_bit"] = _sourced(data.get("memory", {}), "hbm_pJ_per_bit", str(p))
    static = data.get("static", {})
    if device_name in static:
        vals["static_W"], src["static_W"] = _sourced(static, device_name, str(p))
    else:
        vals["static_W"], src["static_W"] = None, f"not found: no static power for device '{device_name}' in {p}"
    return EnergyConstants(**vals, sources=src)


@dataclass(frozen=True)
class PhaseEnergy:
    seconds: float
    static_J: Optional[float]
    dynamic_J: float
    dynamic_breakdown_J: dict[str, float]

    @property
    def total_J(self) -> Optional[float]:
        return None if self.static_J is None else self.static_J + self.dynamic_J

    @property
    def power_W(self) -> Optional[float]:
        t = self.total_J
        return None if t is None or self.seconds <= 0 else t / self.seconds


def phase_energy(work: Work, seconds: float, ec: EnergyConstants) -> PhaseEnergy:
    pj = {
        "dsp_mac": work.macs * ec.int8_mac_pJ,
        "weight_decode": work.decoded_weights * ec.decode_weight_pJ,
        "sfu": work.sfu_elems * 2 * ec.sfu_elem_phase_pJ,   # counted elements pass the SFU in (up to) two phases
        "buffers": work.buffer_bytes * ec.buffer_pJ_per_byte,
        "hbm": (work.hbm_read_bytes + work.hbm_write_bytes) * 8 * ec.hbm_pJ_per_bit,
    }
    dyn = {k: v * 1e-12 for k, v in pj.items()}
    static = None if ec.static_W is None else ec.static_W * seconds
    return PhaseEnergy(seconds, static, sum(dyn.values()), dyn)
