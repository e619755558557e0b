"""The FP16-weight, FP16-KV recipe (DFX-style datapaths): what it stores and what it refuses."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from llmaccel.gpu_baseline.reference import ReferenceModel
from llmaccel.mapping.compress import compress_checkpoint, load_compressed
from llmaccel.mapping.recipe import NAMED_RECIPES, LayerRule, Recipe, RecipeError


def test_fp16_recipe_fields():
    r = NAMED_RECIPES["fp16"]
    assert r.fp16_weights and not r.quantized and not r.needs_calibration
    assert (r.act_bits, r.kv_bits, r.kv_bytes_per_element) == (16, 16, 2.0)
    assert Recipe.from_dict(r.to_dict()) == r


@pytest.mark.parametrize("kw,match", [
    (dict(weight_dtype="bf16"), r"weight_dtype='bf16' is not supported; allowed: \['fp32', 'fp16'\]"),
    (dict(weight_dtype="fp16", attn=LayerRule(bits=8), mlp=LayerRule(bits=8)), "applies to unquantized weights"),
    (dict(kv_bits=4), "kv_bits=4 is not supported"),
    (dict(act_bits=4), "act_bits=4 is not supported"),
])
def test_fp16_recipe_bad_fields_refused(kw, match):
    with pytest.raises(RecipeError, match=match):
        Recipe("x", **kw)


def test_fp16_artifact_stores_fp16_and_reference_rounds_kv(tiny_family_checkpoints, tmp_path):
    ckpt = tiny_family_checkpoints["gpt2"]
    compress_checkpoint(ckpt, NAMED_RECIPES["fp16"], tmp_path / "c")
    cm = load_compressed(tmp_path / "c")
    assert cm.linears["layers.0.mlp.up_proj"].dtype == np.float16 and cm.linears["lm_head"].dtype == np.float16
    assert cm.tensors["embed_tokens"].dtype == np.float16 and cm.tensors["embed_positions"].dtype == np.float16
    assert cm.stats["avg_bits"] == 16.0
    ref = ReferenceModel.from_compressed(cm)
    _, cache = ref.prefill([3, 5, 7, 9])
    k = cache.k[0][:4]
    assert torch.equal(k, k.half().float())          # the cache holds FP16 values
    fp32 = dataclasses.replace(NAMED_RECIPES["fp16"], kv_bits=None, act_bits=None, name="fp16-w")
    compress_checkpoint(ckpt, fp32, tmp_path / "w")
    _, cache32 = ReferenceModel.from_compressed(load_compressed(tmp_path / "w")).prefill([3, 5, 7, 9])
    assert not torch.equal(cache32.k[0][:4], cache32.k[0][:4].half().float())
