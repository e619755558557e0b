"""Golden decode step of one Llama decoder layer, composed from the unit goldens (contract section 4).

It is the per-unit goldens wired in the contract's order and nothing more,
so a mismatch against the PyTorch reference points at the contract page or
at a unit, never at glue arithmetic of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmaccel.simulator.golden.attention import decode_attention, quantize_heads
from llmaccel.simulator.golden.linear import int8_linear
from llmaccel.simulator.golden.sfu import add, rmsnorm, rope, silu, mul
from llmaccel.sparse_dsp.packed_format import PackedLinear

F32 = np.float32


@dataclass
class LayerKVCache:
    """INT8 K/V per (position, kv head) with FP32 scales, filled up to ``length``."""

    seq_max: int
    kv_heads: int
    head_dim: int
    k8: np.ndarray = field(init=False)
    v8: np.ndarray = field(init=False)
    s_k: np.ndarray = field(init=False)
    s_v: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.k8 = np.zeros((self.seq_max, self.kv_heads, self.head_dim), np.int8)
        self.v8 = np.zeros_like(self.k8)
        self.s_k = np.zeros((self.seq_max, self.kv_heads), F32)
        self.s_v = np.zeros_like(self.s_k)


def decoder_layer_decode(x: np.ndarray, pos: int, layers: dict[str, PackedLinear], w_in: np.ndarray,
                         w_post: np.ndarray, eps: float, cos: np.ndarray, sin: np.ndarray, cache: LayerKVCache,
                         n_heads: int, n_kv_heads: int, head_dim: int) -> np.ndarray:
    """One token (hidden state x [hidden]) at position ``pos``; writes K/V at ``pos`` into ``cache``."""
    x = np.asarray(x, F32).reshape(1, -1)
    h = rmsnorm(x, w_in, eps)
    q = int8_linear(layers["q_proj"], h).reshape(n_heads, head_dim)
    k = int8_linear(layers["k_proj"], h).reshape(n_kv_heads, head_dim)
    v = int8_linear(layers["v_proj"], h).reshape(n_kv_heads, head_dim)
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    cache.k8[pos], cache.s_k[pos] = quantize_heads(k.reshape(-1), head_dim)
    cache.v8[pos], cache.s_v[pos] = quantize_heads(v.reshape(-1), head_dim)
    q8, s_q = quantize_heads(q.reshape(-1), head_dim)
    n = pos + 1
    attn = decode_attention(q8, s_q, cache.k8[:n], cache.s_k[:n], cache.v8[:n], cache.s_v[:n], n_kv_heads)
    x = add(x, int8_linear(layers["o_proj"], attn.reshape(1, -1)))
    h = rmsnorm(x, w_post, eps)
    a = mul(silu(int8_linear(layers["gate_proj"], h)), int8_linear(layers["up_proj"], h))
    return add(x, int8_linear(layers["down_proj"], a)).reshape(-1)
