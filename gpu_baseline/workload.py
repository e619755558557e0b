"""Bytes and FLOPs of a Llama forward pass on a GPU, from the same formats the FPGA side compiles.

Why here: the GPU performance model must charge the GPU for exactly the
weights the FPGA reads, so a comparison of the two differs in the machine,
not in the bookkeeping. A quantized recipe's linears therefore take their
bytes from ``mapping.compiler.formats_from_recipe`` (``LayerFormat.total_bytes``:
packed codes, N:M indices, FP16 scales and uint8 zeros, per
``sparse_dsp.packed_format``), and the INT8 KV cache its row size from
``mapping.tiling.kv_row_bytes`` (INT8 head_dim values plus one FP32 scale per
token and KV head, docs/numerics.md section 4). No 64-byte line padding: that
is the FPGA ISA's HBM addressing, and a GPU kernel reads the packed arrays
contiguously.

``fp16`` is the dense baseline GPU users run: FP16 weights, FP16
activations, FP16 KV cache, no quantization. A mapping recipe whose weights
stay floating point (``fp32``, ``2:4-magnitude``, ``2:4-wanda``) runs its
kept weights as FP16 on the GPU (nobody serves FP32 weights there), with
``log2(M)``-bit in-block indices per kept weight for N:M (the 2-bit metadata
of NVIDIA's 2:4 sparse tensor cores is the same size); :class:`GpuWorkload`
records that in ``notes``.

What is counted (batch 1):

* decode step at context ``c`` (the new token included): every linear's
  weights, the norm weights, one embedding row, ``c`` tokens of K and V read
  and one written;
* prefill of ``P`` tokens: the weights once, each linear's input read and
  output written (activations between kernels go through HBM), ``P`` tokens
  of K/V written and read once, the LM head for the last token only;
* FLOPs: 2 per MAC of the linears (dense MACs: N:M saves bytes here, not
  FLOPs, since tensor cores run the decoded tile dense; 2:4 sparse tensor
  cores are not modelled), attention 4 * q_dim * context per token and layer
  (QK^T and PV), causal in prefill.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from llmaccel.mapping.compiler import formats_from_recipe
from llmaccel.mapping.recipe import Recipe, get_recipe
from llmaccel.mapping.tiling import kv_row_bytes
from llmaccel.simulator.specs.model import ModelSpec

FP16_BASELINE = "fp16"
FP16_BYTES = 2
FP32_BYTES = 4


@dataclass(frozen=True)
class GpuWorkload:
    """Per-token traffic and work of one model under one recipe, on any GPU."""

    model: str
    recipe: str
    linear_weight_bytes: float      # all decoder-layer linears, as stored
    lm_head_bytes: float
    norm_bytes: float               # RMSNorm weights of every layer and the final norm
    embedding_bytes: float          # the whole FP16 table (resident; one row read per token)
    embedding_row_bytes: float
    kv_bytes_per_token: float       # K and V of every layer for one token, scales included
    linear_macs_per_token: int      # dense MACs of the decoder-layer linears
    lm_head_macs: int
    attn_flops_per_ctx_token: int   # attention FLOPs per token per context position, all layers
    act_bytes: int                  # bytes per activation element read by a linear (1 INT8, 2 FP16)
    linear_io_elems_per_token: int  # sum over linears of (in_features + out_features)
    int8_activations: bool
    notes: tuple[str, ...] = ()

    @property
    def streamed_weight_bytes(self) -> float:
        """Weights read by every decode step: linears, LM head, norms, one embedding row."""
        return self.linear_weight_bytes + self.lm_head_bytes + self.norm_bytes + self.embedding_row_bytes

    @property
    def resident_weight_bytes(self) -> float:
        """Weights held in GPU memory: linears, LM head, norms, the whole embedding table."""
        return self.linear_weight_bytes + self.lm_head_bytes + self.norm_bytes + self.embedding_bytes

    # ----- decode ---------------------------------------------------------------------------------
    def decode_bytes(self, context: float) -> float:
        """Bytes of one decode step attending ``context`` tokens (itself included)."""
        return self.streamed_weight_bytes + self.kv_bytes_per_token * (context + 1)

    def decode_flops(self, context: float) -> float:
        return 2.0 * (self.linear_macs_per_token + self.lm_head_macs) + self.attn_flops_per_ctx_token * context

    @staticmethod
    def mean_decode_context(prefill: int, decode: int) -> float:
        """Mean context of ``decode`` steps after a ``prefill``-token prompt: P+1, ..., P+D."""
        return prefill + (decode + 1) / 2.0

    # ----- prefill --------------------------------------------------------------------------------
    def prefill_bytes(self, prefill: int) -> float:
        io = prefill * self.linear_io_elems_per_token * self.act_bytes
        return (self.linear_weight_bytes + self.lm_head_bytes + self.norm_bytes
                + prefill * self.embedding_row_bytes + 2 * prefill * self.kv_bytes_per_token + io)

    def prefill_linear_flops(self, prefill: int) -> float:
        return 2.0 * (prefill * self.linear_macs_per_token + self.lm_head_macs)

    def prefill_attn_flops(self, prefill: int) -> float:
        """Causal attention: query i attends i keys, sum over i = P(P+1)/2."""
        return self.attn_flops_per_ctx_token * prefill * (prefill + 1) / 2.0

    def resident_bytes(self, context: int) -> float:
        """GPU memory the model needs at ``context`` tokens: weights plus that many tokens of KV cache."""
        return self.resident_weight_bytes + self.kv_bytes_per_token * context


def resolve_recipe(recipe: str) -> Optional[Recipe]:
    """None for the dense FP16 baseline, else the mapping recipe (a bad name raises RecipeError)."""
    return None if recipe == FP16_BASELINE else get_recipe(recipe)


def gpu_workload(spec: ModelSpec, recipe: str) -> GpuWorkload:
    """The workload of ``spec`` under ``recipe`` ('fp16' or any mapping recipe name or YAML)."""
    rec = resolve_recipe(recipe)
    d, layers = spec.hidden_size, spec.num_layers
    shapes = spec.linear_shapes()
    macs = layers * sum(o * k for _, o, k in shapes)
    io = layers * sum(o + k for _, o, k in shapes)
    head_macs = spec.vocab_size * d
    attn = layers * 4 * spec.q_dim
    emb = spec.vocab_size * d * FP16_BYTES
    notes: list[str] = []
    common = dict(model=spec.name, recipe=recipe, embedding_bytes=float(emb),
                  embedding_row_bytes=float(d * FP16_BYTES), linear_macs_per_token=macs, lm_head_macs=head_macs,
                  attn_flops_per_ctx_token=attn, linear_io_elems_per_token=io)
    norm_elems = (2 * layers + 1) * d
    if rec is None:
        return GpuWorkload(linear_weight_bytes=float(macs * FP16_BYTES), lm_head_bytes=float(head_macs * FP16_BYTES),
                           norm_bytes=float(norm_elems * FP16_BYTES),
                           kv_bytes_per_token=float(2 * layers * spec.kv_dim * FP16_BYTES),
                           act_bytes=FP16_BYTES, int8_activations=False, **common)
    if rec.quantized:
        fm = formats_from_recipe(spec, rec)
        linear = float(sum(f.total_bytes for lay in fm.layers for _, f in lay))
        head = float(fm.lm_head.total_bytes)
    else:
        # FP weights: FP16 kept values (+ log2(M)-bit indices per kept value under N:M).
        linear = 0.0
        for i in range(layers):
            for leaf, o, k in shapes:
                rule = rec.rule_for(leaf)
                n, m = rule.nm or (1, 1)
                kept = o * k * n // m
                idx_bits = 0 if rule.nm is None else int(m).bit_length() - 1
                linear += kept * FP16_BYTES + kept * idx_bits / 8.0
        head = float(head_macs * FP16_BYTES)
        notes.append(f"recipe '{rec.name}' keeps floating-point weights: modelled as FP16 on the GPU")
    if rec.kv_bits == 8:
        kv = float(2 * layers * spec.num_kv_heads * kv_row_bytes(spec.head_dim))
    else:
        kv = float(2 * layers * spec.kv_dim * FP16_BYTES)
    int8_act = rec.act_bits == 8
    return GpuWorkload(linear_weight_bytes=linear, lm_head_bytes=head,
                       norm_bytes=float(norm_elems * (FP32_BYTES if rec.quantized else FP16_BYTES)),
                       kv_bytes_per_token=kv, act_bytes=1 if int8_act else FP16_BYTES,
                       int8_activations=int8_act, notes=tuple(notes), **common)
