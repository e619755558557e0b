"""The timing engine times what the words say: a flipped field changes the cycles or the counts."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from llmaccel.mapping.sim_api import build_compiler
from llmaccel.simulator import isa
from llmaccel.simulator.compiled import CompiledProgram, CoreStream
from llmaccel.simulator.timing import layer_timing, program_work

TINY = str(Path(__file__).resolve().parent / "data" / "tiny-u280.yaml")


@pytest.fixture(scope="module")
def comp():
    return build_compiler("tiny", TINY, "w4-g128-rtn", max_len=256)[0]


def _edit(prog: CompiledProgram, pred, **fields) -> CompiledProgram:
    streams = []
    n = 0
    for st in prog.cores:
        instrs = isa.decode(st.words)
        for j, name in enumerate(st.names):
            if pred(instrs[j], name):
                instrs[j] = dataclasses.replace(instrs[j], **fields)
                n += 1
        streams.append(CoreStream(st.core, isa.encode(instrs), st.names))
    assert n, "the edit matched no instruction"
    return dataclasses.replace(prog, cores=tuple(streams))


def _work(prog, hw):
    return layer_timing(prog, hw).first


def test_unedited_words_time_the_same(comp):
    p = comp.prefill_programs(256)[-1]
    assert _work(p, comp.hw).cycles == _work(_edit(p, lambda i, n: False or n == "end", op="end"), comp.hw).cycles


def test_key0_of_an_attention_tile_sets_its_causal_work(comp):
    p = comp.prefill_programs(256)[-1]          # the last chunk: its first K tile is fully visible
    base = _work(p, comp.hw)
    moved = _work(_edit(p, lambda i, n: n.startswith("qk[h0,0]"), key0=p.ctx_len - 1), comp.hw)
    assert moved.macs < base.macs


def test_set_position_sets_the_causal_work(comp):
    p = comp.prefill_programs(256)[-1]
    base = _work(p, comp.hw)
    later = _work(_edit(p, lambda i, n: n == "set_position", imm=p.ctx_len), comp.hw)
    assert later.macs > base.macs and later.sfu_elems > base.sfu_elems


def test_a_barrier_turned_nop_removes_its_sync(comp):
    p = comp.layer_program("decode", 64, 1)
    base = program_work(p, comp.hw)
    nop = program_work(_edit(p, lambda i, n: n.startswith("barrier"), op="nop"), comp.hw)
    assert nop.cycles < base.cycles


def test_the_dense_k_of_a_weight_load_sets_its_decoder_time(comp):
    p = comp.layer_program("decode", 64, 1)
    base = program_work(p, comp.hw)
    # a weight LD claiming twice the dense K per row: the decoder has twice the weights to emit
    more = program_work(_edit(p, lambda i, n: n.startswith("ld_down_proj"),
                              row_elems=2 * next(i.row_elems for _, i, n in _pairs(p) if n.startswith("ld_down"))),
                        comp.hw)
    assert more.decoded_weights > base.decoded_weights and more.cycles >= base.cycles


def test_matrix_rows_set_the_macs(comp):
    p = comp.layer_program("decode", 64, 1)
    base = program_work(p, comp.hw)
    half = program_work(_edit(p, lambda i, n: n.startswith("mv_up_proj"), n=1), comp.hw)
    assert half.macs < base.macs


def _pairs(p):
    for st in p.cores:
        for ins, name in zip(isa.decode(st.words), st.names):
            yield st.core, ins, name
