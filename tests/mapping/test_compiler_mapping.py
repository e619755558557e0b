"""Compiler: placement never crosses channels, buffers fit, buckets and storage are counted right,
fusion and the ISA encoding hold, and every bad input is one clear error."""
import math
from pathlib import Path

import pytest

from llmaccel.mapping import tiling as T
from llmaccel.mapping.compiler import CompileError, hbm_row_bytes, program_instructions
from llmaccel.simulator import isa
from llmaccel.simulator.timing_costs import kept, transfer
from llmaccel.mapping.placement import PlacementError
from llmaccel.mapping.sim_api import build_compiler, simulate
from llmaccel.simulator.isa import decode, encode
from llmaccel.simulator.resources import DesignFitError
from llmaccel.simulator.specs._yaml import SpecError
from llmaccel.errors import LlmaccelError

TINY = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")


@pytest.fixture(scope="module")
def tiny():
    return build_compiler("tiny", TINY, "w4-g128-rtn", max_len=256)[0]


def _all_programs(comp, decode_ctx=(16, 128, 256), prefill=(128, 256)):
    progs = [comp.head_program()] + [comp.layer_program("decode", c, 1) for c in decode_ctx]
    for b in prefill:
        progs += comp.prefill_programs(b)
    return progs


def _check_placement(comp, progs):
    """Every LD/ST the words hold lies inside one placed region, in one of its core's own channels."""
    pl = comp.placement
    cpc = comp.hw.channels_per_core
    n_access = 0
    for prog in progs:
        for core, ins, name in program_instructions(prog):
            if not isinstance(ins, (isa.LD, isa.ST)):
                continue
            n_access += 1
            addr, nbytes = transfer(ins)
            assert core * cpc <= ins.channel < (core + 1) * cpc, name   # a core reads only its own channels
            hits = [r for r in pl.regions if r.channel0 <= ins.channel < r.channel0 + r.n_channels
                    and r.addr <= addr and addr + nbytes <= r.end]
            assert len(hits) == 1, name
            assert addr + nbytes <= comp.hw.hbm_channel_bytes
    # regions of one channel never overlap
    by_ch = {}
    for r in pl.regions:
        for ch in range(r.channel0, r.channel0 + r.n_channels):
            by_ch.setdefault(ch, []).append((r.addr, r.end))
    for spans in by_ch.values():
        spans.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    return n_access


def test_placement_never_crosses_channels_tiny(tiny):
    assert _check_placement(tiny, _all_programs(tiny)) > 100


def test_placement_never_crosses_channels_llama2_7b():
    comp = build_compiler("llama2-7b", "flightllm-u280", "flightllm", check_fit=False)[0]
    progs = [comp.head_program(), comp.layer_program("decode", 1024, 1), comp.prefill_programs(128)[-1]]
    assert _check_placement(comp, progs) > 1000
    assert comp.placement.bytes_used >= comp.f.weight_bytes + comp.kv_bytes_total


def test_check_access_rejects_out_of_region():
    from llmaccel.mapping.placement import HbmPlacement
    pl = HbmPlacement(8, 1 << 20, 2)
    r = pl.allocate("t", 0, 4096)
    with pytest.raises(PlacementError, match="leaves its region"):
        pl.check_access(r.tensor, r.channel0, r.n_channels, r.end - 64, 128)
    with pytest.raises(PlacementError, match="channels"):
        pl.check_access(r.tensor, r.channel0 + 1, r.n_channels, r.addr, 64)


