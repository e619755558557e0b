"""The weight decoder RTL on rows that end in pad bits (none of the main DEC_CASES has any).

A row of kept codes is padded with zero bits to a whole 32-bit word (docs/numerics.md section 1,
sparse_dsp/packed_format.py); the decoder must drop them on the row's last beat. Pad widths are
worked out by hand: 48 three-bit codes = 144 bits -> 5 words, 16 pad bits; a 2:4 row of K = 48 keeps
24 codes = 72 bits -> 3 words, 24 pad code bits, and 24 two-bit indices = 48 bits -> 16 pad index
bits; a 2:16 row of K = 112 keeps 14 codes (56 bits, 8 pad) and 14 four-bit indices (8 pad).
"""
from __future__ import annotations

import shutil

import pytest

from llmaccel.sparse_dsp.rtl.sim import run_bench

pytestmark = [
    pytest.mark.iverilog,
    pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) is not installed"),
]
pytest.importorskip("cocotb_tools.runner", reason="cocotb is not installed")

PAD_CASES = [  # BITS, N, M, CHAIN_LEN, K, GROUP, SYM, (code pad bits, index pad bits) by hand
    (3, 1, 1, 2, 48, 16, 1, (16, 0)),
    (3, 2, 4, 4, 48, 16, 0, (24, 16)),
    (4, 2, 16, 2, 112, 16, 0, (8, 8)),     # 14 kept: 56 code bits -> 64; 14 four-bit indices -> 64
]


@pytest.mark.parametrize("B,N,M,L,K,G,S,pads", PAD_CASES, ids=lambda v: str(v))
def test_decoder_rtl_with_row_pad_bits_matches_model(tmp_path, B, N, M, L, K, G, S, pads):
    from llmaccel.sparse_dsp.weight_decoder import DecoderConfig
    cfg = DecoderConfig(bits=B, nm=None if M == 1 else (N, M), k=K, group_size=G, chain_len=L, symmetric=bool(S))
    assert (cfg.pad_code_bits, cfg.pad_index_bits) == pads
    rep = run_bench("sdsp_wdec", {"BITS": B, "N": N, "M": M, "CHAIN_LEN": L, "K": K, "GROUP": G, "SYM": S},
                    {"rows": 3, "seed": B * 7 + M, "gap_prob": 0.3, "stall_prob": 0.3}, tmp_path / "build")
    assert rep["failed"] == 0 and rep["tests"] == 1, rep
    assert rep["mismatches"] == 0 and rep["missing"] == 0, rep
    assert rep["timing_phase"]["total_cycles_seen"] == rep["model"]["total_cycles"]
