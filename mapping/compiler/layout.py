"""On-chip layout: where each activation vector and parameter block lives in the core's buffers.

One token's vectors form a slab in the activation buffer (token ``t`` of a program lives ``t``
slabs further, which the ISA leaves implicit); score and probability rows, and the norm
parameter blocks an LD brings, live in the SFU buffer. Every core uses the same layout. Offsets
are 64-byte lines of FP32 elements: the functional engine's view (the INT8/FP16 storage the
buffer sizing assumes is ``mapping.tiling.act_bytes_per_token``).
"""
from __future__ import annotations

from llmaccel.mapping.compiler.formats import CompileError
from llmaccel.mapping.compiler.partition import norm_block_lines, vector_lines
from llmaccel.simulator.compiled import ActRegion, BufferIds
from llmaccel.simulator.isa import OFFSET_BITS
from llmaccel.simulator.specs.model import ModelSpec
from llmaccel.simulator.timing_params import HwParams


def buffer_ids(hw: HwParams) -> BufferIds:
    ids = hw.extras.get("buffer_ids", {})
    w, a = ids.get("weight", 0), ids.get("activation", 0)
    return BufferIds(weight=w, kv=ids.get("kv", w), activation=a, sfu=ids.get("sfu", a), output=ids.get("output", a))


def act_layout(spec: ModelSpec, bufs: BufferIds, max_len: int, layernorm: bool = False) -> tuple[ActRegion, ...]:
    act = [("x", spec.hidden_size), ("h", spec.hidden_size), ("q", spec.q_dim),
           ("k", spec.num_kv_heads * spec.head_dim), ("v", spec.num_kv_heads * spec.head_dim),
           ("attn", spec.q_dim), ("mlp", spec.intermediate_size), ("tmp", spec.hidden_size),
           ("logits", spec.vocab_size)]
    sfu = [("scores", max_len), ("probs", max_len)]
    out: list[ActRegion] = []
    off: dict[int, int] = {}
    params = [("norm_in", spec.hidden_size), ("norm_post", spec.hidden_size)]
    for buf, regions in ((bufs.activation, act), (bufs.sfu, sfu), (bufs.sfu, params)):
        for name, elems in regions:
            o = off.get(buf, 0)
            out.append(ActRegion(name, buf, o, elems))
            lines = norm_block_lines(elems, layernorm) if name.startswith("norm") else vector_lines(elems)
            off[buf] = o + lines
    worst = max(off.values())
    if worst >= 1 << OFFSET_BITS:
        raise CompileError(f"{spec.name}'s on-chip vectors need {worst} lines of a buffer; the ISA addresses "
                           f"{1 << OFFSET_BITS} lines (16-bit offsets)")
    return tuple(out)


def column_lines(elem: int, what: str) -> int:
    """Line offset of FP32 element ``elem`` inside a vector; it must start a line."""
    if (4 * elem) % 64:
        raise CompileError(f"{what}: element {elem} does not start a 64-byte line (FP32 vectors are addressed in "
                           "lines); head_dim and each core's row slice must be multiples of 16")
    return 4 * elem // 64
