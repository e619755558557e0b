"""Decoder model shapes: presets, and any local Hugging Face ``config.json`` of a supported family.

Timing, placement and the analytical model need only the shapes of a model,
not its weights, so a ``ModelSpec`` lets Llama2-7B/13B be simulated without a
checkpoint. What the block computes (norm, activation, biases, positions,
projections) is the family's :class:`simulator.families.Architecture`, reached
as ``spec.arch``; ``config.json`` is read by the family's own reader, which
refuses every feature we do not implement by name (simulator.families).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from llmaccel.simulator import families
from llmaccel.simulator.families import Architecture, FamilyError
from llmaccel.simulator.specs._yaml import SpecError, build, load, preset_names, preset_path
from llmaccel.simulator.specs.schema import read_strict_json

ALLOWED_MODEL_TYPES = tuple(families.supported_model_types())
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")   # gated families


@dataclass(frozen=True)
class ModelSpec:
    """Shapes and the few numerics parameters of a decoder; ``family`` names its Architecture.

    ``rms_norm_eps`` is the eps of the family's norm whatever its kind (LayerNorm too; the name
    is kept for the presets and engines that read it; ``norm_eps`` says it plainly).
    ``sliding_window``: None, or a window shorter than max_position_embeddings beyond which
    sequences are refused.
    """

    name: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: Optional[dict[str, Any]] = None
    tie_word_embeddings: bool = False
    source: str = ""  # where the shapes come from (preset provenance or config.json path)
    family: str = "llama"
    activation: str = "silu"
    sliding_window: Optional[int] = None

    def __post_init__(self) -> None:
        if self.family not in families.FAMILIES:
            raise SpecError(f"family={self.family!r} is not supported; allowed: {sorted(families.FAMILIES)}")
        if self.activation not in families.ACTIVATIONS:
            raise SpecError(f"activation={self.activation!r} is not supported; allowed: {list(families.ACTIVATIONS)}")
        if self.sliding_window is not None and not (isinstance(self.sliding_window, int) and self.sliding_window > 0):
            raise SpecError(f"sliding_window={self.sliding_window!r} must be a positive integer or null")
        for fname in ("hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads",
                      "head_dim", "vocab_size", "max_position_embeddings"):
            v = getattr(self, fname)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise SpecError(f"{fname}={v!r} must be a positive integer")
        if self.num_heads % self.num_kv_heads:
            raise SpecError(f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}")
        if not self.rms_norm_eps > 0:
            raise SpecError(f"rms_norm_eps={self.rms_norm_eps} must be > 0")
        if not self.rope_theta > 0:
            raise SpecError(f"rope_theta={self.rope_theta} must be > 0")
        if self.rope_scaling is not None and not isinstance(self.rope_scaling.get("rope_type"), str):
            raise SpecError(f"rope_scaling={self.rope_scaling!r} must name its 'rope_type'")
        if self.rope_scaling is not None and self.rope_scaling["rope_type"] not in families.ROPE_TYPES:
            raise SpecError(f"rope_scaling.rope_type={self.rope_scaling['rope_type']!r} is not supported; "
                            f"allowed: {list(families.ROPE_TYPES)}")
        try:
            arch = self.arch
        except FamilyError as exc:
            raise SpecError(str(exc)) from None
        if arch.positions == "learned" and self.rope_scaling is not None:
            raise SpecError(f"rope_scaling is given but family {self.family!r} uses learned positions")
        for key, v in (self.rope_scaling or {}).items():
            # every RoPE scaling parameter (llama3 factors, yarn betas, longrope factor lists) is a number
            if key == "rope_type":
                continue
            if key == "truncate":   # yarn's flag
                if not isinstance(v, bool):
                    raise SpecError(f"rope_scaling.truncate={v!r} must be true or false")
                continue
            ok = _is_number_list(v) if key in _LIST_ROPE_KEYS else _is_number(v)
            if not ok:
                raise SpecError(f"rope_scaling.{key}={v!r} must be " +
                                ("a list of numbers" if key in _LIST_ROPE_KEYS else "a number"))

    # ----- the family's description ------------------------------------------------------------
    @property
    def arch(self) -> Architecture:
        """What the block computes and where its tensors are (simulator.families)."""
        return families.architecture_of(self)

    @property
    def norm_eps(self) -> float:
        return self.rms_norm_eps

    @property
    def max_context(self) -> int:
        """Longest sequence every engine accepts: max_position_embeddings, or the sliding window if shorter."""
        return min(self.max_position_embeddings, self.sliding_window or self.max_position_embeddings)

    # ----- derived shapes, in the words compilers use -------------------------------------------
    @property
    def q_dim(self) -> int:
        """Width of the query projection output (num_heads * head_dim)."""
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of each of the K and V projections (num_kv_heads * head_dim)."""
        return self.num_kv_heads * self.head_dim

    @property
    def gqa_group_size(self) -> int:
        """Query heads sharing one KV head."""
        return self.num_heads // self.num_kv_heads

    def linear_shapes(self) -> list[tuple[str, int, int]]:
        """``(name, out_features, in_features)`` of one decoder layer's linears, in execution order
        (the family's projections: no gate_proj in a non-gated MLP)."""
        d, i = self.hidden_size, self.intermediate_size
        dims = {"q_proj": (self.q_dim, d), "k_proj": (self.kv_dim, d), "v_proj": (self.kv_dim, d),
                "o_proj": (d, self.q_dim), "gate_proj": (i, d), "up_proj": (i, d), "down_proj": (d, i)}
        return [(leaf, *dims[leaf]) for leaf in self.arch.leaves]

    @property
    def linear_params_per_layer(self) -> int:
        return sum(o * k for _, o, k in self.linear_shapes())

    @property
    def num_params(self) -> int:
        """All parameters: embeddings (and learned positions), decoder linears, their biases and norms,
        final norm, LM head unless tied."""
        a, h = self.arch, self.hidden_size
        embed = self.vocab_size * h
        norm = (2 if a.norm.has_bias else 1) * h
        shapes = {leaf: o for leaf, o, _ in self.linear_shapes()}
        per_layer = self.linear_params_per_layer + sum(shapes[leaf] for leaf in a.biased) + 2 * norm
        head = 0 if self.tie_word_embeddings else embed
        pos = 0
        if a.learned_positions is not None:
            pos = (self.max_position_embeddings + a.learned_positions.offset) * h
        return embed + pos + self.num_layers * per_layer + norm + head

    def kv_cache_bytes_per_token(self, bytes_per_element: float = 1.0) -> float:
        """K and V of every layer for one token (INT8 KV cache: 1 byte per element)."""
        return 2 * self.num_layers * self.kv_dim * bytes_per_element

    def to_hf_config(self) -> dict[str, Any]:
        """A Hugging Face ``LlamaConfig`` keyword dict with these shapes (for building real models).

        Llama presets only; tests build other families with llmaccel.testing.tiny_checkpoints."""
        if self.family != "llama":
            raise SpecError(f"to_hf_config builds Llama configs; family={self.family!r}")
        cfg: dict[str, Any] = dict(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size, num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads, num_key_value_heads=self.num_kv_heads,
            head_dim=self.head_dim, max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps, tie_word_embeddings=self.tie_word_embeddings,
            hidden_act="silu", attention_bias=False, mlp_bias=False,
        )
        rope = {"rope_theta": self.rope_theta, "rope_type": "default"}
        if self.rope_scaling is not None:
            rope.update(self.rope_scaling)
        cfg["rope_parameters"] = rope
        return cfg


