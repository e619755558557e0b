"""ISA: encode/decode round trips (property-based), field range errors, stable disassembly."""
from __future__ import annotations

from pathlib import Path
import re

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import isa
from simulator.isa import (INSTRUCTIONS, LD, MISC, MM, MV, NM_CODES, ST, SYS, UNIT_BIT, IsaError, assemble,
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
    if cls is LD and kwargs["bits"]:  # decoding needs weight codes and a group size (LD._check)
        kwargs["kind"] = "weight_codes"
        kwargs["group_size"] = max(1, kwargs["group_size"])
    return cls(**kwargs)


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
        MISC wait=MPE op=rmsnorm rows=1 row_len=4096
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


def test_word_counts_and_dependency_width_follow_flightllm():
    """LD 7, ST 3, MM 4, MV 4, MISC 3, SYS 1 words of 32 bits; 5-bit wait/release (hardware.yaml)."""
    text = yaml.safe_load(HW.read_text())["published_accelerator_architectures"]["flightllm_u280"]["isa"]
    expected = {m: int(n) for m, n in re.findall(r"(LD|ST|MM|MV|MISC|SYS)\((\d+)", text)}
    assert expected == {"LD": 7, "ST": 3, "MM": 4, "MV": 4, "MISC": 3, "SYS": 1}
    assert "5-bit wait/release" in text
    assert {c.MNEMONIC: c.WORDS for c in INSTRUCTIONS} == expected
    assert isa.DEP_BITS == 5 and len(isa.UNITS) == 5
    for cls in INSTRUCTIONS:
        assert len(encode([cls()])) == expected[cls.MNEMONIC]


def test_known_encodings():
    """Hand-assembled words pin the layout (a layout change must be deliberate)."""
    # SYS: opcode 6 [3:0], wait=LD (bit 0) at [8:4], op set_position=2 at [15:14], imm=17 at [31:16].
    assert encode([SYS(wait=units_mask("LD"), op="set_position", imm=17)]).tolist() == \
        [6 | (1 << 4) | (2 << 14) | (17 << 16)]
    # ST: opcode 2, release=SFU (bit 3) at [13:9], channel 31 at [20:15], kind kv_cache=1 at [26:24].
    assert encode([ST(release=units_mask("SFU"), channel=31, kind="kv_cache", dst_addr_lines=0xABCDEF01,
                      src_offset_lines=3, length_lines=2)]).tolist() == \
        [2 | (8 << 9) | (31 << 15) | (1 << 24), 0xABCDEF01, 3 | (2 << 16)]


def test_dense_nm_normalised_and_bad_enums():
    assert MV(nm=(16, 16)).nm is None and MV(nm=(2, 16)).nm == (2, 16)
    with pytest.raises(IsaError, match=r"field 'nm'=\(3, 16\) is not allowed; allowed: dense, 2:4"):
        MV(nm=(3, 16))
    with pytest.raises(IsaError, match=r"field 'op'='gelu' is not allowed; allowed: softmax, rmsnorm"):
        MISC(op="gelu")
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
    bad_enum[0] |= np.uint32(7 << 27)  # nm code 7 does not exist
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
    from simulator.design import load_design

    d = load_design("flightllm-u280")
    per_core = [b for b in d.buffers if b.scope == "core"]
    assert len(per_core) <= isa.MAX_BUFFERS_PER_CORE
    for b in per_core:
        last_line = b.size_bytes // isa.LINE_BYTES - 1
        MV(act_buffer=d.buffer_id(b.name), act_offset_lines=last_line)  # addressable, no error
