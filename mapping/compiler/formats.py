"""The compiler's input: a model's shapes plus the packed format of every linear, and the KV datatype.

From a recipe (timing-only runs: a deterministic stand-in for the allocator when no weights
exist) or read off a compressed model's packed layers. Nothing else about the weights matters
to the programs.

Two datapaths (docs/numerics.md sections 2-4 and 7): packed integer weights decoded to INT8 with an
INT8 KV cache (``LayerFormat``), or FP16 weights with an FP16 KV cache (:class:`Fp16Format`, recipe
``fp16``: 16 bits per weight, no scales, no N:M, KV rows of 2 bytes per element). A design's matrix
engine runs one of them (``matrix_engine.mac_dtype``); :func:`check_datapath` refuses the other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

from llmaccel.mapping.recipe import MIXED_CHOICES, Recipe, get_recipe
from llmaccel.simulator.specs.model import ModelSpec
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import LayerFormat

ATTN_LEAVES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_LEAVES = ("gate_proj", "up_proj", "down_proj")
LEAF_PATH = {**{k: f"self_attn.{k}" for k in ATTN_LEAVES}, **{k: f"mlp.{k}" for k in MLP_LEAVES}}


class CompileError(LlmaccelError):
    """A model/recipe/design combination the compiler cannot map, or a length beyond the compiled maximum."""


FP16_BITS = 16


@dataclass(frozen=True)
class Fp16Format:
    """A dense FP16 linear: ``out_features`` rows of ``in_features`` FP16 values (2 bytes each), no scales.

    It answers the questions the compiler asks of a :class:`LayerFormat` (row bytes, kept weights,
    bits) so placement, tiling and emission need no second path: ``bits`` = 16 is what the LD's
    ``bits`` field carries for raw FP16 rows (``simulator.isa``), ``group_size`` = 0 (no scales)."""

    out_features: int
    in_features: int
    bits: int = FP16_BITS
    group_size: int = 0
    symmetric: bool = True
    nm: None = None

    def __post_init__(self) -> None:
        if self.out_features <= 0 or self.in_features <= 0:
            raise CompileError(f"out_features/in_features must be positive, got {self.out_features}x{self.in_features}")
        if self.bits != FP16_BITS or self.group_size != 0 or self.nm is not None or not self.symmetric:
            raise CompileError("an FP16 linear is bits=16, group_size=0, nm=None (dense), symmetric (no zero points)")

    @property
    def kept_per_row(self) -> int:
        return self.in_features

    @property
    def kept_per_group(self) -> int:
        return self.in_features

    @property
    def groups_per_row(self) -> int:
        return 0

    @property
    def index_bits(self) -> int:
        return 0

    @property
    def code_words_per_row(self) -> int:
        return -(-self.in_features * FP16_BITS // 32)

    @property
    def index_words_per_row(self) -> int:
        return 0

    @property
    def row_bytes(self) -> int:
        return 2 * self.in_features

    @property
    def total_bytes(self) -> int:
        return self.row_bytes * self.out_features

    @property
    def avg_bits_per_weight(self) -> float:
        return float(FP16_BITS)


WeightFormat = Union[LayerFormat, Fp16Format]
KV_DTYPES = ("int8", "fp16")


@dataclass(frozen=True)
class ModelFormats:
    """The compiler's input: shapes plus the packed format of every linear."""

    spec: ModelSpec
    layers: tuple[tuple[tuple[str, WeightFormat], ...], ...]   # per layer: ((leaf, fmt), ...) in execution order
    lm_head: WeightFormat
    source: str = ""
    kv_dtype: Literal["int8", "fp16"] = "int8"   # the KV cache: INT8 + FP32 scale per row, or FP16

    def __post_init__(self) -> None:
        if self.kv_dtype not in KV_DTYPES:
            raise CompileError(f"kv_dtype={self.kv_dtype!r} is not supported; allowed: {list(KV_DTYPES)}")

    def layer(self, i: int) -> dict[str, WeightFormat]:
        return dict(self.layers[i])

    @property
    def fp16_weights(self) -> bool:
        """Every linear (and the LM head) is FP16 (else every one is packed integer: never mixed)."""
        return isinstance(self.lm_head, Fp16Format)

    @property
    def weight_dtype(self) -> str:
        return "fp16" if self.fp16_weights else "int"

    @property
    def kv_load_kind(self) -> str:
        """The LD/ST kind of this model's KV rows (``simulator.isa.KV_KINDS``)."""
        return "kv_cache_fp16" if self.kv_dtype == "fp16" else "kv_cache"

    @property
    def weight_bytes(self) -> int:
        return sum(f.total_bytes for lay in self.layers for _, f in lay) + self.lm_head.total_bytes

    def layer_groups(self) -> list[tuple[tuple, list[int]]]:
        """Layers with identical formats (timing is simulated once per group)."""
        groups: dict[tuple, list[int]] = {}
        for i, lay in enumerate(self.layers):
            groups.setdefault(lay, []).append(i)
        return list(groups.items())


