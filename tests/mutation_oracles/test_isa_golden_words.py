"""Every instruction and every code table of the ISA against hand-assembled words.

A round trip (encode then decode) cannot see a layout that changed on both sides: two swapped
fields, or a permuted N:M table, still round-trip. These words were assembled by hand from the
layout as documented when this test was written (simulator/isa.py: opcode [3:0], wait [8:4],
release [13:9]; per-instruction fields below, as ``value << lsb`` in word ``i``). A deliberate
layout change must update them; an accidental one fails here.
"""
from __future__ import annotations

import pytest

from llmaccel.simulator.isa import LD, MISC, MM, MV, ST, SYS, decode, encode

# unit bits: LD 1, ST 2, MPE 4, SFU 8, SYS 16
LD_, ST_, MPE_, SFU_, SYS_ = 1, 2, 4, 8, 16

GOLDEN = [
    # LD: mem [14], channel [20:15], dst_buffer [23:21], kind [27:24], bits [31:28]; w1 src_addr;
    # w2 length [23:0], nm [26:24], asymmetric [27]; w3 dst_offset [15:0], rows [31:16];
    # w4 src_row_stride; w5 dst_row_stride [15:0], group_size [31:16]; w6 row_elems [15:0], src_byte_offset [21:16]
    (LD(wait=MPE_, release=SFU_ | SYS_, mem="ddr", channel=37, dst_buffer=5, kind="weight_codes", bits=4,
        src_addr_lines=0x12345678, length_lines=0xABCD, nm=(2, 16), asymmetric=True, dst_offset_lines=0x1234,
        rows=9, src_row_stride_lines=0xDEADBEEF, dst_row_stride_lines=0x0777, group_size=128, row_elems=4096),
     [1 | 4 << 4 | 24 << 9 | 1 << 14 | 37 << 15 | 5 << 21 | 1 << 24 | 4 << 28,
      0x12345678, 0xABCD | 3 << 24 | 1 << 27, 0x1234 | 9 << 16, 0xDEADBEEF, 0x0777 | 128 << 16, 4096]),
    # a KV LD: 3 rows of 128 INT8 + 4 scale bytes from byte 8 of the line: ceil(404 / 64) = 7 lines
    (LD(kind="kv_cache", src_addr_lines=0x100, rows=3, row_elems=128, src_byte_offset=8, length_lines=7),
     [1 | 4 << 24, 0x100, 7, 3 << 16, 0, 0, 128 | 8 << 16]),
    # MM: act [16:14], wt [19:17], out [22:20], fuse [25:23], mode [27:26], nm [30:28], accumulate [31];
    # w1 m [15:0], act_offset [31:16]; w2 n [15:0], k [31:16]; w3 wt_offset [15:0], out_offset [31:16];
    # w4 key0 [15:0], qgroup [21:16]
    (MM(wait=LD_, release=SFU_, act_buffer=1, wt_buffer=2, out_buffer=3, fuse="gelu", nm=(4, 8), accumulate=True,
        m=7, act_offset_lines=0x0102, n=300, k=4096, wt_offset_lines=0x0A0B, out_offset_lines=0x0C0D),
     [3 | 1 << 4 | 8 << 9 | 1 << 14 | 2 << 17 | 3 << 20 | 4 << 23 | 2 << 28 | 1 << 31,
      7 | 0x0102 << 16, 300 | 4096 << 16, 0x0A0B | 0x0C0D << 16, 1 << 16]),
    (MM(mode="qk", m=8, qgroup=4, key0=512, n=64, k=128), [3 | 1 << 26, 8, 64 | 128 << 16, 0, 512 | 4 << 16]),
    # MV: as MM's first four words, key0 in w1 [15:0]
    (MV(wait=LD_ | SFU_, release=ST_, act_buffer=6, wt_buffer=1, out_buffer=2, fuse="rope", nm=(2, 4),
        act_offset_lines=0x0304, n=11, k=128, wt_offset_lines=0x0005, out_offset_lines=0x0600),
     [4 | 9 << 4 | 2 << 9 | 6 << 14 | 1 << 17 | 2 << 20 | 1 << 23 | 1 << 28,
      0x0304 << 16, 11 | 128 << 16, 0x0005 | 0x0600 << 16]),
    (MV(mode="pv", key0=40, n=128, k=40, accumulate=True), [4 | 2 << 26 | 1 << 31, 40, 128 | 40 << 16, 0]),
    # MISC: op [17:14], src [20:18], dst [23:21], aux [26:24]; w1 src_off [15:0], dst_off [31:16];
    # w2 aux_off [15:0], row_len [31:16]; w3 row0 [15:0], rows [21:16], qgroup [27:22]
    (MISC(wait=MPE_, release=ST_, op="rope", src_buffer=1, dst_buffer=4, aux_buffer=6, rows=33,
          src_offset_lines=0x11, dst_offset_lines=0x22, aux_offset_lines=0x33, row_len=96, row0=5, qgroup=2),
     [5 | 4 << 4 | 2 << 9 | 8 << 14 | 1 << 18 | 4 << 21 | 6 << 24, 0x11 | 0x22 << 16, 0x33 | 96 << 16,
      5 | 33 << 16 | 2 << 22]),
    # ST: mem [14], channel [20:15], src_buffer [23:21], kind [26:24]; w1 dst_addr; w2 src_off, length;
    # w3 rows [15:0], row_elems [25:16], dst_byte_offset [31:26]
    (ST(wait=SFU_, release=MPE_, mem="ddr", channel=2, src_buffer=7, kind="logits", dst_addr_lines=5,
        src_offset_lines=0xFFFF, length_lines=0x8000),
     [2 | 8 << 4 | 4 << 9 | 1 << 14 | 2 << 15 | 7 << 21 | 2 << 24, 5, 0xFFFF | 0x8000 << 16, 1]),
    # SYS: op [16:14], imm [31:17]
    (SYS(wait=LD_ | ST_ | MPE_ | SFU_, release=0, op="end"), [6 | 15 << 4 | 3 << 14]),
    (SYS(release=LD_, op="barrier", imm=0x7FFF), [6 | 1 << 9 | 1 << 14 | 0x7FFF << 17]),
]


