"""The compiler's input: a model's shapes plus the packed format of every linear.

From a recipe (timing-only runs: a deterministic stand-in for the allocator when no weights
exist) or read off a compressed model's packed layers. Nothing else about the weights matters
to the programs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmaccel.mapping.recipe import MIXED_CHOICES, Recipe, get_recipe
from llmaccel.simulator.specs.model import ModelSpec
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import LayerFormat

ATTN_LEAVES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_LEAVES = ("gate_proj", "up_proj", "down_proj")
LEAF_PATH = {**{k: f"self_attn.{k}" for k in ATTN_LEAVES}, **{k: f"mlp.{k}" for k in MLP_LEAVES}}


class CompileError(LlmaccelError):
    """A model/recipe/design combination the compiler cannot map, or a length beyond the compiled maximum."""



@dataclass(frozen=True)
class ModelFormats:
    """The compiler's input: shapes plus the packed format of every linear."""

    spec: ModelSpec
    layers: tuple[tuple[tuple[str, LayerFormat], ...], ...]   # per layer: ((leaf, fmt), ...) in execution order
    lm_head: LayerFormat
    source: str = ""

    def layer(self, i: int) -> dict[str, LayerFormat]:
        return dict(self.layers[i])

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


def formats_from_recipe(spec: ModelSpec, recipe: Recipe | str) -> ModelFormats:
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if not recipe.quantized:
        raise CompileError(f"recipe '{recipe.name}' keeps FP32 weights; the accelerator runs integer weights "
                           "only: allowed recipes have attn.bits and mlp.bits in 2, 3, 4, 8")
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
            if not hasattr(w, "fmt"):
                raise CompileError(f"layers.{i}.{keys[leaf]} is FP32 in this compressed model; the accelerator "
                                   "needs packed integer weights (compress with a quantized recipe)")
            lay.append((leaf, w.fmt))
        layers.append(tuple(lay))
    head = cm.linears.get("lm_head")
    lm_head = head.fmt if hasattr(head, "fmt") else LayerFormat(spec.vocab_size, spec.hidden_size, 8, 128, True, None)
    return ModelFormats(spec, tuple(layers), lm_head, source="compressed")
