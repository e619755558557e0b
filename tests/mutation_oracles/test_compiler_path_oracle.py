"""Oracles for mapping.tiling's chunking boundaries and typed results (issue 15 survivors).

Expected values are hand computations from the functions' contracts (docstrings), never read from the code.
"""
from __future__ import annotations

import dataclasses

import pytest

from mapping.tiling import BufferError_, WeightTiling, prefill_chunk_tokens


def test_a_bucket_whose_activations_exactly_fill_the_buffer_is_one_chunk():
    # "Largest chunk ... whose activations fit": 128 tokens x 10 bytes = 1280 bytes fit a 1280-byte buffer exactly
    assert prefill_chunk_tokens(lambda t: 10, 128, 1280) == 128


def test_a_buffer_smaller_than_one_token_is_one_error():
    # 10 bytes per token, a 5-byte buffer: not even one token fits, so no chunk (0 tokens) may be returned
    with pytest.raises(BufferError_, match="cannot hold one prompt token"):
        prefill_chunk_tokens(lambda t: 10, 8, 5)


def test_weight_tiling_is_immutable_and_hashable():
    wt = WeightTiling(rows_per_tile=8, n_tiles=2, rows_per_channel=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        wt.n_tiles = 3
    assert hash(wt) == hash(WeightTiling(8, 2, 4))
