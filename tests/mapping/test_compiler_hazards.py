"""The hazard checker (mapping.compiler.hazards): every compiled program is race-free under every
schedule its tokens allow, and hand-broken programs (the old per-linear slot scheme, dropped waits,
a cycle, a wait nobody releases, an MV reading an empty slot) are flagged by name."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from llmaccel.mapping.compiler.hazards import HazardError, check_programs, program_hazards, stream_hazards
from llmaccel.mapping.sim_api import build_compiler
from llmaccel.simulator import isa
from llmaccel.simulator.design import list_designs

TINY = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")
B = isa.UNIT_BIT


@pytest.fixture(scope="module")
def tiny():
    comp = build_compiler("tiny", TINY, "w4-g128-rtn", max_len=256)[0]
    return comp, comp.compile_model()


def _stream(prog, core=0):
    st = prog.stream(core)
    return isa.decode(st.words), list(st.names)


def _edit(ins, names, name, **fields):
    out = list(ins)
    i = names.index(name)
    out[i] = dataclasses.replace(out[i], **fields)
    return out


def _decode(cm, ctx=48):
    return cm.program("decode", cm.decode_bucket_of(ctx), 1, 0)


# ---------------------------------------------------------------- the compiled programs are race-free
@pytest.mark.parametrize("design", list_designs())
def test_every_program_of_every_bundled_design_is_race_free(design):
    from llmaccel.simulator.design import load_design
    fp16 = load_design(design).matrix_engine.mac_dtype == "fp16"        # DFX-style designs run FP16 weights only
    # the tiny model: every program a session may run (all decode buckets, all prefill chunks, head)
    comp = build_compiler("tiny", design, "fp16" if fp16 else "w4-g128-rtn", max_len=256, check_fit=False)[0]
    cm = comp.compile_model()
    assert check_programs(cm) == len(comp.all_program_keys())
    # Llama-2-7B (FP16: Llama-3.2-1B, 7B's 12.3 GiB exceed the U280's HBM), every core: the head, the first
    # and last decode buckets, the first and last prefill chunk
    comp = build_compiler("llama-3.2-1b" if fp16 else "llama2-7b", design, "fp16" if fp16 else "flightllm",
                          check_fit=False)[0]
    ch = comp.prefill_chunk(comp.max_len)
    keys = [("head", 0, 1, -1), ("decode", comp.decode_bucket, 1, 0), ("decode", comp.max_len, 1, 0),
            ("prefill", ch, ch, 0), ("prefill", comp.max_len, comp.max_len % ch or ch, 0)]
    cm = comp.compile_model(keys)
    assert check_programs(cm) == 5
    assert all(len(p.cores) == comp.hw.n_cores for p in cm.programs.values())


@pytest.mark.parametrize("family,fuse", [("llama", True), ("llama", False), ("llama3", True), ("mistral", True),
                                         ("qwen2", True), ("gpt2", True), ("opt", True)])
def test_every_family_is_race_free(family, fuse):
    """Biased families preload biases into the shared ``tmp`` vector; the unfused Llama path runs RoPE on
    the SFU: both orderings the tokens must carry (the checker found both missing)."""
    from llmaccel.simulator.specs.model import model_spec_from_hf_config
    from llmaccel.testing.tiny_checkpoints import hf_config
    spec = model_spec_from_hf_config(hf_config(family).to_dict(), name=f"tiny-{family}")
    comp = build_compiler(spec, TINY, "w4-g128-rtn", max_len=128, fuse=fuse)[0]
    cm = comp.compile_model()
    assert check_programs(cm) == len(comp.all_program_keys())


def test_tile_slots_rotate_across_linears_and_kv_tiles(tiny):
    comp, cm = tiny
    ins, names = _stream(_decode(cm))
    w_slot = comp.hw.weight_buf_bytes_per_core // 2 // isa.LINE_BYTES
    kv_slot = comp.hw.kv_buf_bytes_per_core // 2 // isa.LINE_BYTES
    firsts = [(n.split("[")[0], x.dst_buffer, x.dst_offset_lines) for x, n in zip(ins, names)
              if isinstance(x, isa.LD) and x.kind in ("weight_codes", "kv_cache") and n.endswith(".ch0")]
    w = [o for _, b, o in firsts if b == cm.buffers.weight]
    kv = [o for _, b, o in firsts if b == cm.buffers.kv]
    assert w == [(i % 2) * w_slot for i in range(len(w))] and len(w) >= 7
    assert kv == [(i % 2) * kv_slot for i in range(len(kv))] and len(kv) >= 4
    # q takes two tiles, k and v one each: the two consecutive one-tile linears take different slots
    assert [(n, o) for n, _, o in firsts[:4]] == [("ld_q_proj", 0), ("ld_q_proj", w_slot), ("ld_k_proj", 0),
                                                   ("ld_v_proj", w_slot)]


# ---------------------------------------------------------------- hand-broken programs are flagged
def test_the_per_linear_slot_scheme_is_flagged(tiny):
    """The earlier compiler's slots (tile index % 2, restarting per linear and per K/V pass) under the
    same tokens: an LD may refill the slot the previous linear's MV has not read."""
    comp, cm = tiny
    ins, names = _stream(_decode(cm))
    w_slot = comp.hw.weight_buf_bytes_per_core // 2 // isa.LINE_BYTES
    kv_slot = comp.hw.kv_buf_bytes_per_core // 2 // isa.LINE_BYTES
    old = []
    for x, n in zip(ins, names):
        if isinstance(x, isa.LD) and x.kind == "weight_codes":
            x = dataclasses.replace(x, dst_offset_lines=int(n.split("[")[1].split("]")[0]) % 2 * w_slot)
        elif isinstance(x, isa.LD) and x.kind == "kv_cache":
            x = dataclasses.replace(x, dst_offset_lines=int(n.split(",")[1].split("]")[0]) % 2 * kv_slot)
        elif isinstance(x, (isa.MV, isa.MM)) and x.mode == "linear":
            x = dataclasses.replace(x, wt_offset_lines=int(n.split("[")[1].split("]")[0]) % 2 * w_slot)
        elif isinstance(x, (isa.MV, isa.MM)):
            x = dataclasses.replace(x, wt_offset_lines=int(n.split(",")[1].split("]")[0]) % 2 * kv_slot)
        old.append(x)
    hz = {(h.kind, h.first, h.second) for h in stream_hazards(old, names, 0, cm)}
    assert ("write-after-read", "mv_k_proj[0]", "ld_v_proj[0].ch0") in hz      # v_proj refills k_proj's slot 0
    assert ("write-after-read", "qk[h0,0]", "ld_v[h0,0].ch0") in hz            # V tile 0 over K tile 0
    assert not stream_hazards(ins, names, 0, cm)                               # the same program, ring slots