def _shape_only_bits(spec: ModelSpec, recipe: Recipe) -> dict[str, int]:
    """A deterministic stand-in for the sensitivity-driven allocator when no weights exist.

    Bits are chosen per linear *type* (uniform over layers, so every layer
    has the same program): start every type at the recipe's bits, then lower
    the largest types one step (in MIXED_CHOICES) until the weighted average
    is within ``mixed_avg_bits``. With weights, the real allocation
    (``Recipe.layer_bits``) is used instead.
    """
    shapes = {n: (o, k) for n, o, k in spec.linear_shapes()}
    bits = {n: recipe.rule_for(n).bits for n in shapes}
    size = {n: shapes[n][0] * recipe.rule_for(n).layer_format(*shapes[n], bits=8).kept_per_row for n in shapes}
    total = sum(size.values())
    order = sorted(shapes, key=lambda n: (-size[n], n))
    choices = sorted(MIXED_CHOICES)

    def avg() -> float:
        return sum(size[n] * bits[n] for n in shapes) / total

    while avg() > recipe.mixed_avg_bits + 1e-9:
        for n in order:
            i = choices.index(bits[n]) if bits[n] in choices else 0
            if i > 0:
                bits[n] = choices[i - 1]
                break
        else:
            break
    return bits


def _fp16_formats(spec: ModelSpec, recipe: Recipe) -> ModelFormats:
    """FP16 weights everywhere (decoder linears and LM head) and an FP16 KV cache (docs/numerics.md section 7)."""
    sparse = [k for k, r in (("attn", recipe.attn), ("mlp", recipe.mlp)) if r.nm is not None]
    if sparse:
        nm = getattr(recipe, sparse[0]).nm
        raise CompileError(f"recipe '{recipe.name}': {sparse[0]}.nm={nm[0]}:{nm[1]} with weight_dtype='fp16': FP16 "
                           "weights are dense on an FP16 engine (no N:M index path); allowed: nm=null")
    if recipe.kv_bits != 16:
        raise CompileError(f"recipe '{recipe.name}': weight_dtype='fp16' needs kv_bits=16 (the FP16 datapath keeps "
                           f"an FP16 KV cache), got kv_bits={recipe.kv_bits}; allowed: 16")
    if recipe.act_bits != 16:
        raise CompileError(f"recipe '{recipe.name}': weight_dtype='fp16' needs act_bits=16 (FP16 operands into the "
                           f"FP16 engine), got act_bits={recipe.act_bits}; allowed: 16")
    lay = tuple((leaf, Fp16Format(o, k)) for leaf, o, k in spec.linear_shapes())
    return ModelFormats(spec, tuple(lay for _ in range(spec.num_layers)), Fp16Format(spec.vocab_size, spec.hidden_size),
                        source=f"recipe:{recipe.name}", kv_dtype="fp16")


