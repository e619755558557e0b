"""Partition and placement: which rows/heads each core owns, and where every tensor lies in HBM.

Every layer's weights are split by output rows over the cores, the KV cache (INT8 rows with an FP32
scale, or FP16 rows: ``ModelFormats.kv_dtype``) by KV head; each
core's share is placed in lockstep over that core's own HBM channels (``mapping.placement``), so
no access crosses a channel. The result is typed (``simulator.compiled.HbmRegion``): what the host
writes where when it loads the model, which the functional engine reads through the LD addresses.
"""
from __future__ import annotations

import math

from llmaccel.mapping import tiling as T
from llmaccel.mapping.compiler.formats import CompileError, ModelFormats
from llmaccel.mapping.placement import HbmPlacement
from llmaccel.simulator.compiled import CoreSlices, HbmRegion
from llmaccel.simulator.isa import LINE_BYTES
from llmaccel.simulator.specs.model import ModelSpec
from llmaccel.simulator.timing_params import HwParams
from llmaccel.sparse_dsp.packed_format import LayerFormat


def split(n: int, parts: int) -> list[int]:
    base, rem = divmod(n, parts)
    return [base + (1 if i < rem else 0) for i in range(parts)]


def hbm_row_bytes(fmt: LayerFormat) -> int:
    """A weight row in HBM, padded to whole 64-byte lines (the ISA addresses lines); an FP16 row is 2 bytes
    per weight (``formats.Fp16Format.row_bytes``)."""
    return -(-fmt.row_bytes // LINE_BYTES) * LINE_BYTES


def vector_lines(elems: int) -> int:
    """Lines of an FP32 vector (norm weights, biases, activations)."""
    return -(-4 * elems // LINE_BYTES)


def norm_block_lines(hidden: int, with_beta: bool) -> int:
    """The norm parameter block: one line holding eps (FP32), gamma, then beta (layernorm)."""
    return 1 + (2 if with_beta else 1) * vector_lines(hidden)


def core_slices(spec: ModelSpec, n_cores: int) -> CoreSlices:
    if spec.num_kv_heads < n_cores:
        raise CompileError(f"design has {n_cores} cores but {spec.name} has {spec.num_kv_heads} KV heads; "
                           f"allowed: cores <= num_kv_heads (attention is split by KV head)")
    kvh = split(spec.num_kv_heads, n_cores)
    return CoreSlices(tuple(kvh), tuple(h * spec.gqa_group_size for h in kvh), tuple(split(spec.hidden_size, n_cores)),
                      tuple(split(spec.intermediate_size, n_cores)), tuple(split(spec.vocab_size, n_cores)))


def linear_rows(sl: CoreSlices, head_dim: int, leaf: str, core: int) -> int:
    return {"q_proj": sl.q_heads[core] * head_dim, "k_proj": sl.kv_heads[core] * head_dim,
            "v_proj": sl.kv_heads[core] * head_dim, "o_proj": sl.hidden_rows[core],
            "gate_proj": sl.ffn_rows[core], "up_proj": sl.ffn_rows[core],
            "down_proj": sl.hidden_rows[core], "lm_head": sl.vocab_rows[core]}[leaf]


NORMS = ("norm_in", "norm_post")
NORM_KEY = {"norm_in": "input_layernorm", "norm_post": "post_attention_layernorm"}


def place(f: ModelFormats, hw: HwParams, sl: CoreSlices, max_len: int) -> tuple[list[HbmRegion], int]:
    """Every tensor's region, and the KV cache bytes; too little HBM is one error.

    Per layer and core: the linears' row slices, their biases (FP32, the core's rows) where the
    family has them, the K and V cache, the two norm parameter blocks; then the LM head, the
    embedding share and the final norm."""
    s = f.spec
    arch = s.arch
    layernorm = arch.norm.kind == "layernorm"
    cpc = hw.channels_per_core
    total_w = f.weight_bytes
    cap = hw.hbm_capacity_bytes
    if total_w > cap:
        raise CompileError(f"{s.name} weights need {total_w / 2**30:.2f} GiB with {f.source}; the device "
                           f"HBM holds {cap / 2**30:.2f} GiB: weights exceed HBM capacity (use fewer bits, "
                           "more sparsity, or a device with more HBM"
                           + (", e.g. design dfx-u55c (16 GB) for FP16" if f.fp16_weights else "") + ")")
    pl = HbmPlacement(hw.hbm_channels, hw.hbm_channel_bytes, hw.n_cores)
    tpc = math.ceil(max_len / cpc)
    kvrb = T.kv_row_bytes(s.head_dim, f.kv_dtype)
    out: list[HbmRegion] = []
    hd = s.head_dim

    def weight(name: str, c: int, key: str, leaf: str, fmt: LayerFormat, layer: int) -> None:
        rows = linear_rows(sl, hd, leaf, c)
        rpc = math.ceil(rows / cpc)
        r = pl.allocate(name, c, rpc * hbm_row_bytes(fmt))
        per_core = [linear_rows(sl, hd, leaf, j) for j in range(hw.n_cores)]
        out.append(HbmRegion(name, "weight", c, r.channel0, r.n_channels, r.addr, r.bytes_per_channel, layer, key,
                             sum(per_core[:c]), rows, rpc, hbm_row_bytes(fmt)))

    def norm(name: str, c: int, key: str, layer: int) -> None:
        # the block's lines are spread over the core's channels (channel ch holds the ch-th share), so its
        # LDs stream in parallel instead of delaying one channel's weight stream
        r = pl.allocate(name, c, -(-norm_block_lines(s.hidden_size, layernorm) // cpc) * LINE_BYTES)
        out.append(HbmRegion(name, "norm", c, r.channel0, r.n_channels, r.addr, r.bytes_per_channel, layer, key,
                             0, s.hidden_size))

    def bias(name: str, c: int, key: str, leaf: str, layer: int) -> None:
        rows = linear_rows(sl, hd, leaf, c)
        per_core = [linear_rows(sl, hd, leaf, j) for j in range(hw.n_cores)]
        r = pl.allocate(name, c, vector_lines(rows) * LINE_BYTES)
        out.append(HbmRegion(name, "bias", c, r.channel0, r.n_channels, r.addr, r.bytes_per_channel, layer, key,
                             sum(per_core[:c]), rows))

    keys = arch.linear_keys
    for i in range(s.num_layers):
        lay = f.layer(i)
        for c in range(hw.n_cores):
            for leaf, fmt in lay.items():
                weight(f"L{i}.{leaf}.c{c}", c, f"layers.{i}.{keys[leaf]}", leaf, fmt, i)
                if leaf in arch.biased:
                    bias(f"L{i}.{leaf}.bias.c{c}", c, f"layers.{i}.{keys[leaf]}.bias", leaf, i)
            for kv in ("k", "v"):
                r = pl.allocate(f"L{i}.kv_{kv}.c{c}", c, sl.kv_heads[c] * tpc * kvrb)
                out.append(HbmRegion(r.tensor, "kv", c, r.channel0, r.n_channels, r.addr, r.bytes_per_channel, i,
                                     row_bytes=kvrb, kv=kv, head0=sum(sl.kv_heads[:c]), heads=sl.kv_heads[c],
                                     tokens_per_channel=tpc))
            for nm in NORMS:
                norm(f"L{i}.{nm}.c{c}", c, f"layers.{i}.{NORM_KEY[nm]}", i)
    for c in range(hw.n_cores):
        weight(f"lm_head.c{c}", c, "lm_head", "lm_head", f.lm_head, -1)
        r = pl.allocate(f"embed.c{c}", c, math.ceil(s.vocab_size / hw.n_cores / cpc) * s.hidden_size * 2)
        out.append(HbmRegion(r.tensor, "embedding", c, r.channel0, r.n_channels, r.addr, r.bytes_per_channel))
        norm(f"norm_final.c{c}", c, "norm", -1)
    kv_total = 2 * s.num_layers * s.num_kv_heads * max_len * kvrb
    return out, kv_total


def layer_bases(regions: list[HbmRegion], groups: list[list[int]], n_layers: int, n_cores: int
                ) -> tuple[tuple[int, ...], ...]:
    """Per layer and core, the HBM line offset of the layer's tensors from its group's template layer
    (the layer base register the host sets per launch). Every tensor of a layer must move by the same offset."""
    by = {(r.layer, r.core, r.tensor.split(".", 1)[1]): r for r in regions if r.layer >= 0}
    out = []
    template = {i: g[0] for g in groups for i in g}
    for i in range(n_layers):
        row = []
        for c in range(n_cores):
            deltas = {by[(i, c, k)].addr - r.addr for (li, ci, k), r in by.items() if li == template[i] and ci == c}
            if len(deltas) != 1:
                raise CompileError(f"layer {i}'s tensors on core {c} are not one relocation of layer "
                                   f"{template[i]}'s (offsets {sorted(deltas)[:3]}); the placement must keep a "
                                   "layer's tensors together")
            d = deltas.pop()
            row.append(d // LINE_BYTES)
        out.append(tuple(row))
    return tuple(out)
