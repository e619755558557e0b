"""cocotb benches on Icarus: RTL equal to the Python models bit for bit and edge for edge.

Every case builds in its own tmp_path directory (pytest-xdist safe). A bench checks, in a
timing phase without gaps, latency / initiation interval / total cycles against the closed
form, and in a random phase (valid gaps, back-pressure) every handshake edge against the
cycle model replayed on the DUT's own port traces, plus every output against the bit model.
"""
from __future__ import annotations

import shutil

import pytest

from llmaccel.sparse_dsp.rtl.sim import HDL_DIR, run_bench

pytestmark = [
    pytest.mark.iverilog,
    pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) is not installed"),
]
pytest.importorskip("cocotb_tools.runner", reason="cocotb is not installed")


def _ok(report: dict) -> None:
    assert report["failed"] == 0 and report["tests"] == 1, report
    assert report["mismatches"] == 0 and report["missing"] == 0, report


CHAIN_CASES = [  # (CHAIN_LEN, N, M, CASCADE_GROUPS, k, group_size, rows)
    (2, 1, 1, 1, 32, 16, 2),
    (8, 2, 4, 2, 64, 32, 3),
    (8, 1, 1, 4, 64, 32, 3),
    (16, 2, 16, 4, 256, 128, 2),
    (12, 4, 8, 1, 96, 48, 2),
    (24, 8, 16, 4, 192, 96, 2),
]


@pytest.mark.parametrize("L,N,M,C,k,g,rows", CHAIN_CASES, ids=lambda v: str(v))
def test_chain_rtl_matches_model(tmp_path, L, N, M, C, k, g, rows):
    rep = run_bench("sdsp_chain", {"CHAIN_LEN": L, "N": N, "M": M, "CASCADE_GROUPS": C},
                    {"rows": rows, "k": k, "group_size": g, "seed": L + N + M, "gap_prob": 0.3, "stall_prob": 0.35},
                    tmp_path / "build")
    _ok(rep)
    assert rep["timing_phase"]["latency_cycles_seen"] == [rep["model"]["latency_cycles"]]
    assert rep["timing_phase"]["input_gaps_seen"] == [1]
    assert rep["timing_phase"]["total_cycles_seen"] == rep["model"]["total_cycles"]
    # the random phase really had gaps and back-pressure
    assert max(rep["random_phase"]["input_gaps_seen"]) > 1
    _chain_outputs_equal_golden(rep, L, N, M, k, g, rows, seed=L + N + M)


