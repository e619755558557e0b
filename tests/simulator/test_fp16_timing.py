"""FP16 weights + FP16 KV on a DFX-style design (dfx-u280 / dfx-u55c), timing only.

What is checked, each against figures derived here from shapes and design counts (never read back from
the code under test): the refusals by name (datapath x engine, sparsity with FP16, the schema), the
programs' LD/ST sizes (2 bytes per weight, no scales; KV rows of 2 bytes per element), decode being
HBM-bound at ~2 bytes per weight (its time about twice an 8-bit recipe's on the same HBM), and prefill
being compute-bound at the FP16 MAC rate the design's unit counts give (simulator/fp16_datapath.py).
"""
from __future__ import annotations

import dataclasses
import math

import pytest

from llmaccel.mapping.compiler import CompileError
from llmaccel.mapping.compiler.formats import formats_from_recipe
from llmaccel.mapping.recipe import NAMED_RECIPES, LayerRule
from llmaccel.mapping.sim_api import build_compiler, simulate
from llmaccel.simulator import isa
from llmaccel.simulator.design import design_from_dict, design_to_dict, load_design
from llmaccel.simulator.specs._yaml import SpecError
from llmaccel.simulator.specs.model import load_model_spec
from llmaccel.mapping.compiler.lower import program_instructions

FP16 = NAMED_RECIPES["fp16"]


# ------------------------------------------------------------------ refusals by name
def test_int8_engine_refuses_fp16_weights_and_fp16_engine_refuses_integer_weights():
    with pytest.raises(CompileError, match=r"FP16 weights \(weight_dtype='fp16'\); design 'flightllm-u280' has "
                                           r"matrix_engine.mac_dtype='int8'; allowed for these weights: mac_dtype='fp16'"):
        build_compiler("tiny", "flightllm-u280", "fp16", max_len=256)
    with pytest.raises(CompileError, match=r"packed \[4\]-bit integer weights; design 'dfx-u280' has "
                                           r"matrix_engine.mac_dtype='fp16'; allowed for these weights: mac_dtype='int8'"):
        build_compiler("tiny", "dfx-u280", "w4-g128-rtn", max_len=256)


def test_fp16_with_sparsity_or_integer_kv_refused():
    spec = load_model_spec("tiny")
    sparse = dataclasses.replace(FP16, name="fp16-24", mlp=LayerRule(nm=(2, 4)))
    with pytest.raises(CompileError, match=r"mlp.nm=2:4 with weight_dtype='fp16'.*allowed: nm=null"):
        formats_from_recipe(spec, sparse)
    with pytest.raises(CompileError, match=r"needs kv_bits=16 .*got kv_bits=8; allowed: 16"):
        formats_from_recipe(spec, dataclasses.replace(FP16, name="fp16-kv8", kv_bits=8))
    with pytest.raises(CompileError, match=r"kv_bits=16 with integer weights.*allowed: kv_bits=8"):
        formats_from_recipe(spec, dataclasses.replace(NAMED_RECIPES["w8"], name="w8-kv16", kv_bits=16))


def _design_dict(name: str) -> dict:
    return design_to_dict(load_design(name))


@pytest.mark.parametrize("edit,match", [
    (lambda d: d["matrix_engine"].update(supported_nm=["dense", "2:16"]),
     r"supported_nm=\['dense', '2:16'\] with mac_dtype='fp16'.*allowed: \['dense'\]"),
    (lambda d: d["matrix_engine"].update(mac_dtype="bf16"), r"mac_dtype"),
    (lambda d: d.update(weight_decoder={"decoders_per_channel": 4}),
     r"weight_decoder must be null with matrix_engine.mac_dtype='fp16'"),
])
def test_fp16_design_schema_refusals(edit, match):
    d = _design_dict("dfx-u280")
    edit(d)
    with pytest.raises(SpecError, match=match):
        design_from_dict(d, "test")


def test_int8_design_without_decoder_refused():
    d = _design_dict("flightllm-u280")
    d["weight_decoder"] = None
    with pytest.raises(SpecError, match=r"weight_decoder: null needs matrix_engine.mac_dtype='fp16'"):
        design_from_dict(d, "test")


