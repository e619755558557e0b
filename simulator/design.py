"""Accelerator design specs: what a FlightLLM-style accelerator is built from.

A design is counted in *units* (cores, sparse DSP chains, SFU lanes, weight
decoders, on-chip buffers, HBM ports); its resource usage is derived from the
unit counts by :mod:`simulator.resources`, never written down, so a sweep
that changes a count changes the resources with it. Everything the timing
engine and the compiler need (peak MACs, buffer sizes and ports, decoder
count per core) is a property here, in one place.

The matrix engine follows the RTL of ``sparse_dsp`` (``sparse_dsp/dsp_chain.py``):
a chain is ``groups_per_chain`` groups of two DSP48E2-style slices; each slice
does two INT8 MACs sharing one weight (two token lanes, AMD WP486), so a chain
consumes one beat of ``chain_len`` kept weights per cycle for up to two
tokens. Decode (MV, one token) uses one lane, prefill (MM) both.

``matrix_engine.mac_dtype`` says what the engine multiplies: ``int8`` (the above; weights come
through the weight decoders) or ``fp16`` (a DFX-style engine: a chain is ``chain_len`` FP16
multiply-add units, one token per beat, dense FP16 weights loaded as they are, no weight
decoder: ``weight_decoder: null``; costs in ``simulator.fp16_datapath``). A design runs one
datatype: the compiler refuses FP16 weights on an int8 engine and integer weights on an fp16 one.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Sequence

from llmaccel.simulator import fp16_datapath as F16
from llmaccel.simulator.isa import MAX_BUFFER_BYTES, MAX_BUFFERS_PER_CORE, MISC_OPS
from llmaccel.simulator.specs._yaml import PRESETS_DIR, SpecError, build, load, to_dict
from llmaccel.sparse_dsp.dsp_chain import ChainConfig
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import SUPPORTED_BITS, WORD_BITS

BUFFER_ROLES = ("weight", "activation", "kv", "output", "sfu", "misc")


def parse_nm(text: str) -> Optional[tuple[int, int]]:
    """``"dense"`` -> None, ``"2:16"`` -> (2, 16); N == M means dense."""
    if text == "dense":
        return None
    try:
        n, m = (int(v) for v in text.split(":"))
    except ValueError:
        raise SpecError(f"N:M pattern '{text}' must be 'dense' or 'N:M' (e.g. '2:16')") from None
    if not 0 < n <= m:
        raise SpecError(f"N:M pattern '{text}' must keep N of every M weights with 0 < N <= M (N == M is dense)")
    return None if n == m else (n, m)


@dataclass(frozen=True)
class MatrixEngineSpec:
    """Sparse DSP chains of one core (``mac_dtype='int8'``), or dense FP16 multiply-add chains (``'fp16'``)."""

    groups_per_chain: int
    chains_per_core: int
    dsps_per_group: int = 2       # FlightLLM: 2 DSP48E2 per group (hardware.yaml flightllm_u280.dsp_group)
    int8_macs_per_dsp: int = 2    # AMD WP486 packing: two INT8 products sharing one operand (hardware.yaml)
    supported_nm: tuple[str, ...] = ("dense", "2:16", "4:16", "8:16")
    cascade_groups: Optional[int] = None  # groups per packed cascade segment; None = longest legal (RTL)
    mac_dtype: Literal["int8", "fp16"] = "int8"   # what one MAC unit multiplies (module docstring)

    def __post_init__(self) -> None:
        if self.mac_dtype not in F16.MAC_DTYPES:
            raise SpecError(f"mac_dtype={self.mac_dtype!r} is not supported; allowed: {list(F16.MAC_DTYPES)}")
        if self.mac_dtype == "fp16":
            if self.groups_per_chain <= 0 or self.chains_per_core <= 0:
                raise SpecError(f"groups_per_chain={self.groups_per_chain} and chains_per_core="
                                f"{self.chains_per_core} must be positive")
            if tuple(self.supported_nm) != ("dense",):
                raise SpecError(f"supported_nm={list(self.supported_nm)} with mac_dtype='fp16': FP16 weights are "
                                "dense (no N:M index path in an FP16 chain); allowed: ['dense']")
            if self.cascade_groups is not None:
                raise SpecError("cascade_groups applies to the INT8 DSP cascade; with mac_dtype='fp16' it must be "
                                "null (the FP16 chain reduces with an adder tree)")
            return
        if self.dsps_per_group != 2:
            raise SpecError(f"dsps_per_group={self.dsps_per_group} is not supported; allowed: 2 "
                            f"(the RTL chain groups two DSP48E2 with a fixed cascade)")
        if self.int8_macs_per_dsp != 2:
            raise SpecError(f"int8_macs_per_dsp={self.int8_macs_per_dsp} is not supported; allowed: 2 (WP486 packing)")
        if self.groups_per_chain <= 0 or self.chains_per_core <= 0:
            raise SpecError(f"groups_per_chain={self.groups_per_chain} and chains_per_core={self.chains_per_core} "
                            f"must be positive")
        if not self.supported_nm:
            raise SpecError("supported_nm must list at least one pattern (e.g. 'dense')")
        for text in self.supported_nm:
            # The RTL's own validation: chain_len even, <= one DSP column, a multiple of N, legal cascade.
            nm = parse_nm(text)
            try:
                ChainConfig(self.chain_len, nm, self.cascade_groups)
            except LlmaccelError as exc:  # sparse_dsp.dsp_chain.ChainConfigError
                raise SpecError(f"supported_nm '{text}' with groups_per_chain={self.groups_per_chain}: {exc}") from None

    @property
    def chain_len(self) -> int:
        """MAC units in one chain (weights per beat): DSPs for INT8, FP16 multiply-add units for FP16."""
        return self.groups_per_chain * self.dsps_per_group

    @property
    def dsps_per_mac_unit(self) -> int:
        return F16.FP16_MUL_DSPS if self.mac_dtype == "fp16" else 1

    @property
    def dsps_per_core(self) -> int:
        return self.chains_per_core * self.chain_len * self.dsps_per_mac_unit

    @property
    def tokens_per_beat(self) -> int:
        """Tokens sharing one weight beat: 2 packed INT8 lanes (WP486), 1 for FP16."""
        return F16.TOKENS_PER_BEAT[self.mac_dtype]

    @property
    def mm_macs_per_cycle(self) -> int:
        """Prefill MACs per cycle of one core, in the engine's datatype."""
        return self.chains_per_core * self.chain_len * self.tokens_per_beat

    @property
    def nm_patterns(self) -> tuple[Optional[tuple[int, int]], ...]:
        return tuple(parse_nm(t) for t in self.supported_nm)

    @property
    def mv_rows_parallel(self) -> int:
        """Output rows computed at once in decode (one row per chain)."""
        return self.chains_per_core

    @property
    def mv_int8_macs_per_cycle(self) -> int:
        """Decode (one token): one lane of every DSP does useful work (0 on an FP16 engine)."""
        return self.dsps_per_core if self.mac_dtype == "int8" else 0

    @property
    def mm_tokens_parallel(self) -> int:
        """Tokens sharing one weight beat in prefill (the packed lanes)."""
        return self.tokens_per_beat

    @property
    def mm_int8_macs_per_cycle(self) -> int:
        return self.dsps_per_core * self.int8_macs_per_dsp if self.mac_dtype == "int8" else 0


