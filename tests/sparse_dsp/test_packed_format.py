"""The packed weight format: layout, round trips, decoding and its bad-input errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import (LayerFormat, PackedFormatError, PackedLinear, pack_bitstream, pack_linear,
                                      unpack_bitstream)


def naive_words(values, width):
    """Expected words from Python integers: value j at bit j*width, LSB first, 32-bit words."""
    acc = 0
    for j, v in enumerate(values):
        acc |= int(v) << (j * width)
    nwords = (len(values) * width + 31) // 32
    return [(acc >> (32 * i)) & 0xFFFFFFFF for i in range(nwords)]


@settings(max_examples=60, deadline=None)
@given(width=st.sampled_from([1, 2, 3, 4, 8]), n=st.integers(1, 70), rows=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_bitstream_layout_and_round_trip(width, n, rows, seed):
    v = np.random.default_rng(seed).integers(0, 1 << width, (rows, n))
    words = pack_bitstream(v, width)
    for r in range(rows):
        assert words[r].tolist() == naive_words(v[r], width)
    assert np.array_equal(unpack_bitstream(words, width, n), v)


def test_value_wider_than_field_is_rejected():
    with pytest.raises(PackedFormatError, match="do not fit in 3 bits"):
        pack_bitstream(np.array([[8]]), 3)


def random_nm_columns(rng, rows, k, n, m):
    blocks = [np.sort(rng.choice(m, n, replace=False)) + b * m for b in range(k // m)]
    return np.stack([np.concatenate([np.sort(rng.choice(m, n, replace=False)) + b * m for b in range(k // m)])
                     for _ in range(rows)]) if blocks else None


@settings(max_examples=40, deadline=None)
@given(bits=st.sampled_from([2, 3, 4, 8]), symmetric=st.booleans(),
       nm=st.sampled_from([None, (2, 4), (4, 8), (2, 16), (4, 16), (8, 16)]), seed=st.integers(0, 2**31))
def test_pack_decode_round_trip(bits, symmetric, nm, seed):
    if not symmetric and bits == 8:
        symmetric = True
    rng = np.random.default_rng(seed)
    o, k, g = 3, 64, 32
    n, m = nm or (1, 1)
    kept = k * n // m
    codes = rng.integers(0, 1 << bits, (o, kept))
    cols = random_nm_columns(rng, o, k, n, m) if nm else None
    scales = rng.uniform(0.01, 1, (o, k // g)).astype(np.float16)
    zeros = None if symmetric else rng.integers(0, 1 << bits, (o, k // g)).astype(np.uint8)
    p = pack_linear(codes, scales, in_features=k, bits=bits, group_size=g, zeros=zeros, nm=nm, columns=cols)
    assert np.array_equal(p.unpack_codes(), codes)
    # decoded INT8 = code - zero of the value's group
    z = np.full((o, k // g), 1 << (bits - 1)) if symmetric else zeros.astype(int)
    group_of_kept = (np.arange(kept) * m // n) // g
    expect_d = codes - z[:, group_of_kept]
    assert np.array_equal(p.decode_int8().astype(int), expect_d)
    dense = p.dense_int8().astype(int)
    expect_cols = cols if nm else np.broadcast_to(np.arange(k), (o, k))
    expect_dense = np.zeros((o, k), int)
    np.put_along_axis(expect_dense, expect_cols, expect_d, axis=1)
    assert np.array_equal(dense, expect_dense)
    assert np.allclose(p.dense_float(), expect_dense * np.repeat(scales.astype(np.float32), g, axis=1))
    # the arrays alone rebuild an identical layer
    q = PackedLinear(p.fmt, **{kk: v.copy() for kk, v in p.arrays().items()}, **({} if not symmetric else {"zeros": None}))
    assert np.array_equal(q.dense_int8(), p.dense_int8())


def test_storage_accounting_by_hand():
    # 4-bit codes at 2:4: per dense weight 0.5*4 code bits + 0.5*2 index bits + 16/128 scale bits
    f = LayerFormat(256, 1024, 4, 128, True, (2, 4))
    assert f.avg_bits_per_weight == pytest.approx(2 + 1 + 16 / 128)
    # 3-bit asymmetric dense: 3 + (16 + 8)/128
    f = LayerFormat(8, 256, 3, 128, False, None)
    assert f.code_words_per_row == 24 and f.avg_bits_per_weight == pytest.approx(3 + 24 / 128)


@pytest.mark.parametrize("kwargs, match", [
    (dict(bits=5), r"bits=5 is not supported; allowed: \[2, 3, 4, 8\]"),
    (dict(bits=8, symmetric=False), r"asymmetric quantization needs bits in \[2, 3, 4\]"),
    (dict(group_size=96), r"group_size=96 must be positive and divide in_features=256"),
    (dict(nm=(3, 4)), r"N:M pattern 3:4 is not supported; allowed: 2:4, 4:8, 2:16, 4:16, 8:16"),
    (dict(nm=(2, 16), group_size=8, in_features=64), r"M=16 must divide group_size=8"),
])
def test_bad_format_fields_are_named(kwargs, match):
    args = dict(out_features=4, in_features=256, bits=4, group_size=128, symmetric=True, nm=None)
    args.update(kwargs)
    with pytest.raises(LlmaccelError, match=match):
        LayerFormat(**args)


def test_columns_must_follow_the_nm_pattern():
    codes = np.zeros((1, 8), int)
    bad = np.array([[0, 1, 2, 4, 8, 9, 12, 13]])   # three kept in the first block of 4
    with pytest.raises(PackedFormatError, match="exactly 2 ascending columns in every block of 4"):
        pack_linear(codes, np.ones((1, 1)), in_features=16, bits=4, group_size=16, nm=(2, 4), columns=bad)


def test_wrong_array_shape_names_the_array():
    f = LayerFormat(2, 32, 4, 32, True, None)
    with pytest.raises(PackedFormatError, match="'scales'"):
        PackedLinear(f, np.zeros((2, 4), np.uint32), np.zeros((2, 0), np.uint32), np.zeros((2, 2), np.float16), None)
