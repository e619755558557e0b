"""The HBM memory system one LD/ST transfer goes through, built from sourced component facts.

Why a model of its own: the bandwidth a transfer sees depends on far more than
a channel's peak. Per pseudo channel it passes, in order:

1. the **kernel-side port** (the design's ``hbm_port_bits`` at the kernel clock),
2. a **width/clock converter** to the HBM-side AXI port (latency; its cost is
   an estimate, labelled as such in the YAML),
3. the **HBM-side AXI port** (PG276: 256 bits, up to 450 MHz),
4. the **AXI switch**, with PG276's lateral-crossing loss whenever the master
   reaches a channel other than its own,
5. the **controller and DRAM**: refresh, page hits and misses, efficiency
   against transaction size and pattern (sequential / strided / random) and
   the number of masters sharing the channel, interpolated between published
   measurements (``presets/memory/hbm_u280.yaml``, a source on every row),
6. a bound from **outstanding transactions x round-trip latency** (Little's
   law with the UG1399 m_axi defaults).

The bandwidth is the smallest of the ceilings (1, 3, channel peak) times the
measured efficiency (5, 4), and never more than the outstanding bound (6).
Only rows marked ``use: model`` feed the model; ``use: check`` rows are held
out for ``llmaccel validate``.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from llmaccel.simulator.specs._yaml import PRESETS_DIR, SpecError, load_yaml_mapping

DEFAULT_TABLE = PRESETS_DIR / "memory" / "hbm_u280.yaml"
PATTERNS = ("sequential", "strided", "random")
USES = ("model", "check")
DIRECTIONS = ("read", "write", "read_write")


class MemorySystemError(SpecError):
    """A memory-system table, or a design's HBM port, that the HBM cannot take."""


@dataclass(frozen=True)
class HbmMeasurement:
    """One published bandwidth measurement (one row of the YAML table)."""

    source: str
    pattern: str
    access_bytes: int
    channels: int
    masters_per_channel: int
    measured_GBps: float
    note: str = ""
    use: str = "model"              # model: the model interpolates it; check: held out for validation
    crosses_switch: bool = False
    direction: str = "read"
    uncertain: str = ""

    @property
    def label(self) -> str:
        x = " via switch" if self.crosses_switch else ""
        return (f"{self.pattern} {self.access_bytes} B, {self.channels} PC, "
                f"{self.masters_per_channel} master(s)/PC{x}")


_ROW_FIELDS = {"source": str, "pattern": str, "access_bytes": int, "channels": int, "masters_per_channel": int,
               "measured_GBps": float, "note": str, "use": str, "crosses_switch": bool, "direction": str,
               "uncertain": str}


