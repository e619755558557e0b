"""The PyTorch reference of a (compressed) Llama: docs/numerics.md in code.

Every other implementation (the simulator's functional engine, the HLS
kernels, the RTL) is checked against this model. It runs one sequence at a
time (the accelerator's batch size), on CPU or CUDA, for prefill and for
decode with a KV cache.

Exactness: INT32 partial sums are computed as float64 matmuls of integer
values, which are exact in any summation order (every partial sum is an
integer below 2^53), then rescaled group by group in FP32 in the contract's
order. That keeps the integer path bit-identical on CPU and GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from mapping import llama_math as lm
from mapping.calibration import LINEAR_PATHS
from mapping.checkpoint import SafetensorsCheckpoint
from mapping.compress import CompressedModel
from sparse_dsp.errors import LlmaccelError
from sparse_dsp.packed_format import PackedLinear

ACT_QMAX = 127.0


def quantize_per_row(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Contract section 2 over the last dim: (integer-valued float codes, fp32 scales)."""
    amax = x.abs().amax(dim=-1)
    scale = amax / ACT_QMAX
    scale = torch.where(amax == 0, torch.ones_like(scale), scale)
    q = torch.clamp(torch.round(x / scale.unsqueeze(-1)), -ACT_QMAX, ACT_QMAX)
    return q, scale


