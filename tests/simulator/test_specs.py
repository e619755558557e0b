"""Model and device specs: presets, Hugging Face configs, and one clear error per bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmaccel.simulator.specs import (FpgaDevice, GpuDevice, SpecError, list_devices, list_models,
                             load_device, load_model_spec, model_spec_from_hf_config, sourced_facts)
from llmaccel.simulator.specs._yaml import PRESETS_DIR
from llmaccel.errors import LlmaccelError

HARDWARE_YAML = Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "hardware.yaml"  # ../shared of the repository


# ----- models -------------------------------------------------------------------------------
def test_model_presets_present():
    assert {"llama2-7b", "llama2-13b", "llama-3.2-1b", "tiny"} <= set(list_models())


@pytest.mark.parametrize("name", ["llama2-7b", "llama2-13b", "llama-3.2-1b", "tiny", "tiny-mha"])
def test_model_preset_matches_transformers_param_count(name):
    """num_params and linear_shapes agree with a real LlamaForCausalLM built on the meta device."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = load_model_spec(name)
    assert spec.source
    cfg = LlamaConfig(**spec.to_hf_config())
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    assert spec.num_params == sum(p.numel() for p in model.parameters())
    layer = model.model.layers[0]
    mods = {**dict(layer.self_attn.named_children()), **dict(layer.mlp.named_children())}
    for lname, out_f, in_f in spec.linear_shapes():
        assert tuple(mods[lname].weight.shape) == (out_f, in_f), lname


def test_published_param_counts():
    # Published sizes: 6.74B (Llama2-7B), 13.0B (Llama2-13B), 1.24B (Llama-3.2-1B).
    assert load_model_spec("llama2-7b").num_params == pytest.approx(6.74e9, rel=2e-3)
    assert load_model_spec("llama2-13b").num_params == pytest.approx(13.0e9, rel=3e-3)
    assert load_model_spec("llama-3.2-1b").num_params == pytest.approx(1.24e9, rel=5e-3)  # published "1.24B" is rounded


def test_llama32_rope_and_tied():
    spec = load_model_spec("llama-3.2-1b")
    assert spec.tie_word_embeddings is True
    assert spec.rope_scaling["rope_type"] == "llama3" and spec.rope_scaling["factor"] == 32.0
    assert spec.gqa_group_size == 4 and spec.kv_dim == 512
    assert spec.kv_cache_bytes_per_token(1) == 2 * 16 * 512


def test_tiny_shapes():
    s = load_model_spec("tiny")
    assert (s.hidden_size, s.intermediate_size, s.num_layers, s.num_heads, s.num_kv_heads,
            s.vocab_size, s.max_position_embeddings) == (256, 768, 4, 8, 4, 2048, 512)


def test_hf_llama_config_dict_loads(tmp_path):
    from transformers import LlamaConfig

    cfg = LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=3, num_attention_heads=8,
                      num_key_value_heads=2, vocab_size=1000, max_position_embeddings=16384,
                      tie_word_embeddings=True,
                      rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                       "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                       "original_max_position_embeddings": 8192}).to_dict()
    ckpt = tmp_path / "my-ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps(cfg))
    for arg in (ckpt, ckpt / "config.json", str(ckpt)):
        spec = load_model_spec(arg)
        assert spec.name == "my-ckpt"
        assert (spec.hidden_size, spec.num_layers, spec.num_kv_heads, spec.head_dim) == (512, 3, 2, 64)
        assert spec.rope_theta == 500000.0 and spec.rope_scaling["rope_type"] == "llama3"
        assert spec.tie_word_embeddings is True


def test_hf_default_llama_config_and_legacy_layout():
    from transformers import LlamaConfig

    spec = model_spec_from_hf_config(LlamaConfig().to_dict(), name="default")
    assert spec.hidden_size == 4096 and spec.rope_theta == 10000.0 and spec.rope_scaling is None
    # transformers 4.x layout: rope_theta and rope_scaling at top level, architectures given.
    legacy = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 2048,
              "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
              "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
              "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": True,
              "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                               "original_max_position_embeddings": 8192, "rope_type": "llama3"}}
    spec = model_spec_from_hf_config(legacy, name="llama-3.2-1b")
    preset = load_model_spec("llama-3.2-1b")
    for f in ("hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
              "vocab_size", "max_position_embeddings", "rope_theta", "rope_scaling", "tie_word_embeddings"):
        assert getattr(spec, f) == getattr(preset, f), f


