"""Triton device functions that read the packed bit streams (sparse_dsp/packed_format.py).

``decode_group_tile`` turns one quantization group of a block of rows into the
dense INT8 weights ``d = code - zero`` the numerics contract multiplies with
(pruned columns are 0). Widths that divide 32 (2, 4, 8 bits; 2 and 4 index
bits) read whole words and split them with shifts; 3-bit codes and 3-bit
indices (4:8) straddle word boundaries, so each value reads the two words it
may span as one 64-bit window.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def extract_fields(words_ptr, rows, row_mask, words_per_row, first, COUNT: tl.constexpr, WIDTH: tl.constexpr):
    """Values ``first .. first+COUNT-1`` of width WIDTH from each row's bit stream -> int32 [BLOCK_ROWS, COUNT]."""
    row_base = rows.to(tl.int64)[:, None] * words_per_row
    if (32 % WIDTH == 0) and ((COUNT * WIDTH) % 32 == 0):
        PER: tl.constexpr = 32 // WIDTH
        NW: tl.constexpr = COUNT * WIDTH // 32
        w = tl.arange(0, NW)
        word0 = (first * WIDTH) // 32
        raw = tl.load(words_ptr + row_base + word0 + w[None, :], mask=row_mask[:, None], other=0)
        raw = raw.to(tl.uint32, bitcast=True)
        shifts = (tl.arange(0, PER) * WIDTH).to(tl.uint32)
        vals = (raw[:, :, None] >> shifts[None, None, :]) & ((1 << WIDTH) - 1)
        return tl.reshape(vals, (rows.shape[0], COUNT)).to(tl.int32)
    else:
        j = first + tl.arange(0, COUNT)
        bit = j.to(tl.int64) * WIDTH
        word = bit // 32
        shift = (bit % 32).to(tl.uint64)
        lo = tl.load(words_ptr + row_base + word[None, :], mask=row_mask[:, None], other=0)
        hi_ok = row_mask[:, None] & ((word + 1) < words_per_row)[None, :]
        hi = tl.load(words_ptr + row_base + word[None, :] + 1, mask=hi_ok, other=0)
        window = (hi.to(tl.uint32, bitcast=True).to(tl.uint64) << 32) | lo.to(tl.uint32, bitcast=True).to(tl.uint64)
        return ((window >> shift[None, :]) & ((1 << WIDTH) - 1)).to(tl.int32)


@triton.jit
def decode_group_tile(codes_ptr, idx_ptr, zeros_ptr, rows, row_mask, g, code_words, idx_words, ngroups,
                      BITS: tl.constexpr, G: tl.constexpr, N: tl.constexpr, M: tl.constexpr,
                      IDX_BITS: tl.constexpr, SYM: tl.constexpr):
    """Dense INT8-valued weights of group ``g`` for ``rows``: int32 [BLOCK_ROWS, G] (contract section 1)."""
    KPG: tl.constexpr = G * N // M
    u = extract_fields(codes_ptr, rows, row_mask, code_words, g * KPG, KPG, BITS)
    if SYM:
        d = u - (1 << (BITS - 1))
    else:
        z = tl.load(zeros_ptr + rows.to(tl.int64) * ngroups + g, mask=row_mask, other=0).to(tl.int32)
        d = u - z[:, None]
    if N == M:
        return d
    else:
        pos = extract_fields(idx_ptr, rows, row_mask, idx_words, g * KPG, KPG, IDX_BITS)
        d3 = tl.reshape(d, (rows.shape[0], G // M, N))
        p3 = tl.reshape(pos, (rows.shape[0], G // M, N))
        slot = tl.arange(0, M)
        hit = p3[:, :, :, None] == slot[None, None, None, :]
        dense = tl.sum(tl.where(hit, d3[:, :, :, None], 0), axis=2)
        return tl.reshape(dense, (rows.shape[0], G))