def test_fp16_ld_word_roundtrips_and_unknown_bit_code_is_refused():
    ld = isa.LD(kind="weight_codes", bits=16, rows=3, length_lines=4, row_elems=128)
    words = isa.encode([ld])
    assert (int(words[0]) >> 28) & 0xF == 1                      # 16 is stored as code 1 in the 4-bit field
    assert isa.decode(words) == [ld]
    bad = words.copy()
    bad[0] = (int(bad[0]) & 0x0FFFFFFF) | (5 << 28)               # 5 is no width
    with pytest.raises(isa.IsaError, match=r"field 'bits' holds code 5"):
        isa.decode(bad)
    with pytest.raises(isa.IsaError, match=r"field 'bits'=16 loads FP16 weight rows .*group_size=0"):
        isa.LD(kind="weight_codes", bits=16, group_size=128)


# ------------------------------------------------------------------ what the programs say
def test_fp16_programs_move_two_bytes_per_weight_and_per_kv_element():
    comp, _, _ = build_compiler("tiny", "dfx-u280", "fp16", max_len=256)
    spec = comp.spec
    prog = comp.layer_program("decode", 64, 1, core0_only=False)
    ins = [i for _, i, _ in program_instructions(prog)]
    w = [i for i in ins if isinstance(i, isa.LD) and i.kind == "weight_codes"]
    assert w and all(i.bits == 16 and i.group_size == 0 and i.nm is None for i in w)
    for i in w:   # a row is row_elems FP16 values, padded to whole 64-byte lines; no scales
        assert i.length_lines == math.ceil(2 * i.row_elems / 64)
    kv_ld = [i for i in ins if isinstance(i, isa.LD) and i.kind in isa.KV_KINDS]
    kv_st = [i for i in ins if isinstance(i, isa.ST) and i.kind in isa.KV_KINDS]
    assert kv_ld and kv_st and {i.kind for i in kv_ld + kv_st} == {"kv_cache_fp16"}
    assert all(isa.kv_bytes(i) == i.rows * 2 * spec.head_dim for i in kv_ld + kv_st)
    assert not [i for i in ins if isinstance(i, (isa.MM, isa.MV)) and i.fuse == "quantize"]   # no INT8 KV quantize
    # the whole KV cache: K and V, every layer and KV head, max_len tokens, 2 bytes per element
    assert comp.kv_bytes_total == 2 * spec.num_layers * spec.num_kv_heads * 256 * spec.head_dim * 2


# ------------------------------------------------------------------ physics
def _linear_params(spec) -> int:
    return sum(o * k for _, o, k in spec.linear_shapes())