def _chain_outputs_equal_golden(rep, L, n, m, k, g, rows, seed):
    """What the RTL delivered (timing phase) against the contract's golden partial sums."""
    import numpy as np
    from llmaccel.simulator.golden.linear import group_partial_sums
    from llmaccel.sparse_dsp.rtl.tb.common import random_activations, random_columns, random_int8_rows
    rng = np.random.default_rng(seed)          # the bench's own stimulus, regenerated
    cols = random_columns(rng, rows, k, None if m == 1 else (n, m))
    w = random_int8_rows(rng, rows, cols.shape[1])
    x = random_activations(rng, k)
    dense = np.zeros((rows, k), np.int8)
    np.put_along_axis(dense, cols, w, axis=1)
    golden = group_partial_sums(dense, x, g)                     # [2 lanes, O, K/G]
    seen = np.array(rep["timing_phase"]["seen"]).reshape(rows, k // g, 2).transpose(2, 0, 1)
    np.testing.assert_array_equal(seen, golden)


DEC_CASES = [  # BITS, N, M, CHAIN_LEN, K, GROUP, SYM
    (2, 1, 1, 8, 128, 64, 0),
    (3, 2, 16, 4, 256, 64, 0),
    (4, 4, 8, 8, 128, 64, 1),
    (8, 2, 4, 8, 128, 32, 1),
    (4, 8, 16, 16, 256, 128, 0),
    (3, 1, 1, 2, 64, 16, 1),
]


@pytest.mark.parametrize("B,N,M,L,K,G,S", DEC_CASES, ids=lambda v: str(v))
def test_decoder_rtl_matches_model(tmp_path, B, N, M, L, K, G, S):
    rep = run_bench("sdsp_wdec", {"BITS": B, "N": N, "M": M, "CHAIN_LEN": L, "K": K, "GROUP": G, "SYM": S},
                    {"rows": 3, "seed": B * 10 + M, "gap_prob": 0.3, "stall_prob": 0.3}, tmp_path / "build")
    _ok(rep)
    assert rep["timing_phase"]["total_cycles_seen"] == rep["model"]["total_cycles"]


TILE_CASES = [  # NCH, CHAIN_LEN, N, M, CASCADE_GROUPS, BITS, K, GROUP, SYM
    (2, 8, 1, 1, 4, 4, 128, 64, 1),
    (3, 4, 2, 16, 2, 3, 256, 64, 0),
]


@pytest.mark.parametrize("NCH,L,N,M,C,B,K,G,S", TILE_CASES, ids=lambda v: str(v))
def test_tile_rtl_matches_model(tmp_path, NCH, L, N, M, C, B, K, G, S):
    rep = run_bench("sdsp_mv_tile", {"NCH": NCH, "CHAIN_LEN": L, "N": N, "M": M, "CASCADE_GROUPS": C, "BITS": B,
                                     "K": K, "GROUP": G, "SYM": S},
                    {"rows_per_chain": 2, "seed": NCH + L, "gap_prob": 0.25, "stall_prob": 0.3}, tmp_path / "build")
    _ok(rep)
    assert rep["timing_phase"]["total_cycles_seen"] == rep["model"]["total_cycles"]
    _tile_outputs_equal_golden(rep, NCH, N, M, B, K, G, S, seed=NCH + L)


def _tile_outputs_equal_golden(rep, nch, n, m, bits, k, g, sym, seed, rows_per_chain=2):
    """What the RTL delivered (timing phase) against the contract's golden partial sums."""
    import numpy as np
    from llmaccel.simulator.golden.linear import group_partial_sums
    from llmaccel.sparse_dsp.rtl.tb.common import random_activations, random_packed_layer
    rng = np.random.default_rng(seed)          # the bench's own stimulus, regenerated
    layer = random_packed_layer(rng, rows_per_chain * nch, k, bits, g, bool(sym), None if m == 1 else (n, m))
    x = random_activations(rng, k)
    golden = group_partial_sums(layer.dense_int8(), x, g)          # [2 lanes, O, K/G]
    ng = k // g
    seen = rep["timing_phase"]["seen"]
    assert len(seen) == rows_per_chain * ng
    for t, transfer in enumerate(seen):
        r, gi = divmod(t, ng)
        for c, (scale, hi, lo) in enumerate(transfer):
            row = r * nch + c
            assert (lo, hi) == (golden[0, row, gi], golden[1, row, gi])
            assert scale == int(layer.scales.view(np.uint16)[row, gi])


def _mutant(tmp_path, fname, old, new):
    d = tmp_path / "hdl"
    shutil.copytree(HDL_DIR, d)
    text = (d / fname).read_text()
    assert old in text
    (d / fname).write_text(text.replace(old, new))
    return d


def test_chain_bench_catches_missing_borrow_correction(tmp_path):
    hdl = _mutant(tmp_path, "sdsp_chain.v", "p[47:18] + {29'd0, p[17]}", "p[47:18]")
    rep = run_bench("sdsp_chain", {"CHAIN_LEN": 8, "N": 2, "M": 4, "CASCADE_GROUPS": 2},
                    {"rows": 3, "k": 64, "group_size": 32, "seed": 1}, tmp_path / "build", hdl_dir=hdl)
    assert rep["failed"] == 1 and rep["mismatches"] > 0


def test_chain_bench_catches_an_extra_pipeline_stage(tmp_path):
    """A design one cycle slower but numerically right must fail on cycles alone."""
    hdl = _mutant(tmp_path, "sdsp_chain.v", "localparam CTRL   = 4 + SD + DEPTH;",
                  "localparam CTRL   = 5 + SD + DEPTH;")
    rep = run_bench("sdsp_chain", {"CHAIN_LEN": 4, "N": 1, "M": 1, "CASCADE_GROUPS": 2},
                    {"rows": 2, "k": 32, "group_size": 16, "seed": 2}, tmp_path / "build", hdl_dir=hdl)
    assert rep["failed"] == 1


def test_decoder_bench_catches_a_skipped_pad_drop(tmp_path):
    hdl = _mutant(tmp_path, "sdsp_wdec.v", "(rlast ? C_LAST[CCW-1:0] : NEED_C[CCW-1:0])", "NEED_C[CCW-1:0]")
    # 48 three-bit codes = 144 bits: each row carries 16 pad bits the decoder must drop
    rep = run_bench("sdsp_wdec", {"BITS": 3, "N": 1, "M": 1, "CHAIN_LEN": 2, "K": 48, "GROUP": 16, "SYM": 1},
                    {"rows": 3, "seed": 3}, tmp_path / "build", hdl_dir=hdl)
    assert rep["failed"] == 1 and rep["mismatches"] > 0