class Linear:
    """One linear layer under the contract: FP32 weights, or packed codes with INT8 activations."""

    def __init__(self, weight: np.ndarray | PackedLinear, act_int8: bool, device: torch.device):
        self.packed = isinstance(weight, PackedLinear)
        if self.packed:
            f = weight.fmt
            self.group_size = f.group_size
            self.ngroups = f.groups_per_row
            # integer weights kept as float64 so the partial-sum matmul is exact
            self.w = torch.from_numpy(weight.dense_int8().astype(np.float64)).to(device)
            self.scales = torch.from_numpy(weight.scales.astype(np.float32)).to(device)
            self.w_float = None
            if not act_int8:
                self.w_float = torch.from_numpy(weight.dense_float()).to(device)
        else:
            self.w = torch.from_numpy(np.asarray(weight, np.float32)).to(device)
        self.act_int8 = act_int8 and self.packed

    @property
    def out_features(self) -> int:
        return self.w.shape[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.packed:
            return x @ self.w.T
        if not self.act_int8:
            return x @ self.w_float.T
        q, s_x = quantize_per_row(x)
        t, o, g = x.shape[0], self.w.shape[0], self.group_size
        acc = torch.einsum("tgk,ogk->tog", q.to(torch.float64).view(t, self.ngroups, g),
                           self.w.view(o, self.ngroups, g))
        accf = acc.to(torch.int32).to(torch.float32)
        y = torch.zeros((t, o), dtype=torch.float32, device=x.device)
        for gi in range(self.ngroups):
            y = y + self.scales[:, gi] * accf[:, :, gi]
        return y * s_x.unsqueeze(1)


@dataclass
class KVCache:
    """Per-layer K/V for one sequence. INT8 caches hold integer-valued floats plus per-(token, head) scales."""

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    k_scale: list[torch.Tensor]
    v_scale: list[torch.Tensor]
    max_len: int
    length: int = 0

    @classmethod
    def empty(cls, num_layers: int, max_len: int, kv_heads: int, head_dim: int, device) -> "KVCache":
        z = lambda *s: [torch.zeros(*s, device=device) for _ in range(num_layers)]
        return cls(z(max_len, kv_heads, head_dim), z(max_len, kv_heads, head_dim),
                   z(max_len, kv_heads), z(max_len, kv_heads), max_len)


@dataclass
class ReferenceModel:
    shape: lm.ModelSpec
    embed: torch.Tensor
    norms: dict[str, torch.Tensor]
    linears: dict[str, Linear]
    act_int8: bool
    kv_int8: bool
    device: torch.device
    name: str = "fp32"
    freqs: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.freqs = lm.inv_freq(self.shape).to(self.device)

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_checkpoint(cls, checkpoint_dir: str | Path, device: str = "cpu") -> "ReferenceModel":
        """Uncompressed FP32 reference straight from a Hugging Face checkpoint directory."""
        ckpt = SafetensorsCheckpoint(checkpoint_dir)
        shape = lm.shape_from_config(ckpt.config, str(Path(checkpoint_dir) / 'config.json'))
        dev = torch.device(device)
        norms = {"norm": torch.from_numpy(ckpt.get("model.norm.weight")).to(dev)}
        linears = {}
        for i in range(shape.num_layers):
            for norm in ("input_layernorm", "post_attention_layernorm"):
                norms[f"layers.{i}.{norm}"] = torch.from_numpy(ckpt.get(f"model.layers.{i}.{norm}.weight")).to(dev)
            for p in LINEAR_PATHS.values():
                linears[f"layers.{i}.{p}"] = Linear(ckpt.get(f"model.layers.{i}.{p}.weight"), False, dev)
        embed = torch.from_numpy(ckpt.get("model.embed_tokens.weight")).to(dev)
        head = ckpt.get("lm_head.weight") if "lm_head.weight" in ckpt else ckpt.get("model.embed_tokens.weight")
        linears["lm_head"] = Linear(head, False, dev)
        return cls(shape, embed, norms, linears, False, False, dev, "fp32")

    @classmethod
    def from_compressed(cls, model: CompressedModel, device: str = "cpu") -> "ReferenceModel":
        dev = torch.device(device)
        act = model.recipe.act_bits == 8
        linears = {k: Linear(w, act, dev) for k, w in model.linears.items()}
        norms = {k: torch.from_numpy(v.astype(np.float32)).to(dev) for k, v in model.tensors.items()
                 if k != "embed_tokens"}
        embed = torch.from_numpy(model.tensors["embed_tokens"].astype(np.float32)).to(dev)
        return cls(model.shape, embed, norms, linears, act, model.recipe.kv_bits == 8, dev, model.recipe.name)

    # ---------------------------------------------------------------- forward
    def new_cache(self, max_len: Optional[int] = None) -> KVCache:
        n = max_len or self.shape.max_position_embeddings
        return KVCache.empty(self.shape.num_layers, n, self.shape.num_kv_heads, self.shape.head_dim, self.device)

    def _attention(self, q: torch.Tensor, i: int, cache: KVCache, pos: torch.Tensor) -> torch.Tensor:
        s = self.shape
        end = cache.length + q.shape[0]
        k, v = cache.k[i][:end], cache.v[i][:end]
        k_pos = torch.arange(end, device=self.device)
        n_rep = s.num_heads // s.num_kv_heads
        if not self.kv_int8:
            return lm.fp32_attention(q, k, v, pos, k_pos, n_rep)
        q8, s_q = quantize_per_row(q)                                  # [T, H, D], [T, H]
        k8 = k.repeat_interleave(n_rep, 1)
        v8 = v.repeat_interleave(n_rep, 1)
        s_k = cache.k_scale[i][:end].repeat_interleave(n_rep, 1)       # [Tk, H]
        s_v = cache.v_scale[i][:end].repeat_interleave(n_rep, 1)
        dot = torch.einsum("qhd,khd->hqk", q8.double(), k8.double()).to(torch.int32).to(torch.float32)
        scale_qk = s_q.T[:, :, None] * s_k.T[:, None, :]                # [H, Tq, Tk]
        scores = (dot * scale_qk) * (1.0 / math.sqrt(s.head_dim))
        p = lm.causal_softmax(scores, pos, k_pos)
        pv = p * s_v.T[:, None, :]
        return torch.einsum("hqk,khd->qhd", pv, v8).reshape(q.shape[0], -1)

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits [T, vocab] for ``ids`` [T] appended after the cache's tokens (prefill or decode)."""
        s = self.shape
        t = ids.shape[0]
        if t == 0:
            raise LlmaccelError("input_ids is empty; at least one token is required")
        if cache.length + t > cache.max_len:
            raise LlmaccelError(f"sequence length {cache.length + t} exceeds the KV cache's max_len {cache.max_len}")
        pos = torch.arange(cache.length, cache.length + t, device=self.device)
        cos, sin = lm.rope_cos_sin(s, pos, self.freqs)
        x = self.embed[ids.to(self.device)]
        for i in range(s.num_layers):
            L = lambda name: self.linears[f"layers.{i}.{name}"]
            h = lm.rmsnorm(x, self.norms[f"layers.{i}.input_layernorm"], s.rms_norm_eps)
            q = L("self_attn.q_proj")(h).view(t, s.num_heads, s.head_dim)
            k = L("self_attn.k_proj")(h).view(t, s.num_kv_heads, s.head_dim)
            v = L("self_attn.v_proj")(h).view(t, s.num_kv_heads, s.head_dim)
            q, k = lm.apply_rope(q, cos, sin), lm.apply_rope(k, cos, sin)
            sl = slice(cache.length, cache.length + t)
            if self.kv_int8:
                cache.k[i][sl], cache.k_scale[i][sl] = quantize_per_row(k)
                cache.v[i][sl], cache.v_scale[i][sl] = quantize_per_row(v)
            else:
                cache.k[i][sl], cache.v[i][sl] = k, v
            attn = self._attention(q, i, cache, pos)
            x = x + L("self_attn.o_proj")(attn)
            h2 = lm.rmsnorm(x, self.norms[f"layers.{i}.post_attention_layernorm"], s.rms_norm_eps)
            a = torch.nn.functional.silu(L("mlp.gate_proj")(h2)) * L("mlp.up_proj")(h2)
            x = x + L("mlp.down_proj")(a)
        cache.length += t
        x = lm.rmsnorm(x, self.norms["norm"], s.rms_norm_eps)
        return self.linears["lm_head"](x)

    def prefill(self, ids: list[int] | torch.Tensor, max_len: Optional[int] = None) -> tuple[torch.Tensor, KVCache]:
        cache = self.new_cache(max_len)
        return self.forward(torch.as_tensor(ids, dtype=torch.long), cache), cache

    def generate_greedy(self, prompt: list[int], max_new_tokens: int) -> Iterator[int]:
        """Stream greedy tokens (ties go to the lowest id, as torch.argmax does)."""
        logits, cache = self.prefill(prompt, len(prompt) + max_new_tokens)
        for _ in range(max_new_tokens):
            tok = int(torch.argmax(logits[-1]))
            yield tok
            if cache.length >= cache.max_len:
                return
            logits = self.forward(torch.tensor([tok]), cache)
