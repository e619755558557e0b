"""FP32 Llama building blocks shared by calibration (mapping) and the reference (gpu_baseline).

They follow Hugging Face's LlamaForCausalLM operation for operation (RMSNorm
with a float32 variance, rotate-half RoPE with frequencies computed as
position * inv_freq in float32, softmax attention in float32) so that the
uncompressed reference reproduces transformers' logits; docs/numerics.md
section 4 states the same operations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch

from sparse_dsp.errors import LlmaccelError

LLAMA_MODEL_TYPES = ("llama",)
LLAMA_ARCHITECTURES = ("LlamaForCausalLM",)
ROPE_TYPES = ("default", "llama3")


@dataclass(frozen=True)
class LlamaShape:
    """What the forward pass needs from a Hugging Face Llama config."""

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
    rope_scaling: Optional[dict]
    tie_word_embeddings: bool

    @classmethod
    def from_hf_config(cls, cfg: dict[str, Any]) -> "LlamaShape":
        mt = cfg.get("model_type")
        archs = cfg.get("architectures") or ["LlamaForCausalLM"]
        if mt not in LLAMA_MODEL_TYPES or not set(archs) <= set(LLAMA_ARCHITECTURES):
            raise LlmaccelError(f"config model_type='{mt}', architectures={archs} is not a Llama-family decoder; "
                                f"allowed: model_type in {list(LLAMA_MODEL_TYPES)}, "
                                f"architectures in {list(LLAMA_ARCHITECTURES)}")
        for key in ("attention_bias", "mlp_bias"):
            if cfg.get(key):
                raise LlmaccelError(f"config {key}=true is not supported; allowed: false (Llama has no biases)")
        rope = dict(cfg.get("rope_parameters") or {})
        if cfg.get("rope_scaling"):
            rope.update(cfg["rope_scaling"])
        theta = float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0)))
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type not in ROPE_TYPES:
            raise LlmaccelError(f"config rope_type='{rope_type}' is not supported; allowed: {list(ROPE_TYPES)}")
        heads = int(cfg["num_attention_heads"])
        try:
            return cls(
                hidden_size=int(cfg["hidden_size"]),
                intermediate_size=int(cfg["intermediate_size"]),
                num_layers=int(cfg["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
                head_dim=int(cfg.get("head_dim") or int(cfg["hidden_size"]) // heads),
                vocab_size=int(cfg["vocab_size"]),
                max_position_embeddings=int(cfg.get("max_position_embeddings", 2048)),
                rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
                rope_theta=theta,
                rope_scaling=None if rope_type == "default" else rope,
                tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            )
        except KeyError as exc:
            raise LlmaccelError(f"config is missing field {exc.args[0]!r}, required for a Llama model") from None


def inv_freq(shape: LlamaShape) -> torch.Tensor:
    d = shape.head_dim
    base = 1.0 / (shape.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).to(torch.float32) / d))
    if shape.rope_scaling is None:
        return base
    r = shape.rope_scaling  # llama3 frequency-dependent scaling (Llama 3.1 release)
    factor, lo, hi = float(r["factor"]), float(r["low_freq_factor"]), float(r["high_freq_factor"])
    old = float(r["original_max_position_embeddings"])
    wavelen = 2 * math.pi / base
    scaled = torch.where(wavelen > old / lo, base / factor, base)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old / hi) & ~(wavelen > old / lo)
    return torch.where(medium, smoothed, scaled)


def rope_cos_sin(shape: LlamaShape, positions: torch.Tensor, freqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = positions[:, None].to(torch.float32) * freqs[None, :].to(positions.device)
    emb = torch.cat((f, f), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [T, heads, head_dim]; cos/sin: [T, head_dim]."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    var = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(var + eps))


def causal_softmax(scores: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    """scores [heads, Tq, Tk] -> probabilities with keys after the query masked."""
    mask = k_pos[None, :] > q_pos[:, None]
    scores = scores.masked_fill(mask[None], float("-inf"))
    return torch.softmax(scores, dim=-1, dtype=torch.float32)


def fp32_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_pos: torch.Tensor,
                   k_pos: torch.Tensor, n_rep: int) -> torch.Tensor:
    """q [Tq, H, D], k/v [Tk, KVH, D] -> [Tq, H*D] (grouped-query: each kv head serves n_rep heads)."""
    k = k.repeat_interleave(n_rep, dim=1)
    v = v.repeat_interleave(n_rep, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q, k) * (1.0 / math.sqrt(q.shape[-1]))
    p = causal_softmax(scores, q_pos, k_pos)
    return torch.einsum("hqk,khd->qhd", p, v).reshape(q.shape[0], -1)