@dataclass(frozen=True)
class BufferSpec:
    """One on-chip buffer: ``banks`` independent memories of ``width_bits`` each."""

    name: str
    role: Literal["weight", "activation", "kv", "output", "sfu", "misc"]
    memory: Literal["URAM", "BRAM"]
    size_bytes: int
    banks: int = 1
    width_bits: int = 72          # port width of one bank
    scope: Literal["core", "device"] = "core"

    def __post_init__(self) -> None:
        if self.size_bytes <= 0 or self.banks <= 0 or self.width_bits <= 0:
            raise SpecError(f"buffer '{self.name}': size_bytes, banks and width_bits must be positive")
        bits = self.size_bytes * 8
        if bits % (self.banks * self.width_bits):
            raise SpecError(f"buffer '{self.name}': size_bytes={self.size_bytes} is not a whole number of "
                            f"{self.banks} banks x {self.width_bits}-bit words")
        if self.size_bytes > MAX_BUFFER_BYTES:
            raise SpecError(f"buffer '{self.name}': size_bytes={self.size_bytes} exceeds what the ISA addresses "
                            f"({MAX_BUFFER_BYTES} bytes: 16-bit offsets in 64-byte lines)")

    @property
    def depth(self) -> int:
        """Words per bank."""
        return self.size_bytes * 8 // (self.banks * self.width_bits)

    @property
    def read_bytes_per_cycle(self) -> int:
        """One read port per bank (the second port is the writer)."""
        return self.banks * self.width_bits // 8


