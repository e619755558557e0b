"""Quantizers, pruning masks and the mixed-precision allocator, each against an independent computation."""
import itertools

import numpy as np
import pytest
import torch

from llmaccel.mapping.mixed_precision import allocate_bits
from llmaccel.mapping.prune import nm_mask, prune_scores
from llmaccel.mapping.quantize import quantize_gptq, quantize_rtn, reconstruction_error
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import LayerFormat


def numpy_rtn_symmetric(w: np.ndarray, bits: int, g: int):
    """Contract section 1 written out independently: fp16 scale first, then rint and clamp."""
    o, k = w.shape
    wg = w.reshape(o, k // g, g)
    s = (np.abs(wg).max(axis=2) / np.float32(2 ** (bits - 1) - 1)).astype(np.float16).astype(np.float32)
    s[s == 0] = 1
    d = np.clip(np.rint(wg / s[..., None]), -2 ** (bits - 1), 2 ** (bits - 1) - 1)
    return d.reshape(o, k).astype(int), s


@pytest.mark.parametrize("bits", [4, 8])
def test_rtn_symmetric_matches_the_written_contract(bits):
    w = np.random.default_rng(0).normal(0, 0.05, (16, 256)).astype(np.float32)
    p = quantize_rtn(torch.from_numpy(w), LayerFormat(16, 256, bits, 128, True, None))
    d, s = numpy_rtn_symmetric(w, bits, 128)
    assert np.array_equal(p.dense_int8().astype(int), d)
    assert np.array_equal(p.scales.astype(np.float32), s)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_rtn_asymmetric_error_is_at_most_half_a_step(bits):
    w = np.random.default_rng(1).normal(0.02, 0.05, (8, 256)).astype(np.float32)
    p = quantize_rtn(torch.from_numpy(w), LayerFormat(8, 256, bits, 128, False, None))
    step = np.repeat(p.scales.astype(np.float32), 128, axis=1)
    err = np.abs(p.dense_float() - w)
    # half a step, plus the slack of a zero point rounded to an integer and an FP16 scale
    assert np.all(err <= step * 0.5 * 1.01 + step * 0.5)
    assert np.mean(err) < np.mean(step) * 0.3
    assert p.zeros.max() < 2 ** bits


def correlated_inputs(k=256, n=2048, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 16, generator=g) @ torch.randn(16, k, generator=g)
    return base + 0.1 * torch.randn(n, k, generator=g)


@pytest.mark.parametrize("bits,symmetric", [(3, False), (4, True)])
def test_gptq_beats_rtn_in_output_error(bits, symmetric):
    torch.manual_seed(0)
    w = torch.randn(64, 256) * 0.05
    x = correlated_inputs()
    h = x.T @ x / x.shape[0]
    fmt = LayerFormat(64, 256, bits, 128, symmetric, None)
    e_rtn = reconstruction_error(w, torch.from_numpy(quantize_rtn(w, fmt).dense_float()), h)
    e_gptq = reconstruction_error(w, torch.from_numpy(quantize_gptq(w, h, fmt).dense_float()), h)
    assert e_gptq < 0.8 * e_rtn


def test_gptq_with_mask_keeps_pruned_weights_at_zero():
    torch.manual_seed(1)
    w = torch.randn(32, 256) * 0.05
    x = correlated_inputs()
    keep = nm_mask(w.abs(), 2, 4)
    p = quantize_gptq(w, x.T @ x / x.shape[0], LayerFormat(32, 256, 4, 128, True, (2, 4)), keep)
    dense = p.dense_float()
    assert np.all(dense[~keep.numpy()] == 0)
    assert np.array_equal(p.column_of_kept(), torch.nonzero(keep)[:, 1].reshape(32, 128).numpy())


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (2, 16), (8, 16)])
def test_nm_mask_keeps_the_n_largest_of_every_block(n, m):
    s = torch.rand(8, 64)
    mask = nm_mask(s, n, m)
    blocks, mb = s.reshape(8, -1, m), mask.reshape(8, -1, m)
    assert torch.all(mb.sum(-1) == n)
    kept_min = torch.where(mb, blocks, torch.full_like(blocks, 9)).amin(-1)
    dropped_max = torch.where(~mb, blocks, torch.full_like(blocks, -9)).amax(-1)
    assert torch.all(kept_min >= dropped_max)


def test_wanda_keeps_small_weights_on_loud_channels():
    w = torch.tensor([[0.10, 0.20, 0.30, 0.40]])
    norms = torch.tensor([100.0, 1.0, 1.0, 50.0])
    assert nm_mask(prune_scores(w, "magnitude", None), 2, 4).tolist() == [[False, False, True, True]]
    assert nm_mask(prune_scores(w, "wanda", norms), 2, 4).tolist() == [[True, False, False, True]]
    with pytest.raises(LlmaccelError, match="wanda.*needs calibration"):
        prune_scores(w, "wanda", None)


def test_allocation_is_optimal_on_a_small_case_and_respects_the_budget():
    rng = np.random.default_rng(3)
    sizes = {"a": 100, "b": 300, "c": 50, "d": 200}
    sens = {}
    for k in sizes:  # convex decreasing error curves with different steepness
        c = rng.uniform(0.1, 2)
        sens[k] = {b: c * 4.0 ** (-b) for b in (2, 3, 4, 8)}
    budget = 3.5
    alloc = allocate_bits(sens, sizes, budget)
    total = sum(sizes.values())
    assert sum(sizes[k] * b for k, b in alloc.items()) <= budget * total
    best = min((sum(sens[k][b] for k, b in zip(sizes, combo)), combo)
               for combo in itertools.product((2, 3, 4, 8), repeat=4)
               if sum(sizes[k] * b for k, b in zip(sizes, combo)) <= budget * total)
    got = sum(sens[k][alloc[k]] for k in sizes)
    assert got <= best[0] * 1.25   # greedy on convex curves: near the exhaustive optimum
    assert len(set(alloc.values())) > 1
