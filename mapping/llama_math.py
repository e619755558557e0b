"""FP32 Llama building blocks shared by calibration (mapping) and the reference (gpu_baseline).

They follow Hugging Face's LlamaForCausalLM operation for operation (RMSNorm
with a float32 variance, rotate-half RoPE with frequencies computed as
position * inv_freq in float32, softmax attention in float32) so that the
uncompressed reference reproduces transformers' logits; docs/numerics.md
section 4 states the same operations.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from simulator.specs.model import ModelSpec, model_spec_from_hf_config
from sparse_dsp.errors import LlmaccelError

ROPE_TYPES = ("default", "llama3")


def shape_from_config(cfg: dict[str, Any], where: str = "config.json") -> ModelSpec:
    """The model's shapes from a Hugging Face config (validated by simulator.specs: Llama family only)."""
    spec = model_spec_from_hf_config(cfg, name=str(cfg.get("_name_or_path") or "checkpoint"), where=where)
    rope_type = (spec.rope_scaling or {}).get("rope_type", "default")
    if rope_type not in ROPE_TYPES:
        raise LlmaccelError(f"{where}: rope_type='{rope_type}' is not supported by the reference; "
                            f"allowed: {list(ROPE_TYPES)}")
    return spec


def inv_freq(shape: ModelSpec) -> torch.Tensor:
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


def rope_cos_sin(shape: ModelSpec, positions: torch.Tensor, freqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
