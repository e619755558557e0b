"""The packed format's bit layout against hand-packed words, and its column rules.

docs/numerics.md section 1 / sparse_dsp/packed_format.py: value j of a row occupies bits
[j*bits, (j+1)*bits) of the row's little-endian bit stream, rows padded with zero bits to a whole
32-bit word. The words below were packed by hand.
"""
from __future__ import annotations

import numpy as np
import pytest

from llmaccel.sparse_dsp.packed_format import PackedFormatError, pack_bitstream, pack_linear, unpack_bitstream


def test_three_bit_values_pack_to_hand_computed_words():
    # values 1,2,3,4,5,6,7,0,1,2,5 (3 bits each, 33 bits -> 2 words). Word 0 by hand:
    #   1 + 2<<3 + 3<<6 + 4<<9 + 5<<12 + 6<<15 + 7<<18 + 0<<21 + 1<<24 + 2<<27 = 287267025,
    #   plus the low two bits of the last value 5 (0b01) at bits 30-31: + 1<<30 = 1361008849 = 0x511F58D1;
    # word 1 holds the last value's high bit: 1.
    vals = np.array([[1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 5]], dtype=np.uint8)
    got = pack_bitstream(vals, 3)
    assert got.tolist() == [[0x511F58D1, 0x1]]
    assert np.array_equal(unpack_bitstream(got, 3, 11), vals)


def test_pad_bits_are_zero_and_width_aligned_paths_agree():
    # 2-bit values take the aligned fast path: 17 values = 34 bits -> 2 words, 30 pad bits zero
    vals = np.full((1, 17), 3, dtype=np.uint8)
    assert pack_bitstream(vals, 2).tolist() == [[0xFFFFFFFF, 0x3]]
    vals = np.full((1, 11), 7, dtype=np.uint8)       # 3-bit: 33 bits -> the second word holds one bit
    assert pack_bitstream(vals, 3).tolist() == [[0xFFFFFFFF, 0x1]]


@pytest.mark.parametrize("nm", [(2, 4), (2, 16), (4, 8)])
def test_columns_out_of_order_inside_a_block_are_refused(nm):
    n, m = nm
    k = 2 * m
    cols = np.array([[b * m + j for b in range(k // m) for j in range(n)]])     # ascending, valid
    codes = np.zeros((1, cols.shape[1]), np.uint16)
    scales = np.ones((1, 1), np.float16)
    pack_linear(codes, scales, in_features=k, bits=4, group_size=k, nm=nm, columns=cols)
    bad = cols.copy()
    bad[0, 0], bad[0, 1] = bad[0, 1], bad[0, 0]                                   # swapped inside block 0
    with pytest.raises(PackedFormatError, match="ascending"):
        pack_linear(codes, scales, in_features=k, bits=4, group_size=k, nm=nm, columns=bad)
    dup = cols.copy()
    dup[0, 1] = dup[0, 0]                                                          # a column kept twice
    with pytest.raises(PackedFormatError, match="ascending"):
        pack_linear(codes, scales, in_features=k, bits=4, group_size=k, nm=nm, columns=dup)
