"""The weight decoder's model: bit-exact with the packed format's readers; closed-form cycles."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import pack_linear
from llmaccel.sparse_dsp.weight_decoder import (DecoderConfig, DecoderCycleModel, decode_beats, decode_stream_bits,
                                       decoder_total_cycles, stream_words)
from llmaccel.sparse_dsp.mv_tile import TileConfig, mv_tile_total_cycles, _free_running as tile_free_running
from llmaccel.sparse_dsp.weight_decoder import _free_running

CASES = [(b, nm, sym) for b, nm, sym in itertools.product(
    (2, 3, 4, 8), (None, (2, 4), (4, 8), (2, 16), (4, 16), (8, 16)), (True, False)) if sym or b != 8]


def _layer(rng, rows, k, bits, g, sym, nm):
    n, m = nm if nm else (1, 1)
    codes = rng.integers(0, 1 << bits, (rows, k * n // m))
    zeros = None if sym else rng.integers(0, 1 << bits, (rows, k // g))
    cols = None
    if nm:
        keep = np.sort(np.argsort(rng.random((rows, k // m, m)), axis=2)[:, :, :n], axis=2)
        cols = (keep + (np.arange(k // m) * m)[None, :, None]).reshape(rows, -1)
    scales = rng.random((rows, k // g)).astype(np.float16)
    return pack_linear(codes, scales, in_features=k, bits=bits, group_size=g, zeros=zeros, nm=nm, columns=cols)


@pytest.mark.parametrize("bits,nm,sym", CASES)
def test_stream_walk_equals_format_readers(bits, nm, sym):
    rng = np.random.default_rng(bits * 7 + (nm[1] if nm else 0))
    cfg = DecoderConfig(bits=bits, nm=nm, k=192, group_size=64, chain_len=8 if not nm or nm[0] <= 8 else 16,
                        symmetric=sym)
    layer = _layer(rng, 3, cfg.k, bits, cfg.group_size, sym, nm)
    a = decode_beats(cfg, layer)
    b = decode_stream_bits(cfg, *stream_words(layer), rows=3)
    for field in ("weights", "index", "scale", "first", "last", "row_last"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    # and the beats are the format's INT8 code - zero, in order
    np.testing.assert_array_equal(a.weights.reshape(3, -1), layer.decode_int8())


@pytest.mark.parametrize("bits,nm,chain_len", [(2, None, 8), (3, (2, 16), 4), (8, (2, 4), 8), (4, (8, 16), 16),
                                               (8, None, 2), (3, (4, 8), 4)])
def test_decoder_closed_form_equals_stepped_model(bits, nm, chain_len):
    cfg = DecoderConfig(bits=bits, nm=nm, k=256, group_size=64, chain_len=chain_len)
    for rows in (1, 2, 7):
        assert decoder_total_cycles(cfg, rows) == _free_running(cfg, rows)[-1] + 1


def test_decoder_is_input_bound_for_wide_codes():
    """8-bit codes x 8 weights = 64 bits a beat from a 32-bit stream: one beat per 2 cycles."""
    cfg = DecoderConfig(bits=8, nm=None, k=256, group_size=128, chain_len=8)
    beats = _free_running(cfg, 4)
    assert beats[-1] - beats[-33] == 64


@pytest.mark.parametrize("kwargs,field", [({"bits": 5}, "bits"), ({"bits": 8, "symmetric": False}, "asymmetric"),
                                          ({"chain_len": 16, "group_size": 8, "k": 64}, "chain_len"),
                                          ({"nm": (3, 16)}, "N:M"), ({"k": 100}, "group_size")])
def test_bad_decoder_parameters(kwargs, field):
    with pytest.raises(LlmaccelError, match=field):
        DecoderConfig(**kwargs)


@pytest.mark.parametrize("nch,chain_len,nm,bits", [(1, 8, None, 4), (2, 4, (2, 16), 3), (3, 16, (8, 16), 8)])
def test_tile_closed_form_equals_stepped_model(nch, chain_len, nm, bits):
    cfg = TileConfig(nch, chain_len, nm, None, bits, 256, 128, True)
    for rows in (1, 5):
        assert mv_tile_total_cycles(cfg, rows) == tile_free_running(cfg, rows)[-1] + 1


def test_decoder_model_waits_for_meta():
    cfg = DecoderConfig(bits=4, nm=None, k=128, group_size=64, chain_len=8)
    m = DecoderCycleModel(cfg)
    for _ in range(6):
        assert m.step(True, False, False, True)[3] is False
    assert not m.m_valid
