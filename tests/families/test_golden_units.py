"""The family golden units of simulator.golden.sfu against torch / transformers (independent definitions).

Bounds: each unit is checked twice. Against torch in float64 (the exact function, independent):
for x >= 0, 1 + t lies in [1, 2] and our FP32 chain (five roundings) stays within 4 ulp (measured
<= 2); for x < 0, 1 + t cancels, so the FP32 rounding of t (<= 2^-25 near -1) becomes
0.5 |x| 2^-25 absolute per rounding: the bound is |x| * 2^-23 plus two output ulps. Against torch's
float32 kernels, whose tanh/erf are a few ulp off themselves (measured 8 ulp at x = 0.054 for
erf), only an absolute 1e-6 (measured 3.6e-7).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from llmaccel.hls_kernels.compare import ulp_distance
from llmaccel.simulator.golden import sfu

SETTINGS = settings(max_examples=25, deadline=None)


def _x(seed: int, n: int, scale: float = 3.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


def _check_gelu(x: np.ndarray, got: np.ndarray, want32: np.ndarray, exact: np.ndarray) -> None:
    pos = x >= 0
    assert ulp_distance(got[pos], exact[pos].astype(np.float32)).max(initial=0) <= 4
    bound = np.abs(x) * 2.0**-23 + 2 * np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    err = np.abs(got.astype(np.float64) - exact)
    assert (err <= bound).all(), float(np.max(err - bound))
    assert np.abs(got - want32).max() < 1e-6


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 700))
def test_gelu_tanh_matches_transformers_new_gelu(seed, n):
    from transformers.activations import NewGELUActivation
    x = _x(seed, n)
    want = NewGELUActivation()(torch.from_numpy(x)).numpy()
    exact = NewGELUActivation()(torch.from_numpy(x).double()).numpy()
    _check_gelu(x, sfu.gelu_tanh(x), want, exact)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 700))
def test_gelu_erf_matches_torch(seed, n):
    x = _x(seed, n)
    want = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    exact = torch.nn.functional.gelu(torch.from_numpy(x).double()).numpy()
    _check_gelu(x, sfu.gelu(x), want, exact)


def test_relu_and_bias_add_exact():
    x = _x(1, 999)
    assert np.array_equal(sfu.relu(x), torch.relu(torch.from_numpy(x)).numpy())
    b = _x(2, 999)
    assert np.array_equal(sfu.bias_add(x[None], b), (torch.from_numpy(x)[None] + torch.from_numpy(b)).numpy())
    assert sfu.activation("relu") is sfu.relu and sfu.activation("gelu_tanh") is sfu.gelu_tanh


@pytest.mark.parametrize("n", [64, 128, 96])
def test_layernorm_matches_torch(n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((5, n)) * 2 + 0.5).astype(np.float32)
    w, b = rng.uniform(0.5, 1.5, n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    want = torch.nn.functional.layer_norm(torch.from_numpy(x), (n,), torch.from_numpy(w), torch.from_numpy(b),
                                          1e-5).numpy()
    # torch sums in its vector order, ours in index order: measured <= 6 ulp apart; rtol 4e-6 plus an
    # absolute floor for outputs near 0 (b cancels w * x_hat)
    np.testing.assert_allclose(sfu.layernorm(x, w, b, 1e-5), want, rtol=4e-6, atol=2e-6)


@pytest.mark.parametrize("rope_parameters", [
    {"rope_type": "default", "rope_theta": 10000.0},
    {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
     "original_max_position_embeddings": 32},
    {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 32},
])
def test_rope_tables_of_spec_match_transformers(rope_parameters):
    """sfu.rope_tables_of a ModelSpec equals transformers' rotary embedding up to its float32 angle error
    (|angle| < 128 rad, ulp(128) = 7.6e-6; measured 5e-6; bound 2e-5), head_dim 96."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    from llmaccel.simulator.specs.model import model_spec_from_hf_config
    cfg = LlamaConfig(hidden_size=384, num_attention_heads=4, head_dim=96, intermediate_size=64,
                      num_hidden_layers=1, vocab_size=32, max_position_embeddings=128, rope_parameters=rope_parameters)
    spec = model_spec_from_hf_config(cfg.to_dict(), "t")
    pos = np.arange(128)
    cos_hf, sin_hf = LlamaRotaryEmbedding(cfg)(torch.zeros(1, 128, 96), torch.from_numpy(pos)[None])
    cos, sin = sfu.rope_tables_of(spec, pos)
    assert cos.dtype == np.float32
    assert np.abs(cos - cos_hf[0].numpy()).max() < 2e-5 and np.abs(sin - sin_hf[0].numpy()).max() < 2e-5
    if rope_parameters["rope_type"] != "default":   # the scaling matters: plain tables are far off
        plain, _ = sfu.rope_tables(pos, 96, rope_parameters["rope_theta"])
        assert np.abs(plain - cos_hf[0].numpy()).max() > 1e-2