@dataclass(frozen=True)
class SfuSpec:
    """Special-function unit of one core: element-wise and two-phase (reduce, then map) ops."""

    lanes: int
    precision: Literal["fp16", "fp32"] = "fp16"   # FlightLLM: FP16 softmax/norms (hardware.yaml)
    ops: tuple[str, ...] = MISC_OPS

    def __post_init__(self) -> None:
        if self.lanes <= 0:
            raise SpecError(f"sfu lanes={self.lanes} must be positive")
        bad = [o for o in self.ops if o not in MISC_OPS]
        if bad:
            raise SpecError(f"sfu op '{bad[0]}' is not supported; allowed: {', '.join(MISC_OPS)}")


@dataclass(frozen=True)
class WeightDecoderSpec:
    """On-chip decoders from packed low-bit weights to INT8 chain beats (sparse_dsp/weight_decoder.py)."""

    decoders_per_channel: int
    in_bits_per_cycle: int = WORD_BITS  # the RTL decoder takes one 32-bit code word per cycle
    supported_bits: tuple[int, ...] = SUPPORTED_BITS

    def __post_init__(self) -> None:
        if self.decoders_per_channel <= 0:
            raise SpecError(f"decoders_per_channel={self.decoders_per_channel} must be positive")
        if self.in_bits_per_cycle != WORD_BITS:
            raise SpecError(f"in_bits_per_cycle={self.in_bits_per_cycle} is not supported; allowed: {WORD_BITS} "
                            f"(sparse_dsp/weight_decoder.py reads one 32-bit code word per cycle)")
        bad = [b for b in self.supported_bits if b not in SUPPORTED_BITS]
        if bad:
            raise SpecError(f"weight decoder bits={bad[0]} is not supported; allowed: {list(SUPPORTED_BITS)}")


# The units whose figures a synthesis report may set (ReportedUnit.unit); the HLS kernel-family registry
# (hls_kernels.configs.FAMILIES, sim_unit) says which kernel top stands for which.
REPORTED_UNITS = ("mpe", "sfu")


@dataclass(frozen=True)
class ReportedResources:
    """Resources of one unit instance as a synthesis report states them (Vitis HLS names)."""

    LUT: int
    FF: int
    DSP: int
    BRAM_18K: int
    URAM: int

    def __post_init__(self) -> None:
        for f in ("LUT", "FF", "DSP", "BRAM_18K", "URAM"):
            if getattr(self, f) < 0:
                raise SpecError(f"reported resource {f}={getattr(self, f)} must be >= 0")


@dataclass(frozen=True)
class ReportedUnit:
    """What a csynth report says about one unit; the timing and resource models take these figures
    instead of their own (``simulator.timing_params.hw_from_design``, ``simulator.resources``).

    ``mpe``: one sparse DSP chain as the ``linear_mv`` kernel (its beat loop's II and pipeline
    depth are the chain's II and fill/drain latency; its resources one chain's). ``sfu``: the SFU of
    one core (the deepest pipelined phase loop is the per-phase pipeline depth, the worst II the
    cycles per element and lane; its resources are shared by the design's lanes).
    Filled by ``mapping.designs`` from ``hls_reports``; stored in compiled artifacts as data.
    """

    unit: Literal["mpe", "sfu"]
    report: str                  # the csynth.xml the timing came from
    report_sha256: str
    top: str                     # the HLS top it synthesised
    loop: str                    # the loop whose II and pipeline depth are taken
    ii_cycles: int
    pipeline_depth_cycles: int
    resources: ReportedResources
    resources_report: str        # the csynth.xml of the top (resources of the whole unit)
    tool_version: str = "unknown"

    def __post_init__(self) -> None:
        if self.unit not in REPORTED_UNITS:
            raise SpecError(f"reported unit '{self.unit}' is unknown; allowed: {', '.join(REPORTED_UNITS)}")
        if self.ii_cycles < 1:
            raise SpecError(f"reported unit '{self.unit}': ii_cycles={self.ii_cycles} must be >= 1")
        if self.pipeline_depth_cycles < 0:
            raise SpecError(f"reported unit '{self.unit}': pipeline_depth_cycles={self.pipeline_depth_cycles} "
                            f"must be >= 0")


