"""On-chip buffer allocation and tile sizes, chosen so that every tile fits its buffer.

Three per-core buffers (sizes from the design): the weight buffer holds two
decoded weight tiles (double buffering: the LD unit fills one while the
matrix engine reads the other), the KV buffer two K/V tiles, and the
activation buffer everything a chunk of tokens needs to stay on chip for a
whole decoder layer (FlightLLM's "always-on-chip decode": decode keeps one
token's activations on chip through the layer, so its activation footprint
must fit, or the design is rejected). Prefill processes the prompt in chunks
of as many tokens as the activation buffer holds.
"""
from __future__ import annotations

from llmaccel.simulator.attention_mask import ATTN_BLOCK, block_density, causal_pairs  # noqa: F401 (re-exported)
from llmaccel.simulator.isa import KV_SCALE_BYTES  # one FP32 scale per (token, kv head) (docs/numerics.md section 4)
from llmaccel.simulator.isa import FP16_BYTES, FP16_WEIGHT_BITS, kv_row_bytes as kv_row_bytes_of

KV_KIND = {"int8": "kv_cache", "fp16": "kv_cache_fp16"}   # the ISA kind of each KV datatype

import math
from dataclasses import dataclass

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import LayerFormat

BUFFER_SLOTS = 2          # double buffering


class BufferError_(LlmaccelError):
    """A design whose on-chip buffers cannot hold the smallest tile the mapping needs."""


def decoded_row_bytes(fmt: LayerFormat) -> int:
    """Bytes one weight row occupies on chip after decoding: INT8 kept weights + FP16 scales (+ zeros);
    an FP16 row (``bits`` = 16, ``mapping.compiler.formats.Fp16Format``) is its 2-byte values as loaded."""
    if fmt.bits == FP16_WEIGHT_BITS:
        return FP16_BYTES * fmt.kept_per_row
    zeros = 0 if fmt.symmetric else fmt.groups_per_row
    return fmt.kept_per_row + 2 * fmt.groups_per_row + zeros


def kv_row_bytes(head_dim: int, kv_dtype: str = "int8") -> int:
    """One K or V row of one head: INT8 values + an FP32 scale, or FP16 values (docs/numerics.md section 7)."""
    return kv_row_bytes_of(KV_KIND[kv_dtype], head_dim)


@dataclass(frozen=True)
class WeightTiling:
    rows_per_tile: int        # multiple of channels_per_core
    n_tiles: int
    rows_per_channel: int     # of this core's slice


def weight_tiling(fmt: LayerFormat, rows: int, channels_per_core: int, weight_buf_bytes: int,
                  what: str, align: int = 1) -> WeightTiling:
    """Rows per tile: whole rows, the same in every channel, double-buffered in the weight buffer.

    ``align`` (the decoders of one channel) rounds a channel's rows per tile up to a multiple
    where the buffer allows: a decoder takes rows d, d + n, ..., so a tile of R rows on n decoders
    costs ceil(R / n) row periods and a ragged tile wastes decoder time.
    """
    rb = decoded_row_bytes(fmt)
    min_rows = channels_per_core
    if BUFFER_SLOTS * min_rows * rb > weight_buf_bytes:
        raise BufferError_(f"design weight buffer ({weight_buf_bytes} bytes per core) cannot double-buffer "
                           f"{min_rows} decoded rows of {what} ({rb} bytes each); allowed: weight buffer >= "
                           f"{BUFFER_SLOTS * min_rows * rb} bytes")
    rpc = math.ceil(rows / channels_per_core)
    fit_ch = weight_buf_bytes // (BUFFER_SLOTS * rb) // channels_per_core
    n_tiles = math.ceil(rpc / fit_ch)
    r_ch = math.ceil(rpc / n_tiles)          # balanced tiles: no runt tile at the end
    if align > 1:
        aligned = math.ceil(r_ch / align) * align
        if aligned <= fit_ch:
            r_ch = aligned
        elif fit_ch >= align:
            r_ch = fit_ch // align * align
        n_tiles = math.ceil(rpc / r_ch)
    return WeightTiling(rows_per_tile=r_ch * channels_per_core, n_tiles=n_tiles, rows_per_channel=rpc)


def kv_tile_tokens(head_dim: int, channels_per_core: int, kv_buf_bytes: int, gqa_group: int,
                   kv_dtype: str = "int8") -> int:
    """Tokens of one K (or V) tile, a multiple of the channels per core."""
    rb = kv_row_bytes(head_dim, kv_dtype)
    n = kv_buf_bytes // (BUFFER_SLOTS * rb)
    n = n // channels_per_core * channels_per_core
    if n < channels_per_core:
        raise BufferError_(f"design KV buffer ({kv_buf_bytes} bytes per core) cannot double-buffer "
                           f"{channels_per_core} tokens of one head ({rb} bytes each); allowed: KV buffer >= "
                           f"{BUFFER_SLOTS * channels_per_core * rb} bytes")
    return n


def act_bytes_per_token(hidden: int, q_dim_core: int, q_dim: int, ffn: int, ffn_core: int, heads_core: int,
                        ctx: int) -> int:
    """On-chip activation bytes one token needs through a decoder layer on one core.

    FP32 residual (4*hidden), INT8 normed input (hidden), INT8 q of this core's heads,
    gathered INT8 attention output (q_dim), FP16 SiLU(gate)*up of this core's rows
    before quantization (2*ffn_core; SiLU*up is fused into up's output path, so gate
    and up are never held in FP32), gathered INT8 MLP intermediate (ffn), and the
    FP16 scores of one KV-head group over the context (2*group*ctx; FP16 SFU as FlightLLM).
    """
    return 4 * hidden + hidden + q_dim_core + q_dim + 2 * ffn_core + ffn + 2 * heads_core * ctx


def prefill_chunk_tokens(per_token_bytes_at: "callable", bucket_len: int, act_buf_bytes: int) -> int:
    """Largest chunk (a multiple of the attention block, or the whole bucket) whose activations fit."""
    t = bucket_len
    while t > 0 and t * per_token_bytes_at(t) > act_buf_bytes:
        t = (t - 1) // ATTN_BLOCK * ATTN_BLOCK if t > ATTN_BLOCK else t // 2
    if t <= 0:
        raise BufferError_(f"design activation buffer ({act_buf_bytes} bytes per core) cannot hold one prompt "
                           f"token's activations ({per_token_bytes_at(1)} bytes)")
    return t


