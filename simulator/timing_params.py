"""The numbers the timing engine needs from a design + device, with the source of each model constant.

The design spec (``simulator.design``) and device spec (``simulator.specs.device``)
are written by their own module; this file is the one adapter that reads
them, so the cycle models below depend on a small, stable dataclass.

Model constants that are not design parameters (HBM burst granularity,
sustained efficiency, latencies) live here, each with its source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from llmaccel.errors import LlmaccelError

from llmaccel.simulator.fp16_datapath import TOKENS_PER_BEAT, WEIGHT_BYTES, fp16_chain_latency_cycles
from llmaccel.simulator.memory_system import MemorySystem, ddr_facts, slr_crossing_stages

# --------------------------------------------------------------------------- sourced constants
# The HBM memory system (ports, converter, switch, refresh, efficiency vs access size and pattern,
# outstanding transactions, read latency) is simulator/memory_system.py, built from the sourced table
# simulator/presets/memory/hbm_u280.yaml; every LD/ST goes through it.
# Cross-core all-gather: the barrier's arrive and release each cross SLRs. On the U280 the HBM sits in SLR0
# and a 4-core design spans all 3 SLRs, so the farthest core is 2 crossings away; each crossing costs
# 3 pipeline stages above 250 MHz (AMD UG949, in the memory table's `slr` block) - applied at any clock
# as a conservative choice. On top of that: the all-gathered vector itself (a 4096-element INT8 hidden
# state over a 512-bit bus = 64 cycles) and 8 cycles of in-SLR routing per hop: both ESTIMATES.
SYNC_VECTOR_CYCLES_ESTIMATE = 64
SYNC_ROUTING_CYCLES_PER_HOP_ESTIMATE = 8
SLR_HOPS_U280 = 2
SYNC_CYCLES_DEFAULT = 64 + 2 * SLR_HOPS_U280 * (3 + 8)
# Instruction fetch from an on-chip instruction buffer: one 512-bit word per cycle, 2 cycles latency
# (BRAM read + output register): an ESTIMATE.
ONCHIP_IFETCH_BYTES_PER_CYCLE = 64
ONCHIP_IFETCH_LATENCY_CYCLES = 2
# DSP48E2 INT8 packing: two INT8 x INT8 products per DSP per cycle sharing one
# operand. Source: AMD WP486 (in shared/anchors/hardware.yaml dsp_primitives).
MACS_PER_DSP = 2
# SFU pipeline depth per phase: GUESS 16 cycles (an FP32 exp/div pipeline in
# HLS is ~10-30 stages); used only for per-op latency, stated as a guess.
SFU_PIPELINE_CYCLES_DEFAULT = 16


class TimingParamsError(LlmaccelError):
    """A design or device field the timing model needs is missing or out of range."""


@dataclass(frozen=True)
class ReportedValue:
    """One timing-model value taken from a synthesis report instead of the model (for the output)."""

    unit: str            # the design unit ("mpe", "sfu")
    field: str           # the HwParams field it sets
    value: int           # what the report says
    model_value: int     # what the model would have used
    report: str          # the csynth.xml
    loop: str            # the loop it was read at


@dataclass(frozen=True)
class HwParams:
    """Per-core and per-device quantities the cycle models use (units in the names)."""

    name: str
    clock_hz: float
    n_cores: int
    chains_per_core: int
    chain_len: int                        # DSPs in one sparse DSP chain
    hbm_channels: int
    hbm_channel_GBps: float               # peak per pseudo channel
    hbm_channel_bytes: int                # capacity per pseudo channel
    decoders_per_core: int                # weight-decoder instances (sparse_dsp.weight_decoder) per core
    sfu_lanes_per_core: int
    weight_buf_bytes_per_core: int
    act_buf_bytes_per_core: int
    kv_buf_bytes_per_core: int
    buf_read_bytes_per_cycle_per_core: int  # weight-buffer read ports (URAM/BRAM banks x port width)
    chain_ii: int = 1                     # chain initiation interval: one beat per cycle (sparse_dsp.dsp_chain)
    # chain fill/drain of an MV/MM: None = the cycle-exact chain model's (sparse_dsp.dsp_chain), else a report's
    chain_latency_cycles: Optional[int] = None
    sfu_pipeline_cycles: int = SFU_PIPELINE_CYCLES_DEFAULT
    sfu_ii: int = 1                       # cycles per element and lane of an SFU phase (its loops' II)
    sync_cycles: int = SYNC_CYCLES_DEFAULT
    hbm_total_bytes: int = 0
    mem: Optional[MemorySystem] = None    # None: the memory table's defaults at this clock (512-bit ports)
    ifetch_bytes_per_cycle: float = ONCHIP_IFETCH_BYTES_PER_CYCLE   # per core
    ifetch_latency_cycles: int = ONCHIP_IFETCH_LATENCY_CYCLES
    instruction_memory: str = "on_chip"
    from_reports: tuple[ReportedValue, ...] = ()   # which values above came from which csynth report
    mac_dtype: str = "int8"               # the matrix engine's datatype (simulator.design, simulator.fp16_datapath)
    extras: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.mac_dtype not in TOKENS_PER_BEAT:
            raise TimingParamsError(f"mac_dtype={self.mac_dtype!r} is not supported; allowed: {list(TOKENS_PER_BEAT)}")
        if self.mac_dtype == "fp16" and self.decoders_per_core != 0:
            raise TimingParamsError(f"decoders_per_core={self.decoders_per_core}: an fp16 engine has no weight "
                                    "decoders (allowed: 0)")
        for f in ("clock_hz", "n_cores", "chains_per_core", "chain_len", "hbm_channels", "hbm_channel_GBps",
                  "hbm_channel_bytes") + (("decoders_per_core",) if self.mac_dtype == "int8" else ()) + (
                  "sfu_lanes_per_core", "weight_buf_bytes_per_core", "act_buf_bytes_per_core",
                  "kv_buf_bytes_per_core", "buf_read_bytes_per_cycle_per_core"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and v > 0):
                raise TimingParamsError(f"design field '{f}'={v!r} must be a positive number")
        for f in ("chain_ii", "sfu_ii"):
            if getattr(self, f) < 1:
                raise TimingParamsError(f"'{f}'={getattr(self, f)} must be >= 1")
        if self.hbm_channels % self.n_cores != 0:
            raise TimingParamsError(f"hbm_channels={self.hbm_channels} must be a multiple of cores="
                                    f"{self.n_cores} so each core owns whole channels")
        if self.mem is None:
            object.__setattr__(self, "mem", MemorySystem.from_table(kernel_clock_MHz=self.clock_hz / 1e6,
                                                                    channel_peak_GBps=self.hbm_channel_GBps))

    # ---- derived
    @property
    def dsp_per_core(self) -> int:
        return self.chains_per_core * self.chain_len

    @property
    def tokens_per_beat(self) -> int:
        """Tokens sharing one weight beat: two packed INT8 lanes (WP486), one FP16 lane."""
        return TOKENS_PER_BEAT[self.mac_dtype]

    @property
    def weight_bytes_per_element(self) -> int:
        """Bytes of one matrix operand element the MPE reads from the weight/KV buffer."""
        return WEIGHT_BYTES[self.mac_dtype]

    @property
    def macs_per_cycle_per_core(self) -> int:
        """Prefill MACs per cycle (INT8: MACS_PER_DSP x DSPs; FP16: one per multiply-add unit)."""
        return self.tokens_per_beat * self.chains_per_core * self.chain_len

    @property
    def peak_macs_per_s(self) -> float:
        return self.macs_per_cycle_per_core * self.n_cores * self.clock_hz

    @property
    def channels_per_core(self) -> int:
        return self.hbm_channels // self.n_cores

    @property
    def hbm_peak_Bps(self) -> float:
        return self.hbm_channels * self.hbm_channel_GBps * 1e9

    @property
    def hbm_capacity_bytes(self) -> int:
        return self.hbm_total_bytes or self.hbm_channels * self.hbm_channel_bytes

    @property
    def hbm_latency_cycles(self) -> int:
        """Kernel cycles from a sequential read's request to its first data (memory_system)."""
        return self.mem.latency_cycles("sequential")


