"""SFU kernels (C-sim) against simulator.golden.sfu.

Ops without exp (RMSNorm, LayerNorm, RoPE given its tables, add, mul, INT8
quantization) must match bit for bit: both sides round the same IEEE
operations in the same order. exp-based ops (softmax, SiLU) hold the
contract's 4 ULP bound (libm expf vs numpy's float32 exp).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from llmaccel.hls_kernels.compare import bit_equal, ulp_distance
from llmaccel.hls_kernels.configs import REGISTRY
from llmaccel.hls_kernels.csim import SfuKernel
from llmaccel.hls_kernels.vectors import random_activation
from llmaccel.simulator.golden import sfu

pytestmark = pytest.mark.gxx
EXP_ULP_BOUND = 4  # docs/numerics.md section 5
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CFG = REGISTRY["sfu_n1024_u1"]


def _kernel() -> SfuKernel:
    return SfuKernel(CFG)


def _vec(seed: int, n: int, spread: float = 2.0) -> np.ndarray:
    return random_activation(np.random.default_rng(seed), (n,), spread)


lengths = st.integers(1, CFG.n_max)
seeds = st.integers(0, 2**32 - 1)


@SETTINGS
@given(n=lengths, seed=seeds, masked=st.integers(0, 8))
def test_softmax_within_ulp_bound(n, seed, masked):
    x = _vec(seed, n)
    x[: min(masked, n - 1)] = -np.inf  # causal mask entries give exactly 0
    got, want = _kernel().softmax(x), sfu.softmax(x)
    assert ulp_distance(got, want).max() <= EXP_ULP_BOUND
    assert np.all(got[: min(masked, n - 1)] == 0)


@SETTINGS
@given(n=lengths, seed=seeds)
def test_silu_and_swiglu_within_ulp_bound(n, seed):
    z, up = _vec(seed, n, 3.0), _vec(seed + 1, n)
    k = _kernel()
    assert ulp_distance(k.silu(z), sfu.silu(z)).max() <= EXP_ULP_BOUND
    assert ulp_distance(k.silu_mul(z, up), sfu.mul(sfu.silu(z), up)).max() <= EXP_ULP_BOUND


@SETTINGS
@given(n=lengths, seed=seeds, eps=st.sampled_from([1e-6, 1e-5, 1e-2]))
def test_norms_bit_exact(n, seed, eps):
    x, w, b = _vec(seed, n), _vec(seed + 1, n, 0.5), _vec(seed + 2, n, 0.5)
    k = _kernel()
    assert bit_equal(k.rmsnorm(x, w, eps), sfu.rmsnorm(x, w, eps))
    assert bit_equal(k.layernorm(x, w, b, eps), sfu.layernorm(x, w, b, eps))


@SETTINGS
@given(n=lengths, seed=seeds)
def test_elementwise_and_quantize_bit_exact(n, seed):
    a, b = _vec(seed, n), _vec(seed + 1, n)
    k = _kernel()
    assert bit_equal(k.add(a, b), sfu.add(a, b))
    assert bit_equal(k.mul(a, b), sfu.mul(a, b))
    q, s = k.quantize(a)
    q_want, s_want = sfu.quantize_activation(a)
    assert bit_equal(q, q_want), "INT8 activation codes differ"
    assert s.tobytes() == np.float32(s_want).tobytes()


def test_quantize_rounds_half_to_even():
    """x / s lands exactly on .5: rint gives the even neighbour (round-half-away would give 1, 2, 3)."""
    x = np.array([254.0, 1.0, 3.0, 5.0, -1.0, -3.0, -5.0], np.float32)  # s = 2 exactly
    q, s = _kernel().quantize(x)
    assert s == 2.0
    assert q.tolist() == [127, 0, 2, 2, 0, -2, -2]
    assert bit_equal(q, sfu.quantize_activation(x)[0])


def test_quantize_all_zero_vector_uses_unit_scale():
    q, s = _kernel().quantize(np.zeros(17, np.float32))
    assert s == 1.0 and not q.any()


@SETTINGS
@given(heads=st.integers(1, 16), half=st.sampled_from([2, 16, 32, 64]), pos=st.integers(0, 4095), seed=seeds)
def test_rope_bit_exact_given_tables(heads, half, pos, seed):
    head_dim = 2 * half
    if heads * head_dim > CFG.n_max:
        heads = CFG.n_max // head_dim
    x = random_activation(np.random.default_rng(seed), (heads, head_dim))
    cos, sin = sfu.rope_tables(np.array([pos]), head_dim)
    assert bit_equal(_kernel().rope(x, cos[0], sin[0]), sfu.rope(x, cos[0], sin[0]))
