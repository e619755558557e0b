"""FP32 decoder-layer building blocks of every family, shared by the reference and the GPU paths.

They follow transformers' models operation for operation (RMSNorm with a float32 variance and
LayerNorm as torch's layer_norm, rotate-half RoPE, softmax attention in float32, the family's
activation, biases added after the linear), so that the uncompressed reference reproduces
transformers' logits; docs/numerics.md section 4 states the same operations. What differs per
family is read from its :class:`simulator.families.Architecture`, never restated here.

RoPE tables come from the one implementation, simulator.families.rope (frequencies after
transformers' init functions, correct to float64, rounded once to FP32).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch

from llmaccel.simulator.families import Rope
from llmaccel.simulator.specs.model import ModelSpec, model_spec_from_hf_config


def shape_from_config(cfg: dict[str, Any], where: str = "config.json") -> ModelSpec:
    """The model's shapes and family from a Hugging Face config (validated by simulator.specs/families)."""
    return model_spec_from_hf_config(cfg, name=str(cfg.get("_name_or_path") or "checkpoint"), where=where)


def inv_freq(shape: ModelSpec) -> torch.Tensor:
    """RoPE inverse frequencies [head_dim/2] as FP32 (simulator.families.rope, rounded once)."""
    return torch.from_numpy(Rope.of(shape).inv_freq()).to(torch.float32)


def rope_cos_sin(shape: ModelSpec, positions: torch.Tensor, freqs: Optional[torch.Tensor] = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """FP32 cos/sin [T, head_dim] at ``positions`` (attention scaling applied), on positions' device.

    ``freqs`` is not read (the tables come from the model's Rope); it stays for callers that pass
    ``inv_freq(shape)``.
    """
    del freqs
    pos = positions.detach().cpu().numpy()
    cos, sin = Rope.of(shape).tables_fp32(pos)
    return torch.from_numpy(cos).to(positions.device), torch.from_numpy(sin).to(positions.device)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [T, heads, head_dim]; cos/sin: [T, head_dim]."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    var = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(var + eps))


def norm(x: torch.Tensor, kind: str, weight: torch.Tensor, bias: Optional[torch.Tensor], eps: float) -> torch.Tensor:
    """The family's norm: RMSNorm (weight) or LayerNorm (weight, bias), FP32."""
    if kind == "rmsnorm":
        return rmsnorm(x, weight, eps)
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """silu | gelu_tanh (GPT-2's gelu_new) | gelu (erf) | relu, FP32, as transformers' ACT2FN computes them."""
    if name == "silu":
        return torch.nn.functional.silu(x)
    if name == "gelu_tanh":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    if name == "gelu":
        return torch.nn.functional.gelu(x)
    if name == "relu":
        return torch.relu(x)
    raise ValueError(f"activation {name!r}")


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