def formats_from_recipe(spec: ModelSpec, recipe: Recipe | str) -> ModelFormats:
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if recipe.fp16_weights:
        return _fp16_formats(spec, recipe)
    if not recipe.quantized:
        raise CompileError(f"recipe '{recipe.name}' keeps FP32 weights (weight_dtype='{recipe.weight_dtype}'); the "
                           "accelerators run packed integer weights (attn.bits and mlp.bits in 2, 3, 4, 8) or, on "
                           "an fp16 engine, FP16 weights (weight_dtype='fp16', e.g. recipe 'fp16')")
    if recipe.kv_bits == 16:
        raise CompileError(f"recipe '{recipe.name}': kv_bits=16 with integer weights: the integer datapath keeps an "
                           "INT8 KV cache; allowed: kv_bits=8 (or null)")
    type_bits = _shape_only_bits(spec, recipe) if (recipe.mixed_avg_bits and not recipe.layer_bits) else {}
    layers = []
    for i in range(spec.num_layers):
        lay = []
        for leaf, o, k in spec.linear_shapes():
            key = f"layers.{i}.{spec.arch.linear_keys[leaf]}"
            b = recipe.layer_bits.get(key) or type_bits.get(leaf) or recipe.rule_for(leaf).bits
            try:
                lay.append((leaf, recipe.rule_for(leaf).layer_format(o, k, bits=b)))
            except LlmaccelError as exc:
                raise CompileError(f"recipe '{recipe.name}' does not fit {spec.name} {leaf} ({o}x{k}): {exc}") from None
        layers.append(tuple(lay))
    head_bits = recipe.lm_head_bits or 8
    lm_head = LayerFormat(spec.vocab_size, spec.hidden_size, head_bits, recipe.attn.group_size, True, None)
    return ModelFormats(spec, tuple(layers), lm_head, source=f"recipe:{recipe.name}")


def check_datapath(f: ModelFormats, hw: Any) -> None:
    """Refuse a model whose datapath is not the design's: FP16 weights/KV need ``mac_dtype='fp16'``,
    packed integer weights and the INT8 KV cache need ``mac_dtype='int8'``."""
    mac = getattr(hw, "mac_dtype", "int8")
    want = "fp16" if f.fp16_weights else "int8"
    if mac != want:
        what = ("FP16 weights (weight_dtype='fp16')" if f.fp16_weights
                else f"packed {sorted({fm.bits for lay in f.layers for _, fm in lay})}-bit integer weights")
        raise CompileError(f"{f.source or 'the model'} has {what}; design '{hw.name}' has matrix_engine.mac_dtype="
                           f"'{mac}'; allowed for these weights: mac_dtype='{want}' (FP16: e.g. design dfx-u280; "
                           "integer: e.g. flightllm-u280)")
    if f.kv_dtype != want:
        raise CompileError(f"{f.source or 'the model'}: kv_dtype='{f.kv_dtype}' with mac_dtype='{mac}'; allowed: "
                           f"kv_dtype='{want}'")


def formats_from_compressed(cm: Any) -> ModelFormats:
    """Formats of a ``mapping.compress.CompressedModel`` (its PackedLinear layers)."""
    from llmaccel.simulator.specs.model import model_spec_from_hf_config
    spec = model_spec_from_hf_config(cm.config, name=str(getattr(cm, "path", None) or "compressed"))
    layers = []
    for i in range(spec.num_layers):
        lay = []
        keys = spec.arch.linear_keys
        for leaf, o, k in spec.linear_shapes():
            w = cm.linears[f"layers.{i}.{keys[leaf]}"]
            if getattr(w, "dtype", None) is not None and str(w.dtype) == "float16":
                raise CompileError(f"layers.{i}.{keys[leaf]} holds FP16 weights (recipe weight_dtype='fp16'); "
                                   "compiling a compressed FP16 model for execution is not implemented (the "
                                   "functional engine runs packed integer weights only); FP16 is timing-only: "
                                   "simulate --recipe fp16 on an fp16 design (e.g. --design dfx-u280)")
            if not hasattr(w, "fmt"):
                raise CompileError(f"layers.{i}.{keys[leaf]} is FP32 in this compressed model; the accelerator "
                                   "needs packed integer weights (compress with a quantized recipe)")
            lay.append((leaf, w.fmt))
        layers.append(tuple(lay))
    head = cm.linears.get("lm_head")
    lm_head = head.fmt if hasattr(head, "fmt") else LayerFormat(spec.vocab_size, spec.hidden_size, 8, 128, True, None)
    return ModelFormats(spec, tuple(layers), lm_head, source="compressed")