def _finite_positive(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _row(raw: Any, i: int, where: str) -> HbmMeasurement:
    at = f"{where}: measurements[{i}]"
    if not isinstance(raw, dict):
        raise MemorySystemError(f"{at} must be a mapping of field: value")
    unknown = sorted(set(raw) - set(_ROW_FIELDS))
    if unknown:
        raise MemorySystemError(f"{at}: unknown field '{unknown[0]}'; allowed: {', '.join(_ROW_FIELDS)}")
    src = raw.get("source")
    if not isinstance(src, str) or not src.strip():
        raise MemorySystemError(f"{at}.source is missing; every measurement row must name its source "
                                "(paper, product guide, example repository)")
    for k in ("pattern", "access_bytes", "channels", "masters_per_channel", "measured_GBps"):
        if k not in raw:
            raise MemorySystemError(f"{at}.{k} is missing")
    if raw["pattern"] not in PATTERNS:
        raise MemorySystemError(f"{at}.pattern={raw['pattern']!r}; allowed: {', '.join(PATTERNS)}")
    for k in ("access_bytes", "channels", "masters_per_channel"):
        v = raw[k]
        if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
            raise MemorySystemError(f"{at}.{k}={v!r} must be a positive integer")
    if not _finite_positive(raw["measured_GBps"]):
        raise MemorySystemError(f"{at}.measured_GBps={raw['measured_GBps']!r} must be a finite number > 0")
    use = raw.get("use", "model")
    if use not in USES:
        raise MemorySystemError(f"{at}.use={use!r}; allowed: {', '.join(USES)}")
    direction = raw.get("direction", "read")
    if direction not in DIRECTIONS:
        raise MemorySystemError(f"{at}.direction={direction!r}; allowed: {', '.join(DIRECTIONS)}")
    cs = raw.get("crosses_switch", False)
    if not isinstance(cs, bool):
        raise MemorySystemError(f"{at}.crosses_switch={cs!r} must be true or false")
    return HbmMeasurement(source=src, pattern=raw["pattern"], access_bytes=raw["access_bytes"],
                          channels=raw["channels"], masters_per_channel=raw["masters_per_channel"],
                          measured_GBps=float(raw["measured_GBps"]), note=str(raw.get("note", "")), use=use,
                          crosses_switch=cs, direction=direction, uncertain=str(raw.get("uncertain", "")))


def _table(path: Optional[str | Path]) -> tuple[Path, dict]:
    p = Path(path) if path else DEFAULT_TABLE
    st = p.stat() if p.is_file() else None
    return p, _read_table(str(p), st.st_mtime_ns if st else 0, st.st_size if st else 0)


@lru_cache(maxsize=16)
def _read_table(path: str, mtime_ns: int, size: int) -> dict:
    """The parsed table, cached by path and file stamp (callers only read it)."""
    return load_yaml_mapping(path)


def load_hbm_measurements(path: Optional[str | Path] = None) -> list[HbmMeasurement]:
    """The measurement rows of a memory table, validated: a source on every row, positive finite values."""
    p, data = _table(path)
    rows = data.get("measurements")
    if not isinstance(rows, list) or not rows:
        raise MemorySystemError(f"{p}: 'measurements' must be a non-empty list of rows")
    return [_row(r, i, str(p)) for i, r in enumerate(rows)]


def _fact(data: dict, where: str, block: str, key: str, *, allow_estimate: bool = False) -> float:
    """A numeric fact of the table; its block must name a source (or, where allowed, an estimate)."""
    b = data.get(block)
    if not isinstance(b, dict):
        raise MemorySystemError(f"{where}: block '{block}' is missing")
    if not (b.get("source") or (allow_estimate and b.get("estimate"))):
        raise MemorySystemError(f"{where}: {block} has no 'source'" + (" or 'estimate'" if allow_estimate else ""))
    v = b.get(key)
    if not _finite_positive(v):
        raise MemorySystemError(f"{where}: {block}.{key}={v!r} must be a finite number > 0")
    return float(v)


def check_efficiency(name: str, value: float) -> float:
    """An efficiency (a fraction of a peak) must lie in (0, 1]; anything else is an error, never clamped."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= 1):
        raise MemorySystemError(f"efficiency '{name}'={value!r} is outside (0, 1]; an efficiency is a fraction "
                                "of a peak")
    return float(value)


def _interp_log2(points: list[tuple[float, float]], x: float) -> float:
    """Linear in log2(x) between the points; the end values are held beyond them."""
    xs = [math.log2(a) for a, _ in points]
    lx = math.log2(x)
    if lx <= xs[0]:
        return points[0][1]
    if lx >= xs[-1]:
        return points[-1][1]
    j = bisect.bisect_right(xs, lx)
    x0, x1 = xs[j - 1], xs[j]
    y0, y1 = points[j - 1][1], points[j][1]
    return y0 + (y1 - y0) * (lx - x0) / (x1 - x0)


@dataclass(frozen=True)
class MemorySystem:
    """One design's path to HBM, per pseudo channel (all times in ns, bandwidths in GB/s)."""

    kernel_port_bits: int
    kernel_clock_MHz: float
    hbm_axi_bits: int
    hbm_clock_MHz: float
    channel_peak_GBps: float
    read_outstanding: int
    max_burst_beats: int
    converter_latency_cycles: int          # kernel cycles, each way
    latency_page_hit_ns: float
    latency_page_miss_ns: float
    lateral_fraction: float
    burst_bytes: int
    max_transaction_bytes: int
    refresh_loss_fraction: float           # tRFC / tREFI at 1x refresh (contained in the measurements)
    refresh_multiplier: float
    row_bytes: int
    setup_cycles: int                      # per transfer, in the LD/ST unit (estimate, YAML dma block)
    issue_cycles: int                      # per instruction (estimate, YAML dma block)
    # (pattern, ((access_bytes, efficiency), ...)) for one master, one channel, no switch
    eff_points: tuple = ()
    # ((masters, factor), ...) sequential sharing of one channel
    masters_points: tuple = ()
    # ((access_bytes, seconds_per_byte_drain), ...) for a single-ID master alternating channels (random)
    drain_points: tuple = ()
    table: str = ""
    sources: tuple = field(default=(), compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_table(cls, *, kernel_port_bits: int = 512, kernel_clock_MHz: float = 225.0,
                   hbm_clock_MHz: Optional[float] = None, read_outstanding: Optional[int] = None,
                   max_burst_beats: Optional[int] = None, channel_peak_GBps: Optional[float] = None,
                   refresh_multiplier: float = 1.0, hbm_axi_fmax_MHz: Optional[float] = None,
                   path: Optional[str | Path] = None) -> "MemorySystem":
        """The memory system of a port configuration; every default comes from the table (and its source).
        ``hbm_axi_fmax_MHz``: the device's own HBM AXI port limit where its spec has one (else the table's)."""
        return _build(int(kernel_port_bits), float(kernel_clock_MHz), hbm_clock_MHz, read_outstanding,
                      max_burst_beats, channel_peak_GBps, float(refresh_multiplier), hbm_axi_fmax_MHz,
                      str(path or DEFAULT_TABLE))

    @classmethod
    def from_design(cls, design: Any, device: Any = None,
                    channel_peak_GBps: Optional[float] = None) -> "MemorySystem":
        """The memory system of an ``AcceleratorDesign`` (its ports and clocks) on a device (its channel peak:
        ``channel_peak_GBps`` where the caller knows it, else the device's per-channel figure, else its total
        over its pseudo channels, else the table's)."""
        peak = channel_peak_GBps
        hbm = getattr(device, "hbm", None)
        if peak is None and hbm is not None:
            peak = hbm.per_channel_GBps or (hbm.total_GBps / hbm.pseudo_channels
                                            if hbm.total_GBps and hbm.pseudo_channels else None)
        clock = getattr(device, "clock", None)
        return cls.from_table(kernel_port_bits=design.hbm_port_bits, kernel_clock_MHz=design.clock_MHz,
                              hbm_axi_fmax_MHz=getattr(clock, "hbm_axi_fmax_MHz", None),
                              hbm_clock_MHz=getattr(design, "hbm_clock_MHz", None),
                              read_outstanding=getattr(design, "hbm_read_outstanding", None),
                              max_burst_beats=getattr(design, "hbm_max_burst_beats", None),
                              channel_peak_GBps=peak)

    # ------------------------------------------------------------------ ceilings
    @property
    def kernel_port_GBps(self) -> float:
        return self.kernel_port_bits / 8 * self.kernel_clock_MHz * 1e-3

    @property
    def hbm_axi_GBps(self) -> float:
        return self.hbm_axi_bits / 8 * self.hbm_clock_MHz * 1e-3

    @property
    def ceiling_GBps(self) -> float:
        """The narrowest of kernel port, HBM-side port and pseudo channel."""
        return min(self.kernel_port_GBps, self.hbm_axi_GBps, self.channel_peak_GBps)

    @property
    def beat_bytes(self) -> int:
        return self.kernel_port_bits // 8

    @property
    def transaction_bytes(self) -> int:
        """Largest AXI transaction the master issues: max burst beats, never over the 4 KB boundary."""
        return min(self.max_burst_beats * self.beat_bytes, self.max_transaction_bytes)

    # ------------------------------------------------------------------ latency
    def read_latency_ns(self, pattern: str = "sequential") -> float:
        """First-data latency of one read: the DRAM's (page hit for sequential, miss otherwise, Shuhai) plus
        the converter both ways (estimate)."""
        dram = self.latency_page_hit_ns if pattern == "sequential" else self.latency_page_miss_ns
        return dram + 2 * self.converter_latency_cycles * 1e3 / self.kernel_clock_MHz

    def latency_cycles(self, pattern: str = "sequential") -> int:
        return int(math.ceil(self.read_latency_ns(pattern) * 1e-3 * self.kernel_clock_MHz))

    # ------------------------------------------------------------------ efficiency and bandwidth
    def efficiency(self, pattern: str, access_bytes: int) -> float:
        """Measured fraction of the pseudo channel's peak for one master (interpolated in log2 size).

        Strided accesses with a stride of at least one DRAM row open a new row each time: the random
        rows apply (a shorter stride keeps the row open: sequential); the caller states which by
        passing the contiguous run as ``access_bytes``. Below the smallest measured size the per-access
        cost dominates, so efficiency falls in proportion to the size.
        """
        if pattern not in PATTERNS:
            raise MemorySystemError(f"pattern={pattern!r}; allowed: {', '.join(PATTERNS)}")
        key = "random" if pattern == "strided" else pattern
        pts = dict(self.eff_points)[key]
        if access_bytes < pts[0][0]:
            e = pts[0][1] * access_bytes / pts[0][0]
        else:
            e = _interp_log2(list(pts), access_bytes)
        if self.refresh_multiplier != 1.0:
            f = self.refresh_loss_fraction
            e *= (1 - self.refresh_multiplier * f) / (1 - f)
        return e

    def masters_factor(self, masters_per_channel: int) -> float:
        pts = self.masters_points
        if masters_per_channel <= 1:
            return 1.0
        xs = [m for m, _ in pts]
        if masters_per_channel >= xs[-1]:
            return pts[-1][1]
        j = bisect.bisect_right(xs, masters_per_channel)
        (m0, f0), (m1, f1) = pts[j - 1], pts[j]
        return f0 + (f1 - f0) * (masters_per_channel - m0) / (m1 - m0)

    def outstanding_bound_GBps(self, pattern: str, access_bytes: int) -> float:
        """Little's law: ``read_outstanding`` transactions in flight over one round trip."""
        txn = min(access_bytes, self.transaction_bytes)
        return self.read_outstanding * txn / self.read_latency_ns(pattern)

    def bandwidth_GBps(self, *, pattern: str, access_bytes: int, channels: int = 1, masters_per_channel: int = 1,
                       crosses_switch: bool = False) -> float:
        """Aggregate GB/s of ``channels`` pseudo channels, each shared by ``masters_per_channel`` masters.

        With ``crosses_switch`` every master spans all ``channels`` through the lateral switch: sequential
        traffic keeps PG276's lateral fraction; random traffic from a single-ID master must drain before it
        turns to another channel, which happens with probability ``1 - 1/channels`` (the drain time per
        byte comes from the 2-channel measurements).
        """
        if channels < 1 or masters_per_channel < 1 or access_bytes < 1:
            raise MemorySystemError(f"channels={channels}, masters_per_channel={masters_per_channel} and "
                                    f"access_bytes={access_bytes} must be >= 1")
        per_ch = self.ceiling_GBps * self.efficiency(pattern, access_bytes) * self.masters_factor(masters_per_channel)
        per_ch = min(per_ch, masters_per_channel * self.outstanding_bound_GBps(pattern, access_bytes))
        if not crosses_switch:
            return channels * per_ch
        if pattern == "sequential":
            return channels * per_ch * self.lateral_fraction
        # one single-ID master spanning `channels`: time per byte mixes pipelined and drained accesses
        t_pipe = 1.0 / (self.ceiling_GBps * self.efficiency(pattern, access_bytes))
        t_drain = _interp_log2(list(self.drain_points), access_bytes)
        p_switch = 1.0 - 1.0 / channels
        per_master = 1.0 / (p_switch * t_drain + (1 - p_switch) * t_pipe)
        return min(masters_per_channel * per_master, channels * per_ch)

    # ------------------------------------------------------------------ transfers
    def moved_bytes(self, addr: int, nbytes: int) -> int:
        """Bytes the port really moves for ``nbytes`` at byte address ``addr``: whole kernel-port beats
        (a 512-bit port moves aligned 64-byte beats, so an unaligned run pays its partial beats)."""
        if nbytes <= 0:
            return 0
        b = self.beat_bytes
        return (-(-(addr + nbytes) // b) - addr // b) * b

    def transactions(self, addr: int, nbytes: int) -> int:
        """AXI transactions of a contiguous run: split at max-burst size and at 4 KB boundaries."""
        if nbytes <= 0:
            return 0
        moved = self.moved_bytes(addr, nbytes)
        start = addr - addr % self.beat_bytes
        crossings = (start + moved - 1) // self.max_transaction_bytes - start // self.max_transaction_bytes
        return max(-(-moved // self.transaction_bytes), crossings + 1)

    def occupancy_cycles(self, nbytes: int, *, pattern: str, access_bytes: int, addr: int = 0,
                         crosses_switch: bool = False) -> int:
        """Kernel cycles one channel is busy moving a contiguous run (setup and latency excluded)."""
        if nbytes <= 0:
            return 0
        moved = self.moved_bytes(addr, nbytes)
        bw = self.bandwidth_GBps(pattern=pattern, access_bytes=access_bytes, channels=1,
                                 crosses_switch=crosses_switch)
        return int(math.ceil(moved / (bw * 1e3 / self.kernel_clock_MHz)))

    def transfer_cycles(self, nbytes: int, *, pattern: str, access_bytes: int, channel_count: int = 1,
                        crosses_switch: bool = False) -> int:
        """Kernel cycles of one isolated transfer of ``nbytes`` spread evenly over ``channel_count`` channels:
        setup, then the channels in parallel, then the read latency of the last data."""
        if nbytes <= 0:
            return 0
        per = -(-nbytes // channel_count)
        return (self.setup_cycles + self.occupancy_cycles(per, pattern=pattern, access_bytes=min(access_bytes, per),
                                                     crosses_switch=crosses_switch)
                + self.latency_cycles(pattern))

    def describe(self) -> dict[str, Any]:
        """The model's components, for ``--explain`` and docs."""
        return {"kernel_port": f"{self.kernel_port_bits} b x {self.kernel_clock_MHz:g} MHz = {self.kernel_port_GBps:.2f} GB/s",
                "hbm_axi_port": f"{self.hbm_axi_bits} b x {self.hbm_clock_MHz:g} MHz = {self.hbm_axi_GBps:.2f} GB/s",
                "pseudo_channel_peak_GBps": self.channel_peak_GBps,
                "ceiling_GBps": self.ceiling_GBps,
                "transaction_bytes": self.transaction_bytes, "read_outstanding": self.read_outstanding,
                "read_latency_ns": {"sequential": self.read_latency_ns("sequential"),
                                    "random": self.read_latency_ns("random")},
                "table": self.table}


@lru_cache(maxsize=64)
def _build(kernel_bits: int, kernel_MHz: float, axi_MHz: Optional[float], outstanding: Optional[int],
           burst_beats: Optional[int], peak: Optional[float], refresh_mult: float, axi_fmax: Optional[float],
           path: str) -> MemorySystem:
    p, data = _table(path)
    where = str(p)
    rows = [r for r in load_hbm_measurements(p) if r.use == "model"]
    axi_bits = int(_fact(data, where, "hbm_axi_port", "width_bits"))
    axi_max = _fact(data, where, "hbm_axi_port", "max_clock_MHz")
    axi_src = data["hbm_axi_port"]["source"]
    if axi_fmax is not None:
        axi_max, axi_src = float(axi_fmax), "the device spec's clock.hbm_axi_fmax_MHz"
    kp = data.get("kernel_port", {})
    allowed = kp.get("allowed_width_bits", [])
    if kernel_bits not in allowed:
        raise MemorySystemError(f"hbm_port_bits={kernel_bits}: the HBM's AXI path takes kernel ports of "
                                f"{', '.join(map(str, allowed))} bits ({kp.get('source', where)})")
    if not (isinstance(kernel_MHz, float) and kernel_MHz > 0):
        raise MemorySystemError(f"clock_MHz={kernel_MHz!r} must be > 0")
    axi_MHz = axi_max if axi_MHz is None else float(axi_MHz)
    if not (0 < axi_MHz <= axi_max):
        raise MemorySystemError(f"hbm_clock_MHz={axi_MHz:g} is beyond what the HBM AXI port takes: allowed "
                                f"(0, {axi_max:g}] MHz ({axi_src})")
    outstanding = int(kp.get("default_num_read_outstanding")) if outstanding is None else int(outstanding)
    burst_beats = int(kp.get("default_max_read_burst_beats")) if burst_beats is None else int(burst_beats)
    if outstanding < 1:
        raise MemorySystemError(f"hbm_read_outstanding={outstanding} must be >= 1")
    max_txn = int(_fact(data, where, "hbm_axi_port", "max_transaction_bytes"))
    if not (1 <= burst_beats <= 256) or burst_beats * kernel_bits // 8 > max_txn:
        raise MemorySystemError(f"hbm_max_burst_beats={burst_beats}: allowed 1..{max_txn // (kernel_bits // 8)} "
                                f"beats of {kernel_bits} bits (AXI4: at most 256 beats and never over a "
                                f"{max_txn}-byte boundary)")
    ch_peak = _fact(data, where, "pseudo_channel", "peak_GBps")
    peak = ch_peak if peak is None else float(peak)
    conv = int(_fact(data, where, "converter", "latency_cycles_each_way", allow_estimate=True))
    lat_hit = _fact(data, where, "latency_ns", "page_hit")
    lat_miss = _fact(data, where, "latency_ns", "page_miss")
    lateral = check_efficiency("switch.lateral_max_fraction_of_full_bw",
                               _fact(data, where, "switch", "lateral_max_fraction_of_full_bw"))
    trefi = _fact(data, where, "refresh", "tREFI_us")
    trfc = _fact(data, where, "refresh", "tRFC_ns", allow_estimate=True)
    refresh_loss = trfc / (trefi * 1e3)
    if not refresh_mult > 0 or refresh_mult * refresh_loss >= 1:
        raise MemorySystemError(f"refresh_multiplier={refresh_mult}: must be > 0 and leave time between refreshes")
    burst = int(_fact(data, where, "hbm_axi_port", "burst_bytes"))
    row_bytes = int(_fact(data, where, "page", "row_bytes_per_bank"))

    # efficiency of one master, one channel, no switch, from the model rows
    eff: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        if r.channels == 1 and r.masters_per_channel == 1 and not r.crosses_switch:
            e = check_efficiency(f"{r.label} ({r.source})", r.measured_GBps / ch_peak)
            eff.setdefault(r.pattern, {}).setdefault(r.access_bytes, []).append(e)
    for need in ("sequential", "random"):
        if need not in eff:
            raise MemorySystemError(f"{where}: no 'use: model' row for pattern '{need}' with one master on one "
                                    "channel; the model needs one")
    eff_points = tuple((pat, tuple((a, sum(v) / len(v)) for a, v in sorted(d.items()))) for pat, d in sorted(eff.items()))
    eff_of = {pat: pts for pat, pts in eff_points}

    def e1(pattern: str, a: int) -> float:
        pts = eff_of["random" if pattern == "strided" else pattern]
        return pts[0][1] * a / pts[0][0] if a < pts[0][0] else _interp_log2(list(pts), a)

    # sharing: masters > 1 on one channel, relative to one master at the same size and pattern
    mp: dict[int, list[float]] = {}
    for r in rows:
        if r.channels == 1 and r.masters_per_channel > 1 and not r.crosses_switch:
            mp.setdefault(r.masters_per_channel, []).append(r.measured_GBps / (ch_peak * e1(r.pattern, r.access_bytes)))
    masters_points = ((1, 1.0),) + tuple((m, check_efficiency(f"masters_per_channel={m} factor", sum(v) / len(v)))
                                          for m, v in sorted(mp.items()))
    # switch: a single-ID random master spanning k channels; drain time per byte from those rows
    dp: dict[int, list[float]] = {}
    for r in rows:
        if r.crosses_switch and r.pattern != "sequential" and r.channels > 1:
            per_master = r.measured_GBps / r.masters_per_channel
            t_obs = 1.0 / per_master
            t_pipe = 1.0 / (ch_peak * e1(r.pattern, r.access_bytes))
            p = 1.0 - 1.0 / r.channels
            dp.setdefault(r.access_bytes, []).append((t_obs - (1 - p) * t_pipe) / p)
    if not dp:
        raise MemorySystemError(f"{where}: no 'use: model' row for random access through the switch")
    drain_points = tuple((a, sum(v) / len(v)) for a, v in sorted(dp.items()))
    setup = int(_fact(data, where, "dma", "setup_cycles_per_transfer", allow_estimate=True))
    issue = int(_fact(data, where, "dma", "issue_cycles_per_instruction", allow_estimate=True))
    srcs = tuple(sorted({r.source for r in rows}))
    return MemorySystem(kernel_port_bits=kernel_bits, kernel_clock_MHz=kernel_MHz, hbm_axi_bits=axi_bits,
                        hbm_clock_MHz=axi_MHz, channel_peak_GBps=peak, read_outstanding=outstanding,
                        max_burst_beats=burst_beats, converter_latency_cycles=conv, latency_page_hit_ns=lat_hit,
                        latency_page_miss_ns=lat_miss, lateral_fraction=lateral, burst_bytes=burst,
                        max_transaction_bytes=max_txn, refresh_loss_fraction=refresh_loss,
                        refresh_multiplier=refresh_mult, row_bytes=row_bytes,
                        setup_cycles=setup, issue_cycles=issue, eff_points=eff_points,
                        masters_points=masters_points, drain_points=drain_points, table=where, sources=srcs)


def ddr_facts(path: Optional[str | Path] = None) -> tuple[float, float, str]:
    """(GB/s of one DDR4 channel, read latency ns, source) for instruction fetch from DDR."""
    p, data = _table(path)
    return (_fact(data, str(p), "ddr4", "channel_GBps"), _fact(data, str(p), "ddr4", "read_latency_ns"),
            data["ddr4"]["source"])


def slr_crossing_stages(path: Optional[str | Path] = None) -> int:
    p, data = _table(path)
    return int(_fact(data, str(p), "slr", "crossing_pipeline_stages_above_250MHz"))
