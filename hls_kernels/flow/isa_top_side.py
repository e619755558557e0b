"""What the ISA top is given besides the words: the host's region table, the run configuration, the launches.

Every instruction's behaviour comes from its words (``simulator/isa.py``:
buffers and offsets, MM/MV mode, output path, norm parameters, byte-exact KV
rows, set_position). What the top needs besides them is what the *host*
knows when it loads a model and launches a program
(``simulator.compiled.CompiledModel``), the same facts the functional engine
takes:

* the **region table** (``CompiledModel.regions``): which tensor each HBM
  range holds, so that an LD's weight rows land at their output rows and a
  KV row's channel and address name its token (a descriptor RAM the host
  writes once);
* per launch, the **layer base register** (``layer_base_lines``: a layer
  template's HBM addresses moved to the launched layer) and the **position
  register** (the runtime position of the program's first token);
* the per-token **slab** of each on-chip buffer (token ``t`` of a vector lives
  ``t`` slabs after token 0: the compiled activation layout), and the
  **RoPE tables** the host writes into HBM (``rope_addr``);
* the **initial tokens** of a launch (``simulator.timing.initial_tokens``).

The struct layouts (configuration, region entry, launch) are written into the
generated C++ header from the field lists here, so the C++ and Python sides
cannot disagree.
"""
from __future__ import annotations

import struct
from typing import Any

import numpy as np

from llmaccel.errors import LlmaccelError

N_BUFFERS = 8                         # simulator.isa.MAX_BUFFERS_PER_CORE (3-bit buffer ids)
REGION_KINDS = ("other", "weight", "kv", "norm", "bias", "embedding")
# one region-table entry: int32 fields in this order
REGION_FIELDS = ("kind", "channel0", "n_channels", "addr", "end", "row0", "rows", "rows_per_channel", "row_bytes",
                 "head0", "heads", "tokens_per_channel")
# one launch: the program's words inside the word file, and the registers the host sets for it
LAUNCH_FIELDS = ("word0", "n_words", "base_lines", "position", "tokens", "load_x")
# isa_config, in struct order: (name, C type, count). All fields are 4 bytes, so the struct has no padding.
CONFIG_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("channel_bytes", "int32_t", 1), ("channels_per_core", "int32_t", 1), ("max_len", "int32_t", 1),
    ("rope_addr", "int32_t", 1), ("n_regions", "int32_t", 1),
    ("x_buffer", "int32_t", 1), ("x_offset_lines", "int32_t", 1), ("x_rows", "int32_t", 1), ("x_elems", "int32_t", 1),
    ("out_buffer", "int32_t", 1), ("out_offset_lines", "int32_t", 1), ("out_rows", "int32_t", 1),
    ("out_elems", "int32_t", 1),
    ("slab_words", "int32_t", N_BUFFERS), ("init_tokens", "int32_t", 25), ("policy", "int32_t", 1),
    # per launch (the tb sets them from the launch list)
    ("base_lines", "int32_t", 1), ("position", "int32_t", 1), ("tokens", "int32_t", 1), ("load_x", "int32_t", 1),
)
STATUS = ("ok", "deadlock", "bad opcode", "reserved bits", "truncated", "weight format not built",
          "slot empty or holding other rows", "out of bounds", "too many instructions", "unsupported op",
          "address in no placed region")


class IsaTopError(LlmaccelError):
    """A program the ISA top cannot be given (more than one core, an op it does not execute), or a failed run."""


def side_header_lines() -> list[str]:
    """C++ for the region entry, the launch entry and the configuration struct (llmaccel_isa_instance.hpp)."""
    lines = [f"#define ISA_N_BUFFERS {N_BUFFERS}", f"#define ISA_REGION_WORDS {len(REGION_FIELDS)}",
             f"#define ISA_LAUNCH_WORDS {len(LAUNCH_FIELDS)}",
             "enum {" + ", ".join(f"REG_{f} = {i}" for i, f in enumerate(REGION_FIELDS)) + "};",
             "enum {" + ", ".join(f"REGION_{k} = {i}" for i, k in enumerate(REGION_KINDS)) + "};",
             "enum {" + ", ".join(f"LAUNCH_{f} = {i}" for i, f in enumerate(LAUNCH_FIELDS)) + "};",
             "struct isa_config {"]
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
        out += struct.pack(f"<{n}{'f' if ctype == 'float' else 'i'}", *[int(x) if ctype != "float" else x
                                                                          for x in flat])
    return out


def region_table(regions: Any) -> np.ndarray:
    """``CompiledModel.regions`` as the int32 table the top searches (one row per region)."""
    rows = []
    for r in regions:
        kind = REGION_KINDS.index(r.kind) if r.kind in REGION_KINDS else 0
        rows.append([kind, r.channel0, r.n_channels, r.addr, r.end, r.row0, r.rows, r.rows_per_channel, r.row_bytes,
                     r.head0, r.heads, r.tokens_per_channel])
    return np.asarray(rows, np.int32).reshape(-1, len(REGION_FIELDS))


def slab_words(cm: Any) -> list[int]:
    """FP32 words between token t and t + 1 of a vector, per buffer: the buffer's whole compiled layout."""
    from llmaccel.simulator.isa import LINE_BYTES
    lines = [0] * N_BUFFERS
    for r in cm.act:
        lines[r.buffer] = max(lines[r.buffer], r.offset_lines + -(-4 * r.elems // LINE_BYTES))
    for r in cm.act:          # norm parameter blocks are not per token, but take their lines in the layout
        if r.name.startswith("norm"):
            lines[r.buffer] = max(lines[r.buffer], r.offset_lines + 1 + -(-4 * r.elems // LINE_BYTES))
    return [n * LINE_BYTES // 4 for n in lines]