@dataclass(frozen=True)
class AcceleratorDesign:
    """A whole accelerator: ``cores`` identical cores sharing ``hbm_channels`` HBM channels."""

    name: str
    device: str                   # device preset it targets (simulator/presets/devices)
    clock_MHz: float
    cores: int
    matrix_engine: MatrixEngineSpec
    sfu: SfuSpec
    weight_decoder: Optional[WeightDecoderSpec]   # null for an fp16 matrix engine (FP16 weights are not decoded)
    buffers: tuple[BufferSpec, ...]
    hbm_channels: int             # pseudo channels the design uses; each core owns hbm_channels/cores
    hbm_port_bits: int = 256      # kernel-side AXI data width per channel port (at clock_MHz)
    # HBM-side AXI clock of each channel port (PG276: 256-bit ports up to 450 MHz); a width/clock
    # converter joins it to the kernel-side port (simulator/memory_system.py). None = the HBM's maximum.
    hbm_clock_MHz: Optional[float] = None
    hbm_read_outstanding: Optional[int] = None   # m_axi num_read_outstanding; None = UG1399 default
    hbm_max_burst_beats: Optional[int] = None    # m_axi max_read_burst_length; None = UG1399 default
    # where the instruction streams live and are fetched from while the program runs
    instruction_memory: Literal["ddr", "hbm", "on_chip"] = "on_chip"
    description: str = ""
    notes: dict[str, str] = field(default_factory=dict)  # provenance of design choices
    # csynth.xml (or a directory of them, relative to the design YAML) whose figures replace the
    # timing and resource models' own for the units they synthesise (mapping.designs reads them)
    hls_reports: Optional[str] = None
    reported: tuple[ReportedUnit, ...] = ()

    def __post_init__(self) -> None:
        if not self.clock_MHz > 0:
            raise SpecError(f"clock_MHz={self.clock_MHz} must be > 0")
        if self.cores <= 0 or self.hbm_channels <= 0 or self.hbm_port_bits <= 0:
            raise SpecError("cores, hbm_channels and hbm_port_bits must be positive")
        if self.hbm_clock_MHz is not None and not self.hbm_clock_MHz > 0:
            raise SpecError(f"hbm_clock_MHz={self.hbm_clock_MHz} must be > 0")
        for f in ("hbm_read_outstanding", "hbm_max_burst_beats"):
            v = getattr(self, f)
            if v is not None and v < 1:
                raise SpecError(f"{f}={v} must be >= 1")
        fp16 = self.matrix_engine.mac_dtype == "fp16"
        if fp16 and self.weight_decoder is not None:
            raise SpecError("weight_decoder must be null with matrix_engine.mac_dtype='fp16': FP16 weight rows go "
                            "into the weight buffer as they are (allowed: weight_decoder: null)")
        if not fp16 and self.weight_decoder is None:
            raise SpecError("weight_decoder: null needs matrix_engine.mac_dtype='fp16'; an int8 engine decodes "
                            "packed weights on chip (give weight_decoder: {decoders_per_channel: ...})")
        if self.hbm_channels % self.cores:
            raise SpecError(f"hbm_channels={self.hbm_channels} must be a multiple of cores={self.cores} "
                            f"(each core owns whole channels, so no access crosses channels)")
        names = [b.name for b in self.buffers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SpecError(f"buffer name '{dup[0]}' is used twice; buffer names must be unique")
        n_core = sum(1 for b in self.buffers if b.scope == "core")
        if n_core > MAX_BUFFERS_PER_CORE:
            raise SpecError(f"{n_core} per-core buffers; the ISA's 3-bit buffer ids allow at most "
                            f"{MAX_BUFFERS_PER_CORE}")
        for role in ("weight", "activation"):
            if not any(b.role == role and b.scope == "core" for b in self.buffers):
                raise SpecError(f"buffers: a per-core '{role}' buffer is required")
        units = [r.unit for r in self.reported]
        twice = sorted({u for u in units if units.count(u) > 1})
        if twice:
            raise SpecError(f"reported: unit '{twice[0]}' is given twice; each unit may have one report")

    def require_reports_read(self) -> None:
        """Refuse to model a design whose reports were named but not read (their figures would be ignored)."""
        if self.hls_reports is not None and not self.reported:
            raise SpecError(f"design '{self.name}' names hls_reports '{self.hls_reports}' that were not read; load "
                            "the design with mapping.designs.load_design (as compile, simulate and run do), "
                            "which reads them")

    def reported_unit(self, unit: str) -> Optional[ReportedUnit]:
        """The report figures for ``unit`` (``mpe``, ``sfu``), or None when the models' own are used."""
        return next((r for r in self.reported if r.unit == unit), None)

    # ----- what the timing engine and compiler read ------------------------------------------------
    @property
    def clock_hz(self) -> float:
        return self.clock_MHz * 1e6

    @property
    def chain_len(self) -> int:
        return self.matrix_engine.chain_len

    @property
    def chains_per_core(self) -> int:
        return self.matrix_engine.chains_per_core

    @property
    def matrix_dsps(self) -> int:
        return self.cores * self.matrix_engine.dsps_per_core

    @property
    def channels_per_core(self) -> int:
        return self.hbm_channels // self.cores

    @property
    def mac_dtype(self) -> str:
        return self.matrix_engine.mac_dtype

    @property
    def decoders_per_core(self) -> int:
        wd = self.weight_decoder
        return 0 if wd is None else wd.decoders_per_channel * self.channels_per_core

    @property
    def num_decoders(self) -> int:
        wd = self.weight_decoder
        return 0 if wd is None else wd.decoders_per_channel * self.hbm_channels

    @property
    def sfu_lanes_per_core(self) -> int:
        return self.sfu.lanes

    @property
    def peak_int8_macs_per_s(self) -> float:
        """Prefill peak (both packed lanes busy) of the whole design."""
        return self.cores * self.matrix_engine.mm_int8_macs_per_cycle * self.clock_hz

    @property
    def peak_int8_tops(self) -> float:
        return 2 * self.peak_int8_macs_per_s / 1e12

    @property
    def peak_macs_per_s(self) -> float:
        """Prefill peak in the engine's own datatype (``mac_dtype``)."""
        return self.cores * self.matrix_engine.mm_macs_per_cycle * self.clock_hz

    def buffer(self, name: str) -> BufferSpec:
        for b in self.buffers:
            if b.name == name:
                return b
        raise SpecError(f"design '{self.name}' has no buffer '{name}'; buffers: "
                        f"{', '.join(b.name for b in self.buffers)}")

    def buffer_id(self, name: str) -> int:
        """The ISA buffer id of a per-core buffer: its position among the per-core buffers."""
        core = [b.name for b in self.buffers if b.scope == "core"]
        if name not in core:
            raise SpecError(f"'{name}' is not a per-core buffer of design '{self.name}'; per-core buffers: "
                            f"{', '.join(core)}")
        return core.index(name)

    def buffer_bytes_per_core(self, role: str) -> int:
        if role not in BUFFER_ROLES:
            raise SpecError(f"buffer role '{role}' is unknown; allowed: {', '.join(BUFFER_ROLES)}")
        return sum(b.size_bytes for b in self.buffers if b.role == role and b.scope == "core")

    @property
    def weight_buf_bytes_per_core(self) -> int:
        return self.buffer_bytes_per_core("weight")

    @property
    def act_buf_bytes_per_core(self) -> int:
        return self.buffer_bytes_per_core("activation")

    @property
    def kv_buf_bytes_per_core(self) -> int:
        return self.buffer_bytes_per_core("kv")

    @property
    def buf_read_bytes_per_cycle_per_core(self) -> int:
        """Weight-buffer read bandwidth of one core (banks x port width)."""
        return sum(b.read_bytes_per_cycle for b in self.buffers if b.role == "weight" and b.scope == "core")


# ----- where designs are found -------------------------------------------------------------------
PRESET_PATH_ENV = "LLMACCEL_PRESET_PATH"
BUNDLED_DESIGNS = PRESETS_DIR / "designs"


def design_search_path(extra: Sequence[str | Path] = ()) -> tuple[Path, ...]:
    """The directories design names are looked up in, in order: the bundled presets, then each directory
    of ``$LLMACCEL_PRESET_PATH`` (``os.pathsep``-separated), then ``extra`` (``--preset-path``).

    A directory that does not exist is an error naming where it came from (a typo in the variable
    must not make a name silently resolve elsewhere)."""
    dirs = [BUNDLED_DESIGNS]
    env = os.environ.get(PRESET_PATH_ENV, "")
    sources = [(d, f"${PRESET_PATH_ENV}") for d in env.split(os.pathsep) if d.strip()]
    sources += [(str(d), "--preset-path") for d in extra]
    for text, origin in sources:
        d = Path(text).expanduser()
        if not d.is_dir():
            raise SpecError(f"{origin} entry '{text}' is not a directory; it must name directories holding "
                            f"design YAML files (<name>.yaml)")
        if d.resolve() not in [x.resolve() for x in dirs]:
            dirs.append(d)
    return tuple(dirs)


def _design_files(extra: Sequence[str | Path] = ()) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for d in design_search_path(extra):
        for p in sorted(d.glob("*.yaml")):
            found.setdefault(p.stem, []).append(p)
    return found


def _duplicate_error(name: str, paths: list[Path]) -> SpecError:
    return SpecError(f"design '{name}' is found twice on the preset search path: "
                     + " and ".join(f"'{p}'" for p in paths)
                     + "; rename one, or give the file path instead of the name")


def list_designs(extra: Sequence[str | Path] = ()) -> list[str]:
    """Names of the designs on the search path (bundled first; a name found twice is an error)."""
    found = _design_files(extra)
    for name, paths in found.items():
        if len(paths) > 1:
            raise _duplicate_error(name, paths)
    return sorted(found)


def is_design_file(name_or_path: str | Path) -> bool:
    """An explicit file path (``my.yaml``, ``./x``), as opposed to a name looked up on the search path."""
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text


def find_design(name_or_path: str | Path, extra: Sequence[str | Path] = ()) -> Path:
    """The YAML file of a design: an explicit path as given, a name from the search path.

    An unknown name lists the names on the path; a name found in two directories names both files."""
    if is_design_file(name_or_path):
        return Path(name_or_path)
    name = str(name_or_path)
    found = _design_files(extra)
    paths = found.get(name, [])
    if len(paths) > 1:
        raise _duplicate_error(name, paths)
    if not paths:
        where = ", ".join(str(d) for d in design_search_path(extra))
        raise SpecError(f"unknown design preset '{name}'; available: {', '.join(sorted(found))} "
                        f"(searched {where}; add directories with ${PRESET_PATH_ENV} or --preset-path, "
                        f"or give a design YAML path)")
    return paths[0]


def load_design(name_or_path: str | Path, extra: Sequence[str | Path] = ()) -> AcceleratorDesign:
    """A design by name (``flightllm-u280``, looked up on :func:`design_search_path`) or a design YAML file."""
    return load(AcceleratorDesign, find_design(name_or_path, extra))


def design_to_dict(design: AcceleratorDesign) -> dict:
    """The design as plain data (what a design YAML holds; :func:`design_from_dict` reads it back)."""
    return to_dict(design)


def design_from_dict(data: dict, source: str) -> AcceleratorDesign:
    """Rebuild a design from :func:`design_to_dict`'s data, with the YAML files' checks."""
    return build(AcceleratorDesign, data, source)


def design_sha256(design: AcceleratorDesign) -> str:
    """SHA-256 of the design's canonical JSON: two designs with the same figures have the same hash."""
    canon = json.dumps(design_to_dict(design), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode("ascii")).hexdigest()
