"""GPTQ's block size and the quantization group size: a group may not straddle two lazy-batch blocks.

quantize_gptq picks a group's scale at the group's first column but applies a block's errors to the
later columns only at the block's end, so a group that starts inside a block and ends after it gets
its scale from partly updated weights. Allowed: block_size divides group_size, or is a multiple of
it. Anything else is refused by name, in the function and when a recipe is loaded (the compressor
sweeps in blocks of GPTQ_BLOCK_SIZE).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from llmaccel.cli import main
from llmaccel.mapping.quantize import quantize_gptq
from llmaccel.mapping.recipe import GPTQ_BLOCK_SIZE, LayerRule, RecipeError, get_recipe
from llmaccel.simulator.specs import SpecError
from llmaccel.sparse_dsp.packed_format import LayerFormat


def _layer(k: int = 256, o: int = 16, seed: int = 0):
    r = np.random.default_rng(seed)
    w = torch.from_numpy((r.normal(size=(o, k)) * 0.05).astype(np.float32))
    x = torch.from_numpy(r.normal(size=(4 * k, k)).astype(np.float32))
    return w, x.T @ x / x.shape[0]


@pytest.mark.parametrize("block_size, group_size", [(32, 128), (128, 128), (256, 128), (128, 64), (64, 256)])
def test_a_block_size_that_divides_or_is_a_multiple_of_the_group_runs(block_size, group_size):
    w, h = _layer()
    p = quantize_gptq(w, h, LayerFormat(16, 256, 4, group_size, True, None), block_size=block_size)
    assert p.dense_float().shape == (16, 256)


@pytest.mark.parametrize("block_size, group_size, needle", [
    (96, 128, "block_size=96 with group_size=128 would let a quantization group straddle two GPTQ blocks; "
              "allowed: a divisor of 128 (1, 2, 4, 8, 16, 32, 64, 128) or a multiple of 128"),
    (192, 128, "block_size=192 with group_size=128"),
    (48, 64, "allowed: a divisor of 64 (1, 2, 4, 8, 16, 32, 64) or a multiple of 64"),
    (0, 128, "block_size=0 must be a positive integer"),
    (-128, 128, "block_size=-128 must be a positive integer"),
    (True, 128, "block_size=True must be a positive integer"),
    (64.0, 128, "block_size=64.0 must be a positive integer"),
])
def test_any_other_block_size_is_refused_by_name(block_size, group_size, needle):
    w, h = _layer()
    with pytest.raises(RecipeError) as exc:
        quantize_gptq(w, h, LayerFormat(16, 256, 4, group_size, True, None), block_size=block_size)
    assert needle in str(exc.value), str(exc.value)


def test_a_recipe_whose_gptq_groups_would_straddle_the_compressors_blocks_is_refused_at_load(tmp_path, capsys):
    assert GPTQ_BLOCK_SIZE == 128
    bad = tmp_path / "g96.yaml"
    bad.write_text("name: g96\nattn: {bits: 4, method: gptq, group_size: 96}\nmlp: {bits: 4, method: gptq}\n")
    with pytest.raises(SpecError) as exc:
        get_recipe(str(bad))
    msg = str(exc.value)
    assert "g96.yaml" in msg and "'attn'" in msg and "group_size=96 with method='gptq'" in msg, msg
    assert "allowed: a divisor of 128 (1, 2, 4, 8, 16, 32, 64, 128) or a multiple of 128" in msg, msg
    # the same through the CLI: one line, exit 2, before any work
    rc = main(["compress", "--recipe", str(bad), "--out", str(tmp_path / "c"), "--json"])
    err = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert rc == 2 and "group_size=96 with method='gptq'" in err, err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("group_size", [16, 64, 128, 256, 512])
def test_gptq_group_sizes_that_fit_the_blocks_load(group_size):
    assert LayerRule(bits=4, group_size=group_size, method="gptq").group_size == group_size


def test_rtn_has_no_blocks_so_any_group_size_loads():
    assert LayerRule(bits=4, group_size=96, method="rtn").group_size == 96
    assert LayerRule(bits=None, group_size=96, method="gptq").group_size == 96   # fp32: nothing is swept


# ----------------------------------------------------------------------------- one factor per shared input
def test_a_shared_factor_gives_the_same_codes_as_factoring_per_linear():
    from llmaccel.mapping.quantize import gptq_factor
    w, h = _layer(seed=3)
    h[5, :] = 0.0
    h[:, 5] = 0.0                                     # a dead input: the factor carries it too
    fmt = LayerFormat(16, 256, 4, 128, False, None)
    alone = quantize_gptq(w, h, fmt).arrays()
    shared = quantize_gptq(w, None, fmt, factor=gptq_factor(h)).arrays()
    assert alone.keys() == shared.keys()
    for name in alone:
        assert np.array_equal(alone[name], shared[name]), name


def test_the_compressor_factors_each_shared_hessian_once(tiny_checkpoint, tmp_path, monkeypatch):
    import llmaccel.mapping.compress as compress
    real, calls = compress.gptq_factor, []

    def counted(hessian, *a, **kw):                  # the real function, counted
        calls.append(hessian.shape)
        return real(hessian, *a, **kw)
    monkeypatch.setattr(compress, "gptq_factor", counted)
    ids = np.random.default_rng(0).integers(0, 256, 512).tolist()      # token ids: the checkpoint has no tokenizer
    compress.compress_checkpoint(tiny_checkpoint, get_recipe("w4-g128-gptq"), tmp_path / "c", calibration=ids)
    # 2 layers x 4 inputs (q/k/v, o, gate/up, down), not 2 x 7 linears
    assert len(calls) == 8, calls
