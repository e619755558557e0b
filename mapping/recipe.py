"""Compression recipes: what happens to each linear layer of a decoder.

A recipe is data (a frozen dataclass, loadable from YAML or picked by name)
so exploration scripts can sweep it. Rules are per layer *type* (attention
projections vs MLP projections) because that is the granularity pruning
papers and FlightLLM choose sparsity at; the mixed-precision allocator then
refines bit widths per individual layer and records the result.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from llmaccel.simulator.specs._yaml import SpecError, build, load_yaml_mapping
from llmaccel.sparse_dsp.packed_format import ASYMMETRIC_BITS, SUPPORTED_BITS, SUPPORTED_NM, LayerFormat

ATTN_LAYERS = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_LAYERS = ("gate_proj", "up_proj", "down_proj")
QUANT_METHODS = ("rtn", "gptq")
WEIGHT_DTYPES = ("fp32", "fp16")     # unquantized weights: stored as
ACT_BITS = (8, 16)                   # 8: INT8 per-token activations; 16: FP16 activations (DFX-style datapath)
KV_BITS = (8, 16)                    # 8: INT8 KV cache (per token and head scales); 16: FP16 KV cache
PRUNE_METHODS = ("magnitude", "wanda")
MIXED_CHOICES = (2, 3, 4, 8)
GPTQ_BLOCK_SIZE = 128                # columns per lazy-batch block of the compressor's GPTQ sweep (the paper's B)


def gptq_block_problem(block_size: Any, group_size: int) -> Optional[str]:
    """Why GPTQ cannot sweep groups of ``group_size`` columns in blocks of ``block_size``, or None.

    The sweep (mapping.quantize.quantize_gptq) picks a group's scale/zero at the group's first
    column from the weights updated so far, but applies a block's errors to the columns after the
    block only when the block ends. A group that starts inside a block and ends after it would get
    its scale from partly updated weights (tests/mutation_oracles/test_gptq_edges_oracle.py measures
    the difference), so every group must start at a block start (block_size divides group_size) or
    end inside its block (block_size is a multiple of group_size).
    """
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size <= 0:
        return f"block_size={block_size!r} must be a positive integer"
    if group_size % block_size == 0 or block_size % group_size == 0:
        return None
    return (f"block_size={block_size} with group_size={group_size} would let a quantization group straddle "
            f"two GPTQ blocks; allowed: a divisor of {group_size} ({_divisors(group_size)}) "
            f"or a multiple of {group_size}")


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


class RecipeError(SpecError):
    """A recipe field outside what the toolkit supports."""


@dataclass(frozen=True)
class LayerRule:
    """How one type of linear layer is compressed. ``bits=None`` keeps FP32 weights."""

    bits: Optional[int] = None
    group_size: int = 128
    symmetric: bool = True
    method: str = "rtn"
    nm: Optional[tuple[int, int]] = None
    prune_method: str = "magnitude"

    def __post_init__(self) -> None:
        if self.bits is not None and self.bits not in SUPPORTED_BITS:
            raise RecipeError(f"bits={self.bits} is not supported; allowed: {list(SUPPORTED_BITS)} or null (fp32)")
        if self.bits is not None and not self.symmetric and self.bits not in ASYMMETRIC_BITS:
            raise RecipeError(f"symmetric=false needs bits in {list(ASYMMETRIC_BITS)}, got bits={self.bits}")
        if self.method not in QUANT_METHODS:
            raise RecipeError(f"method='{self.method}' is not supported; allowed: {list(QUANT_METHODS)}")
        if self.prune_method not in PRUNE_METHODS:
            raise RecipeError(f"prune_method='{self.prune_method}' is not supported; allowed: {list(PRUNE_METHODS)}")
        if self.group_size <= 0:
            raise RecipeError(f"group_size={self.group_size} must be a positive integer")
        if self.method == "gptq" and self.bits is not None and gptq_block_problem(GPTQ_BLOCK_SIZE, self.group_size):
            raise RecipeError(f"group_size={self.group_size} with method='gptq': GPTQ sweeps columns in blocks of "
                              f"{GPTQ_BLOCK_SIZE} and a group may not straddle two blocks; allowed: a divisor of "
                              f"{GPTQ_BLOCK_SIZE} ({_divisors(GPTQ_BLOCK_SIZE)}) or a multiple of {GPTQ_BLOCK_SIZE}")
        if self.nm is not None:
            object.__setattr__(self, "nm", tuple(int(v) for v in self.nm))
            if self.nm not in SUPPORTED_NM:
                raise RecipeError(f"N:M pattern {self.nm[0]}:{self.nm[1]} is not supported; allowed: "
                                  + ", ".join(f"{n}:{m}" for n, m in SUPPORTED_NM) + " or null (dense)")

    def at_bits(self, bits: Optional[int]) -> "LayerRule":
        """This rule at another width (mixed precision): 2/3-bit codes are asymmetric (a symmetric 2-bit
        grid has one positive level), 8-bit codes symmetric (code-zero must fit INT8), 4-bit as the rule says."""
        if bits is None or bits == self.bits:
            return dataclasses.replace(self, bits=bits)
        sym = True if bits == 8 else (self.symmetric if bits == 4 else False)
        return dataclasses.replace(self, bits=bits, symmetric=sym)

    def layer_format(self, out_features: int, in_features: int, bits: Optional[int] = None) -> Optional[LayerFormat]:
        """The packed format of a layer of this shape, or None for FP32 weights."""
        rule = self if bits is None else self.at_bits(bits)
        if rule.bits is None:
            return None
        return LayerFormat(out_features, in_features, rule.bits, rule.group_size, rule.symmetric, rule.nm)


@dataclass(frozen=True)
class Recipe:
    """A whole-model recipe.

    ``mixed_avg_bits`` turns on per-layer bit allocation under an average
    budget (weights of the decoder layers, metadata excluded); the allocator
    writes its choice to ``layer_bits`` ("layers.3.mlp.down_proj" -> bits).

    ``weight_dtype='fp16'`` stores unquantized weights (and the embeddings) as FP16; with
    ``act_bits=16`` and ``kv_bits=16`` that is the FP16 datapath of DFX-style designs
    (docs/numerics.md section 7).
    """

    name: str
    attn: LayerRule = LayerRule()
    mlp: LayerRule = LayerRule()
    lm_head_bits: Optional[int] = None
    act_bits: Optional[int] = None
    kv_bits: Optional[int] = None
    mixed_avg_bits: Optional[float] = None
    calibration_tokens: int = 4096
    weight_dtype: str = "fp32"
    layer_bits: dict[str, int] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        for fname, allowed in (("act_bits", ACT_BITS), ("kv_bits", KV_BITS)):
            v = getattr(self, fname)
            if v is not None and v not in allowed:
                raise RecipeError(f"{fname}={v} is not supported; allowed: 8 (INT8), 16 (FP16) or null (fp32)")
        if self.weight_dtype not in WEIGHT_DTYPES:
            raise RecipeError(f"weight_dtype='{self.weight_dtype}' is not supported; allowed: {list(WEIGHT_DTYPES)}")
        if self.lm_head_bits not in (None, 8):
            raise RecipeError(f"lm_head_bits={self.lm_head_bits} is not supported; allowed: 8 or null (fp32)")
        quantized = self.attn.bits is not None or self.mlp.bits is not None or self.mixed_avg_bits is not None
        if quantized and (self.attn.bits is None or self.mlp.bits is None):
            raise RecipeError("attn.bits and mlp.bits must both be set when either is (the accelerator "
                              "runs integer weights everywhere)")
        if quantized and self.weight_dtype != "fp32":
            raise RecipeError(f"weight_dtype='{self.weight_dtype}' applies to unquantized weights; this recipe "
                              "quantizes them (allowed with attn.bits/mlp.bits: weight_dtype='fp32')")

        if self.mixed_avg_bits is not None and not (min(MIXED_CHOICES) <= self.mixed_avg_bits <= max(MIXED_CHOICES)):
            raise RecipeError(f"mixed_avg_bits={self.mixed_avg_bits} must lie in "
                              f"[{min(MIXED_CHOICES)}, {max(MIXED_CHOICES)}]")
        if self.calibration_tokens <= 0:
            raise RecipeError(f"calibration_tokens={self.calibration_tokens} must be positive")

    @property
    def quantized(self) -> bool:
        return self.attn.bits is not None

    @property
    def fp16_weights(self) -> bool:
        return not self.quantized and self.weight_dtype == "fp16"

    @property
    def kv_bytes_per_element(self) -> float:
        """Bytes of one K or V element in the cache (scales excluded)."""
        return {8: 1.0, 16: 2.0}.get(self.kv_bits, 4.0)

    @property
    def needs_calibration(self) -> bool:
        rules = (self.attn, self.mlp)
        return (any(r.bits is not None and r.method == "gptq" for r in rules)
                or any(r.nm is not None and r.prune_method == "wanda" for r in rules)
                or self.mixed_avg_bits is not None)

    def rule_for(self, layer_name: str) -> LayerRule:
        """The rule of a linear layer named like HF ('model.layers.3.self_attn.q_proj' or 'q_proj')."""
        leaf = layer_name.rsplit(".", 1)[-1]
        if leaf in ATTN_LAYERS:
            return self.attn
        if leaf in MLP_LAYERS:
            return self.mlp
        raise RecipeError(f"'{layer_name}' is not a decoder-layer linear; allowed leaves: "
                          f"{list(ATTN_LAYERS + MLP_LAYERS)}")

    def bits_for(self, layer_key: str) -> Optional[int]:
        """Bits of a decoder-layer linear after allocation ('layers.3.mlp.down_proj')."""
        if layer_key in self.layer_bits:
            return self.layer_bits[layer_key]
        return self.rule_for(layer_key).bits

    def with_layer_bits(self, layer_bits: dict[str, int]) -> "Recipe":
        return dataclasses.replace(self, layer_bits=dict(layer_bits))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("attn", "mlp"):
            if d[k]["nm"] is not None:
                d[k]["nm"] = list(d[k]["nm"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "recipe") -> "Recipe":
        """A recipe from plain data (a YAML file, a manifest), checked by the spec loader's rules:
        strict types (no quoted numbers or booleans, whole numbers where counts are meant), finite
        values, no unknown fields, every problem listed at once."""
        return build(cls, d, source)


def _q(bits: int, method: str = "rtn", nm=None, prune="magnitude", symmetric: Optional[bool] = None) -> LayerRule:
    # 2- and 3-bit weights use asymmetric codes: a symmetric 2-bit grid has only
    # one positive level, which wastes a quarter of the code space.
    sym = bits >= 4 if symmetric is None else symmetric
    return LayerRule(bits=bits, group_size=128, symmetric=sym, method=method, nm=nm, prune_method=prune)


def _fp(nm=None, prune="magnitude") -> LayerRule:
    return LayerRule(bits=None, nm=nm, prune_method=prune)


_A8 = dict(act_bits=8, kv_bits=8, lm_head_bits=8)

NAMED_RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("fp32"),
    # DFX-style: FP16 weights, activations and KV cache, nothing quantized (no calibration)
    Recipe("fp16", act_bits=16, kv_bits=16, weight_dtype="fp16"),
    Recipe("w8", attn=_q(8), mlp=_q(8), **_A8),
    Recipe("w4-g128-rtn", attn=_q(4), mlp=_q(4), **_A8),
    Recipe("w4-g128-gptq", attn=_q(4, "gptq"), mlp=_q(4, "gptq"), **_A8),
    Recipe("w3-g128-rtn", attn=_q(3), mlp=_q(3), **_A8),
    Recipe("w3-g128-gptq", attn=_q(3, "gptq"), mlp=_q(3, "gptq"), **_A8),
    Recipe("mixed-3.5", attn=_q(4, "gptq"), mlp=_q(4, "gptq"), mixed_avg_bits=3.5, **_A8),
    Recipe("2:4-magnitude", attn=_fp((2, 4)), mlp=_fp((2, 4))),
    Recipe("2:4-wanda", attn=_fp((2, 4), "wanda"), mlp=_fp((2, 4), "wanda")),
    Recipe("2:4+w4", attn=_q(4, "gptq", (2, 4), "wanda"), mlp=_q(4, "gptq", (2, 4), "wanda"), **_A8),
    # FlightLLM-style: N:16 sparsity in the MLP, mixed precision around 3.5 bits.
    Recipe("flightllm", attn=_q(4, "gptq"), mlp=_q(4, "gptq", (8, 16), "wanda"), mixed_avg_bits=3.5, **_A8),
]}

EVAL_RECIPES = ("fp32", "w8", "w4-g128-rtn", "w4-g128-gptq", "w3-g128-rtn", "w3-g128-gptq",
                "mixed-3.5", "2:4-magnitude", "2:4-wanda", "2:4+w4")
DEFAULT_RECIPE = "flightllm"


def get_recipe(name_or_path: str) -> Recipe:
    """A named recipe, or a YAML file holding one."""
    if name_or_path in NAMED_RECIPES:
        return NAMED_RECIPES[name_or_path]
    if name_or_path.endswith((".yaml", ".yml")):
        return Recipe.from_dict(load_yaml_mapping(name_or_path), source=name_or_path)
    raise RecipeError(f"unknown recipe '{name_or_path}'; allowed: {sorted(NAMED_RECIPES)} or a .yaml file")
