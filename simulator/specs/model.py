"""Llama-family model shapes: presets, and any local Hugging Face ``config.json``.

Timing, placement and the analytical model need only the shapes of a model,
not its weights, so a ``ModelSpec`` lets Llama2-7B/13B be simulated without a
checkpoint. Only the Llama family is accepted: the compiler, the numerics
contract and the HLS kernels implement exactly its block (RMSNorm, RoPE,
grouped-query attention, SwiGLU MLP without biases).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from simulator.specs._yaml import SpecError, build, load, preset_names, preset_path
from simulator.specs.schema import read_strict_json

ALLOWED_MODEL_TYPES = ("llama",)
ALLOWED_ARCHITECTURES = ("LlamaForCausalLM",)
ALLOWED_HIDDEN_ACT = ("silu",)
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelSpec:
    """Shapes and the few numerics parameters of a Llama decoder."""

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

    def __post_init__(self) -> None:
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
        for key, v in (self.rope_scaling or {}).items():
            # every RoPE scaling parameter (llama3 factors, yarn betas, longrope factor lists) is a number
            if key == "rope_type":
                continue
            ok = _is_number_list(v) if key in _LIST_ROPE_KEYS else _is_number(v)
            if not ok:
                raise SpecError(f"rope_scaling.{key}={v!r} must be " +
                                ("a list of numbers" if key in _LIST_ROPE_KEYS else "a number"))

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
        """``(name, out_features, in_features)`` of one decoder layer's linears, in execution order."""
        d, i = self.hidden_size, self.intermediate_size
        return [
            ("q_proj", self.q_dim, d),
            ("k_proj", self.kv_dim, d),
            ("v_proj", self.kv_dim, d),
            ("o_proj", d, self.q_dim),
            ("gate_proj", i, d),
            ("up_proj", i, d),
            ("down_proj", d, i),
        ]

    @property
    def linear_params_per_layer(self) -> int:
        return sum(o * k for _, o, k in self.linear_shapes())

    @property
    def num_params(self) -> int:
        """All parameters: embeddings, decoder linears and norms, final norm, LM head unless tied."""
        embed = self.vocab_size * self.hidden_size
        per_layer = self.linear_params_per_layer + 2 * self.hidden_size
        head = 0 if self.tie_word_embeddings else embed
        return embed + self.num_layers * per_layer + self.hidden_size + head

    def kv_cache_bytes_per_token(self, bytes_per_element: float = 1.0) -> float:
        """K and V of every layer for one token (INT8 KV cache: 1 byte per element)."""
        return 2 * self.num_layers * self.kv_dim * bytes_per_element

    def to_hf_config(self) -> dict[str, Any]:
        """A Hugging Face ``LlamaConfig`` keyword dict with these shapes (for building real models)."""
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


def _need(cfg: dict[str, Any], key: str, where: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise SpecError(f"{where}: missing field '{key}' needed for a Llama model")
    return cfg[key]


def model_spec_from_hf_config(cfg: dict[str, Any], name: str, where: str = "config.json") -> ModelSpec:
    """Shapes from a Hugging Face Llama ``config.json`` dict (transformers 4.x or 5.x layout)."""
    if not isinstance(cfg, dict):
        raise SpecError(f"{where}: a config.json must hold a JSON object, got {type(cfg).__name__}")
    model_type = cfg.get("model_type")
    if model_type not in ALLOWED_MODEL_TYPES:
        raise SpecError(f"{where}: model_type={model_type!r} is not a Llama-family decoder; "
                        f"allowed model_type: {list(ALLOWED_MODEL_TYPES)}")
    archs = cfg.get("architectures")
    if archs is not None:
        if not isinstance(archs, list) or not archs or any(a not in ALLOWED_ARCHITECTURES for a in archs):
            raise SpecError(f"{where}: architectures={archs!r} is not supported; "
                            f"allowed architectures: {list(ALLOWED_ARCHITECTURES)}")
    act = cfg.get("hidden_act", "silu")
    if act not in ALLOWED_HIDDEN_ACT:
        raise SpecError(f"{where}: hidden_act={act!r} is not supported; allowed: {list(ALLOWED_HIDDEN_ACT)}")
    for bias_key in ("attention_bias", "mlp_bias"):
        if cfg.get(bias_key):
            raise SpecError(f"{where}: {bias_key}=true is not supported; the Llama block here has no biases "
                            f"(allowed: false)")
    hidden = _need(cfg, "hidden_size", where)
    heads = _need(cfg, "num_attention_heads", where)
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim")
    if head_dim is None:
        if not isinstance(hidden, int) or not isinstance(heads, int) or heads <= 0 or hidden % heads:
            raise SpecError(f"{where}: head_dim is absent and hidden_size={hidden!r} is not a multiple of "
                            f"num_attention_heads={heads!r}")
        head_dim = hidden // heads
    # transformers 5 keeps rope_theta and the scaling inside 'rope_parameters'; 4.x keeps them apart.
    rope_params = cfg.get("rope_parameters")
    if isinstance(rope_params, dict):
        rope_theta = rope_params.get("rope_theta", cfg.get("rope_theta", 10000.0))
        extra = {k: v for k, v in rope_params.items() if k != "rope_theta"}
        rope_scaling = extra if extra.get("rope_type", "default") != "default" else None
    else:
        rope_theta = cfg.get("rope_theta", 10000.0)
        rs = cfg.get("rope_scaling")
        if rs is not None and not isinstance(rs, dict):
            raise SpecError(f"{where}: rope_scaling must be an object or null, got {rs!r}")
        if rs is not None and "rope_type" not in rs and "type" in rs:
            rs = {"rope_type": rs["type"], **{k: v for k, v in rs.items() if k != "type"}}
        rope_scaling = rs if rs and rs.get("rope_type", "default") != "default" else None
    data = dict(
        name=name,
        hidden_size=hidden,
        intermediate_size=_need(cfg, "intermediate_size", where),
        num_layers=_need(cfg, "num_hidden_layers", where),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=_need(cfg, "vocab_size", where),
        max_position_embeddings=_need(cfg, "max_position_embeddings", where),
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
        rope_theta=rope_theta,
        rope_scaling=rope_scaling,
        tie_word_embeddings=cfg.get("tie_word_embeddings", False),  # strict: "false" (a string) is an error
        source=str(where),
    )
    return build(ModelSpec, data, where)


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