def test_dropped_waits_are_flagged(tiny):
    comp, cm = tiny
    ins, names = _stream(_decode(cm))
    # the first K/V store without the position register's token: it may name the wrong tokens
    sts = [n for x, n in zip(ins, names) if isinstance(x, isa.ST)]
    assert ins[names.index(sts[0])].wait & B["SYS"] and len(sts) == 4
    hz = stream_hazards(_edit(ins, names, sts[0], wait=B["MPE"]), names, 0, cm)
    assert [(h.kind, h.first, h.second, h.buffer) for h in hz] == [("read-after-write", "set_position", n, -1)
                                                                   for n in sts]
    assert "the position register" in str(hz[0])
    # q_proj's first tile without the RMSNorm's token: it may read h before the norm wrote it
    hz = stream_hazards(_edit(ins, names, "mv_q_proj[0]", wait=B["LD"]), names, 0, cm)
    assert ("read-after-write", "rmsnorm_in", "mv_q_proj[0]", cm.buffers.activation) in \
        {(h.kind, h.first, h.second, h.buffer) for h in hz}
    # v_proj's tile LD (the 4th tile: slot 1) without its slot token: it may overwrite slot 1 before
    # q_proj's second tile was read
    hz = stream_hazards(_edit(ins, names, "ld_v_proj[0].ch0", wait=0), names, 0, cm)
    assert ("write-after-read", "mv_q_proj[1]", "ld_v_proj[0].ch0", cm.buffers.weight) in \
        {(h.kind, h.first, h.second, h.buffer) for h in hz}


