"""Resource model: a design's LUT/FF/DSP/BRAM36/URAM, derived from its unit counts.

Usage = sum over unit kinds of (count x per-unit cost). Buffers are costed from
the geometry of the memory primitives (exact for a given banking); logic units
from a per-unit cost table. The table is built in ONE place,
:func:`unit_costs`, so a better table can be swapped in: yosys-measured
figures from ``sparse_dsp.unit_costs`` replace the estimates for the units the
RTL helper has synthesized, and a caller may pass its own table to
:func:`resource_usage` / :func:`fit_check`.

Every per-unit figure names its source; estimates and guesses say so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional

from llmaccel.simulator.clocks import clock_report
from llmaccel.simulator import fp16_datapath as F16
from llmaccel.simulator.design import AcceleratorDesign, BufferSpec
from llmaccel.simulator.specs.device import FPGA_RESOURCES, Device, FpgaDevice
from llmaccel.errors import LlmaccelError

# URAM288: 4096 x 72 bits. Source: AMD UG573 (UltraScale Architecture Memory Resources), UltraRAM
# chapter (from memory, not re-read here; the same figure is used by simulator/timing_params.py).
URAM_DEPTH, URAM_WIDTH = 4096, 72
# RAMB36E2 aspect ratios (depth x width); 512 x 72 only in simple dual-port mode.
# Source: AMD UG573, block RAM chapter (from memory, not re-read here).
BRAM36_SHAPES = ((32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18), (1024, 36), (512, 72))


class DesignFitError(LlmaccelError):
    """A design that needs more of a resource than its device has."""


@dataclass(frozen=True)
class UnitCost:
    """Resources of ONE instance of a unit, with where the figures come from."""

    LUT: float = 0
    FF: float = 0
    DSP: float = 0
    BRAM36: float = 0
    URAM: float = 0
    source: str = "estimate"

    def get(self, resource: str) -> float:
        return getattr(self, resource)


def bram36_per_bank(width_bits: int, depth: int) -> int:
    """Fewest RAMB36 for one ``width_bits`` x ``depth`` memory (best aspect ratio, cascaded in depth)."""
    return min(math.ceil(width_bits / w) * math.ceil(depth / d) for d, w in BRAM36_SHAPES)


def uram_per_bank(width_bits: int, depth: int) -> int:
    return math.ceil(width_bits / URAM_WIDTH) * math.ceil(depth / URAM_DEPTH)


def buffer_cost(buf: BufferSpec) -> UnitCost:
    """Primitives of one buffer instance: per bank, tiled from the primitive geometry."""
    if buf.memory == "URAM":
        return UnitCost(URAM=buf.banks * uram_per_bank(buf.width_bits, buf.depth),
                        source="derived: URAM288 4096x72 geometry (AMD UG573)")
    return UnitCost(BRAM36=buf.banks * bram36_per_bank(buf.width_bits, buf.depth),
                    source="derived: RAMB36 aspect ratios (AMD UG573)")


# ----- per-unit logic costs: estimates until yosys figures exist ---------------------------------
def _chain_estimate(chain_len: int, m_max: int, segments: int) -> UnitCost:
    mux_luts_per_bit = math.ceil(m_max / 4)  # 4:1 per LUT6, wider via MUXF7/MUXF8 (UltraScale+ CLB, UG574)
    lane_bits = 2 * 8                        # two INT8 activations per DSP (WP486 packing)
    adders = (2 * segments + 1) * 2 * 32     # unpack + reduction tree + group accumulator, 2 lanes x 32 bit
    return UnitCost(
        DSP=chain_len,  # structural: one DSP48E2 per slice (sparse_dsp/dsp_chain.py)
        LUT=chain_len * lane_bits * mux_luts_per_bit + adders,
        FF=chain_len * lane_bits * 2 + adders,
        source=f"estimate: DSP structural (1 per slice); LUT = {m_max}:1 activation MUX per lane bit at "
               f"{mux_luts_per_bit} LUT6/bit + 1 LUT per adder bit; FF = 2 pipeline regs per lane bit; "
               f"not yet yosys-measured",
    )


def _decoder_estimate(chain_len: int, in_bits: int) -> UnitCost:
    # A shift buffer of 2x the input width, a code-extraction mux per output weight (8 bits x 2 LUT),
    # and an 8-bit zero subtract per weight; plus ~200 LUT of stream control.
    return UnitCost(LUT=chain_len * (8 * 2 + 8) + 200, FF=2 * in_bits + chain_len * 8 + 100,
                    source="estimate: shift buffer + per-weight extract mux and zero subtract; "
                           "not yet yosys-measured")


def _sfu_lane_guess(precision: str) -> UnitCost:
    if precision == "fp16":
        return UnitCost(DSP=2, LUT=800, FF=1000,
                        source="guess: one FP16 multiply-add + exp/recip datapath per lane, typical of HLS "
                               "floating-point operators; not measured")
    return UnitCost(DSP=4, LUT=1500, FF=2000,
                    source="guess: one FP32 multiply-add + exp/recip datapath per lane, typical of HLS "
                           "floating-point operators; not measured")


HBM_PORT_GUESS = UnitCost(LUT=1500, FF=2500, BRAM36=2,
                          source="guess: AXI master + DMA + 2 BRAM36 FIFO per HBM channel port; not measured")
CORE_CONTROL_GUESS = UnitCost(LUT=3000, FF=4000, BRAM36=2,
                              source="guess: instruction fetch/decode and wait/release token queues per core; "
                                     "not measured")


def _measured(unit: str, chain_len: int, nm_patterns: tuple[str, ...] = ()) -> Optional[UnitCost]:
    """yosys figures from ``sparse_dsp.unit_costs`` for a unit of this chain length, or None.

    The RTL synthesizes one N:M pattern per instance (HDL parameters), while a design supports
    several at run time; the most expensive measured configuration of the same chain length among
    the design's patterns (any pattern if none of them was measured) stands in for it, and its
    source line says which configuration that was.
    """
    try:
        from llmaccel.sparse_dsp.unit_costs import measured_configs, unit_resources
        configs = [c for c in measured_configs(unit) if c.get("chain_len") == chain_len]
    except (ImportError, LlmaccelError, FileNotFoundError, KeyError, ValueError):
        return None
    preferred = [c for c in configs if c.get("nm") in nm_patterns]
    worst: dict[str, float] = {}
    used = []
    for params in preferred or configs:
        try:
            r = unit_resources(unit, **params)
        except LlmaccelError:
            continue
        if r.get("status") == "pending yosys" or r.get("LUT") is None:
            return None
        used.append(r.get("params", params))
        for key in ("LUT", "FF", "DSP48E2", "BRAM36"):
            worst[key] = max(worst.get(key, 0), r.get(key) or 0)
    if not used:
        return None
    return UnitCost(LUT=worst["LUT"], FF=worst["FF"], DSP=worst["DSP48E2"], BRAM36=worst["BRAM36"],
                    source=f"yosys-measured: sparse_dsp.unit_costs {unit}, per-resource maximum over the "
                           f"measured chain_len={chain_len} configurations {used}")


def reported_cost(design: AcceleratorDesign, unit: str) -> Optional[UnitCost]:
    """A csynth report's resources for ``unit`` (``AcceleratorDesign.reported``), per instance of the
    resource table's unit: the mpe report (linear_mv_top) is one sparse DSP chain; the sfu report
    (sfu_top) is one core's SFU, shared by its lanes. BRAM_18K count as half a BRAM36."""
    r = design.reported_unit(unit)
    if r is None:
        return None
    per = 1 if unit == "mpe" else design.sfu.lanes
    x = r.resources
    what = "one sparse DSP chain" if unit == "mpe" else f"one core's SFU over its {per} lanes"
    return UnitCost(LUT=x.LUT / per, FF=x.FF / per, DSP=x.DSP / per, BRAM36=x.BRAM_18K / 2 / per, URAM=x.URAM / per,
                    source=f"csynth report {r.resources_report} ({r.top}, HLS {r.tool_version}): {what}")


