"""What the ISA top needs besides the words: the side table, the run configuration, the activation layout.

The words of ``Compiler.to_isa`` give the top each instruction's unit, its
wait/release tokens, its opcode and sizes (LD channel/address/rows/row length
and weight format, MV/MM n/k/m and fused op, MISC op/rows/row length, SYS op).
They do not yet say (simulator/isa.py is being extended to carry them):

* which double-buffer slot an MV/MM reads (its ``wt_offset_lines`` is left 0 while the LD's
  ``dst_offset_lines`` names the slot);
* which activation region an MV/MM reads and writes, and the operand of its
  fused op (the residual for ``add``, gate for ``silu_mul``): ``AUX_MPE_LINEAR``;
* whether an MV/MM on the KV buffer is a QK^T or a P.V tile, and its kv head:
  ``AUX_MPE_QK`` / ``AUX_MPE_PV``;
* which output rows an LD's weight rows compute (rows are channel-interleaved):
  ``AUX_LD_WEIGHT``;
* the byte address of a KV row (KV rows are not line-aligned), which tokens an
  LD brings and the tile they belong to: ``AUX_LD_KV``;
* where a K/V store goes at the runtime position (the words hold the compiled
  bucket's last token): ``AUX_ST_KV``;
* which norm weights an RMSNorm uses (no LD brings them): ``AUX_SFU_NORM``; the
  kv head of a softmax: ``AUX_SFU_SOFTMAX``.

Each row of the side table is ``AUX_WORDS`` int32: the role, then its operands
(``ROLES``). The roles, the operand order and the configuration struct are
written into the generated C++ header from here, so the C++ and this module
cannot disagree. Where the words' facts and the functional engine's mapping of
them are needed (rows of an LD, tokens of a KV LD), this module asks the
engine (``simulator.functional.FunctionalEngine``), the one definition of
what an instruction addresses.
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.functional import LINEAR_INPUT, LINEAR_OUTPUT, NORM_OF
from sparse_dsp.errors import LlmaccelError

AUX_WORDS = 8
# role -> its operands, in aux order after the role word
ROLES: dict[str, tuple[str, ...]] = {
    "AUX_NONE": (),
    "AUX_LD_WEIGHT": ("row0",),
    "AUX_LD_KV": ("byte_in_line", "tokens", "first_token", "token_stride", "tile_k0", "kv_head"),
    "AUX_ST_KV": ("src_offset", "channel0", "head_base", "first_index", "tokens", "index_stride", "row_pitch"),
    "AUX_MPE_LINEAR": ("in_offset", "out_offset", "slice_rows", "operand_offset", "dst_offset", "width", "slot"),
    "AUX_MPE_QK": ("q_offset", "kv_head", "q_pitch", "slot"),
    "AUX_MPE_PV": ("out_offset", "kv_head", "out_pitch", "slot"),
    "AUX_SFU_NORM": ("gamma_addr", "src_offset", "dst_offset", "first_row"),
    "AUX_SFU_SOFTMAX": ("kv_head",),
}
ROLE_CODE = {name: i for i, name in enumerate(ROLES)}
# isa_config, in struct order: (name, C type, count). All fields are 4 bytes, so the struct has no padding.
CONFIG_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("channel_bytes", "int32_t", 1), ("channels_per_core", "int32_t", 1), ("kv_row_bytes", "int32_t", 1),
    ("wslot_lines", "int32_t", 1), ("kvslot_lines", "int32_t", 1), ("x_offset", "int32_t", 1),
    ("x_words", "int32_t", 1), ("logits_offset", "int32_t", 1), ("logits_words", "int32_t", 1),
    ("rope_addr", "int32_t", 1), ("max_len", "int32_t", 1), ("position", "int32_t", 1), ("tokens", "int32_t", 1),
    ("init_tokens", "int32_t", 25), ("eps", "float", 1), ("policy", "int32_t", 1),
)
STATUS = ("ok", "deadlock", "bad opcode", "reserved bits", "truncated", "weight format not built",
          "slot empty or holding other rows", "out of bounds", "too many instructions", "unsupported op")


class IsaTopError(LlmaccelError):
    """A program the ISA top cannot be given (more than one core, an op it does not execute), or a failed run."""


def side_header_lines() -> list[str]:
    """C++ for the roles and the configuration struct (goes into llmaccel_isa_instance.hpp)."""
    lines = [f"#define ISA_AUX_WORDS {AUX_WORDS}",
             "enum {" + ", ".join(f"{n} = {c}" for n, c in ROLE_CODE.items()) + "};"]
    for name, ops in ROLES.items():
        if ops:   # operand index of each role: aux[MPE_LINEAR_slot]
            lines.append("enum {" + ", ".join(f"{name[4:]}_{o} = {i + 1}" for i, o in enumerate(ops)) + "};")
    lines.append("struct isa_config {")
    for name, ctype, n in CONFIG_FIELDS:
        if name == "init_tokens":
            lines.append(f"    {ctype} init_tokens[5][5];")
        else:
            lines.append(f"    {ctype} {name}{'' if n == 1 else f'[{n}]'};")
    lines.append("};")
    return lines


def pack_config(values: dict[str, Any]) -> bytes:
    out = b""
    for name, ctype, n in CONFIG_FIELDS:
        v = values[name]
        flat = list(np.asarray(v).reshape(-1)) if n > 1 else [v]
        if len(flat) != n:
            raise IsaTopError(f"config field '{name}' needs {n} values, got {len(flat)}")
        out += struct.pack(f"<{n}{'f' if ctype == 'float' else 'i'}", *flat)
    return out


@dataclass(frozen=True)
class ActLayout:
    """FP32 regions of the activation buffer for a program of ``tokens`` tokens: name -> (offset, width)."""

    regions: dict[str, tuple[int, int]]
    tokens: int

    @property
    def words(self) -> int:
        return max(o + self.tokens * w for o, w in self.regions.values())

    def off(self, name: str) -> int:
        return self.regions[name][0]

    def width(self, name: str) -> int:
        return self.regions[name][1]


def act_layout(spec: Any, tokens: int) -> ActLayout:
    s = spec
    widths = {"x": s.hidden_size, "h": s.hidden_size, "q": s.num_heads * s.head_dim,
              "k": s.num_kv_heads * s.head_dim, "v": s.num_kv_heads * s.head_dim,
              "attn": s.num_heads * s.head_dim, "o": s.hidden_size, "gate": s.intermediate_size,
              "up": s.intermediate_size, "a": s.intermediate_size, "d": s.hidden_size, "logits": s.vocab_size}
    regions, off = {}, 0
    for name, w in widths.items():
        regions[name] = (off, w)
        off += tokens * w
        off = -(-off // 16) * 16          # each region on a 64-byte line
    return ActLayout(regions, tokens)


_BRACKET = re.compile(r"\[h?(\d+)")


def _head_of(name: str) -> int:
    m = _BRACKET.search(name)
    if m is None:
        raise IsaTopError(f"op '{name}' names no head")
    return int(m.group(1))


def side_row(op: Any, comp: Any, engine: Any, layout: ActLayout, layer: int, tokens: int, ctx: int,
             norm_addr: dict[str, int], misc_rows: dict[str, int]) -> list[int]:
    """The side-table row of one compiled op (``mapping.compiler`` OpDesc) of a single-core program.

    ``misc_rows`` counts the rows of each RMSNorm done so far in the program (a long one is split
    into pieces of at most 63 rows, ``MISC.rows``): it gives the piece's first row."""
    row = [0] * AUX_WORDS

    def put(role: str, **kw: int) -> list[int]:
        row[0] = ROLE_CODE[role]
        for i, name in enumerate(ROLES[role]):
            row[1 + i] = int(kw[name])
        return row

    spec = comp.spec
    hd, g = spec.head_dim, spec.gqa_group_size
    if op.opcode == "LD":
        t, ch = engine._resolve(op)
        if t.kind == "weight":
            return put("AUX_LD_WEIGHT", row0=int(engine._weight_rows(t, ch, op)[0]))
        head, toks = engine._kv_tokens(t, ch, op)
        return put("AUX_LD_KV", byte_in_line=op.hbm_addr % 64, tokens=len(toks), first_token=int(toks[0]),
                   token_stride=engine.cpc, tile_k0=(int(toks[0]) // comp.kv_tile) * comp.kv_tile,
                   kv_head=t.kv_head0 + head)
    if op.opcode == "ST":
        t, ch = engine._resolve(op)
        head, toks = engine._kv_tokens(t, ch, op)
        idx = toks - (ctx - tokens)
        gh = t.kv_head0 + head
        return put("AUX_ST_KV", src_offset=layout.off(t.kv) + gh * hd, channel0=t.channel0,
                   head_base=t.addr + head * engine.tokens_per_channel * engine.kv_row_bytes,
                   first_index=int(idx[0]), tokens=len(idx), index_stride=engine.cpc, row_pitch=layout.width(t.kv))
    if op.opcode in ("MV", "MM"):
        if op.name.startswith("qk["):
            gh = _head_of(op.name)
            return put("AUX_MPE_QK", q_offset=layout.off("q") + gh * g * hd, kv_head=gh, q_pitch=layout.width("q"),
                       slot=op.buf_addr)
        if op.name.startswith("pv["):
            gh = _head_of(op.name)
            return put("AUX_MPE_PV", out_offset=layout.off("attn") + gh * g * hd, kv_head=gh,
                       out_pitch=layout.width("attn"), slot=op.buf_addr)
        leaf = op.name.split("_", 1)[1].split("[")[0]
        out = LINEAR_OUTPUT[leaf]
        fused = op.fused or ""
        operand, dst = 0, 0
        if "silu_mul" in fused:
            operand, dst = layout.off("gate"), layout.off("a")
        elif "add" in fused:
            dst = layout.off("x")
        slice_rows = comp.sl.vocab_rows[0] if leaf == "lm_head" else comp._linear_rows(leaf, 0)
        return put("AUX_MPE_LINEAR", in_offset=layout.off(LINEAR_INPUT[leaf]), out_offset=layout.off(out),
                   slice_rows=slice_rows, operand_offset=operand, dst_offset=dst, width=layout.width(out),
                   slot=op.buf_addr)
    if op.opcode == "MISC":
        base = op.name.split("[")[0]
        if op.func == "rmsnorm":
            key = "norm" if base == "rmsnorm_final" else f"layers.{layer}.{NORM_OF[base]}"
            r0 = misc_rows.get(base, 0)
            misc_rows[base] = r0 + op.tokens
            return put("AUX_SFU_NORM", gamma_addr=norm_addr[key], src_offset=layout.off("x"),
                       dst_offset=layout.off("h"), first_row=r0)
        if op.func == "softmax":
            return put("AUX_SFU_SOFTMAX", kv_head=_head_of(op.name))
        raise IsaTopError(f"{op.name}: SFU op '{op.func}' is not executed by the ISA top (fused programs only)")
    return put("AUX_NONE")


def kv_tokens_per_channel(comp: Any) -> int:
    return math.ceil(comp.max_len / comp.cpc)
