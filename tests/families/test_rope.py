"""llmaccel.simulator.families.rope against transformers' own RoPE init functions (the independent oracle).

Tolerances: transformers computes inv_freq in float32 (torch pow), ours is float64 from 40-digit
decimals, so the two differ by float32 rounding: measured max relative difference 1.2e-7 over
the cases here (one float32 ulp is 1.19e-7 relative at most); 4e-7 allows three ulps for the
pow + divide + scale chain. cos/sin at position p inherit p * that error in the angle: with
p < 128 and inv_freq <= 1 the bound is 128 * 4e-7 ~ 5e-5; measured 8e-6; 1e-4 is used.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from llmaccel.simulator.families import FamilyError, Rope, read_rope

CASES = {
    "default": {"rope_type": "default", "rope_theta": 10000.0},
    "linear": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0},
    "dynamic": {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0},
    "llama3": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
    "yarn": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 32},
    "yarn-mscale": {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 32,
                    "mscale": 0.707, "mscale_all_dim": 1.0, "beta_fast": 16, "beta_slow": 2},
    "yarn-notrunc": {"rope_type": "yarn", "rope_theta": 1000000.0, "factor": 8.0,
                     "original_max_position_embeddings": 16, "truncate": False, "attention_factor": 0.9},
}
MAX_POS = 128


def _hf(params: dict, head_dim: int) -> tuple[LlamaConfig, torch.Tensor, float]:
    cfg = LlamaConfig(hidden_size=head_dim * 4, num_attention_heads=4, head_dim=head_dim,
                      max_position_embeddings=MAX_POS, rope_parameters=dict(params))
    rtype = params["rope_type"]
    fn = LlamaRotaryEmbedding.compute_default_rope_parameters if rtype == "default" else ROPE_INIT_FUNCTIONS[rtype]
    inv, scale = fn(cfg, device=torch.device("cpu"))
    return cfg, inv, float(scale)


def _ours(cfg: LlamaConfig, head_dim: int) -> Rope:
    theta, scaling = read_rope(cfg.to_dict(), "config.json")

    class S:  # the four fields Rope.of reads
        pass
    s = S()
    s.head_dim, s.rope_theta, s.rope_scaling, s.max_position_embeddings = head_dim, theta, scaling, MAX_POS
    return Rope.of(s)


@pytest.mark.parametrize("head_dim", [32, 96])
@pytest.mark.parametrize("case", sorted(CASES))
def test_inv_freq_and_scaling_match_transformers(case, head_dim):
    cfg, inv_hf, scale_hf = _hf(CASES[case], head_dim)
    r = _ours(cfg, head_dim)
    assert r.rope_type == CASES[case]["rope_type"]
    np.testing.assert_allclose(r.inv_freq(), inv_hf.double().numpy(), rtol=4e-7, atol=0)
    assert r.attention_scaling == pytest.approx(scale_hf, rel=1e-6)


@pytest.mark.parametrize("case", ["default", "llama3", "yarn-mscale"])
def test_tables_match_transformers_rotary_embedding(case):
    """cos/sin as LlamaRotaryEmbedding returns them (attention scaling applied), head_dim 96."""
    cfg, _, _ = _hf(CASES[case], 96)
    emb = LlamaRotaryEmbedding(cfg)
    pos = torch.arange(MAX_POS)[None]
    cos_hf, sin_hf = emb(torch.zeros(1, MAX_POS, 96), pos)
    cos, sin = _ours(cfg, 96).tables(MAX_POS)
    np.testing.assert_allclose(cos, cos_hf[0].double().numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(sin, sin_hf[0].double().numpy(), atol=1e-4, rtol=0)
    c32, s32 = _ours(cfg, 96).tables_fp32(np.array([0, 5, 127]))
    assert c32.dtype == np.float32 and np.array_equal(c32, cos[[0, 5, 127]].astype(np.float32))


def test_tables_are_exact_to_float64():
    """The recurrence keeps float64 accuracy: against math.cos of the exactly rounded angle."""
    r = Rope(64, 10000.0, (), MAX_POS)
    cos, sin = r.tables(MAX_POS)
    inv = r.inv_freq()
    p = np.arange(MAX_POS)[:, None]
    # math.cos(p * w) carries float64 rounding of the product (<= p ulp(w)); 1e-13 covers it at p < 128
    np.testing.assert_allclose(cos[:, :32], np.cos(p * inv), atol=1e-13, rtol=0)
    np.testing.assert_allclose(sin[:, :32], np.sin(p * inv), atol=1e-13, rtol=0)
    assert cos[0, 0] == 1.0 and sin[0, 0] == 0.0


def test_tables_beyond_max_positions_refused():
    with pytest.raises(FamilyError, match="exceed max_position_embeddings=128"):
        Rope(64, 10000.0, (("factor", 2.0), ("rope_type", "dynamic")), MAX_POS).tables(MAX_POS + 1)


@pytest.mark.parametrize("params,match", [
    ({"rope_type": "longrope", "rope_theta": 1e4, "short_factor": [1.0], "long_factor": [1.0]},
     r"rope_type='longrope' is not supported; allowed: \['default', 'linear', 'dynamic', 'llama3', 'yarn'\]"),
    ({"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5}, "partial_rotary_factor=0.5"),
    ({"rope_type": "linear", "rope_theta": 1e4, "factor": 2.0, "low_freq_factor": 1.0},
     r"parameter\(s\) \['low_freq_factor'\] are not supported"),
    ({"rope_type": "llama3", "rope_theta": 1e4, "factor": 2.0}, r"needs \['low_freq_factor'"),
    ({"rope_type": "default", "rope_theta": 0.5}, "rope_theta=0.5 must be a number above 1"),
])
def test_unsupported_rope_refused_by_name(params, match):
    with pytest.raises(FamilyError, match=match):
        read_rope({"rope_parameters": params}, "config.json")


def test_legacy_rope_scaling_layout():
    theta, sc = read_rope({"rope_theta": 5e5, "rope_scaling": {"type": "linear", "factor": 2.0}}, "c")
    assert theta == 5e5 and sc == {"rope_type": "linear", "factor": 2.0}
    assert read_rope({}, "c") == (10000.0, None)
    assert math.isclose(Rope(8, 1e4, tuple(sorted(sc.items())), 64).inv_freq()[0], 0.5)
