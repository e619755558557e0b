"""The whole compressed model of any supported family on a GPU through the Triton kernels: prefill, decode
with the INT8 KV cache.

What the block computes is read from the family's :class:`simulator.families.Architecture`, as the
reference does: RMSNorm or LayerNorm (with bias), RoPE or learned positions, a gated (SwiGLU) or
plain MLP with SiLU, GELU (tanh or erf) or ReLU, and linear biases (GPT-2, OPT; Qwen2's q/k/v).
:func:`check_family` refuses, by field, anything else.

The arithmetic is the numerics contract (docs/numerics.md), the same as
:mod:`gpu_baseline.reference`: every linear and the attention run as Triton
kernels reading the packed format (a bias added in FP32 after the rescale, in the
linear's epilogue), and the element-wise steps (embedding + learned positions,
residual add, the norms, RoPE, the activations, the INT8 quantizers) are fused into
Triton kernels that round as the reference's torch ops do. The only differences from
the reference are the order of the float reductions (the norms' means, the
attention's softmax and value sums), ``exp``/``erf`` (the activations, softmax) and
the GELU-tanh form, which the contract bounds; greedy tokens are equal on the bundled
model and on tiny checkpoints of every family (tests/gpu_baseline/test_triton_families.py).

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

from llmaccel.gpu_baseline.triton.activation import KERNEL_ACTIVATIONS, act_prepare
from llmaccel.gpu_baseline.triton.attention import int8_attention
from llmaccel.gpu_baseline.triton.embed import embed_rows
from llmaccel.gpu_baseline.triton.formats import DevicePackedLinear, KernelFormatError, concat_rows, same_format
from llmaccel.gpu_baseline.triton.linear import GemvConfig, fp16_linear, int8_linear
from llmaccel.gpu_baseline.triton.norm import NORM_KINDS, add_norm_prepare
from llmaccel.gpu_baseline.triton.quantize import quantize_rows, rope_quantize
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
    """A compressed model resident on one device, with a static INT8 KV cache of ``max_len`` positions.

    ``linears`` carry their biases; ``norms`` by canonical name (``layers.{i}.input_layernorm``, ...,
    ``norm``, with ``.bias`` entries for LayerNorm); ``positions``: the learned position table
    fp32 [max_position_embeddings, hidden] (row p = position p) or None for RoPE families.
    """

    def __init__(self, shape: lm.ModelSpec, linears: dict[str, DevicePackedLinear], embed: torch.Tensor,
                 norms: dict[str, torch.Tensor], device: torch.device, max_len: int,
                 activations: Activations = "int8", gemv: Optional[GemvConfig] = None, name: str = "",
                 positions: Optional[torch.Tensor] = None):
        if activations not in ("int8", "fp16"):
            raise LlmaccelError(f"activations='{activations}' is invalid; allowed: int8, fp16")
        if not 1 <= max_len <= shape.max_context:
            raise LlmaccelError(f"max_len={max_len} is invalid; allowed: 1..{shape.max_context} "
                                f"({_context_reason(shape)})")
        check_family(shape)
        a = shape.arch
        _check_tensors(shape, linears, norms, positions)
        self.shape, self.embed, self.norms, self.positions = shape, embed, norms, positions
        self.groups = _fuse(linears, shape)
        self.device, self.max_len, self.activations, self.gemv, self.name = device, max_len, activations, gemv, name
        self.prepared = "int8" if activations == "int8" else "fp16"
        # RoPE tables for every cache position, on the device: forward() gathers rows by device index,
        # so it never reads a position on the host (CUDA-graph safe)
        self.cos_table = self.sin_table = None
        if a.positions == "rope":
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
        max_len = max_len or shape.max_context
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
        embed, pos = cm.tensors["embed_tokens"], cm.tensors.get("embed_positions")
        biases = {k: cm.tensors[k + ".bias"] for k in packed if k + ".bias" in cm.tensors}
        need = MemoryNeed(sum(p.fmt.total_bytes for p in packed.values()) + 4 * sum(b.size for b in biases.values()),
                          int(embed.size) * 2 + (0 if pos is None else int(pos.size) * 4),
                          kv_cache_bytes(shape, max_len), WORKSPACE_MARGIN_BYTES)
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            check_fits(need, free, str(device), max_len)
        linears = {k: DevicePackedLinear.from_packed(p, device, biases.get(k)) for k, p in packed.items()}
        f32 = lambda v: torch.from_numpy(np.asarray(v, np.float32)).to(device)
        norms = {k: f32(v) for k, v in cm.tensors.items()
                 if k not in ("embed_tokens", "embed_positions") and k.removesuffix(".bias") not in packed}
        emb = torch.from_numpy(np.asarray(embed, np.float16)).to(device)
        return cls(shape, linears, emb, norms, device, max_len, activations, gemv, cm.recipe.name,
                   None if pos is None else f32(pos))

    # ---------------------------------------------------------------- forward
    def _prepare(self, x: torch.Tensor):
        """A linear input as the kernels take it: INT8 codes and scales, or FP16 (weight-only)."""
        if self.activations == "int8":
            return quantize_rows(x.contiguous())
        return x.clamp(-FP16_MAX, FP16_MAX).to(torch.float16).contiguous()

    def _norm_prepare(self, x: torch.Tensor, res: Optional[torch.Tensor], key: str):
        """(x + res, the next linear's prepared input norm(x + res)) in one kernel."""
        return add_norm_prepare(x, res, self.norms[key], self.norms.get(key + ".bias"), self.shape.norm_eps,
                                self.shape.arch.norm.kind, self.prepared)

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
        s, a = self.shape, self.shape.arch
        t = ids.shape[0]
        cos = sin = None
        if a.positions == "rope":
            pos = start.to(torch.long) + torch.arange(t, device=self.device)
            cos, sin = self.cos_table[pos], self.sin_table[pos]
        x = embed_rows(ids, self.embed, self.positions, start)   # learned positions added here
        res = None          # the last sublayer's output, added to x by the next norm kernel
        for i in range(s.num_layers):
            x, hp = self._norm_prepare(x, res, f"layers.{i}.input_layernorm")
            q, k, v = self._run(f"{i}.qkv", hp)
            q = q.reshape(t, s.num_heads, s.head_dim).contiguous()
            k = k.reshape(t, s.num_kv_heads, s.head_dim).contiguous()
            v = v.reshape(t, s.num_kv_heads, s.head_dim).contiguous()
            # RoPE (if the family has it) + INT8 per (token, head) in one kernel each; K and V land in the
            # cache at start..start+t-1
            rope_quantize(k, cos, sin, self.k8[i], self.k_scale[i], start)
            rope_quantize(v, None, None, self.v8[i], self.v_scale[i], start)
            q8, s_q = rope_quantize(q, cos, sin)
            attn = int8_attention(q8, s_q, self.k8[i], self.k_scale[i], self.v8[i], self.v_scale[i], start)
            o = self._run(f"{i}.o", self._prepare(attn.reshape(t, -1)))[0]
            x, hp = self._norm_prepare(x, o, f"layers.{i}.post_attention_layernorm")
            mlp_in = self._run(f"{i}.gate_up", hp)
            gate, up = mlp_in if a.gated else (None, mlp_in[0])
            res = self._run(f"{i}.down", act_prepare(gate, up, a.activation, self.prepared))[0]
        x, hp = self._norm_prepare(x, res, "norm")
        return self._run("lm_head", hp)[0]

    def _start(self) -> torch.Tensor:
        return torch.tensor([self.length], dtype=torch.int32, device=self.device)

    def _check_ids(self, ids: list[int]) -> None:
        """Token ids are checked on the host: the embedding kernel reads rows unchecked."""
        bad = [i for i in ids if not 0 <= int(i) < self.shape.vocab_size]
        if bad:
            raise LlmaccelError(f"token id {bad[0]} is out of range; allowed: 0..{self.shape.vocab_size - 1}")

    @torch.no_grad()
    def prefill(self, ids: list[int]) -> torch.Tensor:
        """Start a new sequence: logits [T, vocab] of the prompt."""
        if not 1 <= len(ids) <= self.max_len:
            raise LlmaccelError(f"prompt of {len(ids)} tokens; allowed: 1..max_len={self.max_len}")
        self._check_ids(ids)
        self.length = 0
        logits = self.forward(torch.tensor(ids, dtype=torch.long, device=self.device), self._start())
        self.length = len(ids)
        return logits

    @torch.no_grad()
    def decode(self, token: int) -> torch.Tensor:
        """Append one token: logits [1, vocab]."""
        self._check_room()
        self._check_ids([token])
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
        """Bytes a decode step streams for the linears: packed weights plus FP32 biases."""
        return sum(layer.nbytes + (0 if layer.bias is None else 4 * layer.out_features)
                   for group in self.groups.values() for layer, _ in group)


# the family's input groups (Architecture.groups) under the names forward() uses
GROUP_NAMES = {"attn_in": "qkv", "attn_out": "o", "mlp_in": "gate_up", "mlp_out": "down"}
# what the kernels implement, by Architecture field (the values the field may take that they do not
# are refused by check_family, naming the field)
KERNEL_POSITIONS = ("rope", "learned")
KERNEL_DATAFLOWS = ("pre_norm_residual",)


def check_family(spec: lm.ModelSpec) -> None:
    """Refuse, by field and allowed values, an architecture the kernels do not implement.

    Implemented: RMSNorm and LayerNorm, SiLU / GELU (tanh, erf) / ReLU, gated and plain MLPs, RoPE
    and learned positions, linear biases anywhere, the pre-norm residual block, and head_dim a power
    of two >= 16 (the attention and RoPE kernels tile one head).
    """
    a = spec.arch
    wrong = [f"{what}={got!r} (allowed: {list(allowed)})" for what, got, allowed in (
        ("norm", a.norm.kind, NORM_KINDS), ("activation", a.activation, KERNEL_ACTIVATIONS),
        ("positions", a.positions, KERNEL_POSITIONS), ("dataflow", a.dataflow, KERNEL_DATAFLOWS))
        if got not in allowed]
    d = spec.head_dim
    if d < 16 or d & (d - 1):
        wrong.append(f"head_dim={d} (allowed: a power of two >= 16)")
    if wrong:
        raise KernelFormatError(f"family '{spec.family}' is not supported by the gpu backend's Triton kernels: "
                                + ", ".join(wrong))


def _context_reason(spec: lm.ModelSpec) -> str:
    if spec.sliding_window and spec.sliding_window < spec.max_position_embeddings:
        return f"the sliding window of {spec.sliding_window} positions; windowed attention is not implemented"
    return "max_position_embeddings"


def _check_tensors(spec: lm.ModelSpec, linears: dict[str, DevicePackedLinear], norms: dict[str, torch.Tensor],
                   positions: Optional[torch.Tensor]) -> None:
    """The tensors the architecture says exist, and no bias it does not have (never run a model wrongly)."""
    a = spec.arch
    names = [f"layers.{i}.{n}" for i in range(spec.num_layers) for n in ("input_layernorm", "post_attention_layernorm")]
    need_bias = a.norm.has_bias
    for n in names + ["norm"]:
        if n not in norms or ((n + ".bias") in norms) != need_bias:
            raise KernelFormatError(f"norm '{n}' of family '{spec.family}' ({a.norm.kind}) needs "
                                    f"{'a weight and a bias' if need_bias else 'a weight and no bias'}")
    for i in range(spec.num_layers):
        for leaf, key in a.linear_keys.items():
            layer = linears[f"layers.{i}.{key}"]
            if (layer.bias is not None) != (leaf in a.biased):
                raise KernelFormatError(f"layer 'layers.{i}.{key}' of family '{spec.family}' "
                                        f"{'needs' if leaf in a.biased else 'has no'} a bias")
    if linears["lm_head"].bias is not None:
        raise KernelFormatError("the lm_head has a bias; no supported family has one")
    if (positions is not None) != (a.positions == "learned"):
        raise KernelFormatError(f"family '{spec.family}' has positions={a.positions!r}: it "
                                f"{'needs' if a.positions == 'learned' else 'takes no'} learned position embeddings")
    if positions is not None and (positions.dtype != torch.float32
                                  or tuple(positions.shape) != (spec.max_position_embeddings, spec.hidden_size)):
        raise KernelFormatError(f"learned positions must be float32[{spec.max_position_embeddings}, "
                                f"{spec.hidden_size}], got {positions.dtype}{list(positions.shape)}")


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