def unit_costs(design: AcceleratorDesign) -> dict[str, UnitCost]:
    """The per-unit cost table for ``design``: the single place to swap in better figures (a csynth
    report the design names replaces the model's figure for its unit: :func:`reported_cost`)."""
    design.require_reports_read()
    me = design.matrix_engine
    if me.mac_dtype == "fp16":
        r = F16.fp16_chain_resources(me.chain_len)
        chain16 = UnitCost(DSP=r["DSP"], LUT=r["LUT"], FF=r["FF"], source=F16.FP16_CHAIN_SOURCE)
        return {
            "dsp_chain": reported_cost(design, "mpe") or chain16,
            "weight_decoder": UnitCost(source="none: an fp16 engine has no weight decoder (count 0)"),
            "sfu_lane": reported_cost(design, "sfu") or _sfu_lane_guess(design.sfu.precision),
            "hbm_port": HBM_PORT_GUESS,
            "core_control": CORE_CONTROL_GUESS,
        }
    sparse = [nm for nm in me.nm_patterns if nm is not None]
    m_max = max((m for _, m in sparse), default=1)
    from llmaccel.sparse_dsp.dsp_chain import ChainConfig
    segments = ChainConfig(me.chain_len, sparse[0] if sparse else None, me.cascade_groups).segments
    patterns = tuple(t for t in me.supported_nm if t != "dense") or ("dense",)
    chain = _measured("dsp_chain", me.chain_len, patterns) or _chain_estimate(me.chain_len, m_max, segments)
    decoder = (_measured("weight_decoder", me.chain_len, patterns)
               or _decoder_estimate(me.chain_len, design.weight_decoder.in_bits_per_cycle))
    return {
        "dsp_chain": reported_cost(design, "mpe") or chain,
        "weight_decoder": decoder,
        "sfu_lane": reported_cost(design, "sfu") or _sfu_lane_guess(design.sfu.precision),
        "hbm_port": HBM_PORT_GUESS,
        "core_control": CORE_CONTROL_GUESS,
    }


