"""`llmaccel hls emit --compressed ART --design D`: the user's own model on the user's design.

The emitted layer top carries the model's own packed words and norms (checked against the
artifact, not against the emitter), its testbench passes under g++, the streaming decoder
emits with its own testbench and passes, and a model the design cannot run is refused.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from llmaccel.cli import main

pytestmark = pytest.mark.gxx


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from llmaccel.assets import bundled_model_dir
    from llmaccel.mapping.compress import compress_checkpoint
    from llmaccel.mapping.recipe import LayerRule, Recipe

    def make(name, attn_nm, mlp_nm):
        recipe = Recipe(name, attn=LayerRule(bits=4, group_size=128, symmetric=True, method="rtn", nm=attn_nm),
                        mlp=LayerRule(bits=3, group_size=128, symmetric=False, method="rtn", nm=mlp_nm),
                        act_bits=8, kv_bits=8, lm_head_bits=8)
        out = tmp_path_factory.mktemp(name) / "model"
        compress_checkpoint(bundled_model_dir(), recipe, out)
        return out
    return make


def _emit(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _array(header: str, name: str) -> np.ndarray:
    body = re.search(rf"\b{name}\[\d+\] = \{{([^}}]*)\}}", header).group(1)
    return np.array([int(v.rstrip("u"), 0) for v in body.split(",")], dtype=np.int64)


def test_emit_compressed_writes_the_models_own_layer_and_kernels(artifact, tmp_path, capsys):
    from llmaccel.hls_kernels.flow.backend import run_gxx_testbench
    from llmaccel.mapping.calibration import LINEAR_PATHS
    from llmaccel.mapping.compress import load_compressed

    art = artifact("dense-attn-816-mlp", None, (8, 16))
    out = tmp_path / "hls"
    rc, stdout, err = _emit(capsys, ["hls", "emit", "--compressed", str(art), "--design", "flightllm-u280",
                                     "--out", str(out), "--json"])
    assert rc == 0, err
    index = json.loads(stdout)
    model = load_compressed(art)
    assert index["content_hash"] == model.content_hash and index["design"] == "flightllm-u280"
    # every layer of the model is covered by exactly one layer project
    covered = sorted(i for entry in index["layers"] for i in entry["layers"])
    assert covered == list(range(model.shape.num_layers))
    # the layer top's golden header holds layer 0's packed words, straight from the artifact
    first = index["layers"][0]
    header = (out / first["project"] / "tb" / "golden_vectors.h").read_text()
    words = np.concatenate([np.concatenate([model.linears[f"layers.{first['layers'][0]}.{p}"].codes.reshape(-1),
                                            model.linears[f"layers.{first['layers'][0]}.{p}"].indices.reshape(-1)])
                            for p in LINEAR_PATHS.values()]).astype(np.int64)
    assert np.array_equal(_array(header, "w_words"), words)
    norm = np.asarray(model.tensors[f"layers.{first['layers'][0]}.input_layernorm"], np.float32)
    assert np.array_equal(_array(header, "norm_w_bits")[: norm.size].astype(np.uint32), norm.view(np.uint32))
    # one MV kernel and one streaming decoder per distinct projection format (dense W4 attn, 8:16 W3 MLP)
    assert len(index["linear"]) == len(index["decoders"]) >= 2
    assert any("n8m16" in e["project"] for e in index["linear"])
    # the layer top and a streaming decoder pass their testbenches under g++
    assert run_gxx_testbench(out / first["project"])["passed"]
    assert run_gxx_testbench(out / index["decoders"][-1]["project"])["passed"]


def test_emit_compressed_refuses_an_nm_the_design_cannot_run(artifact, tmp_path, capsys):
    art = artifact("two-four", (2, 4), (8, 16))
    rc, stdout, _ = _emit(capsys, ["hls", "emit", "--compressed", str(art), "--design", "flightllm-u280",
                                   "--out", str(tmp_path / "x"), "--json"])
    assert rc == 2
    err = json.loads(stdout)["error"]
    assert "supports N:M" in err and "2:4" in err
    assert not (tmp_path / "x").exists()


def test_emit_force_replaces_only_our_own_project(tmp_path, capsys):
    mine = tmp_path / "prj"
    assert _emit(capsys, ["hls", "emit", "--kernel", "sfu_n1024_u1", "--out", str(mine)])[0] == 0
    assert _emit(capsys, ["hls", "emit", "--kernel", "sfu_n1024_u1", "--out", str(mine), "--force"])[0] == 0
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    rc, _, err = _emit(capsys, ["hls", "emit", "--kernel", "sfu_n1024_u1", "--out", str(theirs), "--force"])
    assert rc == 2 and "not an llmaccel HLS project" in err
    assert (theirs / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("family,named", [("gpt2", ["norm='layernorm'", "activation='gelu_tanh'", "gated=False",
                                                     "positions='learned'", "biases=["]),
                                          ("qwen2", ["biases=['q_proj', 'k_proj', 'v_proj']"])])
def test_a_block_the_layer_top_does_not_compute_is_refused_by_name(family, named, tmp_path, capsys):
    """GPT-2 (LayerNorm, GELU, biases, learned positions) and Qwen2 (q/k/v biases) are not the Llama block the
    layer top and its golden compute: one error naming what differs, nothing written (Qwen2 used to be
    emitted with vectors that left its biases out; GPT-2 ended in a KeyError)."""
    from llmaccel.mapping.compress import compress_checkpoint
    from llmaccel.mapping.recipe import get_recipe
    from llmaccel.testing.tiny_checkpoints import build_tiny_checkpoint
    ckpt = build_tiny_checkpoint(family, tmp_path / "ckpt", seed=0)
    compress_checkpoint(ckpt, get_recipe("w8"), tmp_path / "w8")
    out = tmp_path / "hls"
    rc, stdout, err = _emit(capsys, ["hls", "emit", "--compressed", str(tmp_path / "w8"), "--out", str(out), "--json"])
    msg = json.loads(stdout)["error"]
    assert rc == 2 and f"model family '{family}'" in msg and all(n in msg for n in named), msg
    assert not out.exists()