def _get(obj: Any, *names: str, default: Optional[Any] = None) -> Any:
    for n in names:
        cur = obj
        ok = True
        for part in n.split("."):
            if isinstance(cur, dict):
                if part not in cur:
                    ok = False
                    break
                cur = cur[part]
            elif hasattr(cur, part):
                cur = getattr(cur, part)
            else:
                ok = False
                break
        if ok and cur is not None:
            return cur
    return default


def hw_from_design(design: Any, device: Any) -> HwParams:
    """The timing view of an ``AcceleratorDesign`` on an FPGA device.

    Per-channel peak is the narrowest of the HBM pseudo channel (device spec),
    the design's kernel-side AXI port (``hbm_port_bits / 8 * clock``: a 256-bit
    port at 225 MHz carries 7.2 GB/s, half of a U280 channel's 14.375 GB/s) and
    the HBM-side port (PG276: 256 bits at ``hbm_clock_MHz`` <= 450); what a
    transfer achieves below that peak is ``simulator.memory_system``'s job. The KV tiles use the design's 'kv'
    buffers if it has any, else they stream through the weight buffer (a K/V
    tile is the matrix operand of its MV, like a weight tile). Activations may
    use the 'activation' and 'sfu' buffers (scores live in the SFU buffer).
    """
    hbm = getattr(device, "hbm", None)
    if hbm is None or hbm.capacity_bytes is None or hbm.total_GBps is None and hbm.per_channel_GBps is None:
        raise TimingParamsError(f"device '{getattr(device, 'name', device)}' has no HBM description "
                                "(capacity_GB and total_GBps or per_channel_GBps); the timing model needs HBM")
    notes = {}
    n_ch = hbm.pseudo_channels
    if n_ch is None:
        # the device spec does not know its channel count: take the design's, and say so
        n_ch = design.hbm_channels
        notes["hbm_channels"] = (f"device '{device.name}' pseudo channel count not found; using the design's "
                                 f"hbm_channels={n_ch} (the design's stated assumption)")
    if design.hbm_channels > n_ch:
        raise TimingParamsError(f"design '{design.name}' uses hbm_channels={design.hbm_channels}; device "
                                f"'{device.name}' has {n_ch} pseudo channels")
    ch_bytes = hbm.capacity_bytes // n_ch
    per_ch = hbm.per_channel_GBps
    if per_ch is None:
        per_ch = hbm.total_GBps / n_ch
    mem = MemorySystem.from_design(design, device, channel_peak_GBps=per_ch)
    port_GBps = mem.kernel_port_GBps
    f_MHz = design.clock_MHz
    where = getattr(design, "instruction_memory", "on_chip")
    if where == "ddr":
        if getattr(device, "ddr", None) is None:
            raise TimingParamsError(f"design '{design.name}' sets instruction_memory='ddr' but device "
                                    f"'{device.name}' has no DDR; allowed here: 'hbm', 'on_chip'")
        gbps, lat_ns, _ = ddr_facts()
        ifetch_bpc = gbps * 1e3 / f_MHz / design.cores        # one DDR4 channel shared by the cores' fetchers
        ifetch_lat = int(math.ceil(lat_ns * 1e-3 * f_MHz))
    elif where == "hbm":
        gbps = mem.bandwidth_GBps(pattern="sequential", access_bytes=mem.transaction_bytes)
        ifetch_bpc = gbps * 1e3 / f_MHz / design.cores        # one pseudo channel shared by the cores' fetchers
        ifetch_lat = mem.latency_cycles("sequential")
    else:
        ifetch_bpc, ifetch_lat = ONCHIP_IFETCH_BYTES_PER_CYCLE, ONCHIP_IFETCH_LATENCY_CYCLES
    hops = 0 if design.cores == 1 else min(design.cores - 1, SLR_HOPS_U280)
    sync = 0 if design.cores == 1 else (SYNC_VECTOR_CYCLES_ESTIMATE
                                        + 2 * hops * (slr_crossing_stages() + SYNC_ROUTING_CYCLES_PER_HOP_ESTIMATE))
    design.require_reports_read()
    reported = _reported_timing(design)
    kv = design.kv_buf_bytes_per_core or design.weight_buf_bytes_per_core
    buffer_ids = {}
    for b in design.buffers:
        if b.scope == "core" and b.role not in buffer_ids:
            buffer_ids[b.role] = design.buffer_id(b.name)
    fp16 = design.matrix_engine.mac_dtype == "fp16"
    reported_fields = {v.field for v in reported}
    fp16_latency = ({"chain_latency_cycles": fp16_chain_latency_cycles(design.chain_len)}
                    if fp16 and "chain_latency_cycles" not in reported_fields else {})
    bits = (16,) if fp16 else tuple(design.weight_decoder.supported_bits)
    return HwParams(
        name=design.name, clock_hz=design.clock_hz, n_cores=design.cores, mac_dtype=design.matrix_engine.mac_dtype,
        **fp16_latency,
        chains_per_core=design.chains_per_core, chain_len=design.chain_len,
        hbm_channels=design.hbm_channels, hbm_channel_GBps=mem.ceiling_GBps,
        hbm_channel_bytes=ch_bytes, mem=mem, sync_cycles=sync, ifetch_bytes_per_cycle=ifetch_bpc,
        ifetch_latency_cycles=ifetch_lat, instruction_memory=where,
        decoders_per_core=design.decoders_per_core, sfu_lanes_per_core=design.sfu_lanes_per_core,
        weight_buf_bytes_per_core=design.weight_buf_bytes_per_core,
        act_buf_bytes_per_core=design.act_buf_bytes_per_core + design.buffer_bytes_per_core("sfu"),
        kv_buf_bytes_per_core=kv,
        buf_read_bytes_per_cycle_per_core=design.buf_read_bytes_per_cycle_per_core,
        hbm_total_bytes=design.hbm_channels * ch_bytes,
        **{v.field: v.value for v in reported}, from_reports=reported,
        extras={"device": device.name, "hbm_channel_GBps_device": per_ch, "hbm_port_GBps": port_GBps, "buffer_ids": buffer_ids,
                "supported_nm": tuple(design.matrix_engine.nm_patterns),
                "supported_bits": bits, **notes},
    )


