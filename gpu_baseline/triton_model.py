"""The whole compressed Llama-layout model on a GPU through the Triton kernels: prefill, decode with the INT8 KV cache.

The arithmetic is the numerics contract (docs/numerics.md), the same as
:mod:`gpu_baseline.reference`: every linear and the attention run as Triton
kernels reading the packed format, and the element-wise steps (residual add,
RoPE, SiLU, the INT8 quantizers) are fused into Triton kernels that round exactly as
the reference's torch ops do. The only differences from the reference are the
order of the float reductions (RMSNorm's mean of squares, the attention's
softmax and value sums) and ``exp`` (SiLU, softmax), which the contract bounds; greedy tokens are equal on
the bundled model.

Launches are what a batch-1 decode step pays for, so each shared input is
quantized once (one Triton kernel), the residual add, RMSNorm and the next
quantization are one kernel, RoPE, INT8 quantization and the KV-cache write
are one kernel per q/k/v, and q/k/v and gate/up run as one GEMV
over their stacked rows when their formats are equal (rows are independent,
so the stacked layer is still the packed format and the outputs are the
same bits).

The decode step reads its position and token from device tensors, so it can
be captured once as a CUDA graph and replayed at every position
(:class:`DecodeGraph`). With ``TRITON_INTERPRET=1`` the same code runs on CPU
tensors (how CI checks it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Union

import numpy as np
import torch

from llmaccel.gpu_baseline.triton.attention import int8_attention
from llmaccel.gpu_baseline.triton.formats import DevicePackedLinear, KernelFormatError, concat_rows, same_format
from llmaccel.gpu_baseline.triton.linear import GemvConfig, fp16_linear, int8_linear
from llmaccel.gpu_baseline.triton.quantize import add_rmsnorm_prepare, quantize_rows, rope_quantize, silu_mul_prepare
from llmaccel.mapping import layer_math as lm
from llmaccel.mapping.compress import CompressedModel
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import PackedLinear

Activations = Literal["int8", "fp16"]
FP16_MAX = 65504.0
# Activations, logits and kernel scratch besides weights and KV: an estimate
# (a few hidden-sized vectors per token plus one vocab row per token), with a
# fixed margin for the CUDA context's allocator slack.
WORKSPACE_MARGIN_BYTES = 512 * 2 ** 20


class ModelTooLargeError(LlmaccelError):
    """The compressed model and its KV cache do not fit the GPU's free memory."""


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes the model needs on the device, by part (the packed sizes the kernels stream)."""

    weights: int
    embed: int
    kv_cache: int
    workspace: int

    @property
    def total(self) -> int:
        return self.weights + self.embed + self.kv_cache + self.workspace


def check_fits(need: MemoryNeed, free_bytes: int, device: str, max_len: int) -> None:
    """One ModelTooLargeError naming what does not fit, by how much, and what would help."""
    if need.total <= free_bytes:
        return
    gib = lambda b: f"{b / 2 ** 30:.2f} GiB"
    raise ModelTooLargeError(
        f"the model does not fit {device}: it needs {gib(need.total)} (packed weights {gib(need.weights)}, "
        f"embeddings {gib(need.embed)}, INT8 KV cache at max_len={max_len} {gib(need.kv_cache)}, workspace "
        f"{gib(need.workspace)}) but {gib(free_bytes)} are free; allowed: a model, recipe and max_len whose "
        f"total fits (a lower-bit recipe or a smaller max_len)")


def kv_cache_bytes(shape: lm.ModelSpec, max_len: int) -> int:
    """INT8 K and V per (layer, position, kv head, dim), plus one FP32 scale per (layer, position, kv head) each."""
    per_pos = shape.num_kv_heads * (shape.head_dim + 4)
    return 2 * shape.num_layers * max_len * per_pos


def _packed(cm: CompressedModel, key: str) -> PackedLinear:
    w = cm.linears[key]
    if not isinstance(w, PackedLinear):
        raise KernelFormatError(
            f"layer '{key}' of recipe '{cm.recipe.name}' is FP32, not packed; the gpu backend runs packed layers "
            f"only; allowed: recipes that quantize every linear and the LM head (e.g. w8, w4-g128-rtn, 2:4+w4, "
            f"mixed-3.5)")
    return w


class TritonModel:
    """A compressed model resident on one device, with a static INT8 KV cache of ``max_len`` positions."""

    def __init__(self, shape: lm.ModelSpec, linears: dict[str, DevicePackedLinear], embed: torch.Tensor,
                 norms: dict[str, torch.Tensor], device: torch.device, max_len: int,
                 activations: Activations = "int8", gemv: Optional[GemvConfig] = None, name: str = ""):
        if activations not in ("int8", "fp16"):
            raise LlmaccelError(f"activations='{activations}' is invalid; allowed: int8, fp16")
        if not 1 <= max_len <= shape.max_position_embeddings:
            raise LlmaccelError(f"max_len={max_len} is invalid; allowed: 1..{shape.max_position_embeddings}")
        self.shape, self.embed, self.norms = shape, embed, norms
        check_family(shape)
        self.groups = _fuse(linears, shape)
        self.device, self.max_len, self.activations, self.gemv, self.name = device, max_len, activations, gemv, name
        # RoPE tables for every cache position, on the device: forward() gathers rows by device index,
        # so it never reads a position on the host (CUDA-graph safe)
        cos, sin = lm.rope_cos_sin(shape, torch.arange(max_len))
        self.cos_table, self.sin_table = cos.to(device), sin.to(device)
        s = shape
        kv = (s.num_layers, max_len, s.num_kv_heads, s.head_dim)
        self.k8 = torch.zeros(kv, dtype=torch.int8, device=device)
        self.v8 = torch.zeros(kv, dtype=torch.int8, device=device)
        self.k_scale = torch.zeros(kv[:3], dtype=torch.float32, device=device)
        self.v_scale = torch.zeros(kv[:3], dtype=torch.float32, device=device)
        self.length = 0

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_compressed(cls, cm: CompressedModel, device: Union[str, torch.device], max_len: Optional[int] = None,
                        activations: Activations = "int8", gemv: Optional[GemvConfig] = None) -> "TritonModel":
        """Move a compressed model onto ``device``; checks every format and (on CUDA) the free memory first."""
        device = torch.device(device)
        shape = cm.shape
        check_family(shape)
        max_len = max_len or shape.max_position_embeddings
        if cm.recipe.kv_bits != 8:
            raise KernelFormatError(f"recipe '{cm.recipe.name}' keeps a {cm.recipe.kv_bits or 32}-bit KV cache; the "
                                    f"gpu backend's attention reads the INT8 KV cache; allowed: recipes with kv_bits=8")
        if activations == "int8" and cm.recipe.act_bits != 8:
            raise KernelFormatError(f"recipe '{cm.recipe.name}' has act_bits={cm.recipe.act_bits}; INT8 activations "
                                    f"need act_bits=8 (or run activations='fp16', weight-only)")
        keys = [f"layers.{i}.{p}" for i in range(shape.num_layers) for p in shape.arch.linear_keys.values()] + ["lm_head"]
        packed = {k: _packed(cm, k) for k in keys}
        from llmaccel.gpu_baseline.triton.formats import KernelFormat
        for k, p in packed.items():
            try:
                KernelFormat.of(p.fmt)
            except KernelFormatError as exc:
                raise KernelFormatError(f"layer '{k}': {exc}") from None
        embed = cm.tensors["embed_tokens"]
        need = MemoryNeed(sum(p.fmt.total_bytes for p in packed.values()), int(embed.size) * 2,
                          kv_cache_bytes(shape, max_len), WORKSPACE_MARGIN_BYTES)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            check_fits(need, free, str(device), max_len)
        linears = {k: DevicePackedLinear.from_packed(p, device) for k, p in packed.items()}
        norms = {k: torch.from_numpy(np.asarray(v, np.float32)).to(device) for k, v in cm.tensors.items()
                 if k != "embed_tokens"}
        emb = torch.from_numpy(np.asarray(embed, np.float16)).to(device)
        return cls(shape, linears, emb, norms, device, max_len, activations, gemv, cm.recipe.name)

    # ---------------------------------------------------------------- forward
    def _prepare(self, x: torch.Tensor):
        """A linear input as the kernels take it: INT8 codes and scales, or FP16 (weight-only)."""
        if self.activations == "int8":
            return quantize_rows(x.contiguous())
        return x.clamp(-FP16_MAX, FP16_MAX).to(torch.float16).contiguous()

    def _norm_prepare(self, x: torch.Tensor, res: Optional[torch.Tensor], key: str):
        """(x + res, the next linear's prepared input rmsnorm(x + res)) in one kernel."""
        return add_rmsnorm_prepare(x, res, self.norms[key], self.shape.rms_norm_eps, self.activations == "int8")

    def _run(self, group: str, prepared) -> list[torch.Tensor]:
        """Outputs of a group of linears sharing one input, in the group's order."""
        outs = []
        for layer, sizes in self.groups[group]:
            if self.activations == "int8":
                y = int8_linear(layer, *prepared, gemv=self.gemv)
            else:
                y = fp16_linear(layer, prepared, gemv=self.gemv)
            outs += list(torch.split(y, sizes, dim=1)) if len(sizes) > 1 else [y]
        return outs

    def forward(self, ids: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """Logits [T, vocab] of ``ids`` (long [T], device) placed after the first ``start`` (int32 [1], device)
        cache positions. Does not read ``start`` on the host, so it can be captured in a CUDA graph."""
        s = self.shape
        t = ids.shape[0]
        pos = start.to(torch.long) + torch.arange(t, device=self.device)
        cos, sin = self.cos_table[pos], self.sin_table[pos]
        x = self.embed[ids].to(torch.float32)
        res = None          # the last sublayer's output, added to x by the next norm kernel
        for i in range(s.num_layers):
            x, hp = self._norm_prepare(x, res, f"layers.{i}.input_layernorm")
            q, k, v = self._run(f"{i}.qkv", hp)
            q = q.reshape(t, s.num_heads, s.head_dim).contiguous()
            k = k.reshape(t, s.num_kv_heads, s.head_dim).contiguous()
            v = v.reshape(t, s.num_kv_heads, s.head_dim).contiguous()
            # RoPE + INT8 per (token, head) in one kernel each; K and V land in the cache at start..start+t-1
            rope_quantize(k, cos, sin, self.k8[i], self.k_scale[i], start)
            rope_quantize(v, None, None, self.v8[i], self.v_scale[i], start)
            q8, s_q = rope_quantize(q, cos, sin)
            attn = int8_attention(q8, s_q, self.k8[i], self.k_scale[i], self.v8[i], self.v_scale[i], start)
            o = self._run(f"{i}.o", self._prepare(attn.reshape(t, -1)))[0]
            x, hp = self._norm_prepare(x, o, f"layers.{i}.post_attention_layernorm")
            gate, up = self._run(f"{i}.gate_up", hp)
            res = self._run(f"{i}.down", silu_mul_prepare(gate, up, self.activations == "int8"))[0]
        x, hp = self._norm_prepare(x, res, "norm")
        return self._run("lm_head", hp)[0]

    def _start(self) -> torch.Tensor:
        return torch.tensor([self.length], dtype=torch.int32, device=self.device)

    @torch.no_grad()
    def prefill(self, ids: list[int]) -> torch.Tensor:
        """Start a new sequence: logits [T, vocab] of the prompt."""
        if not 1 <= len(ids) <= self.max_len:
            raise LlmaccelError(f"prompt of {len(ids)} tokens; allowed: 1..max_len={self.max_len}")
        self.length = 0
        logits = self.forward(torch.tensor(ids, dtype=torch.long, device=self.device), self._start())
        self.length = len(ids)
        return logits

    @torch.no_grad()
    def decode(self, token: int) -> torch.Tensor:
        """Append one token: logits [1, vocab]."""
        self._check_room()
        logits = self.forward(torch.tensor([token], dtype=torch.long, device=self.device), self._start())
        self.length += 1
        return logits

    def _check_room(self) -> None:
        if self.length == 0:
            raise LlmaccelError("decode before prefill: start a sequence with prefill(prompt)")
        if self.length >= self.max_len:
            raise LlmaccelError(f"the KV cache is full at max_len={self.max_len}")

    @property
    def weight_bytes(self) -> int:
        return sum(layer.nbytes for group in self.groups.values() for layer, _ in group)


# the family's input groups (Architecture.groups) under the names forward() uses
GROUP_NAMES = {"attn_in": "qkv", "attn_out": "o", "mlp_in": "gate_up", "mlp_out": "down"}


def check_family(spec: lm.ModelSpec) -> None:
    """The fused kernels implement the Llama block (RMSNorm, RoPE, SwiGLU, no biases); refuse the rest by name."""
    a = spec.arch
    wrong = [f"{what}={got!r} (kernels: {want!r})" for what, got, want in (
        ("norm", a.norm.kind, "rmsnorm"), ("activation", a.activation, "silu"), ("gated", a.gated, True),
        ("positions", a.positions, "rope"), ("biases", list(a.biased), [])) if got != want]
    if wrong:
        raise KernelFormatError(f"family '{spec.family}' is not supported by the gpu backend's Triton kernels: "
                                + ", ".join(wrong) + "; allowed: Llama-layout families (llama, mistral)")


def _fuse(linears: dict[str, DevicePackedLinear], spec: lm.ModelSpec) -> dict[str, list]:
    """Per group of linears sharing an input: [(layer, output sizes)], stacked when the formats are equal."""
    linears = dict(linears)
    keys = spec.arch.linear_keys
    groups: dict[str, list] = {"lm_head": [(linears["lm_head"], [linears["lm_head"].out_features])]}
    for i in range(spec.num_layers):
        for group, leaves in spec.arch.groups().items():
            name = GROUP_NAMES[group]
            layers = [linears.pop(f"layers.{i}.{keys[leaf]}") for leaf in leaves]
            if len(layers) > 1 and same_format(layers):
                groups[f"{i}.{name}"] = [(concat_rows(layers), [x.out_features for x in layers])]
            else:
                groups[f"{i}.{name}"] = [(x, [x.out_features]) for x in layers]
    return groups


class DecodeGraph:
    """The decode step of a :class:`TritonModel` captured once as a CUDA graph, replayed at every position."""

    def __init__(self, model: TritonModel, warmup: int = 2):
        if model.device.type != "cuda":
            raise LlmaccelError("CUDA graphs need a CUDA device; this model is on " + str(model.device))
        self.model = model
        self.token = torch.zeros(1, dtype=torch.long, device=model.device)
        self.start = torch.zeros(1, dtype=torch.int32, device=model.device)
        saved = model.length
        # warm up and capture at the last position: a real decode rewrites it before it reads it
        self.start.fill_(model.max_len - 1)
        stream = torch.cuda.Stream(model.device)
        stream.wait_stream(torch.cuda.current_stream(model.device))
        with torch.no_grad(), torch.cuda.stream(stream):
            for _ in range(warmup):      # compile every kernel specialisation before capture
                model.forward(self.token, self.start)
        torch.cuda.current_stream(model.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph):
            self.logits = model.forward(self.token, self.start)
        model.length = saved

    @torch.no_grad()
    def decode(self, token: int) -> torch.Tensor:
        m = self.model
        m._check_room()
        self.token.fill_(token)
        self.start.fill_(m.length)
        self.graph.replay()
        m.length += 1
        return self.logits
