"""GPTQ's dead inputs and lazy batching, and the asymmetric zero point's upper clamp, against references
written from their sources (issue 15 survivors quantize.py:52, :111, :112, :125).

* Dead inputs. The GPTQ reference implementation (Frantar et al., IST-DASLab ``gptq.py``) handles an
  input channel that never fires (zero Hessian diagonal) before dampening: ``H[dead, dead] = 1``,
  ``W[:, dead] = 0``, then ``lambda = 0.01 * mean(diag H)``. The dead channels' 1 enter the mean, so
  with live diagonals far below 1 they set most of the dampening. ``_reference`` below does exactly
  that and then runs Algorithm 1 of the paper (``gptq_reference`` of test_gptq_oracle, float64 numpy).
* Lazy batching (paper section 3, step 2) updates the later blocks once per block: "the same
  arithmetic", so a ``block_size`` that divides the group size gives the unbatched reference's result
  (each group's scale/zero is then chosen at a block start, from fully updated weights; a block size
  that cuts a group, e.g. 96 with groups of 128, chooses them from partly updated ones and differs).
* Zero point (docs/numerics.md section 1): ``zero = clamp(rint(-min / s), 0, 2**b - 1)`` with ``s``
  rounded to FP16 first; codes are b-bit. The clamp binds when FP16 rounds ``s`` down a lot, which
  happens in FP16's subnormal range (step 2**-24).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from llmaccel.mapping.quantize import group_params, quantize_gptq
from llmaccel.sparse_dsp.packed_format import LayerFormat
from tests.mutation_oracles.test_gptq_oracle import _inputs, gptq_reference, out_err


def _reference(w: np.ndarray, h: np.ndarray, bits: int, g: int, symmetric: bool) -> np.ndarray:
    h, w = h.astype(np.float64).copy(), w.astype(np.float64).copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    return gptq_reference(w, h, bits, g, symmetric)


def test_dead_inputs_are_zeroed_and_count_as_one_in_the_dampening():
    r = np.random.default_rng(7)
    k = 256
    w = (r.normal(size=(32, k)) * 0.05).astype(np.float32)
    # live diagonals ~0.016: the 128 dead channels' 1 are ~98 % of mean(diag H), so of the dampening
    h = _inputs(k=k, seed=3).astype(np.float64) / 1000
    dead = np.zeros(k, dtype=bool)
    dead[::2] = True
    h[dead, :] = 0.0
    h[:, dead] = 0.0
    ref = _reference(w, h, 4, 128, False)
    got = quantize_gptq(torch.from_numpy(w), torch.from_numpy(h.astype(np.float32)),
                        LayerFormat(32, k, 4, 128, False, None)).dense_float().astype(np.float64)
    assert np.all(got[:, dead] == 0.0)
    # Measured: 100 % of the weights equal the reference's, output errors equal to 2e-9 relative. A dead
    # diagonal of 1.1 instead of 1 (10 % more dampening) moves 5 % of them and the error by 10 %;
    # 99 % / 1 % keep room for float32 drift and fail that.
    same = np.mean(np.isclose(got, ref, rtol=0, atol=1e-7))
    e_got, e_ref = out_err(w, got, h), out_err(w, ref, h)
    assert same >= 0.99, (same, e_got, e_ref)
    assert abs(e_got / e_ref - 1) < 0.01, (e_got, e_ref)


@pytest.mark.parametrize("block_size", [32, 64])
def test_any_block_size_gives_the_unbatched_result(block_size):
    r = np.random.default_rng(11)
    k = 256
    w = (r.normal(size=(16, k)) * 0.05).astype(np.float32)
    h = _inputs(k=k, seed=5)
    ref = gptq_reference(w, h.astype(np.float64), 3, 128, False)
    got = quantize_gptq(torch.from_numpy(w), torch.from_numpy(h), LayerFormat(16, k, 3, 128, False, None),
                        block_size=block_size).dense_float().astype(np.float64)
    # same margins as test_gptq_matches_the_papers_algorithm (float32 drift over 256 columns)
    same = np.mean(np.isclose(got, ref, rtol=0, atol=1e-7))
    e_got, e_ref = out_err(w, got, h), out_err(w, ref, h)
    assert same >= 0.97, (same, e_got, e_ref)
    assert abs(e_got / e_ref - 1) < 0.03, (e_got, e_ref)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_the_zero_point_is_clamped_to_the_largest_code(bits):
    """All-negative group, min = -1.4 * (2**b - 1) * 2**-24: exact s = 1.4 * 2**-24, which FP16 (subnormal
    step 2**-24) rounds to 2**-24; -min / s = 1.4 * (2**b - 1) rounds above 2**b - 1, so the clamp gives
    the largest b-bit code, 2**b - 1."""
    top = 2 ** bits - 1
    wmin = -1.4 * top * 2.0 ** -24
    w = torch.tensor([[wmin, 0.5 * wmin, 0.0, 0.25 * wmin]], dtype=torch.float32)
    p = group_params(w, torch.ones_like(w, dtype=torch.bool), bits, symmetric=False)
    assert float(p.scale[0]) == 2.0 ** -24
    assert float(p.zero[0]) == top
