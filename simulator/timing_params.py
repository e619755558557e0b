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

from sparse_dsp.errors import LlmaccelError

# --------------------------------------------------------------------------- sourced constants
# HBM burst granularity: every HBM read/write is a BL4 burst on a 64-bit pseudo
# channel = 32 bytes; an access that is not a whole number of bursts costs whole
# bursts. Source: AMD PG276 (AXI HBM controller), "AXI Considerations".
HBM_BURST_BYTES = 32
# Sustained efficiency of long sequential reads: Shuhai measured up to 425 GB/s
# on the U280's 460.8 GB/s HBM (refresh and protocol overheads included).
# Source: Wang et al., "Shuhai: Benchmarking High Bandwidth Memory on FPGAs",
# FCCM 2020 (abstract); theoretical 460.8 GB/s from AMD PG276 "Raw Throughput Evaluation".
HBM_SUSTAINED_EFFICIENCY = 425.0 / 460.8
# AXI4 bursts may not cross a 4 KB address boundary (ARM IHI0022, AXI protocol
# spec, A3.4.1), so a DMA splits long transfers into <= 4 KB transactions.
AXI_MAX_TRANSACTION_BYTES = 4096
# First-data latency of an HBM read: GUESS (not found in a primary source here):
# 128 ns, the order of the page-miss latency figures quoted for U280 HBM.
# It only matters for short transfers; every LD pays it once.
HBM_READ_LATENCY_NS = 128.0
# Cross-core all-gather latency: GUESS, 64 cycles (on-chip broadcast of a
# vector through a register-sliced network across SLRs); stated, not measured.
SYNC_CYCLES_DEFAULT = 64
# DSP48E2 INT8 packing: two INT8 x INT8 products per DSP per cycle sharing one
# operand. Source: AMD WP486 (in shared/anchors/hardware.yaml dsp_primitives).
MACS_PER_DSP = 2
# SFU pipeline depth per phase: GUESS 16 cycles (an FP32 exp/div pipeline in
# HLS is ~10-30 stages); used only for per-op latency, stated as a guess.
SFU_PIPELINE_CYCLES_DEFAULT = 16


class TimingParamsError(LlmaccelError):
    """A design or device field the timing model needs is missing or out of range."""


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
    sfu_pipeline_cycles: int = SFU_PIPELINE_CYCLES_DEFAULT
    sync_cycles: int = SYNC_CYCLES_DEFAULT
    hbm_read_latency_ns: float = HBM_READ_LATENCY_NS
    hbm_total_bytes: int = 0
    extras: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for f in ("clock_hz", "n_cores", "chains_per_core", "chain_len", "hbm_channels", "hbm_channel_GBps",
                  "hbm_channel_bytes", "decoders_per_core",
                  "sfu_lanes_per_core", "weight_buf_bytes_per_core", "act_buf_bytes_per_core",
                  "kv_buf_bytes_per_core", "buf_read_bytes_per_cycle_per_core"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and v > 0):
                raise TimingParamsError(f"design field '{f}'={v!r} must be a positive number")
        if self.hbm_channels % self.n_cores != 0:
            raise TimingParamsError(f"hbm_channels={self.hbm_channels} must be a multiple of cores="
                                    f"{self.n_cores} so each core owns whole channels")

    # ---- derived
    @property
    def dsp_per_core(self) -> int:
        return self.chains_per_core * self.chain_len

    @property
    def macs_per_cycle_per_core(self) -> int:
        return MACS_PER_DSP * self.dsp_per_core

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
        return int(math.ceil(self.hbm_read_latency_ns * 1e-9 * self.clock_hz))


def hbm_burst_efficiency(bytes_per_access: int) -> float:
    """Fraction of a channel's peak that an access of this many bytes achieves.

    Whole 32-byte bursts are moved (PG276), long sequential streams reach the
    Shuhai-measured 425/460.8. Accesses longer than 4 KB are several AXI
    transactions issued back to back, which keeps the stream sequential.
    """
    if bytes_per_access <= 0:
        return HBM_SUSTAINED_EFFICIENCY
    bursts = math.ceil(bytes_per_access / HBM_BURST_BYTES)
    return HBM_SUSTAINED_EFFICIENCY * bytes_per_access / (bursts * HBM_BURST_BYTES)


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

    Per-channel bandwidth is the smaller of the HBM pseudo channel's peak
    (device spec) and what the design's AXI port moves at the design clock
    (``hbm_port_bits / 8 * clock``): a 256-bit port at 225 MHz carries 7.2 GB/s,
    half of a U280 channel's 14.375 GB/s. The KV tiles use the design's 'kv'
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
    port_GBps = design.hbm_port_bits / 8 * design.clock_hz / 1e9
    kv = design.kv_buf_bytes_per_core or design.weight_buf_bytes_per_core
    buffer_ids = {}
    for b in design.buffers:
        if b.scope == "core" and b.role not in buffer_ids:
            buffer_ids[b.role] = design.buffer_id(b.name)
    return HwParams(
        name=design.name, clock_hz=design.clock_hz, n_cores=design.cores,
        chains_per_core=design.chains_per_core, chain_len=design.chain_len,
        hbm_channels=design.hbm_channels, hbm_channel_GBps=min(per_ch, port_GBps),
        hbm_channel_bytes=ch_bytes,
        decoders_per_core=design.decoders_per_core, sfu_lanes_per_core=design.sfu_lanes_per_core,
        weight_buf_bytes_per_core=design.weight_buf_bytes_per_core,
        act_buf_bytes_per_core=design.act_buf_bytes_per_core + design.buffer_bytes_per_core("sfu"),
        kv_buf_bytes_per_core=kv,
        buf_read_bytes_per_cycle_per_core=design.buf_read_bytes_per_cycle_per_core,
        hbm_total_bytes=design.hbm_channels * ch_bytes,
        extras={"device": device.name, "hbm_channel_GBps_device": per_ch, "hbm_port_GBps": port_GBps, "buffer_ids": buffer_ids,
                "supported_nm": tuple(design.matrix_engine.nm_patterns),
                "supported_bits": tuple(design.weight_decoder.supported_bits), **notes},
    )