def test_unsupported_config_rejected_naming_model_type(tmp_path):
    from transformers import PhiConfig

    (tmp_path / "config.json").write_text(json.dumps(PhiConfig().to_dict()))
    with pytest.raises(LlmaccelError, match=r"model_type='phi' is not supported; supported model_type: "
                                            r"\['gpt2', 'llama', 'mistral', 'opt', 'qwen2'\]"):
        load_model_spec(tmp_path)


def test_non_llama_architecture_rejected():
    from transformers import LlamaConfig

    cfg = LlamaConfig().to_dict()
    cfg["architectures"] = ["MistralForCausalLM"]
    with pytest.raises(SpecError, match=r"architectures=.*allowed architectures: \['LlamaForCausalLM'\]"):
        model_spec_from_hf_config(cfg, "x")


@pytest.mark.parametrize("mutate,match", [
    (lambda c: c.pop("hidden_size"), r"missing field 'hidden_size'"),
    (lambda c: c.update(num_key_value_heads=3), r"num_heads=32 must be a multiple of num_kv_heads=3"),
    (lambda c: c.update(hidden_act="gelu"), r"hidden_act='gelu'.*allowed: \['silu'\]"),
    (lambda c: c.update(attention_bias=True), r"attention_bias=true is not supported"),
    (lambda c: c.update(vocab_size="big"), r"field 'vocab_size' must be an integer"),
    (lambda c: c.update(num_hidden_layers=0), r"num_layers=0 must be a positive integer"),
])
def test_bad_hf_config_one_error(mutate, match):
    from transformers import LlamaConfig

    cfg = LlamaConfig().to_dict()
    mutate(cfg)
    with pytest.raises(SpecError, match=match):
        model_spec_from_hf_config(cfg, "x")


def test_missing_and_malformed_config_files(tmp_path):
    with pytest.raises(SpecError, match="directory has no config.json"):
        load_model_spec(tmp_path)
    with pytest.raises(SpecError, match="file not found"):
        load_model_spec(tmp_path / "nope" / "config.json")
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama", "hidden_size": 4')
    with pytest.raises(SpecError, match=r"malformed JSON at line 1"):
        load_model_spec(bad)


def test_unknown_model_preset_lists_names():
    with pytest.raises(SpecError, match=r"unknown model preset 'llama9'; available: .*llama2-7b.*tiny"):
        load_model_spec("llama9")


