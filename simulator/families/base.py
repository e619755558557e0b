"""The typed architecture description every layer of llmaccel reads instead of restating a decoder.

A *family* (Llama, Mistral, Qwen2, GPT-2, OPT) is one module that (1) reads a Hugging Face
``config.json`` into :class:`~simulator.specs.model.ModelSpec` fields, refusing every feature we
do not implement by name, and (2) describes the block as an :class:`Architecture`: which
projections exist and where their tensors live in the checkpoint, the norm, the activation,
the positional encoding, the biases and the layer dataflow. The compiler, the functional
engine, calibration, the reference, the analytical model and the HLS configs all read this
description, so adding a family is one file in this package plus its tests.

Canonical names: every family's projections get the Llama names (``q_proj`` ... ``down_proj``)
and the canonical artifact path (``self_attn.q_proj``, ``mlp.up_proj``); only ``hf`` says where
the tensor is in *this* family's checkpoint and how to get it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from typing import Any, Callable, Literal, Optional

from llmaccel.errors import LlmaccelError

NormKind = Literal["rmsnorm", "layernorm"]
Activation = Literal["silu", "gelu_tanh", "gelu", "relu"]
Layout = Literal["linear", "conv1d"]
InputGroup = Literal["attn_in", "attn_out", "mlp_in", "mlp_out"]

ACTIVATIONS: tuple[str, ...] = ("silu", "gelu_tanh", "gelu", "relu")
# Hugging Face ACT2FN names -> the function we implement (transformers.activations)
HF_ACTIVATIONS: dict[str, str] = {
    "silu": "silu", "swish": "silu",
    "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
    "gelu": "gelu", "relu": "relu",
}


class FamilyError(LlmaccelError):
    """A model family, or a feature of a checkpoint, that llmaccel does not implement."""


@dataclass(frozen=True)
class Projection:
    """One linear of a decoder layer.

    ``leaf`` and ``key`` are canonical (the same in every family); ``hf`` is this family's tensor
    path under the layer prefix, without ``.weight``/``.bias``. ``layout='conv1d'`` means the
    checkpoint stores the weight as [in, out] (GPT-2's Conv1D), so it is transposed on reading;
    ``part=(i, n)`` means the tensor is a fused one whose output columns hold ``n`` equal
    projections and this is the ``i``-th (GPT-2's ``c_attn`` = q|k|v).
    """

    leaf: str                     # "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
    key: str                      # canonical artifact path under "layers.{i}.": "self_attn.q_proj"
    hf: str                       # checkpoint path under the family's layer prefix: "attn.c_attn"
    group: InputGroup             # which activation it reads (projections of one group share an input)
    bias: bool = False
    layout: Layout = "linear"
    part: Optional[tuple[int, int]] = None

    def hf_weight(self, layer_prefix: str) -> str:
        return f"{layer_prefix}{self.hf}.weight"

    def hf_bias(self, layer_prefix: str) -> str:
        return f"{layer_prefix}{self.hf}.bias"


@dataclass(frozen=True)
class Norm:
    """A normalisation: RMSNorm (weight) or LayerNorm (weight and bias); eps is ``ModelSpec.norm_eps``."""

    kind: NormKind
    eps_field: str                # config.json field holding eps ("rms_norm_eps", ...); "" = fixed by the family

    @property
    def has_bias(self) -> bool:
        return self.kind == "layernorm"


@dataclass(frozen=True)
class LearnedPositions:
    """Absolute learned position embeddings added to the token embedding.

    ``offset``: row of position 0 in the table (OPT's OPTLearnedPositionalEmbedding reserves 2 rows).
    """

    hf: str                       # tensor path without ".weight": "transformer.wpe"
    offset: int = 0


@dataclass(frozen=True)
class Architecture:
    """What one decoder of a family computes and where its tensors are (resolved for one config).

    Dataflow: every family here is a pre-norm residual block,
    ``x += o(attn(rope(q(n1(x))), rope(k(n1(x))), v(n1(x))))`` then ``x += down(act(...)(n2(x)))``;
    configs that are not (OPT's post-norm, parallel attention) are refused when read.
    """

    family: str
    layer_prefix: str             # "model.layers.{i}." (format with i=...)
    projections: tuple[Projection, ...]
    attn_norm: str                # per-layer norm before attention, path under the layer prefix
    mlp_norm: str                 # per-layer norm before the MLP
    final_norm: str               # full path of the final norm, without ".weight"
    embed: str                    # full path of the token embedding, without ".weight"
    lm_head: str                  # full path of the LM head when it is not tied
    norm: Norm
    activation: Activation
    gated: bool                   # act(gate(x)) * up(x) (SwiGLU) vs act(up(x))
    positions: Literal["rope", "learned"]
    learned_positions: Optional[LearnedPositions] = None
    dataflow: Literal["pre_norm_residual"] = "pre_norm_residual"

    def __post_init__(self) -> None:
        leaves = [p.leaf for p in self.projections]
        want = ["q_proj", "k_proj", "v_proj", "o_proj"] + (["gate_proj"] if self.gated else []) + ["up_proj", "down_proj"]
        if leaves != want:
            raise ValueError(f"{self.family}: projections {leaves} must be {want} in that order")
        if (self.positions == "learned") != (self.learned_positions is not None):
            raise ValueError(f"{self.family}: learned_positions must be given exactly when positions='learned'")

    # ----- what the layers ask (computed once per object: the engines ask on every step) ---------
    @cached_property
    def leaves(self) -> tuple[str, ...]:
        return tuple(p.leaf for p in self.projections)

    @cached_property
    def linear_keys(self) -> dict[str, str]:
        """leaf -> canonical artifact path (``self_attn.q_proj``), in execution order."""
        return {p.leaf: p.key for p in self.projections}

    def projection(self, leaf: str) -> Projection:
        for p in self.projections:
            if p.leaf == leaf:
                return p
        raise KeyError(f"{self.family} has no projection {leaf!r}; it has {list(self.leaves)}")

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Input group -> the leaves reading it (calibration captures one activation per group)."""
        return dict(self._groups)

    @cached_property
    def _groups(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for p in self.projections:
            out[p.group] = out.get(p.group, ()) + (p.leaf,)
        return out

    @cached_property
    def biased(self) -> tuple[str, ...]:
        return tuple(p.leaf for p in self.projections if p.bias)

    def prefix(self, i: int) -> str:
        return self.layer_prefix.format(i=i)


@dataclass(frozen=True)
class Family:
    """A registered model family: how to read its config.json and what its block is."""

    name: str
    model_types: tuple[str, ...]
    architectures: tuple[str, ...]                       # Hugging Face *ForCausalLM class names accepted
    read: Callable[[dict[str, Any], str], dict[str, Any]]  # config -> ModelSpec fields (refusing by name)
    describe: Callable[[Any], Architecture]                # ModelSpec -> its Architecture


# ----- helpers the family modules share ------------------------------------------------------------
def need(cfg: dict[str, Any], key: str, where: str, family: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise FamilyError(f"{where}: missing field '{key}' needed for a {family} model")
    return cfg[key]


def refuse_if(cond: bool, where: str, field: str, value: Any, allowed: str) -> None:
    """One clear refusal of an unimplemented checkpoint feature, naming the field and what is allowed."""
    if cond:
        shown = str(value).lower() if isinstance(value, bool) or value is None else repr(value)   # as config.json has it
        raise FamilyError(f"{where}: {field}={shown} is not supported by llmaccel; allowed: {allowed}")


def activation(cfg: dict[str, Any], field: str, default: str, where: str) -> str:
    name = cfg.get(field, default)
    if name not in HF_ACTIVATIONS:
        raise FamilyError(f"{where}: {field}={name!r} is not supported; allowed: {sorted(HF_ACTIVATIONS)}")
    return HF_ACTIVATIONS[name]


def sliding_window(cfg: dict[str, Any], where: str, enabled: bool = True) -> Optional[int]:
    """The attention window, or None when every position attends to all earlier ones.

    A window at least max_position_embeddings long never masks anything, so it is None here; a
    shorter one is kept and every engine refuses a sequence longer than it (we do not implement
    the windowed mask).
    """
    w = cfg.get("sliding_window")
    if not enabled or w is None:
        return None
    if isinstance(w, bool) or not isinstance(w, int) or w <= 0:
        raise FamilyError(f"{where}: sliding_window={w!r} must be a positive integer or null")
    return None if w >= cfg.get("max_position_embeddings", 0) else w


def describe_by_activation(arch: Architecture) -> Callable[[Any], Architecture]:
    """``describe`` for a family whose config chooses the activation (GPT-2's ``activation_function``,
    OPT's): the family's architecture with the spec's activation, one object per activation."""

    @lru_cache(maxsize=None)
    def with_activation(act: str) -> Architecture:
        return arch if act == arch.activation else replace(arch, activation=act)

    return lambda spec: with_activation(spec.activation)
