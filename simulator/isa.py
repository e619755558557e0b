"""The accelerator's instruction set: the ONE definition of instructions, fields and binary encoding.

The compiler (``mapping``) emits these instructions, the timing and functional
engines execute them, :func:`disassemble` prints them (and :func:`assemble` reads the listing back), and
:func:`encode`/:func:`decode` round-trip them (property-tested).

Shape of the ISA (after FlightLLM, hardware.yaml
``published_accelerator_architectures.flightllm_u280.isa``): 32-bit words;
5-bit wait/release fields. FlightLLM's word counts are LD 7, ST 3, MM 4, MV 4,
MISC 3, SYS 1; this ISA keeps LD 7, MV 4 and SYS 1 and adds one word to ST
(byte-exact KV rows: rows, row_elems, byte offset), MM (key0 and qgroup of
attention tiles) and MISC (row0, qgroup; a 4-bit op). The field layout inside the
words is this project's own (docs/simulator.md, "ISA").

What the binary says (both engines execute exactly this; nothing is taken from
names). Buffers: ids index the design's per-core buffers; activation-buffer
offsets name a vector of one token (token ``t`` of a program lives ``t`` slabs
further, the slab size being the design's per-token activation layout).
MM/MV ``mode``: linear (weights), qk (scores into the SFU buffer), pv (P.V
into the attention output); the output-path ops follow ``accumulate`` then
``fuse``. Norms: MISC rmsnorm/layernorm with the parameter block at
``aux``. Weight LDs: channel + line address name the HBM rows (packed rows,
each padded to whole lines), ``row_elems`` the dense K. KV LD/ST: byte-exact
rows. SYS ``set_position`` gives the position the program was compiled for
(the last position of its length bucket for decode); a launch may run the
program at any position of the same bucket (length-adaptive compilation): the
host's position register then moves the KV store rows and the causal masks,
the timing is that of the compiled position.

FP16 (DFX-style designs, ``matrix_engine.mac_dtype: fp16``; docs/numerics.md section 7): LD
``bits`` = 16 loads FP16 weight rows as they are (2 bytes per element, no decoder, so
``group_size`` 0, ``nm`` dense, ``asymmetric`` 0). The 4-bit field stores 2/3/4/8 as themselves
and 16 as code 1 (``LOAD_BITS_CODES``; no 1-bit format exists), so older words keep their
encoding; other codes are refused. LD/ST kind ``kv_cache_fp16`` (appended to both kind lists)
is a byte-exact KV row of ``row_elems`` FP16 values without a scale (:func:`kv_row_bytes`).
What the MPE multiplies (INT8 or FP16) is the design's engine, one datatype per design.

Units and dependencies. Five units execute instructions, each in program
order: ``LD`` (HBM/DDR -> buffer, through the weight decoders), ``ST``
(buffer -> HBM/DDR), ``MPE`` (the matrix engine: MM and MV), ``SFU`` (MISC)
and ``SYS``. Bit ``i`` of a wait/release field names unit ``UNITS[i]``.
Between every ordered pair of units (P, C) there is a token counter:
when an instruction of unit P *completes* with release bit C set, counter
(P -> C) is incremented; an instruction of unit C with wait bit P set does
not *start* until counter (P -> C) is positive, then decrements it. An
instruction may not wait on, or release to, its own unit (program order
already orders it).

Addresses and sizes. HBM/DDR addresses, buffer offsets, lengths and strides
are in 64-byte lines (``LINE_BYTES``); buffer offsets are 16 bits, so one
buffer holds at most ``MAX_BUFFER_BYTES``. A program runs on one core;
buffer ids (3 bits) index that core's per-core buffers in the order the
design lists them (:meth:`simulator.design.AcceleratorDesign.buffer_id`).
A value that does not fit its field is an error, never truncated.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Optional, Sequence, Union

import numpy as np

from llmaccel.errors import LlmaccelError

WORD_BITS = 32
LINE_BYTES = 64
BUFFER_ID_BITS = 3
OFFSET_BITS = 16
MAX_BUFFERS_PER_CORE = 1 << BUFFER_ID_BITS
MAX_BUFFER_BYTES = LINE_BYTES << OFFSET_BITS

UNITS = ("LD", "ST", "MPE", "SFU", "SYS")
UNIT_BIT = {u: 1 << i for i, u in enumerate(UNITS)}
DEP_BITS = 5

MEMORIES = ("hbm", "ddr")
# kv_cache_fp16 (appended, so the older kinds keep their codes): KV rows of row_elems FP16 values, no scale
LOAD_KINDS = ("activation", "weight_codes", "weight_indices", "weight_meta", "kv_cache", "norm_weights",
              "embedding", "bias", "other", "kv_cache_fp16")
STORE_KINDS = ("activation", "kv_cache", "logits", "other", "kv_cache_fp16")
KV_KINDS = ("kv_cache", "kv_cache_fp16")
# N:M codes; dense is None (16:16 is dense). The supported patterns of sparse_dsp.packed_format.
NM_CODES: tuple[Optional[tuple[int, int]], ...] = (None, (2, 4), (4, 8), (2, 16), (4, 16), (8, 16))
LOAD_BITS = (0, 2, 3, 4, 8, 16)  # 0: raw bytes (no decode); 2..8 packed weight code width; 16: FP16 weights
# The 4-bit field stores a packed width as itself and 16 (which does not fit) as code 1 (no 1-bit format exists).
LOAD_BITS_CODES = (0, 2, 3, 4, 8, 1)
PACKED_BITS = (2, 3, 4, 8)   # widths the weight decoder decodes; 16 bypasses it (raw FP16 rows)
FP16_WEIGHT_BITS = 16
# The matrix engine's output-path op, applied after ``accumulate`` (see MM): rope on whole heads,
# quantize (the INT8 KV quantization, done where the row is stored), silu_mul (destination holds the
# gate: dst = silu(dst) * y), gelu (tanh approximation, GPT-2's gelu_new), relu, gelu_erf (exact GELU).
FUSE_OPS = ("none", "rope", "quantize", "silu_mul", "gelu", "relu", "gelu_erf")
MISC_OPS = ("softmax", "rmsnorm", "layernorm", "silu", "gelu", "relu", "add", "mul", "rope", "quantize")
SYS_OPS = ("nop", "barrier", "set_position", "end")
MATRIX_MODES = ("linear", "qk", "pv")
ELEMS_PER_LINE_F32 = 16   # FP32 elements in a 64-byte line
KV_SCALE_BYTES = 4   # a KV row: row_elems INT8 values then one FP32 scale (docs/numerics.md)
FP16_BYTES = 2       # a kv_cache_fp16 row: row_elems FP16 values, no scale (docs/numerics.md section 7)


class IsaError(LlmaccelError):
    """An instruction field out of range, or a word stream that is not a valid program."""


def units_mask(*units: str) -> int:
    """``units_mask("LD", "SFU")`` -> the 5-bit wait/release value naming those units."""
    bad = [u for u in units if u not in UNIT_BIT]
    if bad:
        raise IsaError(f"unit '{bad[0]}' is unknown; allowed: {', '.join(UNITS)}")
    mask = 0
    for u in units:
        mask |= UNIT_BIT[u]
    return mask


def mask_units(mask: int) -> tuple[str, ...]:
    return tuple(u for u in UNITS if mask & UNIT_BIT[u])


@dataclass(frozen=True)
class Field:
    """One operand field: ``width`` bits at bit ``lsb`` of word ``word``."""

    name: str
    word: int
    lsb: int
    width: int
    kind: str = "int"           # int | bool | enum | nm
    choices: tuple = ()         # enum: values in code order; int: allowed values (empty = any in range)
    lo: int = 0                 # smallest allowed int
    codes: tuple = ()           # int with choices: the code stored for each choice (empty = the value itself)

    @property
    def hi(self) -> int:
        return (1 << self.width) - 1

    def to_code(self, value: Any, where: str) -> int:
        if self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise IsaError(f"{where}: field '{self.name}' must be true or false, got {value!r}")
            return int(value)
        if self.kind == "enum":
            if value not in self.choices:
                raise IsaError(f"{where}: field '{self.name}'={value!r} is not allowed; allowed: "
                               f"{', '.join(map(str, self.choices))}")
            return self.choices.index(value)
        if self.kind == "nm":
            if value not in NM_CODES:
                allowed = ", ".join("dense" if p is None else f"{p[0]}:{p[1]}" for p in NM_CODES)
                raise IsaError(f"{where}: field 'nm'={value!r} is not allowed; allowed: {allowed}")
            return NM_CODES.index(value)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise IsaError(f"{where}: field '{self.name}' must be an integer, got {value!r}")
        value = int(value)
        if self.choices and value not in self.choices:
            raise IsaError(f"{where}: field '{self.name}'={value} is not allowed; allowed: "
                           f"{', '.join(map(str, self.choices))}")
        if self.codes:
            return self.codes[self.choices.index(value)]
        if not self.lo <= value <= self.hi:
            raise IsaError(f"{where}: field '{self.name}'={value} does not fit its {self.width}-bit field; "
                           f"allowed: {self.lo}..{self.hi}")
        return value

    def from_code(self, code: int, where: str) -> Any:
        if self.kind == "bool":
            return bool(code)
        if self.kind == "enum":
            if code >= len(self.choices):
                raise IsaError(f"{where}: field '{self.name}' holds code {code}; allowed codes 0..{len(self.choices) - 1}")
            return self.choices[code]
        if self.kind == "nm":
            if code >= len(NM_CODES):
                raise IsaError(f"{where}: field 'nm' holds code {code}; allowed codes 0..{len(NM_CODES) - 1}")
            return NM_CODES[code]
        if self.codes:
            if code not in self.codes:
                raise IsaError(f"{where}: field '{self.name}' holds code {code}; allowed codes "
                               f"{', '.join(map(str, self.codes))}")
            return self.choices[self.codes.index(code)]
        return code


HEADER = (Field("opcode", 0, 0, 4), Field("wait", 0, 4, DEP_BITS), Field("release", 0, 9, DEP_BITS))


def _F(name, word, lsb, width, **kw) -> Field:
    return Field(name, word, lsb, width, **kw)


class Instr:
    """Base of all instructions: validation, encoding and printing come from ``LAYOUT``."""

    OPCODE: ClassVar[int]
    WORDS: ClassVar[int]
    UNIT: ClassVar[str]
    MNEMONIC: ClassVar[str]
    LAYOUT: ClassVar[tuple[Field, ...]]

    def __post_init__(self) -> None:
        where = self.MNEMONIC
        for f in (HEADER[1], HEADER[2]) + self.LAYOUT:
            value = getattr(self, f.name)
            if f.kind == "nm" and isinstance(value, (tuple, list)):
                value = (int(value[0]), int(value[1]))
                if value[0] == value[1]:
                    value = None  # N == M is dense
                object.__setattr__(self, f.name, value)
            f.to_code(value, where)
            if f.kind == "int":
                object.__setattr__(self, f.name, int(value))
        own = UNIT_BIT[self.UNIT]
        for dep in ("wait", "release"):
            if getattr(self, dep) & own:
                raise IsaError(f"{where}: field '{dep}' names the instruction's own unit {self.UNIT}; "
                               f"allowed: other units ({', '.join(u for u in UNITS if u != self.UNIT)})")
        self._check()

    def _check(self) -> None:
        """Cross-field rules of one instruction kind."""

    @property
    def unit(self) -> str:
        return self.UNIT


@dataclass(frozen=True)
class LD(Instr):
    """Load ``rows`` x ``length_lines`` lines from HBM/DDR into a buffer; weight codes are decoded
    to INT8 on the way (``bits`` != 0) as ``sparse_dsp/packed_format.py`` lays them out.

    ``src_row_stride_lines`` = 0 with ``rows`` > 1 reads the lines once and writes ``rows`` copies,
    ``dst_row_stride_lines`` apart (a bias broadcast to every token row of a program).
    """

    wait: int = 0
    release: int = 0
    mem: str = "hbm"
    channel: int = 0
    dst_buffer: int = 0
    kind: str = "activation"
    bits: int = 0
    src_addr_lines: int = 0
    length_lines: int = 1
    nm: Optional[tuple[int, int]] = None
    asymmetric: bool = False
    dst_offset_lines: int = 0
    rows: int = 1
    src_row_stride_lines: int = 0
    dst_row_stride_lines: int = 0
    group_size: int = 0
    row_elems: int = 0
    src_byte_offset: int = 0

    OPCODE: ClassVar[int] = 1
    WORDS: ClassVar[int] = 7
    UNIT: ClassVar[str] = "LD"
    MNEMONIC: ClassVar[str] = "LD"
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _F("mem", 0, 14, 1, kind="enum", choices=MEMORIES),
        _F("channel", 0, 15, 6),
        _F("dst_buffer", 0, 21, BUFFER_ID_BITS),
        _F("kind", 0, 24, 4, kind="enum", choices=LOAD_KINDS),
        _F("bits", 0, 28, 4, choices=LOAD_BITS, codes=LOAD_BITS_CODES),
        _F("src_addr_lines", 1, 0, 32),
        _F("length_lines", 2, 0, 24, lo=1),
        _F("nm", 2, 24, 3, kind="nm"),
        _F("asymmetric", 2, 27, 1, kind="bool"),
        _F("dst_offset_lines", 3, 0, OFFSET_BITS),
        _F("rows", 3, 16, 16, lo=1),
        _F("src_row_stride_lines", 4, 0, 32),
        _F("dst_row_stride_lines", 5, 0, 16),
        _F("group_size", 5, 16, 16),
        _F("row_elems", 6, 0, 16),
        _F("src_byte_offset", 6, 16, 6),
    )

    def _check(self) -> None:
        _check_row_bytes(self, "src_byte_offset")
        if self.bits and self.kind != "weight_codes":
            raise IsaError(f"LD: field 'bits'={self.bits} decodes weight codes; it needs kind='weight_codes' "
                           f"(got kind='{self.kind}'), or bits=0 for raw bytes")
        if self.bits == FP16_WEIGHT_BITS:
            if self.group_size or self.nm is not None or self.asymmetric:
                raise IsaError(f"LD: field 'bits'={self.bits} loads FP16 weight rows as they are (no scales, no "
                               f"N:M, no zero points); it needs group_size=0, nm=dense, asymmetric=0 (got "
                               f"group_size={self.group_size}, nm={self.nm}, asymmetric={int(self.asymmetric)})")
        elif self.kind == "weight_codes" and self.bits and self.group_size <= 0:
            raise IsaError("LD: field 'group_size' must be > 0 when weight codes are decoded (bits != 0)")


@dataclass(frozen=True)
class ST(Instr):
    """Store ``length_lines`` lines of a buffer to HBM/DDR (KV cache, activations, logits)."""

    wait: int = 0
    release: int = 0
    mem: str = "hbm"
    channel: int = 0
    src_buffer: int = 0
    kind: str = "activation"
    dst_addr_lines: int = 0
    src_offset_lines: int = 0
    length_lines: int = 1
    rows: int = 1
    row_elems: int = 0
    dst_byte_offset: int = 0

    OPCODE: ClassVar[int] = 2
    WORDS: ClassVar[int] = 4
    UNIT: ClassVar[str] = "ST"
    MNEMONIC: ClassVar[str] = "ST"
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _F("mem", 0, 14, 1, kind="enum", choices=MEMORIES),
        _F("channel", 0, 15, 6),
        _F("src_buffer", 0, 21, BUFFER_ID_BITS),
        _F("kind", 0, 24, 3, kind="enum", choices=STORE_KINDS),
        _F("dst_addr_lines", 1, 0, 32),
        _F("src_offset_lines", 2, 0, OFFSET_BITS),
        _F("length_lines", 2, 16, 16, lo=1),
        _F("rows", 3, 0, 16, lo=1),
        _F("row_elems", 3, 16, 10),
        _F("dst_byte_offset", 3, 26, 6),
    )

    def _check(self) -> None:
        _check_row_bytes(self, "dst_byte_offset")


def kv_row_bytes(kind: str, row_elems: int) -> int:
    """Bytes of one KV row: kv_cache = row_elems INT8 + one FP32 scale; kv_cache_fp16 = row_elems FP16."""
    return FP16_BYTES * row_elems if kind == "kv_cache_fp16" else row_elems + KV_SCALE_BYTES


def _check_row_bytes(ins: Instr, offset_field: str) -> None:
    """KV-cache transfers are byte exact: ``rows`` KV rows (:func:`kv_row_bytes`), from
    ``offset_field`` bytes into the first line; ``length_lines`` is the lines they touch."""
    off = getattr(ins, offset_field)
    if ins.kind not in KV_KINDS:
        if off:
            raise IsaError(f"{ins.MNEMONIC}: field '{offset_field}'={off} addresses bytes inside a line; only "
                           f"kind='kv_cache'/'kv_cache_fp16' rows are byte exact (got kind='{ins.kind}'), else 0")
        return
    if ins.row_elems <= 0:
        raise IsaError(f"{ins.MNEMONIC}: kind='{ins.kind}' needs field 'row_elems' (head_dim) > 0")
    rb = kv_row_bytes(ins.kind, ins.row_elems)
    lines = -(-(off + ins.rows * rb) // LINE_BYTES)
    if ins.length_lines != lines:
        row = (f"{ins.row_elems} x {FP16_BYTES}" if ins.kind == "kv_cache_fp16"
               else f"{ins.row_elems} + {KV_SCALE_BYTES}")
        raise IsaError(f"{ins.MNEMONIC}: field 'length_lines'={ins.length_lines}, but {ins.rows} KV rows of "
                       f"{row} bytes from byte {off} touch {lines} lines")


def kv_bytes(ins: Instr) -> int:
    """Bytes a KV LD/ST moves (its rows, :func:`kv_row_bytes` each)."""
    return ins.rows * kv_row_bytes(ins.kind, ins.row_elems)


_MATRIX_COMMON = (
    _F("act_buffer", 0, 14, BUFFER_ID_BITS),
    _F("wt_buffer", 0, 17, BUFFER_ID_BITS),
    _F("out_buffer", 0, 20, BUFFER_ID_BITS),
    _F("fuse", 0, 23, 3, kind="enum", choices=FUSE_OPS),
    _F("mode", 0, 26, 2, kind="enum", choices=MATRIX_MODES),
    _F("nm", 0, 28, 3, kind="nm"),
    _F("accumulate", 0, 31, 1, kind="bool"),
    _F("act_offset_lines", 1, 16, OFFSET_BITS),
    _F("n", 2, 0, 16, lo=1),
    _F("k", 2, 16, 16, lo=1),
    _F("wt_offset_lines", 3, 0, OFFSET_BITS),
    _F("out_offset_lines", 3, 16, OFFSET_BITS),
)


def _check_matrix(ins: "Union[MM, MV]") -> None:
    if ins.fuse == "silu_mul" and ins.accumulate:
        raise IsaError(f"{ins.MNEMONIC}: fuse='silu_mul' reads the destination as the gate; it cannot also "
                       "accumulate (accumulate=0)")
    if ins.mode != "linear":
        if ins.nm is not None or ins.fuse != "none":
            raise IsaError(f"{ins.MNEMONIC}: mode='{ins.mode}' multiplies dense KV tiles: nm must be dense and "
                           f"fuse 'none' (got nm={ins.nm}, fuse='{ins.fuse}')")
    elif ins.key0:
        raise IsaError(f"{ins.MNEMONIC}: field 'key0'={ins.key0} is the first key of an attention tile; "
                       "mode='linear' needs key0=0")


@dataclass(frozen=True)
class MM(Instr):
    """Prefill matrix-matrix: y[m, n] = act[m, k] . wt[n, k]^T on INT8 operands, INT32 accumulation,
    FP32 rescale; then ``accumulate`` (dst += y: residual adds, a bias preloaded into dst, P.V tiles after
    the first) and the fused output-path op ``fuse``.

    ``mode``: linear (weights from the weight buffer, rows land where the weight rows belong),
    qk (scores of ``m`` query rows against a K tile of ``n`` keys starting at key position ``key0``;
    ``qgroup`` query heads share one KV head, query row ``i`` is at position set_position + i // qgroup),
    pv (probabilities of keys key0 .. key0 + k - 1 times a V tile, into the head's ``n`` = head_dim columns).
    """

    wait: int = 0
    release: int = 0
    act_buffer: int = 0
    wt_buffer: int = 0
    out_buffer: int = 0
    fuse: str = "none"
    mode: str = "linear"
    nm: Optional[tuple[int, int]] = None
    accumulate: bool = False
    m: int = 1
    act_offset_lines: int = 0
    n: int = 1
    k: int = 1
    wt_offset_lines: int = 0
    out_offset_lines: int = 0
    key0: int = 0
    qgroup: int = 1

    OPCODE: ClassVar[int] = 3
    WORDS: ClassVar[int] = 5
    UNIT: ClassVar[str] = "MPE"
    MNEMONIC: ClassVar[str] = "MM"
    LAYOUT: ClassVar[tuple[Field, ...]] = _MATRIX_COMMON[:7] + (_F("m", 1, 0, 16, lo=1),) + _MATRIX_COMMON[7:] + (
        _F("key0", 4, 0, 16), _F("qgroup", 4, 16, 6, lo=1))

    def _check(self) -> None:
        _check_matrix(self)
        if self.m % self.qgroup:
            raise IsaError(f"MM: field 'm'={self.m} must be a multiple of 'qgroup'={self.qgroup} "
                           "(query rows are tokens x heads sharing a KV head)")


@dataclass(frozen=True)
class MV(Instr):
    """Decode matrix-vector: y[n] = wt[n, k] . act[k] (one query row), then accumulate and ``fuse`` as MM."""

    wait: int = 0
    release: int = 0
    act_buffer: int = 0
    wt_buffer: int = 0
    out_buffer: int = 0
    fuse: str = "none"
    mode: str = "linear"
    nm: Optional[tuple[int, int]] = None
    accumulate: bool = False
    key0: int = 0
    act_offset_lines: int = 0
    n: int = 1
    k: int = 1
    wt_offset_lines: int = 0
    out_offset_lines: int = 0

    OPCODE: ClassVar[int] = 4
    WORDS: ClassVar[int] = 4
    UNIT: ClassVar[str] = "MPE"
    MNEMONIC: ClassVar[str] = "MV"
    LAYOUT: ClassVar[tuple[Field, ...]] = _MATRIX_COMMON[:7] + (_F("key0", 1, 0, 16),) + _MATRIX_COMMON[7:]

    def _check(self) -> None:
        _check_matrix(self)


@dataclass(frozen=True)
class MISC(Instr):
    """SFU op over ``rows`` rows of ``row_len`` elements, rows ``row0`` .. ``row0 + rows - 1`` of the
    operands: dst = op(src[, aux]).

    ``aux`` is the second operand where the op has one: the other addend/factor of add/mul; for the
    norms the parameter block an LD of kind norm_weights brought (one line holding eps as FP32, then
    gamma, then for layernorm beta, each ``row_len`` FP32 padded to whole lines). Softmax rows are
    score rows of ``qgroup`` query heads per token: row ``i`` is causal up to key set_position + i // qgroup.
    Two-phase ops (softmax, norms, quantize) reduce over a row, then map it.
    """

    wait: int = 0
    release: int = 0
    op: str = "add"
    src_buffer: int = 0
    dst_buffer: int = 0
    aux_buffer: int = 0
    src_offset_lines: int = 0
    dst_offset_lines: int = 0
    aux_offset_lines: int = 0
    row_len: int = 1
    row0: int = 0
    rows: int = 1
    qgroup: int = 1

    OPCODE: ClassVar[int] = 5
    WORDS: ClassVar[int] = 4
    UNIT: ClassVar[str] = "SFU"
    MNEMONIC: ClassVar[str] = "MISC"
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _F("op", 0, 14, 4, kind="enum", choices=MISC_OPS),
        _F("src_buffer", 0, 18, BUFFER_ID_BITS),
        _F("dst_buffer", 0, 21, BUFFER_ID_BITS),
        _F("aux_buffer", 0, 24, BUFFER_ID_BITS),
        _F("src_offset_lines", 1, 0, OFFSET_BITS),
        _F("dst_offset_lines", 1, 16, OFFSET_BITS),
        _F("aux_offset_lines", 2, 0, OFFSET_BITS),
        _F("row_len", 2, 16, 16, lo=1),
        _F("row0", 3, 0, 16),
        _F("rows", 3, 16, 6, lo=1),
        _F("qgroup", 3, 22, 6, lo=1),
    )


@dataclass(frozen=True)
class SYS(Instr):
    """Control: ``barrier`` (all cores meet; the activation rows each core wrote since the last barrier
    reach every core), ``set_position`` (``imm`` = position of the program's first token, as compiled;
    see the module docstring for the runtime position), ``end`` (program done), ``nop`` (carries
    wait/release only)."""

    wait: int = 0
    release: int = 0
    op: str = "nop"
    imm: int = 0

    OPCODE: ClassVar[int] = 6
    WORDS: ClassVar[int] = 1
    UNIT: ClassVar[str] = "SYS"
    MNEMONIC: ClassVar[str] = "SYS"
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        _F("op", 0, 14, 3, kind="enum", choices=SYS_OPS),
        _F("imm", 0, 17, 15),
    )


INSTRUCTIONS: tuple[type[Instr], ...] = (LD, ST, MM, MV, MISC, SYS)
BY_OPCODE = {cls.OPCODE: cls for cls in INSTRUCTIONS}
WORDS_PER_OP = {cls.MNEMONIC: cls.WORDS for cls in INSTRUCTIONS}
Instruction = Union[LD, ST, MM, MV, MISC, SYS]


def _used_masks(cls: type[Instr]) -> list[int]:
    masks = [0] * cls.WORDS
    for f in HEADER + cls.LAYOUT:
        masks[f.word] |= ((1 << f.width) - 1) << f.lsb
    return masks


USED_BITS = {cls: _used_masks(cls) for cls in INSTRUCTIONS}


def _check_layouts() -> None:
    """Fields of one instruction never overlap and stay inside its words (checked at import)."""
    for cls in INSTRUCTIONS:
        seen = [0] * cls.WORDS
        for f in HEADER + cls.LAYOUT:
            bits = ((1 << f.width) - 1) << f.lsb
            assert f.word < cls.WORDS and f.lsb + f.width <= WORD_BITS, (cls.MNEMONIC, f.name)
            assert not seen[f.word] & bits, (cls.MNEMONIC, f.name)
            seen[f.word] |= bits
        names = [f.name for f in cls.LAYOUT] + ["wait", "release"]
        assert sorted(names) == sorted(f.name for f in dataclasses.fields(cls)), cls.MNEMONIC


_check_layouts()


def encode(instrs: Iterable[Instr]) -> np.ndarray:
    """Instructions -> a flat ``np.uint32`` word array (each instruction's words, in order)."""
    words: list[int] = []
    for i, ins in enumerate(instrs):
        if not isinstance(ins, INSTRUCTIONS):
            raise IsaError(f"instruction {i}: {type(ins).__name__} is not an ISA instruction; allowed: "
                           f"{', '.join(c.MNEMONIC for c in INSTRUCTIONS)}")
        where = f"instruction {i} ({ins.MNEMONIC})"
        w = [0] * ins.WORDS
        w[0] = ins.OPCODE
        for f in (HEADER[1], HEADER[2]) + ins.LAYOUT:
            w[f.word] |= f.to_code(getattr(ins, f.name), where) << f.lsb
        words.extend(w)
    return np.asarray(words, dtype=np.uint32)


def decode(words: Union[np.ndarray, Sequence[int]]) -> list[Instr]:
    """A word stream -> instructions; an unknown opcode, a truncated instruction, set reserved bits or
    an out-of-range code is one :class:`IsaError` naming the word."""
    arr = np.asarray(words)
    if arr.ndim != 1:
        raise IsaError(f"words must be a 1-D array of uint32, got shape {arr.shape}")
    if arr.size and (arr.dtype.kind not in "ui" or int(arr.min()) < 0 or int(arr.max()) > 0xFFFFFFFF):
        raise IsaError("words must be unsigned 32-bit integers")
    ws = [int(x) for x in arr]
    out: list[Instr] = []
    pos = 0
    while pos < len(ws):
        op = ws[pos] & 0xF
        cls = BY_OPCODE.get(op)
        if cls is None:
            raise IsaError(f"word {pos}: opcode {op} is not an instruction; allowed opcodes: "
                           + ", ".join(f"{c.OPCODE} ({c.MNEMONIC})" for c in INSTRUCTIONS))
        if pos + cls.WORDS > len(ws):
            raise IsaError(f"word {pos}: {cls.MNEMONIC} needs {cls.WORDS} words, only {len(ws) - pos} left "
                           f"(truncated program)")
        chunk = ws[pos:pos + cls.WORDS]
        where = f"word {pos} ({cls.MNEMONIC})"
        for j, (word, used) in enumerate(zip(chunk, USED_BITS[cls])):
            if word & ~used & 0xFFFFFFFF:
                raise IsaError(f"{where}: reserved bits set in word {pos + j} (0x{word & ~used & 0xFFFFFFFF:08x}); "
                               f"reserved bits must be zero")
        kwargs = {}
        for f in (HEADER[1], HEADER[2]) + cls.LAYOUT:
            code = (chunk[f.word] >> f.lsb) & ((1 << f.width) - 1)
            kwargs[f.name] = f.from_code(code, where)
        try:
            out.append(cls(**kwargs))
        except IsaError as exc:
            raise IsaError(f"{where}: {exc}") from None
        pos += cls.WORDS
    return out


def _fmt(f: Field, value: Any) -> str:
    if f.kind == "nm":
        return "dense" if value is None else f"{value[0]}:{value[1]}"
    if f.kind == "bool":
        return "1" if value else "0"
    if f.kind == "enum":
        return str(value)
    if f.name.endswith("addr_lines"):
        return f"0x{value:x}"
    return str(value)


def _deps(mask: int) -> str:
    return "|".join(mask_units(mask)) or "-"


def disassemble(program: Union[Iterable[Instr], np.ndarray, Sequence[int]]) -> str:
    """One line per instruction: word offset, mnemonic, wait/release units, then every field."""
    if isinstance(program, np.ndarray) or (isinstance(program, (list, tuple)) and program
                                           and isinstance(program[0], (int, np.integer))):
        instrs = decode(program)
    else:
        instrs = list(program)
    lines = []
    pos = 0
    for ins in instrs:
        fields = " ".join(f"{f.name}={_fmt(f, getattr(ins, f.name))}" for f in ins.LAYOUT)
        lines.append(f"{pos:06d}  {ins.MNEMONIC:<4} wait={_deps(ins.wait)} rel={_deps(ins.release)}  {fields}")
        pos += ins.WORDS
    return "\n".join(lines)


def _parse_value(f: Field, text: str, where: str) -> Any:
    if f.kind == "nm":
        if text == "dense":
            return None
        try:
            n, m = (int(v) for v in text.split(":"))
        except ValueError:
            raise IsaError(f"{where}: field 'nm'={text!r} must be 'dense' or 'N:M'") from None
        return (n, m)
    if f.kind == "bool":
        if text not in ("0", "1"):
            raise IsaError(f"{where}: field '{f.name}'={text!r} must be 0 or 1")
        return text == "1"
    if f.kind == "enum":
        return text
    try:
        return int(text, 0)
    except ValueError:
        raise IsaError(f"{where}: field '{f.name}'={text!r} must be an integer") from None


def _parse_deps(text: str, where: str, name: str) -> int:
    if text == "-":
        return 0
    try:
        return units_mask(*text.split("|"))
    except IsaError as exc:
        raise IsaError(f"{where}: field '{name}': {exc}") from None


def assemble(text: str) -> list[Instr]:
    """Parse :func:`disassemble` output (or hand-written lines of the same form) back to instructions.

    A line is ``[offset]  MNEMONIC wait=U|U rel=U  field=value ...``; fields left out take their
    defaults; blank lines and ``#`` comments are skipped. Unknown mnemonics or fields are errors.
    """
    by_name = {cls.MNEMONIC: cls for cls in INSTRUCTIONS}
    out: list[Instr] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        if tokens[0].isdigit():
            tokens = tokens[1:]
        where = f"line {lineno}"
        if not tokens or tokens[0] not in by_name:
            raise IsaError(f"{where}: {tokens[0] if tokens else line!r} is not a mnemonic; allowed: "
                           f"{', '.join(by_name)}")
        cls = by_name[tokens[0]]
        fields = {f.name: f for f in cls.LAYOUT}
        kwargs: dict[str, Any] = {}
        for tok in tokens[1:]:
            key, sep, val = tok.partition("=")
            if not sep:
                raise IsaError(f"{where}: '{tok}' is not field=value")
            if key in ("wait", "rel", "release"):
                name = "wait" if key == "wait" else "release"
                kwargs[name] = _parse_deps(val, where, name)
            elif key in fields:
                kwargs[key] = _parse_value(fields[key], val, where)
            else:
                raise IsaError(f"{where}: {cls.MNEMONIC} has no field '{key}'; fields: wait, rel, "
                               f"{', '.join(fields)}")
        try:
            out.append(cls(**kwargs))
        except IsaError as exc:
            raise IsaError(f"{where}: {exc}") from None
    return out


def program_bytes(instrs: Iterable[Instr]) -> int:
    """Instruction storage of a program in bytes (what length-adaptive compilation saves)."""
    return sum(ins.WORDS for ins in instrs) * (WORD_BITS // 8)