@dataclass(frozen=True)
class ResourceLine:
    unit: str
    count: int
    per_unit: UnitCost

    def total(self, resource: str) -> float:
        return self.count * self.per_unit.get(resource)


@dataclass(frozen=True)
class ResourceUsage:
    design: str
    lines: tuple[ResourceLine, ...]

    def total(self, resource: str) -> int:
        return int(math.ceil(sum(line.total(resource) for line in self.lines)))

    @property
    def totals(self) -> dict[str, int]:
        return {r: self.total(r) for r in FPGA_RESOURCES}

    def table(self) -> str:
        """A plain-text table: one line per unit kind, then the totals."""
        head = f"{'unit':<28}{'count':>7}" + "".join(f"{r:>10}" for r in FPGA_RESOURCES)
        rows = [head]
        for line in self.lines:
            rows.append(f"{line.unit:<28}{line.count:>7}"
                        + "".join(f"{line.total(r):>10.0f}" for r in FPGA_RESOURCES))
        rows.append(f"{'total':<28}{'':>7}" + "".join(f"{self.total(r):>10}" for r in FPGA_RESOURCES))
        return "\n".join(rows)


def resource_usage(design: AcceleratorDesign, costs: Optional[Mapping[str, UnitCost]] = None) -> ResourceUsage:
    """Resources of ``design``: unit counts times per-unit costs (``costs`` overrides the table)."""
    table = dict(unit_costs(design))
    if costs:
        table.update(costs)
    lines = [
        ResourceLine("dsp_chain", design.cores * design.chains_per_core, table["dsp_chain"]),
        ResourceLine("weight_decoder", design.num_decoders, table["weight_decoder"]),
        ResourceLine("sfu_lane", design.cores * design.sfu.lanes, table["sfu_lane"]),
        ResourceLine("hbm_port", design.hbm_channels, table["hbm_port"]),
        ResourceLine("core_control", design.cores, table["core_control"]),
    ]
    for buf in design.buffers:
        count = design.cores if buf.scope == "core" else 1
        lines.append(ResourceLine(f"buffer:{buf.name}", count, table.get(f"buffer:{buf.name}", buffer_cost(buf))))
    return ResourceUsage(design.name, tuple(lines))


@dataclass(frozen=True)
class FitReport:
    """What a fit check saw: demand, availability (with source and region), what it could not check."""

    design: str
    device: str
    usage: ResourceUsage
    available: dict[str, tuple[Optional[int], str, str]]
    unchecked: tuple[str, ...] = field(default_factory=tuple)

    @property
    def utilization(self) -> dict[str, Optional[float]]:
        out: dict[str, Optional[float]] = {}
        for r in FPGA_RESOURCES:
            avail = self.available[r][0]
            out[r] = None if not avail else self.usage.total(r) / avail
        return out

    def to_dict(self) -> dict:
        return {
            "design": self.design, "device": self.device,
            "used": self.usage.totals,
            "available": {r: {"count": a, "source": s, "region": g} for r, (a, s, g) in self.available.items()},
            "utilization": self.utilization,
            "unchecked": list(self.unchecked),
        }


def fit_check(design: AcceleratorDesign, device: Device,
              costs: Optional[Mapping[str, UnitCost]] = None) -> FitReport:
    """Check that ``design`` fits ``device``; raise ONE :class:`DesignFitError` naming what does not.

    Resources the device spec does not know (``None``, "not found") cannot be
    checked; they are listed in ``FitReport.unchecked`` instead of being
    assumed to fit silently.
    """
    if not isinstance(device, FpgaDevice):
        raise DesignFitError(f"device '{device.name}' is a {device.kind}; a design needs an FPGA device")
    usage = resource_usage(design, costs)
    available = {r: device.available(r) for r in FPGA_RESOURCES}
    problems, unchecked = [], []
    for r in FPGA_RESOURCES:
        need = usage.total(r)
        have, source, region = available[r]
        if have is None:
            if need:
                unchecked.append(f"{r}: design needs {need}; device count not found")
            continue
        if need > have:
            problems.append(f"{r}: design needs {need}, device has {have} ({region}; source: {source})")
    hbm = device.hbm
    if hbm is None:
        problems.append(f"hbm_channels: design uses {design.hbm_channels} HBM channels, device '{device.name}' "
                        f"has no HBM")
    elif hbm.pseudo_channels is None:
        unchecked.append(f"hbm_channels: design uses {design.hbm_channels}; device channel count not found")
    elif design.hbm_channels > hbm.pseudo_channels:
        problems.append(f"hbm_channels: design uses {design.hbm_channels}, device has {hbm.pseudo_channels} "
                        f"(source: {hbm.source_of('pseudo_channels')})")
    clocks = clock_report(design, device)   # every design clock against the datasheet Fmax it is bound by
    problems.extend(clocks.problems)
    unchecked.extend(clocks.unchecked)
    if problems:
        raise DesignFitError(f"design '{design.name}' does not fit device '{device.name}': " + "; ".join(problems))
    return FitReport(design.name, device.name, usage, available, tuple(unchecked))
