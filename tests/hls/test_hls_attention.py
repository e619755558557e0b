"""Decode attention (C-sim) over an INT8 KV cache against simulator.golden.attention.

With one cached token the softmax is exactly 1 (exp(0) = 1, 1/1 = 1), so the
integer dot, the scale products and the value path must match bit for bit.
With more tokens the only inexact op is exp (4 ULP per probability, contract
section 5); an output element then differs by at most a few ULP of the sum of
the magnitudes of its terms, which is the bound asserted here.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from llmaccel.hls_kernels.compare import bit_equal
from llmaccel.hls_kernels.configs import REGISTRY, AttentionKernelConfig
from llmaccel.hls_kernels.csim import AttentionKernel
from llmaccel.hls_kernels.vectors import random_activation
from llmaccel.simulator.golden import attention

pytestmark = pytest.mark.gxx
ATTENTION = sorted(n for n, c in REGISTRY.items() if isinstance(c, AttentionKernelConfig))
TERM_ULP_BOUND = 8  # 4 ULP (exp) + normalisation rounding, relative to sum |term| (see module doc)
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _inputs(CFG, seed: int, seq_len: int):
    rng = np.random.default_rng(seed)
    q8, s_q = attention.quantize_heads(random_activation(rng, (CFG.heads * CFG.head_dim,)), CFG.head_dim)
    k8, s_k = attention.quantize_heads(random_activation(rng, (seq_len, CFG.kv_heads * CFG.head_dim)), CFG.head_dim)
    v8, s_v = attention.quantize_heads(random_activation(rng, (seq_len, CFG.kv_heads * CFG.head_dim)), CFG.head_dim)
    return q8, s_q, k8, s_k, v8, s_v


@pytest.mark.parametrize("name", ATTENTION)
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_single_token_attention_bit_exact(name, seed):
    CFG = REGISTRY[name]
    args = _inputs(CFG, seed, 1)
    got = AttentionKernel(CFG).run(*args)
    assert bit_equal(got, attention.decode_attention(*args, CFG.kv_heads))


@pytest.mark.parametrize("name", ATTENTION)
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_attention_within_propagated_exp_bound(name, data, seed):
    CFG = REGISTRY[name]
    seq_len = data.draw(st.integers(2, CFG.seq_max), label="seq_len")
    q8, s_q, k8, s_k, v8, s_v = args = _inputs(CFG, seed, seq_len)
    got = AttentionKernel(CFG).run(*args)
    want = attention.decode_attention(*args, CFG.kv_heads)
    kv = np.arange(CFG.heads) // (CFG.heads // CFG.kv_heads)
    p = attention.softmax(attention.attention_scores(q8, s_q, k8, s_k, CFG.kv_heads))
    mag = np.einsum("ht,thd->hd", p * s_v[:, kv].T, np.abs(v8[:, kv, :].astype(np.float32)))
    bound = TERM_ULP_BOUND * np.float32(2.0**-23) * mag + np.finfo(np.float32).tiny
    assert np.all(np.abs(got - want) <= bound)


@pytest.mark.parametrize("name", ATTENTION)
def test_gqa_uses_interleaved_kv_heads(name):
    """Head h reads kv head h // (heads / kv_heads) (Llama's repeat_kv)."""
    CFG = REGISTRY[name]
    q8, s_q, k8, s_k, v8, s_v = _inputs(CFG, 7, 1)
    q8[:] = q8[0]
    s_q[:] = s_q[0]
    out = AttentionKernel(CFG).run(q8, s_q, k8, s_k, v8, s_v)
    rep = CFG.heads // CFG.kv_heads
    for h in range(CFG.heads):
        assert bit_equal(out[h], (s_v[0, h // rep] * v8[0, h // rep].astype(np.float32)).astype(np.float32))