def _reported_timing(design: Any) -> tuple[ReportedValue, ...]:
    """The HwParams values the design's csynth reports set (``AcceleratorDesign.reported``), each with the
    value the model would have used. mpe: the chain's II and fill/drain (the beat loop's II and pipeline
    depth); sfu: the per-phase pipeline depth and the cycles per element and lane."""
    from llmaccel.sparse_dsp.dsp_chain import ChainConfig
    out = []
    for r in getattr(design, "reported", ()):
        if r.unit == "mpe":
            nms = [nm for nm in design.matrix_engine.nm_patterns]
            model_lat = (fp16_chain_latency_cycles(design.chain_len) if design.matrix_engine.mac_dtype == "fp16"
                         else max(ChainConfig(design.chain_len, nm, design.matrix_engine.cascade_groups).latency_cycles
                                  for nm in nms))
            pairs = (("chain_ii", r.ii_cycles, 1), ("chain_latency_cycles", r.pipeline_depth_cycles, model_lat))
        elif r.unit == "sfu":
            pairs = (("sfu_pipeline_cycles", r.pipeline_depth_cycles, SFU_PIPELINE_CYCLES_DEFAULT),
                     ("sfu_ii", r.ii_cycles, 1))
        else:  # the design's own check allows only the units above
            raise TimingParamsError(f"reported unit '{r.unit}' has no timing values; allowed: mpe, sfu")
        out.extend(ReportedValue(r.unit, f, int(v), int(m), r.report, r.loop) for f, v, m in pairs)
    return tuple(out)
