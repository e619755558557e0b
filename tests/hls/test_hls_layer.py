"""The composed decoder-layer top (C-sim, MV/decode path) against the goldens and the PyTorch reference.

1. Against simulator.golden.decoder_layer (the unit goldens wired in the
   contract's order), random packed weights of mixed formats, several decode
   steps sharing the INT8 KV cache: the KV cache codes must be identical and
   the hidden state within the contract's whole-model bound (an exp ULP can
   flip one rint downstream; on this machine every step is bit-identical).
2. Against gpu_baseline.reference for the first layer of a real compressed
   Llama (mapping.compress): the bundled tiny-llama when its checkpoint is
   present, otherwise a randomly initialised transformers LlamaForCausalLM of
   the same shape. The HLS layer's output goes through the golden final norm
   and INT8 lm_head; the logits must match a one-layer reference within
   1e-3 of the max logit (docs/numerics.md section 5) and give the same greedy token.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from llmaccel.hls_kernels.configs import PROJECTIONS, ProjectionFormat, DecoderLayerConfig, layer_config_from_packed
from llmaccel.hls_kernels.csim import DecoderLayerKernel
from llmaccel.hls_kernels.vectors import random_activation, random_packed_linear
from llmaccel.simulator.golden import sfu
from llmaccel.simulator.golden.decoder_layer import LayerKVCache, decoder_layer_decode
from llmaccel.simulator.golden.linear import int8_linear

pytestmark = pytest.mark.gxx
HIDDEN, INTER, HEADS, KV_HEADS, HEAD_DIM, SEQ_MAX = 256, 768, 8, 4, 32, 64
LOGIT_BOUND = 1e-3  # relative to max |logit|, docs/numerics.md section 5

MIXED = (
    ("q_proj", ProjectionFormat(4, 128, True, (2, 4))),
    ("k_proj", ProjectionFormat(8, 64, True, None, chain=8)),
    ("v_proj", ProjectionFormat(3, 64, False, (4, 8))),
    ("o_proj", ProjectionFormat(4, 64, True, None)),
    ("gate_proj", ProjectionFormat(2, 128, False, (8, 16))),
    ("up_proj", ProjectionFormat(4, 128, False, (4, 16))),
    ("down_proj", ProjectionFormat(3, 128, True, (2, 16))),
)


def mixed_layer_case(rng: np.random.Generator):
    """The MIXED-format layer with random weights and norms: (layers, w_in, w_post, the C-sim kernel, an
    empty golden KV cache, RoPE cos, sin). Shared with test_hls_layer_eps_oracle."""
    cfg = DecoderLayerConfig(HIDDEN, INTER, HEADS, KV_HEADS, HEAD_DIM, SEQ_MAX, MIXED)
    layers = {p: random_packed_linear(rng, cfg.linear_config(p).layer_format(*cfg.shape(p)), (2e-3, 2e-2))
              for p in PROJECTIONS}
    w_in, w_post = (rng.uniform(0.5, 1.5, HIDDEN).astype(np.float32) for _ in range(2))
    kernel = DecoderLayerKernel(cfg, layers, w_in, w_post, 1e-5)
    cos, sin = sfu.rope_tables(np.arange(SEQ_MAX), HEAD_DIM)
    return layers, w_in, w_post, kernel, LayerKVCache(SEQ_MAX, KV_HEADS, HEAD_DIM), cos, sin


def test_layer_matches_golden_layer_over_decode_steps():
    rng = np.random.default_rng(2024)
    layers, w_in, w_post, kernel, cache, cos, sin = mixed_layer_case(rng)
    for pos in range(6):
        x = random_activation(rng, (HIDDEN,), 1.0)
        got = kernel.step(x, pos, cos[pos], sin[pos])
        want = decoder_layer_decode(x, pos, layers, w_in, w_post, 1e-5, cos[pos], sin[pos], cache,
                                    HEADS, KV_HEADS, HEAD_DIM)
        assert np.array_equal(kernel.k_cache[: pos + 1], cache.k8[: pos + 1]), f"K cache codes differ at pos {pos}"
        assert np.array_equal(kernel.v_cache[: pos + 1], cache.v8[: pos + 1]), f"V cache codes differ at pos {pos}"
        assert np.abs(got - want).max() <= LOGIT_BOUND * np.abs(want).max(), f"layer output differs at pos {pos}"
        assert not np.array_equal(got, x)  # the layer did something


# ----------------------------------------------------------------------------- vs the PyTorch reference

def _checkpoint_dir(tmp_path_factory):
    """The bundled tiny-llama if its weights exist, else a random transformers Llama of the same shape."""
    from llmaccel.assets import bundled_model_dir

    bundled = bundled_model_dir()
    if (bundled / "model.safetensors").is_file() and (bundled / "config.json").is_file():
        return bundled, "bundled tiny-llama"
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=512, hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=1,
                      num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
                      max_position_embeddings=512, rms_norm_eps=1e-5, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # give the norms non-trivial weights so the test sees them
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    out = tmp_path_factory.mktemp("random_llama")
    model.save_pretrained(out, safe_serialization=True)
    return out, "random-init transformers Llama (bundled checkpoint absent)"


@pytest.fixture(scope="module")
def compressed(tmp_path_factory):
    from llmaccel.mapping.calibration import LINEAR_PATHS
    from llmaccel.mapping.compress import compress_checkpoint, load_compressed
    from llmaccel.mapping.recipe import LayerRule, Recipe, get_recipe

    ckpt, source = _checkpoint_dir(tmp_path_factory)
    named = os.environ.get("LLMACCEL_HLS_LAYER_RECIPE")  # opt-in, e.g. "flightllm" (GPTQ: ~2 min here)
    calibration = None
    if named:
        from llmaccel.assets import calibration_text_path

        recipe, calibration = get_recipe(named), calibration_text_path().read_text()
    else:
        # RTN (no calibration, seconds), two formats so the layer top carries mixed projections
        recipe = Recipe("hls-layer-test",
                        attn=LayerRule(bits=4, group_size=128, symmetric=True, method="rtn", nm=(2, 4)),
                        mlp=LayerRule(bits=3, group_size=128, symmetric=False, method="rtn", nm=(8, 16)),
                        act_bits=8, kv_bits=8, lm_head_bits=8)
    out = tmp_path_factory.mktemp("compressed") / "model"
    compress_checkpoint(ckpt, recipe, out, calibration=calibration)
    model = load_compressed(out)
    layer0 = {leaf: model.linears[f"layers.0.{path}"] for leaf, path in LINEAR_PATHS.items()}
    return model, layer0, source


def _token_ids(model, source: str, vocab_size: int, n: int = 12) -> list[int]:
    """Real text for the trained model (held-out text through its tokenizer), random ids otherwise."""
    if source.startswith("bundled"):
        from transformers import AutoTokenizer

        from llmaccel.assets import bundled_model_dir, heldout_text_path

        tok = AutoTokenizer.from_pretrained(str(bundled_model_dir()), local_files_only=True)
        ids = tok(heldout_text_path().read_text()[:2000])["input_ids"][:n]
        if len(ids) == n:
            return [int(i) for i in ids]
    return [int(i) for i in np.random.default_rng(7).integers(0, vocab_size, size=n)]


def test_layer_matches_pytorch_reference_first_layer(compressed):
    import torch

    from llmaccel.gpu_baseline.reference import ReferenceModel

    model, layer0, source = compressed
    shape = model.shape
    cfg = layer_config_from_packed(layer0, shape.num_heads, shape.num_kv_heads, shape.head_dim, SEQ_MAX)
    t = model.tensors
    kernel = DecoderLayerKernel(cfg, layer0, t["layers.0.input_layernorm"], t["layers.0.post_attention_layernorm"],
                                shape.rms_norm_eps)
    ref = ReferenceModel.from_compressed(model)
    one_layer = ReferenceModel(dataclasses.replace(ref.shape, num_layers=1), ref.embed, ref.norms, ref.linears,
                               ref.act_int8, ref.kv_int8, ref.device, ref.name)
    cache = one_layer.new_cache(SEQ_MAX)
    # the host's RoPE tables, as the compiler would write them (covers rope_scaling too)
    from llmaccel.mapping import llama_math as lm

    cos_t, sin_t = lm.rope_cos_sin(shape, torch.arange(SEQ_MAX), lm.inv_freq(shape))
    cos, sin = cos_t.numpy(), sin_t.numpy()
    embed = t["embed_tokens"].astype(np.float32)
    ids = _token_ids(model, source, shape.vocab_size)
    for pos, tok in enumerate(ids):
        h = kernel.step(embed[tok], pos, cos[pos], sin[pos])
        logits = int8_linear(model.linears["lm_head"], sfu.rmsnorm(h, t["norm"], shape.rms_norm_eps))[0]
        want = one_layer.forward(torch.tensor([int(tok)]), cache)[0].numpy()
        err = np.abs(logits - want).max() / np.abs(want).max()
        assert err <= LOGIT_BOUND, f"{source}: pos {pos} logits differ by {err:.2e} of max"
        assert int(np.argmax(logits)) == int(np.argmax(want)), f"{source}: greedy token differs at pos {pos}"
