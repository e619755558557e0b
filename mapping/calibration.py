"""Calibration statistics for GPTQ, Wanda and mixed precision, one decoder layer at a time.

Inputs of every linear are captured by running a float64 layer forward (the operations of
transformers' model of the family, in its order: simulator.families.Architecture says which
norm, activation, biases and positions) on calibration tokens. Layers are processed in order
and the next layer's input is produced with the *compressed* weights of the current one, so
each layer is calibrated on the activations it will really see (GPTQ's sequential mode).
Within a layer the forward stops at each group of linears sharing an input (q/k/v, o,
gate/up, down) and asks ``on_group`` for the weights to continue with: compression passes
compress the group there, so o_proj is calibrated on the output of the compressed q/k/v
(GPTQ's and Wanda's "true sequential" order) and each layer runs forward once.

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

from llmaccel.mapping import portable_math as pm
from llmaccel.simulator.specs.model import ModelSpec

ATTN_IN = ("q_proj", "k_proj", "v_proj")
MLP_IN = ("gate_proj", "up_proj")
# leaf -> canonical artifact path of a gated (Llama-layout) family; Architecture.linear_keys is the general form
LINEAR_PATHS = {
    "q_proj": "self_attn.q_proj", "k_proj": "self_attn.k_proj", "v_proj": "self_attn.v_proj",
    "o_proj": "self_attn.o_proj", "gate_proj": "mlp.gate_proj", "up_proj": "mlp.up_proj",
    "down_proj": "mlp.down_proj",
}
NORMS = ("input_layernorm", "post_attention_layernorm")


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
    """The input of every linear of one layer (the linears of a group share one tensor)."""

    inputs: dict[str, torch.Tensor] = field(default_factory=dict)

    def stats(self) -> dict[str, InputStats]:
        """One InputStats per linear, computed once per shared input."""
        out: dict[str, InputStats] = {}
        done: dict[int, InputStats] = {}
        for leaf, x in self.inputs.items():
            if id(x) not in done:
                done[id(x)] = InputStats.of(x)
            out[leaf] = done[id(x)]
        return out


GroupHook = Callable[[str, tuple[str, ...], torch.Tensor], dict[str, torch.Tensor]]
"""(group name, its leaves, their shared float64 input [N, K]) -> the weight [out, in] of each leaf to use."""


def layer_forward(x: torch.Tensor, w: dict[str, torch.Tensor], shape: ModelSpec,
                  capture: Optional[LayerCapture] = None, on_group: Optional[GroupHook] = None) -> torch.Tensor:
    """Float64 decoder layer on a batch of sequences x [S, T, D]; returns float64 [S, T, D].

    ``w`` holds the layer by canonical name (mapping.checkpoint.layer_tensors): each projection
    leaf, ``leaf.bias`` where the family has one, the two norms (and their ``.bias``). RoPE comes
    from pm.rope_tables, exact to float64. ``capture`` records each linear's input; ``on_group``
    may replace a group's weights (the compressed ones) before they are used.
    """
    a = shape.arch
    s_count, t, d = x.shape
    n = s_count * t
    x = x.to(torch.float64).reshape(n, d)
    pos = torch.arange(t)
    hd, nh, nkv = shape.head_dim, shape.num_heads, shape.num_kv_heads
    groups = a.groups()

    def group_weights(group: str, inp: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        leaves = groups[group]
        if capture is not None:
            capture.inputs.update({leaf: inp for leaf in leaves})
        got = on_group(group, leaves, inp) if on_group is not None else {}
        return [(leaf, got.get(leaf, w[leaf])) for leaf in leaves]

    def linear(inp: torch.Tensor, ws: list[tuple[str, torch.Tensor]]) -> list[torch.Tensor]:
        # linears sharing an input are one product: each output column depends only on its own
        # weight row and each row of the input only on itself, so the bits are those of separate
        # products, sequence by sequence (whose temporaries stay in cache)
        wt = pm.cols(torch.cat([wl for _, wl in ws], 0).T, "weights")
        y = torch.cat([pm.product(pm.rows(inp[r:r + t]), wt) for r in range(0, n, t)], 0)
        outs = list(y.split([wl.shape[0] for _, wl in ws], dim=-1))
        return [o + w[leaf + ".bias"].to(torch.float64) if leaf + ".bias" in w else o
                for (leaf, _), o in zip(ws, outs)]

    def norm(inp: torch.Tensor, name: str) -> torch.Tensor:
        return pm.norm(inp, a.norm.kind, w[name], w.get(name + ".bias"), shape.norm_eps)

    h = norm(x, "input_layernorm")
    q, k, v = linear(h, group_weights("attn_in", h))
    if a.positions == "rope":
        cos, sin = pm.rope_tables(hd, shape.rope_theta, shape.rope_scaling, t, shape.max_position_embeddings)
    attn = torch.empty((n, nh * hd), dtype=torch.float64)
    for s in range(s_count):  # attention one sequence at a time
        rows = slice(s * t, (s + 1) * t)
        qs, ks, vs = (m[rows].reshape(t, c, hd).transpose(0, 1) for m, c in ((q, nh), (k, nkv), (v, nkv)))
        if a.positions == "rope":
            qs, ks = qs * cos + _rotate_half(qs) * sin, ks * cos + _rotate_half(ks) * sin
        ks, vs = ks.repeat_interleave(nh // nkv, dim=0), vs.repeat_interleave(nh // nkv, dim=0)
        p = pm.causal_softmax(pm.matmul(qs, ks.transpose(-1, -2)) * (1.0 / math.sqrt(hd)), pos, pos)
        attn[rows] = pm.matmul(p, vs).transpose(0, 1).reshape(t, nh * hd)
    x = x + linear(attn, group_weights("attn_out", attn))[0]
    h2 = norm(x, "post_attention_layernorm")
    act = pm.ACTIVATIONS[a.activation]
    if a.gated:
        gate, up = linear(h2, group_weights("mlp_in", h2))
        hidden = act(gate) * up
    else:
        hidden = act(linear(h2, group_weights("mlp_in", h2))[0])
    out = x + linear(hidden, group_weights("mlp_out", hidden))[0]
    return out.reshape(s_count, t, d)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def embed_inputs(tokens: torch.Tensor, embed: torch.Tensor, positions: Optional[torch.Tensor]) -> torch.Tensor:
    """The first layer's input [S, T, D] float64: token embeddings (+ learned positions 0..T-1)."""
    x = embed[tokens].to(torch.float64)
    if positions is not None:
        x = x + positions[: tokens.shape[1]].to(torch.float64)
    return x


def calibration_tokens(tokenizer_dir: str, text_or_ids: "str | list[int]", n_tokens: int,
                       seq_len: int) -> torch.Tensor:
    """[S, seq_len] token ids from the first n_tokens of the text (tokenizer of the checkpoint) or ids."""
    from llmaccel.errors import LlmaccelError
    if isinstance(text_or_ids, str):
        from llmaccel.mapping.checkpoint import CheckpointError, load_local_tokenizer
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
