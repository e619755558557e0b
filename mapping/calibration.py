"""Calibration statistics for GPTQ, Wanda and mixed precision, one decoder layer at a time.

Inputs of every linear are captured by running a float64 layer forward (the
operations of transformers' Llama, in its order) on calibration tokens.
Layers are processed in order and the next layer's input is produced with the
*compressed* weights of the current one, so each layer is calibrated on the
activations it will really see (GPTQ's sequential mode).

Every step uses mapping.portable_math, never torch's own matmul, sum, softmax,
exp, sin/cos or pow: those give other bits under another CPU vector
instruction set, and a compressed artifact must be the same file on every
x86 CPU (docs/numerics.md, "Cross-CPU determinism").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from mapping import llama_math as lm
from mapping import portable_math as pm

ATTN_IN = ("q_proj", "k_proj", "v_proj")
MLP_IN = ("gate_proj", "up_proj")
LINEAR_PATHS = {
    "q_proj": "self_attn.q_proj", "k_proj": "self_attn.k_proj", "v_proj": "self_attn.v_proj",
    "o_proj": "self_attn.o_proj", "gate_proj": "mlp.gate_proj", "up_proj": "mlp.up_proj",
    "down_proj": "mlp.down_proj",
}


@dataclass
class InputStats:
    """Second moment X^T X / n and per-column L2 norm of one linear's calibration inputs.

    Both are computed in float64 with portable (CPU-independent) products and sums, then rounded
    once to float32.
    """

    hessian: torch.Tensor
    col_norm: torch.Tensor

    @classmethod
    def of(cls, x: torch.Tensor) -> "InputStats":
        x = x.reshape(-1, x.shape[-1]).to(torch.float64)
        xt = x.T.contiguous()
        return cls(hessian=(pm.matmul(xt, x) / x.shape[0]).to(torch.float32),
                   col_norm=torch.sqrt(pm.sum_last(xt * xt)).to(torch.float32))


@dataclass
class LayerCapture:
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)

    def stats(self) -> dict[str, InputStats]:
        """One InputStats per linear; q/k/v and gate/up share their input."""
        out: dict[str, InputStats] = {}
        for group in (ATTN_IN, MLP_IN, ("o_proj",), ("down_proj",)):
            s = InputStats.of(self.inputs[group[0]])
            for name in group:
                out[name] = s
        return out


def layer_forward(x: torch.Tensor, w: dict[str, torch.Tensor], shape: lm.ModelSpec,
                  freqs: Optional[torch.Tensor] = None, capture: Optional[LayerCapture] = None) -> torch.Tensor:
    """Float64 decoder layer on a batch of sequences x [S, T, D] with weights keyed like LINEAR_PATHS
    leaves plus 'input_layernorm' and 'post_attention_layernorm'; returns float64 [S, T, D].

    ``freqs`` is not read: RoPE comes from ``shape`` through pm.rope_tables, exact to float64,
    because the float32 frequencies of mapping.llama_math.inv_freq come from torch's pow, whose
    bits depend on the CPU. (It stays in the signature while mapping.compress passes it.)
    """
    del freqs
    s_count, t, d = x.shape
    x = x.to(torch.float64)
    pos = torch.arange(t)
    cos, sin = pm.rope_tables(shape.head_dim, shape.rope_theta, shape.rope_scaling, t)
    hd, nh, nkv = shape.head_dim, shape.num_heads, shape.num_kv_heads

    def linear(a: torch.Tensor, leaf: str) -> torch.Tensor:
        return pm.matmul(a, w[leaf].to(torch.float64).T)

    def heads(a: torch.Tensor, n: int) -> torch.Tensor:  # [S*T, n*hd] -> [S, n, T, hd], RoPE applied
        a = a.view(s_count, t, n, hd).transpose(1, 2)
        return a * cos + lm.rotate_half(a) * sin

    flat = x.reshape(s_count * t, d)
    h = pm.rmsnorm(flat, w["input_layernorm"], shape.rms_norm_eps)
    q = heads(linear(h, "q_proj"), nh)
    k = heads(linear(h, "k_proj"), nkv).repeat_interleave(nh // nkv, dim=1)
    v = linear(h, "v_proj").view(s_count, t, nkv, hd).transpose(1, 2).repeat_interleave(nh // nkv, dim=1)
    scores = pm.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
    p = pm.causal_softmax(scores, pos, pos)
    attn = pm.matmul(p, v).transpose(1, 2).reshape(s_count * t, nh * hd)
    flat = flat + linear(attn, "o_proj")
    h2 = pm.rmsnorm(flat, w["post_attention_layernorm"], shape.rms_norm_eps)
    a = pm.sigmoid_linear(linear(h2, "gate_proj")) * linear(h2, "up_proj")
    out = flat + linear(a, "down_proj")
    if capture is not None:
        capture.inputs.update({"q_proj": h, "k_proj": h, "v_proj": h, "o_proj": attn,
                               "gate_proj": h2, "up_proj": h2, "down_proj": a})
    return out.view(s_count, t, d)


def calibration_tokens(tokenizer_dir: str, text_or_ids: "str | list[int]", n_tokens: int,
                       seq_len: int) -> torch.Tensor:
    """[S, seq_len] token ids from the first n_tokens of the text (tokenizer of the checkpoint) or ids."""
    from sparse_dsp.errors import LlmaccelError
    if isinstance(text_or_ids, str):
        from mapping.checkpoint import CheckpointError, load_local_tokenizer
        try:   # local files only, never the directory's own code (trust_remote_code=False)
            tok = load_local_tokenizer(tokenizer_dir)
        except CheckpointError as exc:
            raise LlmaccelError(f"checkpoint '{tokenizer_dir}' has no usable tokenizer for calibration text "
                                f"({exc}); pass calibration token ids instead") from None
        ids = tok(text_or_ids, add_special_tokens=False)["input_ids"]
    else:
        ids = list(text_or_ids)
    n = (min(len(ids), n_tokens) // seq_len) * seq_len
    if n == 0:
        raise LlmaccelError(f"calibration text gives {len(ids)} tokens; at least seq_len={seq_len} are needed")
    return torch.tensor(ids[:n], dtype=torch.long).view(-1, seq_len)


ProgressFn = Callable[[str], None]
