"""Kernel configurations as data: each is a small frozen spec with a self-describing name.

A configuration fixes what HLS needs at compile time (bit width, N:M, group
size, buffer bounds, schedule knobs); runtime sizes up to those bounds are
arguments, so one compiled instance serves many shapes (and many hypothesis
examples). ``validate`` raises one LlmaccelError naming the bad field before
any compiler runs; the C++ static_asserts repeat the checks for Vitis users.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Optional

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import LayerFormat, PackedFormatError, validate_format

TEMPLATE_DIR = Path(__file__).parent / "templates"
DSP_MAX_CHAIN = 8  # (2^17 - 1) // (128 * 127): see primitives/dsp_pair_mac.hpp


class HlsConfigError(LlmaccelError):
    """A kernel configuration whose template parameters do not fit together."""


def _render(template_file: str, **values) -> str:
    return Template((TEMPLATE_DIR / template_file).read_text()).substitute(**values)


def _nm_tag(nm: Optional[tuple[int, int]]) -> str:
    return "dense" if nm is None else f"n{nm[0]}m{nm[1]}"


@dataclass(frozen=True)
class LinearKernelConfig:
    """A linear layer kernel: ``kind`` is ``mv`` (decode), ``mm`` (tokens), ``decode`` (weight decoder
    only, m_axi) or ``decode_stream`` (weight decoder on AXI streams)."""

    kind: str
    bits: int
    nm: Optional[tuple[int, int]]
    group_size: int
    k_max: int
    o_max: int
    symmetric: bool = True
    chain: int = 4          # DSP cascade length = kept values per pipelined step
    ii: int = 1
    t_max: int = 1          # tokens bound (mm)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def family(self) -> str:
        return {"mv": "linear_mv", "mm": "linear_mm", "decode": "weight_decode",
                "decode_stream": "weight_decode_stream"}[self.kind]

    @property
    def name(self) -> str:
        sym = "" if self.symmetric else "_asym"
        tokens = f"_t{self.t_max}" if self.kind == "mm" else ""
        return (f"{self.kind}_{_nm_tag(self.nm)}_w{self.bits}{sym}_g{self.group_size}_k{self.k_max}"
                f"_o{self.o_max}{tokens}_c{self.chain}")

    @property
    def n_m(self) -> tuple[int, int]:
        return self.nm if self.nm is not None else (1, 1)

    def validate(self) -> None:
        if self.kind not in ("mv", "mm", "decode", "decode_stream"):
            raise HlsConfigError(f"kind={self.kind!r} is not a linear kernel; allowed: 'mv', 'mm', 'decode', "
                                 "'decode_stream'")
        try:
            validate_format(self.o_max, self.k_max, self.bits, self.group_size, self.symmetric,
                            tuple(self.nm) if self.nm else None)
        except PackedFormatError as exc:
            raise HlsConfigError(f"linear kernel config: {exc}") from None
        kept_per_group = self.group_size * self.n_m[0] // self.n_m[1]
        if not 1 <= self.chain <= DSP_MAX_CHAIN:
            raise HlsConfigError(f"chain={self.chain} must be in 1..{DSP_MAX_CHAIN} (two INT8 lanes per DSP48E2 "
                                 f"stay exact only up to {DSP_MAX_CHAIN} cascaded DSPs)")
        if kept_per_group % self.chain:
            raise HlsConfigError(f"chain={self.chain} must divide the kept values per group "
                                 f"(group_size*N/M = {kept_per_group})")
        if self.ii < 1:
            raise HlsConfigError(f"ii={self.ii} must be >= 1")
        if self.t_max < 1:
            raise HlsConfigError(f"t_max={self.t_max} must be >= 1")

    def layer_format(self, rows: int, k: int) -> LayerFormat:
        return LayerFormat(rows, k, self.bits, self.group_size, self.symmetric, self.nm)

    def format_cpp(self, k: Optional[int] = None, o: Optional[int] = None) -> str:
        n, m = self.n_m if self.nm else (1, 1)
        if self.nm is None:
            n = m = 1
        return (f"llmaccel_hls::linear_format<{self.bits}, {n}, {m}, {self.group_size}, "
                f"{'true' if self.symmetric else 'false'}, {k or self.k_max}, {o or self.o_max}>")

    def instance_header(self) -> str:
        n, m = self.nm if self.nm else (1, 1)
        return _render("instance_linear.tpl.hpp", name=self.name, bits=self.bits, n=n, m=m,
                       group_size=self.group_size, symmetric="true" if self.symmetric else "false",
                       k_max=self.k_max, o_max=self.o_max, chain=self.chain, ii=self.ii, t_max=self.t_max)


@dataclass(frozen=True)
class SfuKernelConfig:
    """The SFU (softmax, norms, SiLU, RoPE, element-wise, quantization) for vectors up to ``n_max``."""

    n_max: int
    unroll: int = 1

    def __post_init__(self) -> None:
        if self.n_max < 1:
            raise HlsConfigError(f"n_max={self.n_max} must be >= 1")
        if self.unroll < 1 or self.n_max % self.unroll:
            raise HlsConfigError(f"unroll={self.unroll} must be >= 1 and divide n_max={self.n_max}")

    family = "sfu"

    @property
    def name(self) -> str:
        return f"sfu_n{self.n_max}_u{self.unroll}"

    def instance_header(self) -> str:
        return _render("instance_sfu.tpl.hpp", name=self.name, n_max=self.n_max, unroll=self.unroll)


@dataclass(frozen=True)
class AttentionKernelConfig:
    """Decode attention over an INT8 KV cache: heads, kv heads (GQA), head_dim, cache depth."""

    heads: int
    kv_heads: int
    head_dim: int
    seq_max: int
    dot_lanes: int = 1

    def __post_init__(self) -> None:
        for f in ("heads", "kv_heads", "head_dim", "seq_max", "dot_lanes"):
            if getattr(self, f) < 1:
                raise HlsConfigError(f"{f}={getattr(self, f)} must be >= 1")
        if self.heads % self.kv_heads:
            raise HlsConfigError(f"heads={self.heads} must be a multiple of kv_heads={self.kv_heads} (GQA)")
        if self.head_dim % 2:
            raise HlsConfigError(f"head_dim={self.head_dim} must be even (RoPE rotate-half)")
        if self.head_dim % self.dot_lanes:
            raise HlsConfigError(f"dot_lanes={self.dot_lanes} must divide head_dim={self.head_dim}")

    family = "attention"

    @property
    def name(self) -> str:
        return f"attn_h{self.heads}kv{self.kv_heads}_d{self.head_dim}_s{self.seq_max}_l{self.dot_lanes}"

    def instance_header(self) -> str:
        return _render("instance_attention.tpl.hpp", name=self.name, heads=self.heads, kv_heads=self.kv_heads,
                       head_dim=self.head_dim, seq_max=self.seq_max, dot_lanes=self.dot_lanes)


PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ProjectionFormat:
    """Packed format of one projection inside a layer, plus its DSP chain length."""

    bits: int
    group_size: int
    symmetric: bool = True
    nm: Optional[tuple[int, int]] = None
    chain: int = 4

    @property
    def tag(self) -> str:
        return f"w{self.bits}{'' if self.symmetric else 'a'}{_nm_tag(self.nm)}g{self.group_size}"


@dataclass(frozen=True)
class DecoderLayerConfig:
    """A decoder layer (MV path) with the packed format of each of its seven projections."""

    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    seq_max: int
    projections: tuple[tuple[str, ProjectionFormat], ...] = field(default=())

    family = "decoder_layer"

    def __post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise HlsConfigError(f"heads={self.heads} must be a multiple of kv_heads={self.kv_heads}")
        if self.head_dim % 2:
            raise HlsConfigError(f"head_dim={self.head_dim} must be even (RoPE)")
        names = tuple(n for n, _ in self.projections)
        if names != PROJECTIONS:
            raise HlsConfigError(f"projections must be given in the order {list(PROJECTIONS)}, got {list(names)}")
        for pname, _ in self.projections:
            self.linear_config(pname)  # validates each

    def shape(self, pname: str) -> tuple[int, int]:
        """(rows O, columns K) of a projection."""
        h, i, qd, kvd = self.hidden, self.intermediate, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {"q_proj": (qd, h), "k_proj": (kvd, h), "v_proj": (kvd, h), "o_proj": (h, qd),
                "gate_proj": (i, h), "up_proj": (i, h), "down_proj": (h, i)}[pname]

    def projection(self, pname: str) -> ProjectionFormat:
        return dict(self.projections)[pname]

    def linear_config(self, pname: str) -> LinearKernelConfig:
        p = self.projection(pname)
        o, k = self.shape(pname)
        try:
            return LinearKernelConfig("mv", p.bits, p.nm, p.group_size, k, o, p.symmetric, p.chain)
        except HlsConfigError as exc:
            raise HlsConfigError(f"{pname}: {exc}") from None

    @property
    def name(self) -> str:
        digest = hashlib.sha256(repr(self.projections).encode()).hexdigest()[:6]
        tags = sorted({p.tag for _, p in self.projections})
        fmt = tags[0] if len(tags) == 1 else f"mixed{digest}"
        return (f"layer_d{self.hidden}_i{self.intermediate}_h{self.heads}kv{self.kv_heads}_hd{self.head_dim}"
                f"_s{self.seq_max}_{fmt}")

    def instance_header(self) -> str:
        lines = []
        for pname, p in self.projections:
            lc = self.linear_config(pname)
            lines.append(f"    typedef llmaccel_hls::linear_spec<{lc.format_cpp()}, "
                         f"llmaccel_hls::linear_schedule<{p.chain}, 1> > {pname};")
        return _render("instance_decoder_layer.tpl.hpp", name=self.name, hidden=self.hidden,
                       intermediate=self.intermediate, heads=self.heads, kv_heads=self.kv_heads,
                       head_dim=self.head_dim, seq_max=self.seq_max, projections="\n".join(lines))


def uniform_layer(hidden: int = 256, intermediate: int = 768, heads: int = 8, kv_heads: int = 4,
                  head_dim: int = 32, seq_max: int = 64, fmt: ProjectionFormat = ProjectionFormat(4, 64)
                  ) -> DecoderLayerConfig:
    """A layer whose seven projections share one format (the bundled model's shape by default)."""
    return DecoderLayerConfig(hidden, intermediate, heads, kv_heads, head_dim, seq_max,
                              tuple((p, fmt) for p in PROJECTIONS))


# ----- the registries: kernel families, and the configurations `hls emit --kernel NAME` offers -------
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class KernelFamily:
    """Everything that makes one kernel family, in one record: the CLI, the writer, the g++ build, the
    csim harness and the tests read these, never lists of their own.

    ``top`` is the Vitis kernel top (``tops/<top>.cpp``), ``abi`` the C-simulation entry point
    (``csim_abi/``), ``testbench`` the emitted golden-vector testbench (``flow/templates/``).
    ``smallest`` is the cheapest configuration (what the every-family test emits, builds and runs).
    ``sim_unit`` names the simulator unit a csynth report of ``top`` stands for, and ``timing_loops``
    the loop labels whose II and pipeline depth that unit takes (hls_kernels.flow.report)."""

    name: str
    config_type: type
    top: str
    smallest: object
    description: str
    sim_unit: Optional[str] = None
    timing_loops: tuple[str, ...] = ()

    @property
    def top_source(self) -> Path:
        return PACKAGE_DIR / "tops" / f"{self.top}.cpp"

    @property
    def abi(self) -> Path:
        return PACKAGE_DIR / "csim_abi" / f"abi_{self.name}.cpp"

    @property
    def testbench(self) -> Path:
        return PACKAGE_DIR / "flow" / "templates" / f"tb_{self.name}.cpp"

    def __post_init__(self) -> None:
        if not isinstance(self.smallest, self.config_type) or self.smallest.family != self.name:
            raise HlsConfigError(f"kernel family '{self.name}': smallest configuration {self.smallest!r} is not "
                                 f"a {self.config_type.__name__} of this family")
        missing = [str(p) for p in (self.top_source, self.abi, self.testbench) if not p.is_file()]
        if missing:
            raise HlsConfigError(f"kernel family '{self.name}' lacks {', '.join(missing)}")


FAMILIES: dict[str, KernelFamily] = {}
# The configurations `llmaccel hls emit --kernel NAME` and the tests draw from, by name.
REGISTRY: dict[str, object] = {}


def register_family(fam: KernelFamily) -> KernelFamily:
    if fam.name in FAMILIES:
        raise HlsConfigError(f"kernel family '{fam.name}' is registered twice")
    FAMILIES[fam.name] = fam
    return fam


def register(cfg) -> object:
    """Add a configuration; its family must be registered (so it has a top, an ABI and a testbench)."""
    if cfg.family not in FAMILIES:
        raise HlsConfigError(f"configuration {cfg.name}: kernel family '{cfg.family}' is not registered; "
                             f"families: {sorted(FAMILIES)}")
    REGISTRY[cfg.name] = cfg
    return cfg


def family_of(config) -> KernelFamily:
    """The family record of a configuration (one clear error for an unregistered family)."""
    fam = FAMILIES.get(getattr(config, "family", None))
    if fam is None:
        raise HlsConfigError(f"kernel family '{getattr(config, 'family', None)}' is not registered; families: "
                             f"{sorted(FAMILIES)}")
    return fam


def family_by_top(top: str) -> Optional[KernelFamily]:
    return next((f for f in FAMILIES.values() if f.top == top), None)


for _fam in (
    KernelFamily("linear_mv", LinearKernelConfig, "linear_mv_top", LinearKernelConfig("mv", 4, None, 64, 64, 8),
                 "decode MV: packed weights through the beat decoder into one DSP chain",
                 sim_unit="mpe", timing_loops=("MV_BEATS",)),
    KernelFamily("linear_mm", LinearKernelConfig, "linear_mm_top",
                 LinearKernelConfig("mm", 8, None, 64, 64, 8, t_max=2, chain=8),
                 "prefill MM: token pairs share each decoded weight (two MACs per DSP)"),
    KernelFamily("weight_decode", LinearKernelConfig, "weight_decode_top",
                 LinearKernelConfig("decode", 3, (2, 16), 64, 64, 8), "weight decoder on m_axi"),
    KernelFamily("weight_decode_stream", LinearKernelConfig, "weight_decode_stream_top",
                 LinearKernelConfig("decode_stream", 3, (4, 16), 32, 64, 8, symmetric=False),
                 "weight decoder on AXI streams"),
    KernelFamily("sfu", SfuKernelConfig, "sfu_top", SfuKernelConfig(64),
                 "special-function unit: softmax, norms, SiLU, RoPE, element-wise, quantization",
                 sim_unit="sfu", timing_loops=("SOFTMAX_MAX", "SOFTMAX_EXP_SUM", "SOFTMAX_NORM", "RMSNORM_SUMSQ",
                                               "RMSNORM_SCALE", "LAYERNORM_SUM", "LAYERNORM_SUMSQ",
                                               "LAYERNORM_SCALE", "SILU_ELEMS", "SILU_MUL_ELEMS", "ADD_ELEMS",
                                               "MUL_ELEMS", "ROPE_PAIRS")),
    KernelFamily("attention", AttentionKernelConfig, "attention_top", AttentionKernelConfig(2, 1, 16, 8, dot_lanes=2),
                 "decode attention over an INT8 KV cache (GQA)"),
    KernelFamily("decoder_layer", DecoderLayerConfig, "decoder_layer_top",
                 uniform_layer(64, 128, 2, 1, 32, 8, ProjectionFormat(4, 32)),
                 "a whole decoder layer (MV path) with its KV cache"),
):
    register_family(_fam)

for _cfg in (
    LinearKernelConfig("mv", 4, (2, 16), 64, 256, 64),
    LinearKernelConfig("mv", 4, None, 64, 256, 64),
    LinearKernelConfig("mv", 3, (4, 8), 32, 256, 64, symmetric=False),
    LinearKernelConfig("mv", 2, (2, 4), 32, 256, 64, symmetric=False, chain=8),
    LinearKernelConfig("mv", 8, (8, 16), 64, 256, 64, chain=8),
    LinearKernelConfig("mm", 4, (4, 16), 64, 256, 32, t_max=8),
    LinearKernelConfig("mm", 8, None, 64, 256, 32, t_max=8, chain=8),
    LinearKernelConfig("decode", 3, (2, 16), 64, 256, 32),
    LinearKernelConfig("decode_stream", 3, (4, 16), 32, 256, 32, symmetric=False),
    SfuKernelConfig(1024),
    AttentionKernelConfig(8, 4, 32, 64, dot_lanes=4),
    AttentionKernelConfig(4, 1, 64, 32, dot_lanes=8),
    uniform_layer(),
):
    register(_cfg)


def get_config(name: str):
    """A registered configuration, or a family's smallest one, by name."""
    if name in REGISTRY:
        return REGISTRY[name]
    smallest = {f.smallest.name: f.smallest for f in FAMILIES.values()}
    if name in smallest:
        return smallest[name]
    raise HlsConfigError(f"unknown kernel configuration {name!r}; known: {sorted(REGISTRY)} and each family's "
                         f"smallest: {sorted(smallest)}")


DSP_CASCADE_MAX = 8   # exact two-lane packing bound (docs/hls.md, DSP packing): CHAIN * 128 * 127 < 2^17


def hls_chain(kept_per_group: int, chain_max: int) -> int:
    """The longest HLS DSP cascade <= chain_max (and <= the exact-packing bound) that divides a group's
    kept values: a design's longer RTL chain is several such cascades joined by its adder tree."""
    for c in range(min(chain_max, DSP_CASCADE_MAX), 0, -1):
        if kept_per_group % c == 0:
            return c
    return 1


def layer_config_from_packed(layers: dict, heads: int, kv_heads: int, head_dim: int, seq_max: int,
                             chain: int = 4) -> DecoderLayerConfig:
    """The DecoderLayerConfig whose projections have exactly the formats of ``layers`` (PackedLinear by name)."""
    missing = [p for p in PROJECTIONS if p not in layers]
    if missing:
        raise HlsConfigError(f"layer weights lack projections {missing}; need {list(PROJECTIONS)}")
    fmts = []
    for p in PROJECTIONS:
        f = getattr(layers[p], "fmt", None)
        if f is None:
            raise HlsConfigError(f"{p} is not a packed (quantized) linear; the HLS layer needs packed weights")
        fmts.append((p, ProjectionFormat(f.bits, f.group_size, f.symmetric, f.nm, hls_chain(f.kept_per_group, chain))))
    o_h = layers["o_proj"].fmt.out_features
    i = layers["gate_proj"].fmt.out_features
    return DecoderLayerConfig(o_h, i, heads, kv_heads, head_dim, seq_max, tuple(fmts))
