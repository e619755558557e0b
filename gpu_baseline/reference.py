"""The PyTorch reference of a (compressed) decoder of any supported family: docs/numerics.md in code.

Every other implementation (the simulator's functional engine, the HLS
kernels, the RTL) is checked against this model. It runs one sequence at a
time (the accelerator's batch size), on CPU or CUDA, for prefill and for
decode with a KV cache. What the block computes (norm kind, activation,
gated MLP, biases, RoPE or learned positions) is read from the family's
:class:`simulator.families.Architecture`; on the uncompressed model it equals
transformers' logits (tests/families).

Two reduction orders (``reductions``): ``"vectorized"`` (the default) uses torch's reductions,
as transformers does; ``"sequential"`` sums every norm, softmax and attention value sum in index
order as the accelerator's units do (docs/numerics.md section 4), so that on the INT8 path the
functional engine's logits equal the reference's bit for bit instead of within a tolerance: with
torch's order an ULP can flip an INT8 activation code (mapping.layer_math explains and measures it).
It is slower (a Python loop over each reduced dimension), which is why it is not the default.

Exactness: INT32 partial sums are computed as float64 matmuls of integer
values, which are exact in any summation order (every partial sum is an
integer below 2^53), then rescaled group by group in FP32 in the contract's
order. That keeps the integer path bit-identical on CPU and GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from llmaccel.mapping import layer_math as lm
from llmaccel.mapping.checkpoint import SafetensorsCheckpoint, layer_tensors, model_tensors
from llmaccel.mapping.compress import CompressedModel
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import PackedLinear

ACT_QMAX = 127.0
REDUCTIONS = ("vectorized", "sequential")


def quantize_per_row(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Contract section 2 over the last dim: (integer-valued float codes, fp32 scales)."""
    amax = x.abs().amax(dim=-1)
    scale = amax / ACT_QMAX
    scale = torch.where(amax == 0, torch.ones_like(scale), scale)
    q = torch.clamp(torch.round(x / scale.unsqueeze(-1)), -ACT_QMAX, ACT_QMAX)
    return q, scale