def test_tiles_fit_their_buffers(tiny):
    for prog in _all_programs(tiny):
        for _, ins, _ in program_instructions(prog):
            if isinstance(ins, isa.LD) and ins.kind == "weight_codes":
                dec_row = kept(ins.row_elems, ins.nm) + 2 * (ins.row_elems // ins.group_size)
                # every channel's share of a tile, times the channels, double-buffered, fits
                assert T.BUFFER_SLOTS * ins.rows * tiny.cpc * dec_row <= tiny.hw.weight_buf_bytes_per_core
                # the tile lands inside its slot of the weight buffer
                assert (ins.dst_offset_lines + ins.rows * ins.dst_row_stride_lines) * isa.LINE_BYTES <= \
                    tiny.hw.weight_buf_bytes_per_core
            if isinstance(ins, isa.LD) and ins.kind == "kv_cache":
                assert T.BUFFER_SLOTS * isa.kv_bytes(ins) * tiny.cpc <= tiny.hw.kv_buf_bytes_per_core + \
                    T.BUFFER_SLOTS * tiny.cpc * T.kv_row_bytes(tiny.spec.head_dim)


def test_design_with_too_small_weight_buffer_is_rejected(tmp_path):
    y = Path(TINY).read_text().replace("size_bytes: 65536, banks: 8, width_bits: 64", "size_bytes: 1024, banks: 8, width_bits: 64")
    p = tmp_path / "small.yaml"
    p.write_text(y)
    with pytest.raises(LlmaccelError, match="weight buffer"):
        build_compiler("tiny", str(p), "w4-g128-rtn", max_len=256)


def test_bucket_counts_and_storage_saving_match_brute_force(tiny):
    rep = tiny.storage_report()
    assert rep["decode_buckets"] == 256 // 16 and rep["prefill_buckets"] == 256 // 128
    assert rep["programs_per_length"] == 2 * 256
    def w(prog):
        return sum(len(st.words) for st in prog.cores)
    nl, head = tiny.spec.num_layers, w(tiny.head_program())

    def prefill(L, bucket):
        ch = tiny.prefill_chunk(bucket)
        return nl * sum(w(tiny.layer_program("prefill", q0 + min(ch, L - q0), min(ch, L - q0)))
                        for q0 in range(0, L, ch)) + head
    per_len = sum(nl * w(tiny.layer_program("decode", L, 1)) + head + prefill(L, L) for L in range(1, 257))
    bucketed = sum(nl * w(tiny.layer_program("decode", b, 1)) + head for b in range(16, 257, 16)) + \
        sum(prefill(b, b) for b in (128, 256))
    assert rep["instruction_bytes_per_length"] == 4 * per_len
    assert rep["instruction_bytes_bucketed"] == 4 * bucketed
    assert rep["instruction_storage_saving"] == pytest.approx(1 - bucketed / per_len)


def test_bucket_of_lengths_and_beyond_max_len(tiny):
    assert tiny.decode_bucket_of(1) == 16 and tiny.decode_bucket_of(17) == 32 and tiny.decode_bucket_of(256) == 256
    assert tiny.prefill_bucket_of(129) == 256
    with pytest.raises(CompileError, match="beyond the compiled maximum"):
        tiny.decode_bucket_of(257)
    with pytest.raises(LlmaccelError, match="beyond the compiled maximum"):
        simulate("tiny", TINY, "w4-g128-rtn", prefill=200, decode=100, max_len=256)


def test_fusion_removes_sfu_instructions_and_is_not_slower():
    fused = build_compiler("tiny", TINY, "w4-g128-rtn", max_len=256)[0]
    unfused = build_compiler("tiny", TINY, "w4-g128-rtn", max_len=256, fuse=False)[0]
    pf, pu = fused.layer_program("decode", 64, 1), unfused.layer_program("decode", 64, 1)
    fi, ui = [i for _, i, _ in program_instructions(pf)], [i for _, i, _ in program_instructions(pu)]
    assert sum(isinstance(i, isa.MISC) for i in ui) > sum(isinstance(i, isa.MISC) for i in fi)
    assert any(getattr(i, "fuse", "") == "rope" for i in fi)
    assert all(getattr(i, "fuse", "none") == "none" for i in ui)
    from llmaccel.simulator.timing import layer_timing
    assert layer_timing(pf, fused.hw).steady.cycles <= layer_timing(pu, unfused.hw).steady.cycles


def test_compiled_streams_encode_and_decode(tiny):
    for prog in (tiny.layer_program("decode", 48, 1), tiny.prefill_programs(128)[0], tiny.head_program()):
        assert [st.core for st in prog.cores] == list(range(tiny.hw.n_cores))
        for st in prog.cores:
            instrs = decode(st.words)
            assert len(instrs) == len(st.names) and encode(instrs).tolist() == st.words.tolist()


def test_hbm_row_padding_to_lines():
    from llmaccel.sparse_dsp.packed_format import LayerFormat
    f = LayerFormat(8, 256, 4, 128, True, None)   # 128 code bytes + 4 scale bytes = 132
    assert f.row_bytes == 132 and hbm_row_bytes(f) == 192


# ---------------------------------------------------------------- bad input: one clear error each

def test_weights_exceeding_hbm_capacity():
    with pytest.raises(CompileError, match="exceed HBM capacity"):
        build_compiler("llama2-13b", "flightllm-u280", "w8", check_fit=False)


def test_design_that_does_not_fit_the_device(tmp_path):
    y = Path(TINY).read_text().replace("chains_per_core: 8", "chains_per_core: 4000")
    p = tmp_path / "huge.yaml"
    p.write_text(y)
    with pytest.raises(DesignFitError, match="DSP"):
        build_compiler("tiny", str(p), "w4-g128-rtn", max_len=256)


def test_unknown_presets():
    with pytest.raises(SpecError, match="unknown design preset"):
        build_compiler("tiny", "no-such-design", "w4-g128-rtn")
    with pytest.raises(SpecError, match="unknown model preset"):
        build_compiler("no-such-model", TINY, "w4-g128-rtn")
    with pytest.raises(LlmaccelError, match="unknown recipe"):
        build_compiler("tiny", TINY, "no-such-recipe")


def test_malformed_design_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\ncores: [1, 2\n")
    with pytest.raises(SpecError, match="malformed YAML"):
        build_compiler("tiny", str(p), "w4-g128-rtn")
    p.write_text(Path(TINY).read_text().replace("cores: 2", "cores: two"))
    with pytest.raises(SpecError, match="cores"):
        build_compiler("tiny", str(p), "w4-g128-rtn")


def test_fp32_recipe_and_unsupported_nm():
    with pytest.raises(CompileError, match="FP32"):
        build_compiler("tiny", TINY, "fp32")
    with pytest.raises(CompileError, match="does not support"):
        build_compiler("llama2-7b", "flightllm-u280", "2:4+w4", check_fit=False)


def test_max_len_validation():
    with pytest.raises(CompileError, match="max_len"):
        build_compiler("tiny", TINY, "w4-g128-rtn", max_len=100)
    with pytest.raises(CompileError, match="max_position_embeddings"):
        build_compiler("tiny", TINY, "w4-g128-rtn", max_len=1024)


def test_mixed_recipe_without_weights_meets_its_budget():
    comp = build_compiler("llama2-7b", "flightllm-u280", "mixed-3.5", check_fit=False)[0]
    lay = comp.f.layer(0)
    kept = {k: f.out_features * f.kept_per_row for k, f in lay.items()}
    avg = sum(kept[k] * f.bits for k, f in lay.items()) / sum(kept.values())
    assert avg <= 3.5 and len({f.bits for f in lay.values()}) > 1
    assert math.isclose(comp.f.lm_head.bits, 8)


def test_weight_tiles_align_to_the_channel_decoders():
    from llmaccel.sparse_dsp.packed_format import LayerFormat
    fmt = LayerFormat(1024, 4096, 4, 128, True, None)
    dec_row = T.decoded_row_bytes(fmt)
    t = T.weight_tiling(fmt, 1024, 8, 2 * 8 * 59 * dec_row, "q", align=14)   # buffer fits 59 rows/channel
    r_ch = t.rows_per_tile // 8
    assert r_ch % 14 == 0 and r_ch <= 59 and t.n_tiles * r_ch >= t.rows_per_channel
    # a buffer smaller than one aligned group still works (unaligned), never overflows
    t2 = T.weight_tiling(fmt, 1024, 8, 2 * 8 * 9 * dec_row, "q", align=14)
    assert t2.rows_per_tile // 8 <= 9 and t2.n_tiles * (t2.rows_per_tile // 8) >= t2.rows_per_channel
