"""ISA: encode/decode round trips (property-based), field range errors, stable disassembly."""
from __future__ import annotations

from pathlib import Path
import re

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmaccel.simulator import isa
from llmaccel.simulator.isa import (INSTRUCTIONS, LD, MISC, MM, MV, NM_CODES, ST, SYS, UNIT_BIT, IsaError, assemble,
                           decode, disassemble, encode, program_bytes, units_mask)

HW = Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "hardware.yaml"  # ../shared of the repository
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _field_strategy(f):
    if f.kind == "bool":
        return st.booleans()
    if f.kind == "enum":
        return st.sampled_from(f.choices)
    if f.kind == "nm":
        return st.sampled_from(NM_CODES)
    if f.choices:
        return st.sampled_from(f.choices)
    return st.integers(f.lo, f.hi)


@st.composite
def instructions(draw, cls=None):
    cls = cls or draw(st.sampled_from(INSTRUCTIONS))
    others = [b for u, b in UNIT_BIT.items() if u != cls.UNIT]
    dep = st.lists(st.sampled_from(others), unique=True).map(sum)
    kwargs = {"wait": draw(dep), "release": draw(dep)}
    for f in cls.LAYOUT:
        kwargs[f.name] = draw(_field_strategy(f))
    return cls(**_repair(cls, kwargs))


