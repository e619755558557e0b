"""FP32 decoder-layer building blocks of every family, shared by the reference and the GPU paths.

They follow transformers' models operation for operation (RMSNorm with a float32 variance and
LayerNorm as torch's layer_norm, rotate-half RoPE, softmax attention in float32, the family's
activation, biases added after the linear), so that the uncompressed reference reproduces
transformers' logits; docs/numerics.md section 4 states the same operations. What differs per
family is read from its :class:`simulator.families.Architecture`, never restated here.

RoPE tables come from the one implementation, simulator.families.rope (frequencies after
transformers' init functions, correct to float64, rounded once to FP32).

Two reduction orders. The default functions use torch's vectorized reductions (``mean``,
``softmax``, ``einsum``), fast on CPU and GPU and what transformers does. The ``seq_*`` functions
follow the accelerator's order instead (docs/numerics.md section 4, "Reduction order"): every sum
runs in index order from 0.0, every product and sum rounds on its own, division where the contract
divides. They exist so that the reference, given the same INT8 inputs, reproduces the units' FP32
bits: with torch's order one ULP in a norm or softmax can flip an INT8 activation code, which moves
the logits by ~5e-3 of the max logit on the bundled model from 18 prompt tokens up (measured in
tests/simulator/test_functional_engine.py); in the units' order that flip cannot happen.
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


# ---------------------------------------------------------------------- the units' reduction order

def seq_sum(v: torch.Tensor) -> torch.Tensor:
    """FP32 sum over the last dim in index order, starting from 0.0 (the units' accumulator)."""
    acc = torch.zeros(v.shape[:-1], dtype=v.dtype, device=v.device)
    for col in v.unbind(-1):
        acc = acc + col
    return acc


def _inv_sqrt(a: torch.Tensor) -> torch.Tensor:
    """1 / sqrt(a): a correctly rounded square root, then a true division.

    The root is taken in float64 and rounded once, which is the correctly rounded FP32 root: torch
    2.13's FP32 ``sqrt`` on x86 CPUs is not (15.6 % of 100 000 random arguments differ from it,
    measured), while numpy's, the HLS kernels' and CUDA's default ``sqrtf`` are. ``rsqrt`` is not
    used: on this CPU build it happens to equal 1/sqrt, but CUDA's ``rsqrtf`` is approximate."""
    return torch.ones_like(a) / torch.sqrt(a.double()).to(a.dtype)


def _exp(a: torch.Tensor) -> torch.Tensor:
    """exp in float64, rounded once to FP32 (as simulator.golden.sfu: the same FP32 on every machine
    except at a rounding midpoint)."""
    return torch.exp(a.double()).to(a.dtype)


def seq_rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """(x * (1 / sqrt(seq_sum(x*x) / K + eps))) * w: true divisions (never a product with 1/K)."""
    ms = seq_sum(x * x) / x.shape[-1]
    inv = _inv_sqrt(ms + eps)
    return (x * inv.unsqueeze(-1)) * weight


def seq_layernorm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """c = x - mean, var = mean(c*c) (two index-order passes), (c * (1 / sqrt(var + eps))) * w + b."""
    k = x.shape[-1]
    c = x - (seq_sum(x) / k).unsqueeze(-1)
    inv = _inv_sqrt(seq_sum(c * c) / k + eps)
    return (c * inv.unsqueeze(-1)) * weight + bias


def seq_norm(x: torch.Tensor, kind: str, weight: torch.Tensor, bias: Optional[torch.Tensor], eps: float) -> torch.Tensor:
    return seq_rmsnorm(x, weight, eps) if kind == "rmsnorm" else seq_layernorm(x, weight, bias, eps)


def seq_activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """The contract's formulas: SiLU as z / (1 + exp(-z)); GELU's tanh/erf in float64, rounded once."""
    if name == "silu":
        return x / (1.0 + _exp(-x))
    if name in ("gelu_tanh", "gelu"):
        half = 0.5 * x
        if name == "gelu_tanh":
            inner = x + 0.044715 * (x * x * x)
            t = torch.tanh((math.sqrt(2.0 / math.pi) * inner).double()).float()
        else:
            t = torch.erf((x * (1.0 / math.sqrt(2.0))).double()).float()
        return half * (1.0 + t)
    if name == "relu":
        return torch.relu(x)
    raise ValueError(f"activation {name!r}")


def seq_causal_softmax(scores: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    """Two-phase softmax over keys: max, then e = exp(s - max) summed in key order, then e / sum."""
    mask = k_pos[None, :] > q_pos[:, None]
    s = scores.masked_fill(mask[None], float("-inf"))
    e = _exp(s - s.amax(dim=-1, keepdim=True))
    return e / seq_sum(e).unsqueeze(-1)


def seq_value_sum(w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sum over keys t (in order) of w[h, q, t] * v[t, h, :]: w [H, Tq, Tk], v [Tk, H, D] -> [Tq, H, D]."""
    wt = w.permute(1, 0, 2)                                                  # [Tq, H, Tk]
    acc = torch.zeros((w.shape[1], w.shape[0], v.shape[-1]), dtype=v.dtype, device=v.device)
    for t in range(v.shape[0]):
        acc = acc + wt[:, :, t, None] * v[t][None]
    return acc
