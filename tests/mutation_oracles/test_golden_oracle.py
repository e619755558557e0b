"""The golden SFU/attention units against transformers and against the contract's own words.

* RoPE at head_dim 96 (not a power of two) equals transformers' LlamaRotaryEmbedding and
  apply_rotary_pos_emb bit for bit; with llama3 frequency scaling the float64 tables of
  mapping.portable_math equal transformers' scaled rotary embedding to float32 rounding.
* softmax divides (docs/numerics.md section 4: "p = e / sum"): bit-exact against a scalar
  Python loop doing exactly that; a multiply-by-reciprocal differs in a measurable share of entries.
* 1/sqrt(head_dim) is rounded once from float64; at head_dim 96 the FP32 route gives another value.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmaccel.simulator.golden.attention import attention_scores, inv_sqrt_head_dim
from llmaccel.simulator.golden.sfu import rmsnorm, rope, rope_tables, softmax

F32 = np.float32


def _hf_rotary(head_dim: int, theta: float, positions: np.ndarray, scaling: dict | None = None):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    rope_params = {"rope_type": "default", "rope_theta": theta}
    if scaling:
        rope_params.update(scaling)
    cfg = LlamaConfig(hidden_size=head_dim * 2, num_attention_heads=2, head_dim=head_dim,
                      max_position_embeddings=16384, rope_parameters=rope_params)
    emb = LlamaRotaryEmbedding(cfg)
    x = torch.zeros(1, 1, head_dim)
    cos, sin = emb(x, torch.as_tensor(positions, dtype=torch.int64)[None])
    return cos[0].numpy(), sin[0].numpy()


@pytest.mark.parametrize("head_dim,theta", [(96, 10000.0), (64, 500000.0), (128, 10000.0)])
def test_rope_tables_and_rotation_equal_transformers(head_dim, theta):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
    pos = np.array([0, 1, 7, 100, 1023, 4095])
    cos, sin = rope_tables(pos, head_dim, theta)
    hc, hs = _hf_rotary(head_dim, theta, pos)
    # our tables are correct to float64 then rounded (simulator.families.rope); transformers' carry its
    # float32 pow and angle rounding, about |angle| 2^-24: measured 2e-4 at position 4095; bound
    # (p + 1) 2^-22 per row (4x that, 9.8e-4 at 4095), while a table of another theta is off by > 0.1
    bound = ((pos + 1) * 2.0**-22)[:, None]
    assert (np.abs(cos - hc) <= bound).all() and (np.abs(sin - hs) <= bound).all()
    x = np.random.default_rng(head_dim).normal(size=(len(pos), 3, head_dim)).astype(F32)   # [T, heads, D]
    q = torch.from_numpy(x).transpose(0, 1)[None]                                         # [1, H, T, D]
    # the rotation itself, on the same tables, is bit-exact
    want, _ = apply_rotary_pos_emb(q, q, torch.from_numpy(cos)[None], torch.from_numpy(sin)[None])
    got = rope(x, cos[:, None, :], sin[:, None, :])
    assert np.array_equal(got, want[0].transpose(0, 1).numpy())


def test_scaled_rope_tables_equal_transformers_llama3_scaling():
    """llama3 scaling (Llama 3.1's published parameters) at head_dim 96 and 128."""
    from llmaccel.mapping.portable_math import rope_tables as exact_tables
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
    d, t = 96, 256      # the Decimal tables cost ~0.1 s per position at d = 96; 256 positions suffice
    cos, sin = exact_tables(d, 500000.0, scaling, t)
    hc, hs = _hf_rotary(d, 500000.0, np.arange(t), scaling)
    # transformers computes angle = float32(pos) * float32(inv_freq) and float32 cos/sin, so its error
    # grows with the angle (|angle| <= 255 rad here, ulp(255) = 1.5e-5 rad). Measured max |diff| at
    # t = 512: 4.2e-5; 1e-4 is that plus margin. Tables without the scaling differ by 0.29 at t = 512.
    assert np.abs(cos.numpy() - hc).max() < 1e-4 and np.abs(sin.numpy() - hs).max() < 1e-4
    plain, _ = exact_tables(d, 500000.0, None, t)
    assert np.abs(plain.numpy() - hc).max() > 0.05


def _softmax_by_division(row: np.ndarray) -> np.ndarray:
    m = max(row)
    e = [F32(math.exp(float(F32(v - m)))) if v != -np.inf else F32(0) for v in row]   # libm's double exp, rounded once
    total = F32(0)
    for v in e:
        total = F32(total + v)
    return np.array([F32(v / total) for v in e], dtype=F32)


def test_softmax_divides_bit_exactly():
    rng = np.random.default_rng(0)
    s = (rng.normal(size=(64, 37)) * 3).astype(F32)
    s[::5, -3:] = -np.inf                                                        # masked tails
    got = softmax(s)
    want = np.stack([_softmax_by_division(r) for r in s])
    assert np.array_equal(got, want)
    # the alternative the contract rules out (e * (1 / sum)) differs here in 30 % of the entries (measured)
    e = np.exp(s - s.max(axis=1, keepdims=True)).astype(F32)
    total = np.zeros(64, F32)
    for i in range(s.shape[1]):
        total = (total + e[:, i]).astype(F32)
    recip = (e * (F32(1) / total)[:, None]).astype(F32)
    assert (recip != want).mean() > 0.1


@pytest.mark.parametrize("d", [16, 32, 64, 80, 96, 112, 128, 256])
def test_inv_sqrt_head_dim_is_rounded_once_from_double(d):
    assert inv_sqrt_head_dim(d) == F32(1.0 / math.sqrt(d))
    assert type(inv_sqrt_head_dim(d)) is np.float32


def test_head_dim_96_is_where_the_fp32_route_differs():
    assert F32(1.0 / math.sqrt(96)) != F32(1) / np.sqrt(F32(96))      # the case that matters
    rng = np.random.default_rng(1)
    q8 = rng.integers(-127, 128, (4, 96)).astype(np.int8)
    k8 = rng.integers(-127, 128, (5, 2, 96)).astype(np.int8)
    s_q = rng.uniform(0.01, 0.1, 4).astype(F32)
    s_k = rng.uniform(0.01, 0.1, (5, 2)).astype(F32)
    got = attention_scores(q8, s_q, k8, s_k, 2)
    c = F32(1.0 / math.sqrt(96))
    for h in range(4):
        for t in range(5):
            dot = int(np.dot(q8[h].astype(np.int64), k8[t, h // 2].astype(np.int64)))
            want = F32(F32(F32(dot) * F32(s_q[h] * s_k[t, h // 2])) * c)
            assert got[h, t] == want, (h, t)


def test_rmsnorm_eps_enters_exactly():
    """x * (1/sqrt(mean(x^2) + eps)) * w, written as a scalar loop; eps 1e-5 on a tiny-norm row matters."""
    x = np.array([[1e-3, -2e-3, 3e-3, 5e-4] * 8], dtype=F32)
    w = np.linspace(0.5, 1.5, 32).astype(F32)
    for eps in (1e-5, 1e-6):
        ms = F32(0)
        for v in x[0]:
            ms = F32(ms + F32(v * v))
        ms = F32(ms / F32(32))
        inv = F32(F32(1) / np.sqrt(F32(ms + F32(eps))))
        want = np.array([F32(F32(v * inv) * wi) for v, wi in zip(x[0], w)], dtype=F32)
        assert np.array_equal(rmsnorm(x, w, eps)[0], want)


def test_quantize_heads_and_value_sum_by_scalar_loops():
    from llmaccel.simulator.golden.attention import quantize_heads, weighted_value_sum
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3 * 8)).astype(F32)                   # 2 tokens, 3 heads of head_dim 8
    q8, s = quantize_heads(x, 8)
    assert q8.shape == (2, 3, 8) and s.shape == (2, 3)
    for t in range(2):
        for h in range(3):
            v = x[t, 8 * h:8 * h + 8]
            sc = F32(F32(np.abs(v).max()) / F32(127))
            assert s[t, h] == sc
            assert q8[t, h].tolist() == np.clip(np.rint((v / sc).astype(F32)), -127, 127).astype(int).tolist()
    # P.V: acc + sum over t in order of (p[t] * s_v[t]) * float(v8[t]), each step rounded to FP32
    p = rng.uniform(0, 1, (1, 5)).astype(F32)
    s_v = rng.uniform(0.01, 0.1, 5).astype(F32)
    v8 = rng.integers(-127, 128, (5, 4)).astype(np.int8)
    acc0 = rng.normal(size=(1, 4)).astype(F32)
    want = acc0[0].copy()
    for t in range(5):
        w = F32(p[0, t] * s_v[t])
        for d in range(4):
            want[d] = F32(want[d] + F32(w * F32(v8[t, d])))
    assert np.array_equal(weighted_value_sum(acc0, p, s_v, v8)[0], want)


def test_rope_tables_refuse_an_odd_head_dim():
    with pytest.raises(ValueError, match="even"):
        rope_tables(np.arange(4), 7)
    assert rope_tables(np.arange(2), 2)[0].shape == (2, 2)


def test_a_zero_activation_row_has_codes_zero_and_scale_exactly_one():
    """Contract section 2: s_x = 1 where amax == 0 (not 0, which would divide by zero, nor any other value:
    the scale is stored with K/V rows and multiplies partial sums)."""
    from llmaccel.simulator.golden.linear import quantize_activation
    x = np.zeros((3, 64), F32)
    x[1, 5] = -2.5
    q, s = quantize_activation(x)
    assert q.dtype == np.int8 and not q[0].any() and not q[2].any() and q[1, 5] == -127
    assert s[0] == F32(1.0) and s[2] == F32(1.0) and s[1] == F32(F32(2.5) / F32(127))


def test_rope_tables_refuse_an_odd_head_dim():
    from llmaccel.simulator.golden.sfu import rope_tables
    with pytest.raises(ValueError, match="head_dim=5 must be even"):
        rope_tables(np.arange(4), 5)
    cos, sin = rope_tables(np.arange(4), 6)
    assert cos.shape == sin.shape == (4, 6)
