"""Compression of a real (small, random) transformers Llama into artifacts, and their integrity checks."""
import json
import shutil

import numpy as np
import pytest
import torch

from llmaccel.gpu_baseline.reference import ReferenceModel
from llmaccel.mapping.artifact_io import ArtifactError
from llmaccel.mapping.checkpoint import CheckpointError, SafetensorsCheckpoint
from llmaccel.mapping.compress import compress_checkpoint, load_compressed
from llmaccel.mapping.recipe import EVAL_RECIPES, NAMED_RECIPES, LayerRule, Recipe, RecipeError, get_recipe
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import PackedLinear


@pytest.fixture(scope="module")
def calib_ids():
    return torch.randint(0, 256, (1024,), generator=torch.Generator().manual_seed(5)).tolist()


@pytest.fixture(scope="module")
def artifacts(tiny_checkpoint, calib_ids, tmp_path_factory):
    root = tmp_path_factory.mktemp("art")
    out = {}
    for name in EVAL_RECIPES:
        out[name] = root / name.replace(":", "_")
        compress_checkpoint(tiny_checkpoint, NAMED_RECIPES[name], out[name], calibration=calib_ids)
    return out


def test_reader_matches_safetensors_library(tiny_checkpoint):
    from safetensors.numpy import load_file
    ref = load_file(str(tiny_checkpoint / "model.safetensors"))
    ck = SafetensorsCheckpoint(tiny_checkpoint)
    for name, arr in ref.items():
        assert np.array_equal(ck.get(name), arr.astype(np.float32))


def test_every_recipe_round_trips_and_stays_close_to_fp32(artifacts, tiny_checkpoint):
    ids = torch.randint(0, 256, (48,), generator=torch.Generator().manual_seed(0))
    base, _ = ReferenceModel.from_checkpoint(tiny_checkpoint).prefill(ids)
    err = {}
    for name, path in artifacts.items():
        cm = load_compressed(path)
        logits, _ = ReferenceModel.from_compressed(cm).prefill(ids)
        err[name] = float((logits - base).abs().max() / base.abs().max())
    assert err["fp32"] < 1e-5
    assert err["w8"] < err["w4-g128-rtn"] < err["w3-g128-rtn"]
    assert err["w8"] < 0.1


def test_sparsity_and_bits_are_what_the_recipe_asks(artifacts):
    cm = load_compressed(artifacts["2:4+w4"])
    q = cm.linears["layers.0.self_attn.q_proj"]
    assert isinstance(q, PackedLinear) and q.fmt.nm == (2, 4) and q.fmt.bits == 4
    dense = q.dense_int8()
    assert np.all((dense.reshape(dense.shape[0], -1, 4) != 0).sum(-1) <= 2)
    assert cm.stats["sparsity"] == pytest.approx(0.5)
    mixed = load_compressed(artifacts["mixed-3.5"])
    assert mixed.stats["avg_bits"] <= 3.5 + 1e-9
    bits = {k: w.fmt.bits for k, w in mixed.linears.items() if k != "lm_head"}
    assert bits == mixed.recipe.layer_bits and len(set(bits.values())) > 1


def test_recipe_yaml_round_trip(tmp_path):
    import yaml
    r = NAMED_RECIPES["2:4+w4"]
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(r.to_dict()))
    assert get_recipe(str(p)) == r


def test_corrupted_artifact_is_refused(artifacts, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(artifacts["w4-g128-rtn"], bad)
    shard = bad / "layer_000.safetensors"
    data = bytearray(shard.read_bytes())
    data[-10] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="layer_000.safetensors' does not match its content hash"):
        load_compressed(bad)


def test_truncated_or_missing_artifact_files_are_refused(artifacts, tmp_path):
    bad = tmp_path / "trunc"
    shutil.copytree(artifacts["w8"], bad)
    head = bad / "head.safetensors"
    head.write_bytes(head.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="head.safetensors"):
        load_compressed(bad)
    (bad / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="has no manifest.json"):
        load_compressed(bad)


def test_schema_version_mismatch_is_refused(artifacts, tmp_path):
    bad = tmp_path / "ver"
    shutil.copytree(artifacts["w8"], bad)
    man = json.loads((bad / "manifest.json").read_text())
    man["schema_version"] = 99
    (bad / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ArtifactError, match="schema_version 99"):
        load_compressed(bad)


def test_unsupported_family_config_is_rejected(tmp_path):
    from transformers import PhiConfig
    d = tmp_path / "phi"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(PhiConfig().to_dict()))
    (d / "model.safetensors").write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(LlmaccelError, match=r"model_type='phi' is not supported; supported model_type: \['gpt2', "):
        compress_checkpoint(d, NAMED_RECIPES["w8"], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_missing_and_truncated_checkpoints(tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        SafetensorsCheckpoint(tmp_path / "nope")
    d = tmp_path / "trunc"
    shutil.copytree(tiny_checkpoint, d)
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        SafetensorsCheckpoint(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no .safetensors weights"):
        SafetensorsCheckpoint(d)


@pytest.mark.parametrize("rule, match", [
    (dict(bits=5), r"bits=5 is not supported; allowed: \[2, 3, 4, 8\]"),
    (dict(bits=4, nm=(3, 4)), r"N:M pattern 3:4 is not supported"),
    (dict(bits=8, symmetric=False), r"symmetric=false needs bits in \[2, 3, 4\]"),
    (dict(bits=4, method="awq"), r"method='awq' is not supported; allowed: \['rtn', 'gptq'\]"),
])
def test_bad_recipe_fields_are_named(rule, match):
    with pytest.raises(RecipeError, match=match):
        LayerRule(**rule)


def test_group_size_that_does_not_divide_the_model_is_rejected(tiny_checkpoint, tmp_path):
    rule = LayerRule(bits=4, group_size=96)
    with pytest.raises(LlmaccelError, match="group_size=96 must be positive and divide in_features=128"):
        compress_checkpoint(tiny_checkpoint, Recipe("g96", attn=rule, mlp=rule, act_bits=8), tmp_path / "o")
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))


def test_unknown_recipe_lists_the_allowed_ones():
    with pytest.raises(RecipeError, match="unknown recipe 'w5'; allowed: .*'w4-g128-gptq'"):
        get_recipe("w5")


def test_compression_is_deterministic(tiny_checkpoint, calib_ids, tmp_path):
    a = compress_checkpoint(tiny_checkpoint, NAMED_RECIPES["2:4+w4"], tmp_path / "a", calibration=calib_ids)
    b = compress_checkpoint(tiny_checkpoint, NAMED_RECIPES["2:4+w4"], tmp_path / "b", calibration=calib_ids)
    assert a["content_hash"] == b["content_hash"]