class Linear:
    """One linear layer under the contract: FP32 weights, or packed codes with INT8 activations;
    a bias is added in FP32 after the rescale."""

    def __init__(self, weight: np.ndarray | PackedLinear, act_int8: bool, device: torch.device,
                 bias: Optional[np.ndarray] = None, act_fp16: bool = False):
        self.bias = None if bias is None else torch.from_numpy(np.asarray(bias, np.float32)).to(device)
        self.act_fp16 = act_fp16     # FP16 datapath: the input rounded to FP16, products summed in FP32
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
        y = self._product(x)
        return y if self.bias is None else y + self.bias

    def _product(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_fp16:
            x = x.to(torch.float16).to(torch.float32)
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
    """``norms`` by canonical name (``layers.{i}.input_layernorm`` ..., ``norm``; ``.bias`` for LayerNorm);
    ``positions``: learned position embeddings [max_position_embeddings, hidden] or None (RoPE)."""

    shape: lm.ModelSpec
    embed: torch.Tensor
    norms: dict[str, torch.Tensor]
    linears: dict[str, Linear]
    act_int8: bool
    kv_int8: bool
    device: torch.device
    name: str = "fp32"
    positions: Optional[torch.Tensor] = None
    kv_fp16: bool = False          # FP16 KV cache: K and V rounded to FP16 when written
    reductions: str = "vectorized"  # or "sequential": the units' summation order (module docstring)

    def __post_init__(self) -> None:
        if self.reductions not in REDUCTIONS:
            raise LlmaccelError(f"reductions={self.reductions!r}; allowed: {', '.join(REDUCTIONS)}")

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_checkpoint(cls, checkpoint_dir: str | Path, device: str = "cpu",
                        reductions: str = "vectorized") -> "ReferenceModel":
        """Uncompressed FP32 reference straight from a Hugging Face checkpoint directory."""
        ckpt = SafetensorsCheckpoint(checkpoint_dir)
        shape = ckpt.spec
        keys = shape.arch.linear_keys
        dev = torch.device(device)
        t = {k: torch.from_numpy(v).to(dev) for k, v in model_tensors(ckpt, shape).items()}
        norms = {k: v for k, v in t.items() if k in ("norm", "norm.bias")}
        linears = {"lm_head": Linear(t["lm_head"].cpu().numpy(), False, dev)}
        for i in range(shape.num_layers):
            w = layer_tensors(ckpt, shape, i)
            for leaf, key in keys.items():
                linears[f"layers.{i}.{key}"] = Linear(w.pop(leaf), False, dev, w.pop(leaf + ".bias", None))
            norms.update({f"layers.{i}.{k}": torch.from_numpy(v).to(dev) for k, v in w.items()})
        return cls(shape, t["embed_tokens"], norms, linears, False, False, dev, "fp32", t.get("embed_positions"),
                   reductions=reductions)

    @classmethod
    def from_compressed(cls, model: CompressedModel, device: str = "cpu",
                        reductions: str = "vectorized") -> "ReferenceModel":
        dev = torch.device(device)
        shape = model.shape
        act, act16 = model.recipe.act_bits == 8, model.recipe.act_bits == 16
        tensors = {k: torch.from_numpy(np.asarray(v, np.float32)).to(dev) for k, v in model.tensors.items()}
        linears = {k: Linear(w, act, dev, model.tensors.get(k + ".bias"), act16) for k, w in model.linears.items()}
        linear_bias = {k + ".bias" for k in model.linears}
        norms = {k: v for k, v in tensors.items() if k not in ("embed_tokens", "embed_positions") and k not in linear_bias}
        return cls(shape, tensors["embed_tokens"], norms, linears, act, model.recipe.kv_bits == 8, dev,
                   model.recipe.name, tensors.get("embed_positions"), model.recipe.kv_bits == 16, reductions)

    # ---------------------------------------------------------------- forward
    def new_cache(self, max_len: Optional[int] = None) -> KVCache:
        n = max_len or self.shape.max_context
        if n > self.shape.max_context:
            raise LlmaccelError(_too_long(self.shape, n))
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
        if self.reductions == "sequential":
            p = lm.seq_causal_softmax(scores, pos, k_pos)
            return lm.seq_value_sum(p * s_v.T[:, None, :], v8).reshape(q.shape[0], -1)
        p = lm.causal_softmax(scores, pos, k_pos)
        pv = p * s_v.T[:, None, :]
        return torch.einsum("hqk,khd->qhd", pv, v8).reshape(q.shape[0], -1)

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        a = self.shape.arch
        norm = lm.seq_norm if self.reductions == "sequential" else lm.norm
        return norm(x, a.norm.kind, self.norms[name], self.norms.get(name + ".bias"), self.shape.norm_eps)

    def _mlp(self, h: torch.Tensor, i: int) -> torch.Tensor:
        a = self.shape.arch
        L = lambda leaf: self.linears[f"layers.{i}.{a.linear_keys[leaf]}"]
        act = lm.seq_activation if self.reductions == "sequential" else lm.activation
        if a.gated:
            hidden = act(a.activation, L("gate_proj")(h)) * L("up_proj")(h)
        else:
            hidden = act(a.activation, L("up_proj")(h))
        return L("down_proj")(hidden)

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits [T, vocab] for ``ids`` [T] appended after the cache's tokens (prefill or decode)."""
        s = self.shape
        a = s.arch
        t = ids.shape[0]
        if t == 0:
            raise LlmaccelError("input_ids is empty; at least one token is required")
        if cache.length + t > s.max_context:
            raise LlmaccelError(_too_long(s, cache.length + t))
        if cache.length + t > cache.max_len:
            raise LlmaccelError(f"sequence length {cache.length + t} exceeds the KV cache's max_len {cache.max_len}")
        pos = torch.arange(cache.length, cache.length + t, device=self.device)
        x = self.embed[ids.to(self.device)]
        if a.positions == "learned":     # learned positions added to the (FP16-valued) embedding, in FP32
            x = x + self.positions[pos]
        else:
            cos, sin = lm.rope_cos_sin(s, pos)
        for i in range(s.num_layers):
            L = lambda leaf: self.linears[f"layers.{i}.{a.linear_keys[leaf]}"]
            h = self._norm(x, f"layers.{i}.input_layernorm")
            q = L("q_proj")(h).view(t, s.num_heads, s.head_dim)
            k = L("k_proj")(h).view(t, s.num_kv_heads, s.head_dim)
            v = L("v_proj")(h).view(t, s.num_kv_heads, s.head_dim)
            if a.positions == "rope":
                q, k = lm.apply_rope(q, cos, sin), lm.apply_rope(k, cos, sin)
            sl = slice(cache.length, cache.length + t)
            if self.kv_int8:
                cache.k[i][sl], cache.k_scale[i][sl] = quantize_per_row(k)
                cache.v[i][sl], cache.v_scale[i][sl] = quantize_per_row(v)
            elif self.kv_fp16:
                cache.k[i][sl], cache.v[i][sl] = k.half().float(), v.half().float()
            else:
                cache.k[i][sl], cache.v[i][sl] = k, v
            attn = self._attention(q, i, cache, pos)
            x = x + L("o_proj")(attn)
            x = x + self._mlp(self._norm(x, f"layers.{i}.post_attention_layernorm"), i)
        cache.length += t
        return self.linears["lm_head"](self._norm(x, "norm"))

    def prefill(self, ids: list[int] | torch.Tensor, max_len: Optional[int] = None) -> tuple[torch.Tensor, KVCache]:
        cache = self.new_cache(max_len)
        return self.forward(torch.as_tensor(ids, dtype=torch.long), cache), cache

    def greedy_with_logits(self, prompt: list[int], max_new_tokens: int) -> tuple[list[int], list[np.ndarray]]:
        """Greedy tokens and the FP32 logits each was taken from (ties to the lowest id, as argmax): what a
        run's tokens and per-step logits are checked against."""
        toks: list[int] = []
        rows: list[np.ndarray] = []
        with torch.no_grad():
            logits, cache = self.prefill([int(t) for t in prompt], len(prompt) + max_new_tokens)
            for i in range(max_new_tokens):
                rows.append(logits[-1].float().cpu().numpy().copy())
                toks.append(int(np.argmax(rows[-1])))
                if i < max_new_tokens - 1:
                    logits = self.forward(torch.tensor([toks[-1]]), cache)
        return toks, rows

    def generate_greedy(self, prompt: list[int], max_new_tokens: int) -> Iterator[int]:
        """Stream greedy tokens (ties go to the lowest id, as torch.argmax does)."""
        logits, cache = self.prefill(prompt, len(prompt) + max_new_tokens)
        for _ in range(max_new_tokens):
            tok = int(torch.argmax(logits[-1]))
            yield tok
            if cache.length >= cache.max_len:
                return
            logits = self.forward(torch.tensor([tok]), cache)


def _too_long(spec: lm.ModelSpec, n: int) -> str:
    why = (f"the sliding window of {spec.sliding_window} positions (windowed attention is not implemented)"
           if spec.sliding_window else f"max_position_embeddings={spec.max_position_embeddings}")
    return f"sequence length {n} exceeds {why}; allowed: at most {spec.max_context} positions"
