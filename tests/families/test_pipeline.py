"""Every family end to end on the numerics side: checkpoint -> reference (== transformers) -> compress ->
compressed reference; and the float64 calibration forward against transformers' own layer.

Bounds, measured on these checkpoints and argued:
* Uncompressed reference vs transformers, relative to max |logit|: measured <= 7.7e-7 over the six
  families (FP32 matmuls summed in another order, RoPE tables correct to float64 where transformers'
  carry its float32 angle rounding). 1e-5 leaves a factor 13; a wrong bias, norm, eps, offset or
  activation variant moves logits by > 2e-4 (checked by hand: erf GELU for GPT-2 gives 2.5e-4).
* Calibration layer (float64, portable math) vs transformers' layer run in float64: GPT-2/OPT
  (no RoPE) measured < 1e-13 relative, bound 1e-10. With RoPE, transformers computes its cos/sin
  in float32 even in a float64 model (autocast off, inv_freq a float32 buffer), an error of up to
  |angle| * 2^-24 ~ 1e-6 at position 15: measured 1.9e-7, bound 1e-6.
* w8 (INT8 weights, INT8 activations and KV) vs FP32: measured 0.029..0.036 of max |logit|; 0.1.
* FP16 weights/activations/KV vs FP32: measured < 2e-3; 1e-2.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from llmaccel.gpu_baseline.reference import ReferenceModel
from llmaccel.testing.tiny_checkpoints import TINY_FAMILIES, build_tiny_checkpoint, load_hf
from llmaccel.mapping.compress import compress_checkpoint, load_compressed
from llmaccel.mapping.recipe import NAMED_RECIPES
from llmaccel.errors import LlmaccelError

IDS = [3, 17, 99, 5, 200, 42, 7, 8, 1, 250, 64, 33, 120, 9, 77, 31, 2, 199, 45, 180]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _hf_logits(ckpt, ids) -> torch.Tensor:
    with torch.no_grad():
        return load_hf(ckpt)(torch.tensor([ids])).logits[0]


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_uncompressed_reference_equals_transformers(tiny_family_checkpoints, family):
    ckpt = tiny_family_checkpoints[family]
    want = _hf_logits(ckpt, IDS)
    ref = ReferenceModel.from_checkpoint(ckpt)
    got, _ = ref.prefill(IDS)
    assert _rel(got, want) < 1e-5
    # prefill of 12 then decode one token at a time through the KV cache: the same logits
    logits, cache = ref.prefill(IDS[:12], len(IDS))
    rows = [logits[-1]]
    for tok in IDS[12:]:
        rows.append(ref.forward(torch.tensor([tok]), cache)[-1])
    assert _rel(torch.stack(rows), want[11:]) < 1e-5


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_calibration_layer_equals_transformers_layer(tiny_family_checkpoints, family):
    """llmaccel.mapping.calibration.layer_forward (float64, portable) against transformers' decoder layer 0 in float64."""
    from llmaccel.mapping.calibration import embed_inputs, layer_forward
    from llmaccel.mapping.checkpoint import SafetensorsCheckpoint, layer_tensors, model_tensors
    ckpt = SafetensorsCheckpoint(tiny_family_checkpoints[family])
    spec = ckpt.spec
    hf = load_hf(ckpt.dir).double()
    ids = torch.tensor([IDS[:16], IDS[4:]])
    with torch.no_grad():
        hs = hf(ids, output_hidden_states=True).hidden_states
    t = model_tensors(ckpt, spec, head=False)
    pos = t.get("embed_positions")
    x = embed_inputs(ids, torch.from_numpy(t["embed_tokens"]), None if pos is None else torch.from_numpy(pos))
    np.testing.assert_allclose(x.numpy(), hs[0].numpy(), rtol=0, atol=1e-12)
    w = {k: torch.from_numpy(v) for k, v in layer_tensors(ckpt, spec, 0).items()}
    out = layer_forward(x, w, spec)
    assert _rel(out, hs[1]) < (1e-6 if spec.arch.positions == "rope" else 1e-10)


@pytest.fixture(scope="module")
def compressed(tiny_family_checkpoints, tmp_path_factory):
    out = {}

    def get(family: str, recipe: str):
        if (family, recipe) not in out:
            dest = tmp_path_factory.mktemp("c") / f"{family}-{recipe}"
            r = NAMED_RECIPES[recipe]
            if r.needs_calibration:
                r = dataclasses.replace(r, calibration_tokens=256)
            compress_checkpoint(tiny_family_checkpoints[family], r, dest, calibration=IDS * 16)
            out[(family, recipe)] = load_compressed(dest)
        return out[(family, recipe)]
    return get