@pytest.mark.parametrize("ins,words", GOLDEN, ids=lambda v: type(v).__name__ if not isinstance(v, list) else "")
def test_instruction_encodes_to_hand_assembled_words(ins, words):
    assert encode([ins]).tolist() == words
    assert decode(words) == [ins]


# code tables, written out by hand (the order is part of the binary format)
NM_TABLE = {None: 0, (2, 4): 1, (4, 8): 2, (2, 16): 3, (4, 16): 4, (8, 16): 5}
FUSE_TABLE = {"none": 0, "rope": 1, "quantize": 2, "silu_mul": 3, "gelu": 4, "relu": 5, "gelu_erf": 6}
MODE_TABLE = {"linear": 0, "qk": 1, "pv": 2}
MISC_TABLE = {"softmax": 0, "rmsnorm": 1, "layernorm": 2, "silu": 3, "gelu": 4, "relu": 5, "add": 6, "mul": 7,
              "rope": 8, "quantize": 9}
SYS_TABLE = {"nop": 0, "barrier": 1, "set_position": 2, "end": 3}
LOAD_KIND_TABLE = {"activation": 0, "weight_codes": 1, "weight_indices": 2, "weight_meta": 3, "kv_cache": 4,
                   "norm_weights": 5, "embedding": 6, "bias": 7, "other": 8}
STORE_KIND_TABLE = {"activation": 0, "kv_cache": 1, "logits": 2, "other": 3}


def test_code_tables_match_hand_written_tables():
    for nm, code in NM_TABLE.items():
        assert encode([MV(nm=nm)]).tolist()[0] == 4 | code << 28, nm
        assert encode([LD(nm=nm)]).tolist()[2] == 1 | code << 24, nm
    for op, code in FUSE_TABLE.items():
        assert encode([MV(fuse=op)]).tolist()[0] == 4 | code << 23, op
    for mode, code in MODE_TABLE.items():
        assert encode([MV(mode=mode)]).tolist()[0] == 4 | code << 26, mode
    for op, code in MISC_TABLE.items():
        assert encode([MISC(op=op)]).tolist()[0] == 5 | code << 14, op
    for op, code in SYS_TABLE.items():
        assert encode([SYS(op=op, imm=3)]).tolist() == [6 | code << 14 | 3 << 17], op
    for kind, code in LOAD_KIND_TABLE.items():   # row_elems 1: a kv_cache row needs one (1 + 4 bytes: 1 line)
        assert encode([LD(kind=kind, row_elems=1)]).tolist()[0] == 1 | code << 24, kind
    for kind, code in STORE_KIND_TABLE.items():
        assert encode([ST(kind=kind, row_elems=1)]).tolist()[0] == 2 | code << 24, kind
    for bits in (2, 3, 4, 8):   # the bits field holds the width itself, not an index
        w = encode([LD(kind="weight_codes", bits=bits, group_size=64)]).tolist()
        assert w[0] == 1 | 1 << 24 | bits << 28 and w[5] == 64 << 16, bits
    # defaults: length_lines 1, rows 1, qgroup 1 (the lo bound of each)
    assert encode([LD()]).tolist() == [1, 0, 1, 1 << 16, 0, 0, 0]
    assert encode([ST()]).tolist() == [2, 0, 1 << 16, 1]
    assert encode([MM()]).tolist() == [3, 1, 1 | 1 << 16, 0, 1 << 16]
    assert encode([MISC()]).tolist() == [5 | 6 << 14, 0, 1 << 16, 1 << 16 | 1 << 22]


def test_unused_codes_are_refused_by_decode():
    """nm codes 6 and 7, fuse code 7, mode code 3, MISC op codes 10..15, SYS op codes 4..7, LD kind 10..15 are
    unused (LD kind 9 is kv_cache_fp16): decode names the field."""
    from llmaccel.simulator.isa import IsaError
    mv = [0, 1 | 1 << 16, 0]
    for code in (6, 7):
        with pytest.raises(IsaError, match="'nm' holds code"):
            decode([4 | code << 28] + mv)
    with pytest.raises(IsaError, match="'fuse' holds code 7"):
        decode([4 | 7 << 23] + mv)
    with pytest.raises(IsaError, match="'mode' holds code 3"):
        decode([4 | 3 << 26] + mv)
    for code in (10, 15):
        with pytest.raises(IsaError, match="'op' holds code"):
            decode([5 | code << 14, 0, 1 << 16, 1 << 16 | 1 << 22])
    for code in (4, 7):
        with pytest.raises(IsaError, match="'op' holds code"):
            decode([6 | code << 14])
    for code in (10, 15):
        with pytest.raises(IsaError, match="'kind' holds code"):
            decode([1 | code << 24, 0, 1, 1 << 16, 0, 0, 0])
