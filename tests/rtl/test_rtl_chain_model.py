"""The DSP chain's Python model: exact against the golden partial sums, packed-lane limits, cycles, bad input."""
from __future__ import annotations

import numpy as np
import pytest

from llmaccel.simulator.golden.linear import group_partial_sums
from llmaccel.sparse_dsp.dsp_chain import (MAX_PACKED_TERMS, ChainConfig, ChainConfigError, ChainCycleModel,
                                  chain_group_partial_sums, chain_timing, pack_activations, packed_segment_sum,
                                  unpack_lanes)
from llmaccel.errors import LlmaccelError


def _layer(rng, rows, k, nm, worst=False):
    n, m = nm if nm else (1, 1)
    if nm is None:
        cols = np.broadcast_to(np.arange(k), (rows, k)).copy()
    else:
        keep = np.sort(np.argsort(rng.random((rows, k // m, m)), axis=2)[:, :, :n], axis=2)
        cols = (keep + (np.arange(k // m) * m)[None, :, None]).reshape(rows, -1)
    w = rng.integers(-128, 128, cols.shape).astype(np.int8)
    x = rng.integers(-127, 128, (2, k)).astype(np.int8)
    if worst:
        w[0] = -128
        x[0], x[1] = 127, -127
    return w, cols, x


@pytest.mark.parametrize("chain_len,nm,cascade", [
    (2, None, None), (8, None, 1), (8, None, 2), (8, None, 4), (8, (2, 4), None), (8, (4, 8), None),
    (16, (2, 16), None), (16, (4, 16), None), (16, (8, 16), None), (24, None, None), (24, (8, 16), 4),
    (12, (4, 8), 2)])
@pytest.mark.parametrize("worst", [False, True])
def test_chain_partial_sums_equal_golden(chain_len, nm, cascade, worst):
    rng = np.random.default_rng(chain_len * 31 + (nm[0] if nm else 0))
    cfg = ChainConfig(chain_len, nm, cascade)
    g = 48 * chain_len if chain_len in (12, 24) else 128
    k = 2 * g
    w, cols, x = _layer(rng, 3, k, nm, worst)
    dense = np.zeros((3, k), np.int8)
    np.put_along_axis(dense, cols, w, axis=1)
    ref = group_partial_sums(dense, x, g)           # [T=2, O, NG]
    got = chain_group_partial_sums(cfg, w, cols, x, g)
    np.testing.assert_array_equal(got, ref)


def test_packed_product_splits_into_two_exact_lanes():
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, (4000, 1)).astype(np.int8)
    lo = rng.integers(-127, 128, (4000, 1)).astype(np.int8)
    hi = rng.integers(-127, 128, (4000, 1)).astype(np.int8)
    p = packed_segment_sum(w, lo, hi)
    got_lo, got_hi = unpack_lanes(p)
    np.testing.assert_array_equal(got_lo, w[:, 0].astype(np.int64) * lo[:, 0])
    np.testing.assert_array_equal(got_hi, w[:, 0].astype(np.int64) * hi[:, 0])
    # the packed operand really is (hi << 18) + lo in 27 bits
    assert pack_activations(np.int8(-1), np.int8(-1)) == -(1 << 18) - 1


def test_borrow_correction_is_needed_for_negative_low_lane():
    w = np.array([[3]], np.int8)
    p = packed_segment_sum(w, np.array([[-5]], np.int8), np.array([[7]], np.int8))
    raw_hi = int(p[0]) >> 18                   # without the correction the high lane is off by one
    lo, hi = unpack_lanes(p)
    assert (int(lo[0]), int(hi[0])) == (-15, 21) and raw_hi == 20


def test_eight_products_fit_a_lane_nine_do_not():
    """The overflow-adjust rule: a packed cascade may span 8 slices, no more."""
    assert MAX_PACKED_TERMS == 8
    for terms, exact in ((8, True), (9, False)):
        w = np.full((1, terms), -128, np.int8)
        x_lo = np.full((1, terms), 127, np.int8)
        x_hi = np.full((1, terms), 1, np.int8)
        lo, hi = unpack_lanes(packed_segment_sum(w, x_lo, x_hi))
        assert (int(lo[0]) == -128 * 127 * terms and int(hi[0]) == -128 * terms) is exact


def test_long_chain_worst_case_exact_through_segmented_unpack():
    cfg = ChainConfig(24, None)                 # 3 segments of 8 slices, each unpacked before the tree
    assert (cfg.segments, cfg.segment_dsps) == (3, 8)
    w = np.full((1, 48), -128, np.int8)
    cols = np.arange(48)[None, :]
    x = np.stack([np.full(48, 127), np.full(48, -127)]).astype(np.int8)
    out = chain_group_partial_sums(cfg, w, cols, x, 48)
    assert out[0, 0, 0] == -128 * 127 * 48 and out[1, 0, 0] == 128 * 127 * 48


@pytest.mark.parametrize("kwargs,field", [
    ({"chain_len": 7}, "chain_len"), ({"chain_len": 26}, "chain_len"), ({"chain_len": 0}, "chain_len"),
    ({"chain_len": 8, "nm": (3, 16)}, "nm"), ({"chain_len": 8, "nm": (16, 32)}, "nm"),
    ({"chain_len": 4, "nm": (8, 16)}, "chain_len"), ({"chain_len": 16, "cascade_groups": 8}, "cascade_groups"),
    ({"chain_len": 12, "cascade_groups": 3}, "cascade_groups"), ({"chain_len": 8, "nm": "2-4"}, "nm")])
def test_bad_chain_parameters_raise_one_clear_error(kwargs, field):
    with pytest.raises(LlmaccelError, match=field):
        ChainConfig(**kwargs)


def test_group_not_divisible_by_chain_is_rejected():
    with pytest.raises(ChainConfigError, match="chain_len=16 must divide"):
        ChainConfig(16, (2, 16)).beats_per_group(64)


@pytest.mark.parametrize("chain_len,nm,cascade,expect", [
    (2, None, 1, 7), (8, None, 4, 13), (8, None, 1, 9), (16, (2, 16), 4, 14), (24, None, 4, 15)])
def test_latency_formula(chain_len, nm, cascade, expect):
    """5 register stages + one P register per slice of a segment + one per tree level (docs/rtl.md)."""
    assert ChainConfig(chain_len, nm, cascade).latency_cycles == expect


@pytest.mark.parametrize("chain_len,nm", [(2, None), (8, (2, 4)), (16, (4, 16))])
def test_closed_form_timing_equals_stepped_model(chain_len, nm):
    cfg = ChainConfig(chain_len, nm)
    t = chain_timing(cfg, k=256, rows=3, group_size=128)
    model = ChainCycleModel(cfg)
    last = [(b % t.beats_per_group) == t.beats_per_group - 1 for b in range(t.beats)]
    ins, outs, e = [], [], 0
    while len(outs) < t.beats // t.beats_per_group:
        a, o = model.step(len(ins) < t.beats, last[len(ins)] if len(ins) < t.beats else False, True)
        ins += [e] if a else []
        outs += [e] if o else []
        e += 1
    assert outs[-1] - ins[0] == t.total_cycles
    assert ins == list(range(t.beats))          # II = 1 beat per cycle
