"""Calibration statistics for GPTQ, Wanda and mixed precision, one decoder layer at a time.

Inputs of every linear are captured by running our FP32 layer forward
(mapping.llama_math, the same operations as transformers' Llama) on
calibration tokens. Layers are processed in order and the next layer's input
is produced with the *compressed* weights of the current one, so each layer
is calibrated on the activations it will really see (GPTQ's sequential mode).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from mapping import llama_math as lm

ATTN_IN = ("q_proj", "k_proj", "v_proj")
MLP_IN = ("gate_proj", "up_proj")
LINEAR_PATHS = {
    "q_proj": "self_attn.q_proj", "k_proj": "self_attn.k_proj", "v_proj": "self_attn.v_proj",
    "o_proj": "self_attn.o_proj", "gate_proj": "mlp.gate_proj", "up_proj": "mlp.up_proj",
    "down_proj": "mlp.down_proj",
}


@dataclass
class InputStats:
    """Second moment X^T X / n and per-column L2 norm of one linear's calibration inputs."""

    hessian: torch.Tensor
    col_norm: torch.Tensor

    @classmethod
    def of(cls, x: torch.Tensor) -> "InputStats":
        x = x.reshape(-1, x.shape[-1]).to(torch.float64)
        return cls(hessian=(x.T @ x / x.shape[0]).to(torch.float32),
                   col_norm=torch.sqrt((x * x).sum(0)).to(torch.float32))


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


def layer_forward(x: torch.Tensor, w: dict[str, torch.Tensor], shape: lm.ModelSpec, freqs: torch.Tensor,
                  capture: Optional[LayerCapture] = None) -> torch.Tensor:
    """FP32 decoder layer on a batch of sequences x [S, T, D] with weights keyed like LINEAR_PATHS leaves
    plus 'input_layernorm' and 'post_attention_layernorm'."""
    s_count, t, d = x.shape
    pos = torch.arange(t)
    cos, sin = lm.rope_cos_sin(shape, pos, freqs)
    out = torch.empty_like(x)
    for s in range(s_count):
        xs = x[s]
        h = lm.rmsnorm(xs, w["input_layernorm"], shape.rms_norm_eps)
        q = (h @ w["q_proj"].T).view(t, shape.num_heads, shape.head_dim)
        k = (h @ w["k_proj"].T).view(t, shape.num_kv_heads, shape.head_dim)
        v = (h @ w["v_proj"].T).view(t, shape.num_kv_heads, shape.head_dim)
        q, k = lm.apply_rope(q, cos, sin), lm.apply_rope(k, cos, sin)
        attn = lm.fp32_attention(q, k, v, pos, pos, shape.num_heads // shape.num_kv_heads)
        xs = xs + attn @ w["o_proj"].T
        h2 = lm.rmsnorm(xs, w["post_attention_layernorm"], shape.rms_norm_eps)
        a = torch.nn.functional.silu(h2 @ w["gate_proj"].T) * (h2 @ w["up_proj"].T)
        out[s] = xs + a @ w["down_proj"].T
        if capture is not None:
            for name, val in (("q_proj", h), ("o_proj", attn), ("gate_proj", h2), ("down_proj", a)):
                capture.inputs.setdefault(name, []).append(val)
    if capture is not None:
        for name in list(capture.inputs):
            if isinstance(capture.inputs[name], list):
                capture.inputs[name] = torch.cat(capture.inputs[name], 0)
        for name in ATTN_IN[1:]:
            capture.inputs[name] = capture.inputs["q_proj"]
        capture.inputs["up_proj"] = capture.inputs["gate_proj"]
    return out


def calibration_tokens(tokenizer_dir: str, text_or_ids: "str | list[int]", n_tokens: int,
                       seq_len: int) -> torch.Tensor:
    """[S, seq_len] token ids from the first n_tokens of the text (tokenizer of the checkpoint) or ids."""
    from sparse_dsp.errors import LlmaccelError
    if isinstance(text_or_ids, str):
        from transformers import AutoTokenizer
        try:
            tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        except (OSError, ValueError) as exc:
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
