"""The family registry and descriptions, against configs and models transformers itself builds."""
from __future__ import annotations

import pytest

from llmaccel.testing.tiny_checkpoints import TINY_FAMILIES, hf_config
from llmaccel.simulator import families
from llmaccel.simulator.families import FamilyError, family_of
from llmaccel.simulator.specs import SpecError
from llmaccel.simulator.specs.model import model_spec_from_hf_config

EXPECTED = {  # family, norm, activation, gated, positions, biased projections, tied
    "llama": ("llama", "rmsnorm", "silu", True, "rope", (), False),
    "llama3": ("llama", "rmsnorm", "silu", True, "rope", (), True),
    "mistral": ("mistral", "rmsnorm", "silu", True, "rope", (), False),
    "qwen2": ("qwen2", "rmsnorm", "silu", True, "rope", ("q_proj", "k_proj", "v_proj"), False),
    "gpt2": ("gpt2", "layernorm", "gelu_tanh", False, "learned",
             ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"), True),
    "opt": ("opt", "layernorm", "relu", False, "learned",
            ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"), True),
}


def _spec(family: str, **kw):
    return model_spec_from_hf_config(hf_config(family, **kw).to_dict(), family)


@pytest.mark.parametrize("name", TINY_FAMILIES)
def test_description_of_each_family(name):
    spec = _spec(name)
    a = spec.arch
    got = (spec.family, a.norm.kind, a.activation, a.gated, a.positions, a.biased, spec.tie_word_embeddings)
    assert got == EXPECTED[name]


@pytest.mark.parametrize("name", TINY_FAMILIES)
def test_parameter_count_equals_transformers_model(name):
    """Every projection, bias, norm, position table and (untied) head the description lists exists:
    the count from the description equals the parameters of the transformers model."""
    from transformers import AutoModelForCausalLM
    cfg = hf_config(name)
    model = AutoModelForCausalLM.from_config(cfg)
    n_hf = sum(p.numel() for p in model.parameters())   # tied weights are one parameter
    assert _spec(name).num_params == n_hf


@pytest.mark.parametrize("name", TINY_FAMILIES)
def test_hf_paths_name_real_tensors(name):
    """Each weight/bias path the description gives is a tensor of the transformers state dict."""
    from transformers import AutoModelForCausalLM
    spec = _spec(name)
    a = spec.arch
    keys = set(AutoModelForCausalLM.from_config(hf_config(name)).state_dict())
    want = {a.embed + ".weight", a.final_norm + ".weight"}
    for i in range(spec.num_layers):
        pre = a.prefix(i)
        want |= {pre + a.attn_norm + ".weight", pre + a.mlp_norm + ".weight"}
        for p in a.projections:
            want.add(p.hf_weight(pre))
            if p.bias:
                want.add(p.hf_bias(pre))
    if a.learned_positions:
        want.add(a.learned_positions.hf + ".weight")
    assert want <= keys, sorted(want - keys)


def test_unsupported_model_type_lists_supported():
    with pytest.raises(FamilyError, match=r"model_type='phi3' is not supported; supported model_type: "
                                          r"\['gpt2', 'llama', 'mistral', 'opt', 'qwen2'\]"):
        family_of({"model_type": "phi3"})
    with pytest.raises(SpecError, match="model_type='gemma'"):
        model_spec_from_hf_config({"model_type": "gemma"}, "x")


@pytest.mark.parametrize("family,overrides,match", [
    ("llama", {"attention_bias": True}, "attention_bias=true is not supported"),
    ("llama", {"mlp_bias": True}, "mlp_bias=true is not supported"),
    ("llama", {"hidden_act": "gelu"}, "hidden_act='gelu' is not supported by llmaccel; allowed: \\['silu'\\]"),
    ("llama", {"hidden_act": "quick_gelu"}, "hidden_act='quick_gelu' is not supported"),
    ("opt", {"do_layer_norm_before": False}, "do_layer_norm_before=false is not supported"),
    ("opt", {"word_embed_proj_dim": 64}, "word_embed_proj_dim=64 is not supported"),
    ("opt", {"enable_bias": False}, "enable_bias=false"),
    ("gpt2", {"activation_function": "gelu_fast"}, "activation_function='gelu_fast' is not supported"),
    ("gpt2", {"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=true"),
    ("gpt2", {"reorder_and_upcast_attn": True}, "reorder_and_upcast_attn=true"),
])
def test_unimplemented_feature_refused_by_name(family, overrides, match):
    with pytest.raises(SpecError, match=match):
        _spec(family, **overrides)


def test_architectures_must_match_family():
    cfg = hf_config("llama").to_dict()
    cfg["architectures"] = ["LlamaForSequenceClassification"]
    with pytest.raises(FamilyError, match=r"allowed architectures: \['LlamaForCausalLM'\]"):
        family_of(cfg)


def test_sliding_window_kept_only_when_it_masks():
    assert _spec("mistral", sliding_window=4096).sliding_window is None          # >= max_position_embeddings
    s = _spec("mistral", sliding_window=64)
    assert s.sliding_window == 64 and s.max_context == 64
    assert _spec("qwen2", sliding_window=64).sliding_window is None              # use_sliding_window=False
    assert _spec("qwen2", sliding_window=64, use_sliding_window=True, max_window_layers=0).max_context == 64


def test_activation_variants():
    assert _spec("gpt2", activation_function="gelu").arch.activation == "gelu"
    assert _spec("gpt2", activation_function="relu").arch.activation == "relu"
    assert _spec("opt", activation_function="gelu").arch.activation == "gelu"


def test_registry_get_refuses_unknown_family():
    with pytest.raises(FamilyError, match=r"family='bloom' is not supported; allowed: \["):
        families.get("bloom")
