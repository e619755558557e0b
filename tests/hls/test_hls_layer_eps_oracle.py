"""The HLS decoder layer bit for bit against the golden layer, so that an eps slip is seen.

The main layer test allows the contract's whole-model bound (1e-3 of the max, docs/numerics.md
section 5), which exists for an exp that may differ by an ULP between libm and numpy. A norm with
eps = 0 moves this layer's output by only ~1e-6 relative (measured), far inside that bound, but the
C-sim and the numpy golden are bit-identical on this machine (g++ -ffp-contract=off, measured on
the steps below), so the comparison here is array_equal. Should a platform's expf differ by an
ULP, this test fails with a small difference: compare with LOGIT_BOUND there and say so.
"""
from __future__ import annotations

import numpy as np
import pytest

from llmaccel.hls_kernels.vectors import random_activation
from llmaccel.simulator.golden.decoder_layer import LayerKVCache, decoder_layer_decode

from test_hls_layer import HEAD_DIM, HEADS, HIDDEN, KV_HEADS, SEQ_MAX, mixed_layer_case

pytestmark = pytest.mark.gxx


def test_layer_is_bit_identical_to_the_golden_where_eps_dominates():
    rng = np.random.default_rng(7)
    layers, w_in, w_post, kernel, cache, cos, sin = mixed_layer_case(rng)
    for pos in range(4):
        x = random_activation(rng, (HIDDEN,), 1e-4)
        got = kernel.step(x, pos, cos[pos], sin[pos])
        want = decoder_layer_decode(x, pos, layers, w_in, w_post, 1e-5, cos[pos], sin[pos], cache,
                                    HEADS, KV_HEADS, HEAD_DIM)
        assert np.array_equal(got, want), (pos, float(np.abs(got - want).max()), float(np.abs(want).max()))
        # eps really dominates: the same step with eps = 0 in the golden differs by far more than 1e-3
        alt = decoder_layer_decode(x, pos, layers, w_in, w_post, 0.0, cos[pos], sin[pos],
                                   LayerKVCache(SEQ_MAX, KV_HEADS, HEAD_DIM), HEADS, KV_HEADS, HEAD_DIM) \
            if pos == 0 else None
        if alt is not None:
            assert not np.array_equal(alt, want)     # eps changes bits of this layer's output
