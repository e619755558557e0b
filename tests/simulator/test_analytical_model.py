"""The Allo-study equations, checked against the per-layer MAC counts written out by hand."""
from pathlib import Path

import pytest

from llmaccel.mapping.compiler import formats_from_recipe
from llmaccel.mapping.sim_api import build_compiler
from llmaccel.simulator.analytical import estimate, layer_macs_decode, layer_macs_prefill
from llmaccel.simulator.specs.model import load_model_spec


def test_llama2_7b_layer_macs():
    s = load_model_spec("llama2-7b")
    d, f = 4096, 11008
    # decode: q/k/v 3d^2, o d^2, FFN (SwiGLU) 3 d f, QK^T and SV (l+1) d each
    assert layer_macs_decode(s, 511) == 3 * d * d + d * d + 3 * d * f + 2 * 512 * d
    # prefill: 3 l d^2 + l d^2 + 3 l d f + 2 l^2 d (full), half of the l^2 terms with a causal mask
    l = 512
    assert layer_macs_prefill(s, l) == 3 * l * d * d + l * d * d + 3 * l * d * f + 2 * l * l * d
    assert layer_macs_prefill(s, l, causal=True) == 3 * l * d * d + l * d * d + 3 * l * d * f + l * l * d
    # N:M only thins the weight MACs
    assert layer_macs_decode(s, 0, nm_frac=0.5) == 0.5 * (4 * d * d + 3 * d * f) + 2 * d


def test_gqa_shrinks_k_v_projections():
    s = load_model_spec("llama-3.2-1b")   # 32 heads, 8 KV heads, head_dim 64
    d, dkv, f = 2048, 512, 8192
    assert layer_macs_decode(s, 0) == d * (d + 2 * dkv) + d * d + 3 * d * f + 2 * d


def test_non_gated_mlp_families_have_two_ffn_matmuls():
    """GPT-2 / OPT: up and down only (no gate), multi-head attention; written out by hand."""
    from llmaccel.testing.tiny_checkpoints import hf_config
    from llmaccel.simulator.specs.model import model_spec_from_hf_config
    for fam in ("gpt2", "opt"):
        s = model_spec_from_hf_config(hf_config(fam).to_dict(), fam)
        d, f = s.hidden_size, s.intermediate_size
        assert layer_macs_decode(s, 9) == 4 * d * d + 2 * d * f + 2 * 10 * d
        assert layer_macs_prefill(s, 8) == 8 * (4 * d * d + 2 * d * f) + 2 * 64 * d


BIG = str(Path(__file__).resolve().parent / "data" / "big-u280.yaml")


def test_bandwidth_and_decoder_port_bounds_by_hand():
    comp, _, _ = build_compiler("llama2-7b", BIG, "w4-g128-rtn", check_fit=False)
    a = estimate(comp.spec, comp.hw, comp.f, 512, 64)
    # bandwidth: (weights + KV of every layer at each context) / peak HBM (32 x 14.375 GB/s)
    kv_row = 128 + 4
    by = sum(comp.f.weight_bytes + 2 * 32 * 32 * (512 + i + 1) * kv_row for i in range(64))
    assert a["decode"]["t_bandwidth_s"] == pytest.approx(by / 460e9)
    # decoder port: per row max(beats of 16, 32-bit code words), 4-bit dense rows of K=4096 -> 512,
    # K=11008 -> 1376; INT8 lm_head rows of 4096 -> 1024; 4 cores x 96 decoders at 225 MHz
    per_layer = 4 * 4096 * 512 + 2 * 11008 * 512 + 4096 * 1376
    cycles = 32 * per_layer + 32000 * 1024
    assert a["decode"]["t_port_s"] == pytest.approx(64 * cycles / (4 * 96 * 225e6))
    assert a["decode_bound"] == "port" and a["prefill_bound"] == "compute"


def test_more_bandwidth_or_macs_never_slower():
    spec = load_model_spec("llama2-7b")
    comp, _, _ = build_compiler(spec, "flightllm-u280", "w4-g128-rtn", check_fit=False)
    comp2, _, _ = build_compiler(spec, "flightllm-vhk158", "w4-g128-rtn", check_fit=False)
    f = formats_from_recipe(spec, "w4-g128-rtn")
    a1 = estimate(spec, comp.hw, f, 256, 32)
    a2 = estimate(spec, comp2.hw, f, 256, 32)
    assert a2["decode_ms_per_token"] < a1["decode_ms_per_token"] and a2["ttft_s"] < a1["ttft_s"]