def test_deadlocks_and_empty_slots_are_flagged(tiny):
    comp, cm = tiny
    ins, names = _stream(_decode(cm))
    # the o_proj all-gather no longer releases the post-attention norm: its wait takes the layer
    # barrier's token, which comes after the norm (a cycle)
    hz = stream_hazards(_edit(ins, names, "barrier_o", release=0), names, 0, cm)
    assert [(h.kind, h.second) for h in hz] == [("deadlock", "rmsnorm_post")]
    # an MV waiting on ST, which never releases to the MPE
    hz = stream_hazards(_edit(ins, names, "mv_k_proj[0]", wait=B["LD"] | B["ST"]), names, 0, cm)
    assert [(h.kind, h.second) for h in hz] == [("deadlock", "mv_k_proj[0]")]
    assert "never released" in str(hz[0])
    # q_proj's MV names the slot k_proj's tile goes to: it reads a slot nothing filled yet
    w_slot = comp.hw.weight_buf_bytes_per_core // 2 // isa.LINE_BYTES
    hz = stream_hazards(_edit(ins, names, "mv_q_proj[0]", wt_offset_lines=w_slot), names, 0, cm)
    assert ("unfilled-slot", "mv_q_proj[0]") in {(h.kind, h.second) for h in hz}


def test_tokens_count_from_the_initial_tokens(tiny):
    """The k-th wait on a counter is ordered after the (k - initial)-th release, and nothing more: one
    initial slot token makes one slot safe, three make two slots unsafe."""
    comp, cm = tiny
    ins, names = _stream(_decode(cm))
    ld = ins[names.index("ld_q_proj[0].ch0")]
    mv = dataclasses.replace(ins[names.index("mv_q_proj[0]")], fuse="none", wait=B["LD"], release=B["LD"])
    s = 512

    def tiles(slots):
        out = []
        for o in slots:
            out += [dataclasses.replace(ld, wait=B["MPE"], release=B["MPE"], dst_offset_lines=o),
                    dataclasses.replace(mv, wt_offset_lines=o)]
        return out, [f"{k}{i}" for i in range(len(slots)) for k in ("ld", "mv")]

    mpe_ld = (isa.UNITS.index("MPE"), isa.UNITS.index("LD"))
    for slots, init, bad in [((0, s, 0, s), 2, []), ((0, 0), 2, [("mv0", "ld1")]), ((0, 0, 0), 1, []),
                             ((0, s, 0), 3, [("mv0", "ld2")]), ((0, s, s), 2, [("mv1", "ld2")])]:
        x, n = tiles(slots)
        hz = stream_hazards(x, n, 0, cm, initial={mpe_ld: init})
        assert [(h.first, h.second) for h in hz if h.kind == "write-after-read"] == bad, (slots, init)


def test_check_programs_raises_one_clear_error(tiny):
    comp, cm = tiny
    prog = _decode(cm)
    ins, names = _stream(prog)
    broken = dataclasses.replace(prog, cores=(dataclasses.replace(
        prog.stream(0), words=isa.encode(_edit(ins, names, "ld_v_proj[0].ch0", wait=0))),) + prog.cores[1:])
    assert program_hazards(broken, cm)
    with pytest.raises(HazardError, match=r"program \('decode', 48, 1, 0\): core 0: write-after-read on buffer 0 "
                                          r"lines 512\.\.\d+: 'ld_v_proj\[0\]\.ch0' is not ordered after "
                                          r"'mv_q_proj\[1\]'; .* \(and \d+ more\)"):
        check_programs(cm, [broken])