@pytest.mark.parametrize("family", TINY_FAMILIES)
@pytest.mark.parametrize("recipe,bound", [("w8", 0.1), ("w4-g128-rtn", 0.6), ("fp16", 1e-2)])
def test_compressed_reference_runs_and_is_stable(tiny_family_checkpoints, compressed, family, recipe, bound):
    cm = compressed(family, recipe)
    a = cm.shape.arch
    # the artifact holds what the family has: biases, LayerNorm biases, learned positions
    for leaf in a.biased:
        assert f"layers.0.{a.linear_keys[leaf]}.bias" in cm.tensors
    assert ("layers.1.input_layernorm.bias" in cm.tensors) == a.norm.has_bias
    assert ("embed_positions" in cm.tensors) == (a.positions == "learned")
    assert ("layers.0.mlp.gate_proj" in cm.linears) == a.gated
    ref = ReferenceModel.from_compressed(cm)
    got, _ = ref.prefill(IDS)
    assert _rel(got, _hf_logits(tiny_family_checkpoints[family], IDS)) < bound
    toks = list(ref.generate_greedy(IDS[:5], 8))
    assert toks == list(ReferenceModel.from_compressed(cm).generate_greedy(IDS[:5], 8))   # deterministic
    assert len(toks) == 8


@pytest.mark.parametrize("family", ["qwen2", "gpt2", "opt"])
def test_calibrated_recipe_on_biased_families(compressed, family):
    """GPTQ runs the calibration forward through biases, LayerNorm and learned positions; the artifact
    is the same bits when compressed again (same inputs + seed -> same bits)."""
    cm = compressed(family, "w4-g128-gptq")
    assert cm.stats["avg_bits"] == 4.0
    ref = ReferenceModel.from_compressed(cm)
    assert np.isfinite(ref.prefill(IDS)[0].numpy()).all()


def test_compress_twice_same_bits(tiny_family_checkpoints, tmp_path):
    r = dataclasses.replace(NAMED_RECIPES["w4-g128-gptq"], calibration_tokens=256)
    hashes = {compress_checkpoint(tiny_family_checkpoints["gpt2"], r, tmp_path / f"o{i}",
                                  calibration=IDS * 16)["content_hash"] for i in range(2)}
    assert len(hashes) == 1


def test_sliding_window_beyond_it_refused(tmp_path):
    ckpt = build_tiny_checkpoint("mistral", tmp_path / "m", sliding_window=16)
    ref = ReferenceModel.from_checkpoint(ckpt)
    assert ref.shape.sliding_window == 16
    got, _ = ref.prefill(IDS[:16])           # within the window the mask is the causal one: exact
    assert _rel(got, _hf_logits(ckpt, IDS[:16])) < 1e-5
    with pytest.raises(LlmaccelError, match="exceeds the sliding window of 16 positions"):
        ref.prefill(IDS)


def test_gpt2_base_model_checkpoint_names(tmp_path):
    """A GPT-2 saved from GPT2Model (names without 'transformer.', as the hub's gpt2 files are) reads the same."""
    from transformers import GPT2Model
    full = build_tiny_checkpoint("gpt2", tmp_path / "full")
    base = GPT2Model.from_pretrained(str(full), local_files_only=True, trust_remote_code=False)
    base.save_pretrained(tmp_path / "base", safe_serialization=True)
    import json
    cfg = json.loads((tmp_path / "base" / "config.json").read_text())
    (tmp_path / "base" / "config.json").write_text(json.dumps(dict(cfg, architectures=["GPT2LMHeadModel"])))
    from safetensors import safe_open
    with safe_open(str(tmp_path / "base" / "model.safetensors"), "np") as f:
        assert "wte.weight" in f.keys() and not any(k.startswith("transformer.") for k in f.keys())
    a = ReferenceModel.from_checkpoint(full).prefill(IDS)[0]
    b = ReferenceModel.from_checkpoint(tmp_path / "base").prefill(IDS)[0]
    assert torch.equal(a, b)


@pytest.mark.parametrize("family,act", [("gpt2", "gelu"), ("gpt2", "relu"), ("opt", "gelu"), ("gpt2", "gelu_pytorch_tanh")])
def test_activation_variants_equal_transformers(tmp_path, family, act):
    """The other activations a config may ask for, through the reference and the calibration forward."""
    from llmaccel.mapping.calibration import embed_inputs, layer_forward
    from llmaccel.mapping.checkpoint import SafetensorsCheckpoint, layer_tensors, model_tensors
    ckpt = build_tiny_checkpoint(family, tmp_path / family, activation_function=act)
    assert _rel(ReferenceModel.from_checkpoint(ckpt).prefill(IDS)[0], _hf_logits(ckpt, IDS)) < 1e-5
    ck = SafetensorsCheckpoint(ckpt)
    ids = torch.tensor([IDS])
    with torch.no_grad():
        hs = load_hf(ckpt).double()(ids, output_hidden_states=True).hidden_states
    t = model_tensors(ck, ck.spec, head=False)
    x = embed_inputs(ids, torch.from_numpy(t["embed_tokens"]), torch.from_numpy(t["embed_positions"]))
    w = {k: torch.from_numpy(v) for k, v in layer_tensors(ck, ck.spec, 0).items()}
    assert _rel(layer_forward(x, w, ck.spec), hs[1]) < 1e-10