def _w8_row_bytes(k: int) -> int:
    """An 8-bit, group-128, symmetric row: k bytes of codes (whole 32-bit words) + one FP16 scale per
    group, padded to 64-byte lines (sparse_dsp/packed_format.py; mapping.compiler.partition)."""
    return math.ceil((4 * math.ceil(8 * k / 32) + 2 * (k // 128)) / 64) * 64


def test_llama2_7b_fp16_decode_is_hbm_bound_and_twice_an_8bit_recipe():
    """Llama2-7B on the U55C's HBM (8 GB on the U280 is too small for 13.5 GB of FP16 weights): FP16 on
    dfx-u55c against w8 on an INT8 design with the same kernel clock (200 MHz, so the same 512-bit x 200 MHz
    = 12.8 GB/s per channel port) and enough decoders (16 per channel x 4 INT8 weights per cycle = 64 B/cycle,
    the port's rate) that neither design is decoder- or compute-bound in decode: time per token then follows
    bytes per token, and the expected ratio is the ratio of the bytes each moves (weights once per token,
    the KV cache of the context), computed here from the shapes."""
    spec = load_model_spec("llama2-7b")
    base = load_design("flightllm-u55c")
    int8 = dataclasses.replace(base, name="flightllm-u55c-200", clock_MHz=200.0,
                               weight_decoder=dataclasses.replace(base.weight_decoder, decoders_per_channel=16))
    P, D = 128, 16
    r16 = simulate("llama2-7b", "dfx-u55c", "fp16", prefill=P, decode=D)
    r8 = simulate("llama2-7b", int8, "w8", prefill=P, decode=D)
    ctx = P + D / 2                                            # mean context of the decode steps
    kv16 = 2 * spec.num_layers * spec.num_kv_heads * ctx * (2 * spec.head_dim)
    kv8 = 2 * spec.num_layers * spec.num_kv_heads * ctx * (spec.head_dim + 4)
    w16 = 2 * (spec.num_layers * _linear_params(spec) + spec.vocab_size * spec.hidden_size)
    w8 = (spec.num_layers * sum(o * _w8_row_bytes(k) for _, o, k in spec.linear_shapes())
          + spec.vocab_size * _w8_row_bytes(spec.hidden_size))
    expected = (w16 + kv16) / (w8 + kv8)
    got = r16.decode_ms_per_token / r8.decode_ms_per_token
    assert 1.9 < expected < 2.0                                # ~2 bytes/weight against ~1.02
    # Measured (2026-12-01): 1.846 against a bytes ratio of 1.968, 6.2% below it: the INT8 design's weight
    # decoders add a pipeline fill per tile that the raw FP16 stream does not pay (its breakdown shows ~1.0 of
    # 19.4 ms as decoder_stall, and more decoders do not remove it: 20 and 28 per channel give 1.82 and 1.85).
    # A 10% band holds that and still refuses a 1.5-byte (ratio ~1.47) or 1-byte (~0.98) FP16 stream.
    assert got == pytest.approx(expected, rel=0.10)
    # and FP16 decode itself is set by its bytes: between the 512-bit x 200 MHz port ceiling and 85% of it
    t_port = (w16 + kv16) / (32 * 64 * 200e6)
    assert t_port <= r16.decode_ms_per_token * 1e-3 <= t_port / 0.85
    # memory-bound: the decode stream runs near the HBM ceiling, far from the MAC ceiling
    assert r16.hbm_bw_utilization > 0.8
    assert r16.decode_mac_utilization < 0.6


def test_fp16_prefill_is_compute_bound_at_the_fp16_mac_rate():
    """Prefill on dfx-u280: the MACs of a 512-token prompt (every linear once per token, causal QK^T and P.V,
    the LM head for the last token) at the design's FP16 rate - cores x chains x chain_len units, one MAC per
    unit per cycle (one lane: no WP486 packing for FP16), at 200 MHz - is a lower bound the simulated prefill
    must come close to; the HBM time of its weight passes is far below it."""
    d = load_design("dfx-u280")
    me = d.matrix_engine
    macs_per_s = d.cores * me.chains_per_core * (me.groups_per_chain * me.dsps_per_group) * d.clock_MHz * 1e6
    assert macs_per_s == 4 * 16 * 32 * 200e6
    spec = load_model_spec("llama-3.2-1b")
    P = 512
    attn = spec.num_layers * 2 * (P * (P + 1) // 2) * spec.q_dim      # QK^T and P.V over the causal triangle
    macs = spec.num_layers * _linear_params(spec) * P + attn + spec.vocab_size * spec.hidden_size
    t_compute = macs / macs_per_s
    r = simulate("llama-3.2-1b", d, "fp16", prefill=P, decode=1, max_len=1024)
    w_bytes = 2 * (spec.num_layers * _linear_params(spec) + spec.vocab_size * spec.hidden_size)
    assert w_bytes / (32 * 12.8e9) < 0.25 * t_compute               # one weight pass: a fraction of the compute
    # Measured 0.97 of the compute bound (chain fill/drain, bucket padding, SFU phases between linears);
    # 0.85 is the floor: below it prefill is no longer set by the FP16 MAC rate.
    assert r.prefill_s >= t_compute
    assert t_compute / r.prefill_s > 0.85


def test_gpt2_xl_on_one_dfx_u280_is_hbm_bound():
    """GPT-2 XL (1.5B, the larger model DFX ran) on ONE dfx-u280: decode per token streams the FP16 weights
    (tied LM head: the embedding is read once more as the head) and the KV of the context at near the port
    ceiling. A CHECK against DFX itself is in docs/simulator.md ("FP16 designs"): DFX's absolute tokens/s
    was not available here, so no test holds the simulator to it."""
    spec = load_model_spec("gpt2-xl")
    P, D = 64, 64
    r = simulate("gpt2-xl", "dfx-u280", "fp16", prefill=P, decode=D, max_len=1024)
    w = 2 * (spec.num_layers * _linear_params(spec) + spec.vocab_size * spec.hidden_size)
    kv = 2 * spec.num_layers * spec.num_kv_heads * (P + D / 2) * 2 * spec.head_dim
    t_port = (w + kv) / (32 * 64 * 200e6)
    # Measured 0.85 of the port ceiling (25 heads over 4 cores split 7/6/6/6: the busiest core sets the pace);
    # 0.75 is the floor for "HBM-bound".
    assert t_port <= r.decode_ms_per_token * 1e-3 <= t_port / 0.75