def _repair(cls, kw):
    """Make drawn fields satisfy the cross-field rules of ``Instr._check`` (the rules are tested below)."""
    if cls is LD and kw["bits"]:  # decoding needs weight codes and a group size (LD._check)
        kw["kind"] = "weight_codes"
        kw["group_size"] = max(1, kw["group_size"])
        if kw["bits"] == 16:      # FP16 rows: no scales, dense, no zero points (LD._check)
            kw["group_size"], kw["nm"], kw["asymmetric"] = 0, None, False
    if cls in (LD, ST):
        off = "src_byte_offset" if cls is LD else "dst_byte_offset"
        if kw["kind"] in ("kv_cache", "kv_cache_fp16"):
            kw["row_elems"] = max(1, kw["row_elems"])
            kw["rows"] = min(kw["rows"], 1000)
            rb = 2 * kw["row_elems"] if kw["kind"] == "kv_cache_fp16" else kw["row_elems"] + 4
            kw["length_lines"] = -(-(kw[off] + kw["rows"] * rb) // 64)
        else:
            kw[off] = 0
    if cls in (MM, MV):
        if kw["mode"] != "linear":
            kw["nm"], kw["fuse"] = None, "none"
        else:
            kw["key0"] = 0
        if kw["fuse"] == "silu_mul":
            kw["accumulate"] = False
    if cls is MM:
        kw["m"] = max(kw["qgroup"], kw["m"] // kw["qgroup"] * kw["qgroup"])
    return kw


programs = st.lists(instructions(), min_size=0, max_size=12)


@SETTINGS
@given(programs)
def test_encode_decode_round_trip(prog):
    words = encode(prog)
    assert words.dtype == np.uint32
    assert len(words) == sum(i.WORDS for i in prog) == program_bytes(prog) // 4
    back = decode(words)
    assert back == prog
    assert np.array_equal(encode(back), words)


@SETTINGS
@given(programs)
def test_disassembly_is_stable(prog):
    text = disassemble(prog)
    assert text == disassemble(decode(encode(prog))) == disassemble(encode(prog))
    lines = text.splitlines() if prog else []
    assert len(lines) == len(prog)
    for line, ins in zip(lines, prog):
        assert re.match(rf"^\d{{6}}  {ins.MNEMONIC}\s", line)
    assert assemble(text) == prog  # the listing is complete: it parses back to the same program


def test_assemble_hand_written_and_errors():
    prog = assemble("""
        # decode step of one layer (fragment)
        SYS  op=set_position imm=7 rel=LD
        LD   wait=SYS rel=MPE kind=weight_codes bits=4 nm=2:16 group_size=128 channel=3 length_lines=8 rows=96
        MV   wait=LD rel=SFU n=4096 k=4096 nm=2:16 fuse=silu_mul
        MISC wait=MPE op=rmsnorm rows=1 row_len=4096 aux_buffer=5
    """)
    assert [i.MNEMONIC for i in prog] == ["SYS", "LD", "MV", "MISC"]
    assert prog[1] == LD(wait=units_mask("SYS"), release=units_mask("MPE"), kind="weight_codes", bits=4,
                         nm=(2, 16), group_size=128, channel=3, length_lines=8, rows=96)
    with pytest.raises(IsaError, match=r"line 1: 'JMP' is not a mnemonic"):
        assemble("JMP 3")
    with pytest.raises(IsaError, match=r"line 1: MV has no field 'm'"):
        assemble("MV m=3")
    with pytest.raises(IsaError, match=r"line 2: MV: field 'k'=70000 does not fit its 16-bit field"):
        assemble("SYS\nMV k=70000")
    with pytest.raises(IsaError, match=r"line 1: field 'wait': unit 'DMA' is unknown"):
        assemble("MV wait=DMA")


@SETTINGS
@given(st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=16))
def test_decode_is_injective_or_refuses(words):
    """Any word stream either decodes to instructions that re-encode to exactly those words,
    or is refused with IsaError: no bit is silently ignored or misread."""
    try:
        prog = decode(np.asarray(words, dtype=np.uint32))
    except IsaError:
        return
    assert encode(prog).tolist() == words


@SETTINGS
@given(st.lists(instructions(), min_size=1, max_size=4), st.data())
def test_single_bit_flip_is_seen(prog, data):
    """Flipping any one bit of a valid program gives a refusal or a different program that
    re-encodes to the flipped words: every used bit is decoded."""
    words = encode(prog)
    j = data.draw(st.integers(0, len(words) - 1))
    b = data.draw(st.integers(0, 31))
    words[j] ^= np.uint32(1 << b)
    try:
        back = decode(words)
    except IsaError:
        return
    assert back != prog
    assert np.array_equal(encode(back), words)


@SETTINGS
@given(instructions(), st.data())
def test_reserved_bit_set_is_refused(ins, data):
    words = encode([ins])
    free = [(j, b) for j, used in enumerate(isa.USED_BITS[type(ins)]) for b in range(32) if not used >> b & 1]
    if not free:
        return
    j, b = data.draw(st.sampled_from(free))
    words[j] |= np.uint32(1 << b)
    with pytest.raises(IsaError, match="reserved bits set"):
        decode(words)


@SETTINGS
@given(st.data())
def test_out_of_range_field_is_an_error_not_truncated(data):
    cls = data.draw(st.sampled_from(INSTRUCTIONS))
    int_fields = [f for f in cls.LAYOUT if f.kind == "int"]
    f = data.draw(st.sampled_from(int_fields))
    bad = data.draw(st.one_of(st.integers(f.hi + 1, f.hi * 4 + 4), st.integers(-1000, f.lo - 1)))
    with pytest.raises(IsaError, match=rf"field '{f.name}'={bad} "):
        cls(**{f.name: bad, **({"kind": "weight_codes", "group_size": 1} if cls is LD and f.name == "bits" else {})})


# Words this ISA adds to FlightLLM's counts, each for facts the engines need (module docstring):
# ST: byte-exact KV rows; MM: key0/qgroup of attention tiles; MISC: row0/qgroup and a 4-bit op.
ADDED_WORDS = {"ST": 1, "MM": 1, "MISC": 1}


def test_word_counts_and_dependency_width_follow_flightllm():
    """FlightLLM: LD 7, ST 3, MM 4, MV 4, MISC 3, SYS 1 words of 32 bits; 5-bit wait/release (hardware.yaml);
    this ISA adds exactly the words ADDED_WORDS names."""
    text = yaml.safe_load(HW.read_text())["published_accelerator_architectures"]["flightllm_u280"]["isa"]
    expected = {m: int(n) for m, n in re.findall(r"(LD|ST|MM|MV|MISC|SYS)\((\d+)", text)}
    assert expected == {"LD": 7, "ST": 3, "MM": 4, "MV": 4, "MISC": 3, "SYS": 1}
    assert "5-bit wait/release" in text
    expected = {m: n + ADDED_WORDS.get(m, 0) for m, n in expected.items()}
    assert {c.MNEMONIC: c.WORDS for c in INSTRUCTIONS} == expected
    assert isa.DEP_BITS == 5 and len(isa.UNITS) == 5
    for cls in INSTRUCTIONS:
        assert len(encode([cls()])) == expected[cls.MNEMONIC]


def test_known_encodings():
    """Hand-assembled words pin the layout (a layout change must be deliberate)."""
    # SYS: opcode 6 [3:0], wait=LD (bit 0) at [8:4], op set_position=2 at [16:14], imm=17 at [31:17].
    assert encode([SYS(wait=units_mask("LD"), op="set_position", imm=17)]).tolist() == \
        [6 | (1 << 4) | (2 << 14) | (17 << 17)]
    assert encode([SYS(op="barrier")]).tolist() == [6 | (1 << 14)]
    assert encode([SYS(op="end")]).tolist() == [6 | (3 << 14)]
    # ST: opcode 2, release=SFU (bit 3) at [13:9], channel 31 at [20:15], kind kv_cache=1 at [26:24];
    # word 3: rows=3 [15:0], row_elems=128 [25:16], dst_byte_offset=8 [31:26]; 3 x 132 + 8 bytes = 7 lines.
    assert encode([ST(release=units_mask("SFU"), channel=31, kind="kv_cache", dst_addr_lines=0xABCDEF01,
                      src_offset_lines=3, length_lines=7, rows=3, row_elems=128, dst_byte_offset=8)]).tolist() == \
        [2 | (8 << 9) | (31 << 15) | (1 << 24), 0xABCDEF01, 3 | (7 << 16), 3 | (128 << 16) | (8 << 26)]
    # LD: kind bias=7 at [27:24], bits at [31:28]; word 6: row_elems=4096 [15:0], src_byte_offset [21:16].
    assert encode([LD(kind="bias", dst_buffer=2, src_addr_lines=5, length_lines=4, rows=2, row_elems=64)]).tolist() == \
        [1 | (2 << 21) | (7 << 24), 5, 4, 2 << 16, 0, 0, 64]
    assert encode([LD(kind="weight_codes", bits=4, group_size=128, row_elems=11008)]).tolist()[0] == \
        1 | (1 << 24) | (4 << 28)
    assert encode([LD(kind="weight_codes", bits=4, group_size=128, row_elems=11008)]).tolist()[6] == 11008
    # MM: act 2 [16:14], wt 3 [19:17], out 5 [22:20], fuse rope=1 [25:23], mode qk=1 [27:26], nm [30:28],
    # accumulate [31]; m=16 [15:0] of word 1; word 4: key0=256 [15:0], qgroup=4 [21:16].
    assert encode([MM(act_buffer=2, wt_buffer=3, out_buffer=5, mode="qk", m=16, n=64, k=128, key0=256,
                      qgroup=4)]).tolist() == \
        [3 | (2 << 14) | (3 << 17) | (5 << 20) | (1 << 26), 16, 64 | (128 << 16), 0, 256 | (4 << 16)]
    assert encode([MV(fuse="silu_mul", nm=(2, 16), accumulate=False)]).tolist()[0] == 4 | (3 << 23) | (3 << 28)  # nm 2:16 = code 3
    assert encode([MV(accumulate=True, fuse="gelu")]).tolist()[0] == 4 | (4 << 23) | (1 << 31)
    assert encode([MV(mode="pv", key0=40, n=128, k=40)]).tolist() == [4 | (2 << 26), 40, 128 | (40 << 16), 0]
    # MISC: op layernorm=2 at [17:14], aux 5 at [26:24]; word 3: row0=63 [15:0], rows=2 [21:16], qgroup=1 [27:22].
    assert encode([MISC(op="layernorm", aux_buffer=5, row_len=768, row0=63, rows=2)]).tolist() == \
        [5 | (2 << 14) | (5 << 24), 0, 768 << 16, 63 | (2 << 16) | (1 << 22)]


def test_cross_field_rules():
    with pytest.raises(IsaError, match=r"ST: field 'length_lines'=1, but 3 KV rows of 128 \+ 4 bytes from byte 0 "
                                       r"touch 7 lines"):
        ST(kind="kv_cache", rows=3, row_elems=128, length_lines=1)
    with pytest.raises(IsaError, match=r"LD: field 'src_byte_offset'=4 addresses bytes inside a line"):
        LD(kind="weight_codes", src_byte_offset=4)
    with pytest.raises(IsaError, match=r"kind='kv_cache' needs field 'row_elems'"):
        LD(kind="kv_cache")
    with pytest.raises(IsaError, match=r"fuse='silu_mul' reads the destination as the gate"):
        MV(fuse="silu_mul", accumulate=True)
    with pytest.raises(IsaError, match=r"mode='qk' multiplies dense KV tiles"):
        MM(mode="qk", fuse="rope")
    with pytest.raises(IsaError, match=r"mode='linear' needs key0=0"):
        MV(key0=3)
    with pytest.raises(IsaError, match=r"'m'=6 must be a multiple of 'qgroup'=4"):
        MM(mode="qk", m=6, qgroup=4)
    words = encode([SYS(op="end")])
    words[0] |= np.uint32(5 << 14)      # op code 7: no such SYS op
    with pytest.raises(IsaError, match=r"field 'op' holds code 7; allowed codes 0..3"):
        decode(words)


def test_dense_nm_normalised_and_bad_enums():
    assert MV(nm=(16, 16)).nm is None and MV(nm=(2, 16)).nm == (2, 16)
    with pytest.raises(IsaError, match=r"field 'nm'=\(3, 16\) is not allowed; allowed: dense, 2:4"):
        MV(nm=(3, 16))
    with pytest.raises(IsaError, match=r"field 'op'='swish' is not allowed; allowed: softmax, rmsnorm"):
        MISC(op="swish")
    with pytest.raises(IsaError, match=r"field 'bits'=5 is not allowed; allowed: 0, 2, 3, 4, 8"):
        LD(kind="weight_codes", bits=5, group_size=128)
    with pytest.raises(IsaError, match=r"field 'bits'=4 decodes weight codes; it needs kind='weight_codes'"):
        LD(kind="activation", bits=4)
    with pytest.raises(IsaError, match=r"field 'accumulate' must be true or false"):
        MM(accumulate=1)
    with pytest.raises(IsaError, match=r"names the instruction's own unit LD"):
        LD(release=units_mask("LD"))
    with pytest.raises(IsaError, match=r"unit 'DMA' is unknown"):
        units_mask("DMA")


def test_bad_word_streams():
    good = encode([MV(n=8, k=8), SYS(op="end")])
    with pytest.raises(IsaError, match=r"word 0: opcode 0 is not an instruction"):
        decode([0])
    with pytest.raises(IsaError, match=r"word 0: MV needs 4 words, only 3 left"):
        decode(good[:3])
    bad_enum = good.copy()
    bad_enum[0] |= np.uint32(7 << 28)  # nm code 7 does not exist
    with pytest.raises(IsaError, match=r"word 0 \(MV\): field 'nm' holds code 7"):
        decode(bad_enum)
    zero_len = encode([MV(n=8, k=8)])
    zero_len[2] = 0  # n = 0, k = 0
    with pytest.raises(IsaError, match=r"word 0 \(MV\): .*field 'n'=0 does not fit"):
        decode(zero_len)
    with pytest.raises(IsaError, match=r"1-D"):
        decode(np.zeros((2, 2), dtype=np.uint32))
    with pytest.raises(IsaError, match=r"is not an ISA instruction"):
        encode(["LD"])


def test_buffer_limits_match_design_spec():
    from llmaccel.simulator.design import load_design

    d = load_design("flightllm-u280")
    per_core = [b for b in d.buffers if b.scope == "core"]
    assert len(per_core) <= isa.MAX_BUFFERS_PER_CORE
    for b in per_core:
        last_line = b.size_bytes // isa.LINE_BYTES - 1
        MV(act_buffer=d.buffer_id(b.name), act_offset_lines=last_line)  # addressable, no error