_LIST_ROPE_KEYS = ("short_factor", "long_factor")   # longrope: one factor per frequency


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_number_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(_is_number(x) for x in v)


def model_spec_from_hf_config(cfg: dict[str, Any], name: str, where: str = "config.json") -> ModelSpec:
    """Shapes from a Hugging Face ``config.json`` dict of a supported family (transformers 4.x or 5.x layout).

    The family is chosen by ``model_type`` (simulator.families.family_of) and its reader refuses
    what we do not implement, naming the field and what is allowed.
    """
    try:
        fam = families.family_of(cfg, where)
        data = fam.read(cfg, where)
    except FamilyError as exc:
        raise SpecError(str(exc)) from None
    return build(ModelSpec, dict(data, name=name, source=str(where)), where)


def list_models() -> list[str]:
    """Names of the bundled model presets."""
    return preset_names("models")


def load_model_spec(name_or_path: str | Path) -> ModelSpec:
    """A preset name, a checkpoint directory holding ``config.json``, or a ``config.json``/YAML path."""
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = path.suffix in (".json", ".yaml", ".yml") or "/" in text or path.is_dir()
    if not looks_like_path:
        return load(ModelSpec, preset_path("models", text))
    if path.is_dir():
        path = path / "config.json"
        if not path.is_file():
            raise SpecError(f"{name_or_path}: directory has no config.json (expected a Hugging Face "
                            f"checkpoint directory)")
    if not path.is_file():
        raise SpecError(f"{path}: file not found (give a preset name: {', '.join(list_models())}; "
                        f"a checkpoint directory; or a config.json path)")
    if path.suffix in (".yaml", ".yml"):
        return load(ModelSpec, path)
    cfg = read_strict_json(path, SpecError)  # no duplicate keys, no NaN/Infinity
    name = path.parent.name if path.name == "config.json" else path.stem
    return model_spec_from_hf_config(cfg, name=name or "model", where=str(path))