def test_model_yaml_errors_name_file_and_field(tmp_path):
    base = yaml.safe_load((PRESETS_DIR / "models/tiny.yaml").read_text())
    cases = [
        ({**base, "hidden_sz": 3}, r"unknown field 'hidden_sz'"),
        ({k: v for k, v in base.items() if k != "num_heads"}, r"missing field 'num_heads'"),
        ({**base, "rope_theta": "high"}, r"field 'rope_theta' must be a number, got 'high'"),
        ({**base, "tie_word_embeddings": "yes"}, r"field 'tie_word_embeddings' must be true or false"),
    ]
    for i, (data, match) in enumerate(cases):
        p = tmp_path / f"m{i}.yaml"
        p.write_text(yaml.safe_dump(data))
        with pytest.raises(SpecError, match=rf"m{i}\.yaml: {match}"):
            load_model_spec(p)
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nhidden_size: [1, 2\n")
    with pytest.raises(SpecError, match=r"broken\.yaml: malformed YAML at line"):
        load_model_spec(p)


# ----- devices ------------------------------------------------------------------------------
EXPECTED_DEVICES = {"alveo-u280", "alveo-u55c", "versal-vhk158", "versal-vck5000", "v100s-pcie-32gb",
                    "a100-sxm-80gb", "a100-pcie-40gb", "h100-sxm-80gb"}


def test_device_presets_load_with_sources():
    assert EXPECTED_DEVICES <= set(list_devices())
    for name in list_devices():
        dev = load_device(name)
        assert dev.name == name
        facts = sourced_facts(dev)
        assert facts
        for path, (value, source) in facts.items():
            assert source, (name, path)
            if value is None:
                assert source == "not found", (name, path)
            else:
                assert source != "not found", (name, path)


def _anchor():
    return yaml.safe_load(HARDWARE_YAML.read_text())


def test_device_presets_agree_with_hardware_anchors():
    """Every number that hardware.yaml states is carried unchanged by the presets."""
    a = _anchor()
    u280, a280 = load_device("alveo-u280"), a["fpga"]["alveo_u280"]
    assert isinstance(u280, FpgaDevice)
    assert u280.part == a280["part"]
    for k in ("capacity_GB", "pseudo_channels", "per_channel_GBps", "total_GBps"):
        assert getattr(u280.hbm, k) == a280["hbm"][k]
    full = a280["resources_full_device"]
    assert (u280.resources_full_device.LUT, u280.resources_full_device.FF, u280.resources_full_device.DSP,
            u280.resources_full_device.BRAM36, u280.resources_full_device.URAM) == (
        full["LUT"], full["FF"], full["DSP48E2"], full["BRAM36"], full["URAM"])
    user = a280["resources_user_region_xdma_gen3x16_shell"]
    assert (u280.resources_user_region.DSP, u280.resources_user_region.BRAM36,
            u280.resources_user_region.URAM) == (user["DSP48E2"], user["BRAM36"], user["URAM"])
    assert u280.resources_user_region.source == user["source"]
    assert u280.hbm.source == a280["hbm"]["source"]
    assert u280.ddr.capacity_GB == a280["ddr4"]["capacity_GB"]
    assert u280.power.board_max_W == a280["board_max_power_W"]
    assert u280.available("DSP") == (8304, "AMD UG1120 (second_hand)", "user region (xdma_gen3x16 shell)")
    assert u280.available("LUT")[0] == full["LUT"]  # user-region LUTs not found: full device

    u55c, a55 = load_device("alveo-u55c"), a["fpga"]["alveo_u55c"]
    assert u55c.hbm.capacity_GB == a55["hbm"]["capacity_GB"] and u55c.hbm.total_GBps == a55["hbm"]["total_GBps"]
    assert u55c.resources_full_device.DSP == a55["resources_full_device"]["DSP48E2"]
    assert u55c.resources_full_device.source_of("LUT").startswith("guess")

    vhk, avhk = load_device("versal-vhk158"), a["fpga"]["versal_vhk158"]
    assert vhk.hbm.total_GBps == avhk["hbm"]["total_GBps"] and vhk.hbm.capacity_GB == avhk["hbm"]["capacity_GB"]
    assert vhk.resources_full_device.DSP is None and avhk["dsp58_count"] is None
    assert vhk.clock.dsp_fmax_MHz == avhk["dsp58_fmax_MHz"]["speed_grade_-2"]

    vck, avck = load_device("versal-vck5000"), a["fpga"]["versal_vck5000"]
    assert (vck.aie.tiles, vck.aie.int8_TOPS, vck.resources_full_device.DSP, vck.ddr.capacity_GB) == (
        avck["aie_tiles"], avck["aie_int8_TOPS"], avck["dsp58"], avck["ddr4_usable_GB"])
    assert vck.hbm is None

    g = a["gpu"]
    pairs = {"v100s-pcie-32gb": "v100s_pcie_32GB", "a100-sxm-80gb": "a100_sxm_80GB",
             "a100-pcie-40gb": "a100_pcie_40GB", "h100-sxm-80gb": "h100_sxm_80GB"}
    for preset, key in pairs.items():
        dev = load_device(preset)
        assert isinstance(dev, GpuDevice)
        for fact, value in g[key].items():
            attr = {"fp16_tensor_TFLOPS": "fp16_tensor_TFLOPS_dense"}.get(fact, fact)
            assert getattr(dev, attr) == value, (preset, fact)


def test_unknown_device_lists_available():
    with pytest.raises(SpecError, match=r"unknown device preset 'u250'; available: a100-pcie-40gb, .*alveo-u280"):
        load_device("u250")


def test_device_yaml_errors_name_file_and_field(tmp_path):
    base = yaml.safe_load((PRESETS_DIR / "devices/alveo-u280.yaml").read_text())

    def write(name, data):
        p = tmp_path / name
        p.write_text(yaml.safe_dump(data))
        return p

    cases = {
        "kind.yaml": ({**base, "kind": "asic"}, r"field 'kind' must be one of 'fpga', 'gpu', got 'asic'"),
        "hbmtype.yaml": ({**base, "hbm": {**base["hbm"], "total_GBps": "fast"}},
                         r"field 'hbm.total_GBps' must be a number or null, got 'fast'"),
        "unknown.yaml": ({**base, "hbm": {**base["hbm"], "bandwidth": 1}}, r"unknown field 'hbm.bandwidth'"),
        "missing.yaml": ({k: v for k, v in base.items() if k != "part"}, r"missing field 'part'"),
        "neg.yaml": ({**base, "hbm": {**base["hbm"], "capacity_GB": -8}},
                     r"invalid value in 'hbm': capacity_GB=-8.0 must be >= 0"),
        "srckey.yaml": ({**base, "hbm": {**base["hbm"], "sources": {"speed": "x"}}},
                        r"invalid value in 'hbm': sources.speed: no such field"),
    }
    for fname, (data, match) in cases.items():
        with pytest.raises(SpecError, match=rf"{fname}: {match}"):
            load_device(write(fname, data))
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match=r"list\.yaml: top level must be a mapping"):
        load_device(p)
