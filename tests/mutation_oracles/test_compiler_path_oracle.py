"""Oracles for mapping.tiling's chunking boundaries and typed results (issue 15 survivors).

Expected values are hand computations from the functions' contracts (docstrings), never read from the code.
"""
from __future__ import annotations

import dataclasses

import pytest

from llmaccel.mapping.tiling import BufferError_, WeightTiling, prefill_chunk_tokens


def test_a_bucket_whose_activations_exactly_fill_the_buffer_is_one_chunk():
    # "Largest chunk ... whose activations fit": 128 tokens x 10 bytes = 1280 bytes fit a 1280-byte buffer exactly
    assert prefill_chunk_tokens(lambda t: 10, 128, 1280) == 128


def test_a_buffer_smaller_than_one_token_is_one_error():
    # 10 bytes per token, a 5-byte buffer: not even one token fits, so no chunk (0 tokens) may be returned
    with pytest.raises(BufferError_, match="cannot hold one prompt token"):
        prefill_chunk_tokens(lambda t: 10, 8, 5)


def test_weight_tiling_is_immutable_and_hashable():
    wt = WeightTiling(rows_per_tile=8, n_tiles=2, rows_per_channel=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        wt.n_tiles = 3
    assert hash(wt) == hash(WeightTiling(8, 2, 4))


def test_instruction_storage_is_linear_in_the_layer_count_down_to_one_layer():
    # storage_report: "both totals count num_layers layer streams plus the LM head per program", so with L the
    # words of one layer stream and H the head's, T(n) = n*L + H: T(3) - T(2) == T(2) - T(1), and a one-layer
    # model (only layer 0 exists) has a report like any other
    from pathlib import Path

    from llmaccel.mapping.sim_api import build_compiler
    from llmaccel.simulator.specs import load_model_spec
    tiny_design = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")
    spec = load_model_spec("tiny")
    tot = {}
    for n in (1, 2, 3):
        comp = build_compiler(dataclasses.replace(spec, num_layers=n), tiny_design, "w4-g128-rtn", max_len=128)[0]
        rep = comp.storage_report()
        tot[n] = (rep["instruction_bytes_per_length"], rep["instruction_bytes_bucketed"])
    for k in range(2):
        assert tot[3][k] - tot[2][k] == tot[2][k] - tot[1][k] > 0


def test_prefill_chunk_programs_cover_the_bucket_when_the_chunk_does_not_divide_it():
    # an activation buffer holding 200 tokens of a 256 bucket: the chunk is the largest multiple of the
    # attention block (64) that fits, 192; the bucket [0, 256) is then chunks [0, 192) and [192, 256):
    # (ctx 192, 192 tokens) and (ctx 256, 64 tokens) -- by hand from prefill_chunk_tokens' contract
    from pathlib import Path

    from llmaccel.mapping.compiler.core import Compiler
    from llmaccel.mapping.sim_api import build_compiler
    tiny_design = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")
    base = build_compiler("tiny", tiny_design, "w4-g128-rtn", max_len=256)[0]
    hw = dataclasses.replace(base.hw, act_buf_bytes_per_core=200 * base._act_per_token(256))
    comp = Compiler(base.f, hw, max_len=256)
    assert comp.prefill_chunk(256) == 192
    assert [(p.ctx_len, p.tokens) for p in comp.prefill_programs(256)] == [(192, 192), (256, 64)]


def test_an_sfu_op_over_64_rows_is_split_into_the_fewest_misc_instructions():
    # simulator.isa: MISC.rows is a 6-bit field (1..63), so 64 rows need two MISC instructions: rows 0..62
    # (63 rows) and row 63 (1 row); 126 rows are 63 + 63 (hand computation)
    from pathlib import Path

    from llmaccel.mapping.sim_api import build_compiler
    from llmaccel.simulator import isa
    tiny_design = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")
    comp = build_compiler("tiny", tiny_design, "w4-g128-rtn", max_len=128)[0]
    for rows, want in ((64, [(0, 63), (63, 1)]), (126, [(0, 63), (63, 63)])):
        got = []
        comp.emitter._misc(lambda ins, name: got.append(ins), "x", "rmsnorm", rows, 64, (0, 0), (0, 0))
        assert all(isinstance(i, isa.MISC) for i in got)
        assert [(i.row0, i.rows) for i in got] == want
