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

    Both come from one float64 product X^T X with portable (CPU-independent) bits: the Hessian
    is it over n, the norms the square roots of its diagonal; each is rounded once to float32.
    """

    hessian: torch.Tensor
    col_norm: torch.Tensor

    @classmethod
    def of(cls, x: torch.Tensor) -> "InputStats":
        x = x.reshape(-1, x.shape[-1])
        gram = pm.gram(x.T)
        return cls(hessian=(gram / x.shape[0]).to(torch.float32),
                   col_norm=torch.sqrt(torch.diagonal(gram)).to(torch.float32))


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

    def weights(*leaves: str) -> tuple[pm.Sliced, list[int]]:
        # linears sharing an input are one product: each output column depends only on its own
        # weight row, so the bits are those of separate products; the weights are cut once per layer
        return pm.cols(torch.cat([w[leaf] for leaf in leaves], 0).T, "weights"), [w[leaf].shape[0] for leaf in leaves]

    qkv, o_proj, gate_up, down = weights("q_proj", "k_proj", "v_proj"), weights("o_proj"), \
        weights("gate_proj", "up_proj"), weights("down_proj")

    def linear(a: torch.Tensor, wt: tuple[pm.Sliced, list[int]]) -> list[torch.Tensor]:
        return list(pm.product(pm.rows(a), wt[0]).split(wt[1], dim=-1))

    def heads(a: torch.Tensor, n: int, rope: bool) -> torch.Tensor:  # [T, n*hd] -> [n, T, hd]
        a = a.view(t, n, hd).transpose(0, 1)
        return a * cos + lm.rotate_half(a) * sin if rope else a

    out = torch.empty_like(x)
    seen: dict[str, list[torch.Tensor]] = {"q_proj": [], "o_proj": [], "gate_proj": [], "down_proj": []}
    for s in range(s_count):  # one sequence at a time: its temporaries stay in cache
        xs = x[s]
        h = pm.rmsnorm(xs, w["input_layernorm"], shape.rms_norm_eps)
        q, k, v = linear(h, qkv)
        q = heads(q, nh, True)
        k = heads(k, nkv, True).repeat_interleave(nh // nkv, dim=0)
        v = heads(v, nkv, False).repeat_interleave(nh // nkv, dim=0)
        scores = pm.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        p = pm.causal_softmax(scores, pos, pos)
        attn = pm.matmul(p, v).transpose(0, 1).reshape(t, nh * hd)
        xs = xs + linear(attn, o_proj)[0]
        h2 = pm.rmsnorm(xs, w["post_attention_layernorm"], shape.rms_norm_eps)
        gate, up = linear(h2, gate_up)
        a = pm.sigmoid_linear(gate) * up
        out[s] = xs + linear(a, down)[0]
        if capture is not None:
            for name, val in (("q_proj", h), ("o_proj", attn), ("gate_proj", h2), ("down_proj", a)):
                seen[name].append(val)
    if capture is not None:
        cat = {name: torch.cat(vals, 0) for name, vals in seen.items()}
        capture.inputs.update({"q_proj": cat["q_proj"], "k_proj": cat["q_proj"], "v_proj": cat["q_proj"],
                               "o_proj": cat["o_proj"], "gate_proj": cat["gate_proj"],
                               "up_proj": cat["gate_proj"], "down_proj": cat["down_proj"]})
    return out


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
