"""C-simulate the ISA top (hls_kernels/tops/isa_top.cpp) on a compiled program of a compressed model.

The harness does what a Vitis user's C-simulation testbench setup does:

1. **Headers.** ``llmaccel_isa_decode.hpp`` from ``simulator/isa.py``
   (:mod:`hls_kernels.flow.isa_top_header`) and ``llmaccel_isa_instance.hpp``:
   buffer sizes from the design and the compiled model, one ``linear_format``
   instance per weight format the model uses, the region / launch /
   configuration structs (:mod:`hls_kernels.flow.isa_top_side`).
2. **Build.** g++ with the ap_types headers and the flags of
   :mod:`hls_kernels.build` (no FMA contraction), the testbench
   ``tops/isa_top_tb.cpp`` linked with the top into one executable, cached
   by a hash of everything that goes into it.
3. **Inputs.** The HBM image (packed weight rows and norm parameter blocks
   where the placement put them, rows as ``host.backends.xrt_layout.weight_bank_images``
   lays them out; the KV cache; the RoPE tables after the placed regions of
   channel 0), the programs' words, the launches (layer base and position
   registers), the host's region table, the residual input and the run
   configuration, written to a run directory.
4. **Run and read back.** The executable runs the launches in one process (the
   on-chip buffers persist between them, as on the board); a region (the
   logits, or a prefill chunk's residual), the image after the run (the KV rows
   the STs wrote) and the status come back.

One core only (``IsaTopError`` otherwise). A decode step is every layer launch
(the layer group's template with the layer base register) then the LM head;
a prefill chunk is every layer launch, the head runs on the last prompt
token's residual as the host gives it (``simulator.functional_model``).
"""
from __future__ import annotations

import hashlib
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from llmaccel.hls_kernels.build import CXXFLAGS, INCLUDE_DIR, TOPS_DIR, HlsToolError, _compiler_version, _external_digest, \
    _tree_digest, cache_dir, find_ap_types, find_cxx
from llmaccel.hls_kernels.flow.isa_top_header import fields_text, header_text
from llmaccel.hls_kernels.flow.isa_top_side import (CONFIG_FIELDS, LAUNCH_FIELDS, STATUS, IsaTopError, pack_config,
                                           region_table, side_header_lines, slab_words)

F32 = np.float32
TOP_NAME = "llmaccel_isa_top"          # the kernel (function) name v++ links; host/backends/xrt.py names it
LINE = 64
ALIGN = 4096                           # regions on 4 KB boundaries (an AXI burst never crosses one)
# -shared/-fPIC are for the ctypes libraries; the testbench is an executable
TB_FLAGS = tuple(f for f in CXXFLAGS if f not in ("-shared", "-fPIC"))
MAX_INSTR_PER_UNIT = 1 << 16


def _chain(kept_per_group: int) -> int:
    """The longest DSP chain (<= 8, two INT8 lanes per DSP48E2) dividing a group's kept values."""
    return next(c for c in (8, 4, 2, 1) if kept_per_group % c == 0)


@dataclass(frozen=True)
class TopFormat:
    bits: int
    nm: Optional[tuple[int, int]]
    group_size: int
    symmetric: bool
    k_max: int
    o_max: int

    @property
    def nm_code(self) -> int:
        from llmaccel.simulator.isa import NM_CODES
        return NM_CODES.index(self.nm)


def top_formats(comp: Any, wslot_rows: int) -> list[TopFormat]:
    """One instance per (bits, N:M, group, symmetric) of the model's linears, bounded by its largest layer."""
    fmts: dict[tuple, list] = {}
    for lay in comp.f.layers:
        for _, f in lay:
            fmts.setdefault((f.bits, f.nm, f.group_size, f.symmetric), []).append(f)
    h = comp.f.lm_head
    fmts.setdefault((h.bits, h.nm, h.group_size, h.symmetric), []).append(h)
    return [TopFormat(b, nm, g, s, max(f.in_features for f in fs), min(wslot_rows, max(f.out_features for f in fs)))
            for (b, nm, g, s), fs in sorted(fmts.items(), key=lambda kv: repr(kv[0]))]


def slot_needs(comp: Any) -> tuple[int, int]:
    """(rows, bytes) of the largest weight tile the compiler emits: the weight slot's size in the top.

    The top's LD moves packed rows (as in HBM, line-padded) and the decoder runs inside the MPE's
    linear kernel, so a slot holds a tile's packed rows rather than its decoded INT8 rows."""
    from llmaccel.mapping import tiling
    from llmaccel.mapping.compiler import hbm_row_bytes
    rows, nbytes = 1, 1
    items = [(leaf, f, comp._linear_rows(leaf, 0)) for lay in set(comp.f.layers) for leaf, f in lay]
    items.append(("lm_head", comp.f.lm_head, comp.sl.vocab_rows[0]))
    for leaf, f, n in items:
        tl = tiling.weight_tiling(f, n, comp.cpc, comp.hw.weight_buf_bytes_per_core, leaf, align=comp._dec_per_ch)
        r = min(tl.rows_per_tile, n)
        rows, nbytes = max(rows, r), max(nbytes, r * hbm_row_bytes(f))
    return rows, nbytes


def single_core_design(design: Any, weight_buf_bytes: Optional[int] = None, kv_buf_bytes: Optional[int] = None,
                       act_buf_bytes: Optional[int] = None, name: Optional[str] = None) -> Any:
    """``design`` with one core (it owns every HBM channel), optionally with smaller weight / KV /
    activation buffers (tests use them to get several weight tiles and K/V tiles per step, and short
    prefill chunks)."""
    import dataclasses
    bufs = []
    for b in design.buffers:
        if b.role == "weight" and weight_buf_bytes is not None:
            share = b.size_bytes / design.buffer_bytes_per_core("weight")
            word = b.banks * b.width_bits // 8
            b = dataclasses.replace(b, size_bytes=max(word, int(weight_buf_bytes * share) // word * word))
        for role, want in (("kv", kv_buf_bytes), ("activation", act_buf_bytes)):
            if b.role == role and want is not None:
                word = b.banks * b.width_bits // 8
                b = dataclasses.replace(b, size_bytes=-(-want // word) * word)
        bufs.append(b)
    return dataclasses.replace(design, cores=1, buffers=tuple(bufs), name=name or f"{design.name}-1core")


def instance_text(comp: Any, tokens_max: int) -> str:
    """llmaccel_isa_instance.hpp: the sizes and formats this top is built for."""
    s, hw = comp.spec, comp.hw
    wslot_rows, wslot_bytes = slot_needs(comp)
    fmts = top_formats(comp, wslot_rows)
    k_max = max(f.k_max for f in fmts)
    slabs = [w for w in _slabs(comp) if w]
    n_max = max([s.vocab_size, s.intermediate_size, s.hidden_size, s.q_dim, comp.max_len])
    qrows = tokens_max * s.gqa_group_size
    lines = ["// Generated by hls_kernels/flow/isa_top.py for one compiled model on one design; do not edit.",
             "#ifndef LLMACCEL_ISA_INSTANCE_HPP", "#define LLMACCEL_ISA_INSTANCE_HPP",
             "#include \"llmaccel_hls/config.hpp\"",
             f"// model {s.name}, design {hw.name}, max_len {comp.max_len}",
             f"#define ISA_VBUF_WORDS {max(slabs) * max(tokens_max, qrows)}", f"#define ISA_WSLOT_BYTES {wslot_bytes}",
             f"#define ISA_WSLOT_ROWS {wslot_rows}", f"#define ISA_KV_TILE {comp.kv_tile}",
             f"#define ISA_HEAD_DIM {s.head_dim}", f"#define ISA_T_MAX {tokens_max}", f"#define ISA_QROWS {qrows}",
             f"#define ISA_CTX_MAX {comp.max_len}", f"#define ISA_K_MAX {k_max}", f"#define ISA_SFU_N_MAX {n_max}",
             f"#define ISA_MAX_INSTR {MAX_INSTR_PER_UNIT}", f"#define ISA_MAX_WORDS {7 * MAX_INSTR_PER_UNIT}",
             "#define ISA_MAX_REGIONS 4096", "#define ISA_HBM_DEPTH 67108864", "#include <stdint.h>"]
    lines += side_header_lines()
    lines.append("namespace llmaccel_hls { namespace isa_top {")
    cases = []
    for i, f in enumerate(fmts):
        n, m = f.nm if f.nm else (1, 1)
        kept_group = f.group_size * n // m
        lines.append(f"typedef linear_format<{f.bits}, {n}, {m}, {f.group_size}, {str(f.symmetric).lower()}, "
                     f"{f.k_max}, {f.o_max}> isa_fmt_{i};")
        lines.append(f"typedef linear_schedule<{_chain(kept_group)}, 1> isa_sched_{i};")
        cases.append(f"if (bits == {f.bits} && nm == {f.nm_code} && group == {f.group_size} && asym == "
                     f"{0 if f.symmetric else 1}) return {i};")
    lines.append("inline int isa_format_id(int bits, int nm, int group, int asym) {")
    lines += [f"    {c}" for c in cases] + ["    return -1;", "}"]
    lines.append("#define ISA_FORMAT_LIST(X) " + " ".join(f"X({i}, isa_fmt_{i}, isa_sched_{i})"
                                                           for i in range(len(fmts))))
    lines += ["}  // namespace isa_top", "}  // namespace llmaccel_hls", "#endif", ""]
    return "\n".join(lines)


def _slabs(comp: Any) -> list[int]:
    class _View:            # slab_words reads .act of a CompiledModel; the Compiler holds the same layout
        act = comp.act
    return slab_words(_View)


def build_top(comp: Any, tokens_max: int = 1) -> Path:
    """The C-simulation executable of the ISA top for this compiled model (cached)."""
    cxx, ap = find_cxx(), find_ap_types()
    decode, inst = header_text(), instance_text(comp, tokens_max)
    h = hashlib.sha256()
    for part in (_tree_digest(INCLUDE_DIR, TOPS_DIR), decode, inst, " ".join(TB_FLAGS), _compiler_version(cxx),
                 _external_digest(ap)):
        h.update(part.encode())
        h.update(b"\0")
    out = cache_dir() / f"isa_top-{h.hexdigest()[:20]}"
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory(prefix=".isa_top-", dir=out.parent) as tmp:
        tmp = Path(tmp)
        (tmp / "llmaccel_isa_decode.hpp").write_text(decode)
        (tmp / "llmaccel_isa_instance.hpp").write_text(inst)
        exe = tmp / "isa_top_tb"
        cmd = [cxx, *TB_FLAGS, f"-I{tmp}", f"-I{INCLUDE_DIR}", f"-I{TOPS_DIR}", f"-I{ap}",
               str(TOPS_DIR / "isa_top_tb.cpp"), "-o", str(exe)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise HlsToolError(f"g++ failed to build the ISA top:\n{proc.stderr[-6000:]}")
        os.replace(exe, out)
    return out


def build_decoder_check() -> Path:
    """The executable that decodes a word stream with the generated decoder and prints every field
    (tops/isa_decode_tb.cpp): what the test of the generator compares with ``simulator.isa.decode``."""
    cxx = find_cxx()
    decode, fields = header_text(), fields_text()
    h = hashlib.sha256()
    for part in (decode, fields, (TOPS_DIR / "isa_decode_tb.cpp").read_text(), " ".join(TB_FLAGS),
                 _compiler_version(cxx)):
        h.update(part.encode())
        h.update(b"\0")
    out = cache_dir() / f"isa_decode-{h.hexdigest()[:20]}"
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory(prefix=".isa_decode-", dir=out.parent) as tmp:
        tmp = Path(tmp)
        (tmp / "llmaccel_isa_decode.hpp").write_text(decode)
        (tmp / "llmaccel_isa_fields.hpp").write_text(fields)
        exe = tmp / "isa_decode_tb"
        proc = subprocess.run([cxx, *TB_FLAGS, f"-I{tmp}", str(TOPS_DIR / "isa_decode_tb.cpp"), "-o", str(exe)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise HlsToolError(f"g++ failed to build the decoder check:\n{proc.stderr[-4000:]}")
        os.replace(exe, out)
    return out


# --------------------------------------------------------------------------- the HBM image

@dataclass
class HbmImage:
    """The bytes of every HBM pseudo channel, channel c at ``c * channel_bytes``: what the host writes
    (packed weight rows, norm parameter blocks, the RoPE tables) and the KV cache the programs write."""

    data: np.ndarray                  # uint8 [n_channels * channel_bytes]
    channel_bytes: int
    rope_addr: int                    # cos table [max_len][head_dim] FP32, sin table after it (channel 0)

    def kv_rows(self, cm: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The KV cache as the functional engine holds it (``engine.mem.kv``), read back from the image."""
        out = {}
        hd, cpc = cm.spec.head_dim, cm.hw.channels_per_core
        for r in cm.regions:
            if r.kind != "kv":
                continue
            tpc, rb = r.tokens_per_channel, r.row_bytes
            k8 = np.zeros((r.heads, tpc * cpc, hd), np.int8)
            sk = np.zeros((r.heads, tpc * cpc), F32)
            for h in range(r.heads):
                for tok in range(tpc * cpc):
                    a = (r.channel0 + tok % cpc) * self.channel_bytes + r.addr + h * tpc * rb + (tok // cpc) * rb
                    k8[h, tok] = self.data[a:a + hd].view(np.int8)
                    sk[h, tok] = self.data[a + hd:a + hd + 4].view(F32)[0]
            out[r.tensor] = (k8, sk)
        return out


def _rope_rows(cm: Any, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin rows of ``positions`` with the function the functional engine uses."""
    if getattr(cm, "rope", None) is not None:
        from llmaccel.simulator.functional.rope_unit import rope_cos_sin  # noqa: PLC0415 (only with a RoPE table)
        return rope_cos_sin(cm.rope, positions)
    from llmaccel.simulator.golden.sfu import rope_tables
    return rope_tables(positions, cm.spec.head_dim, cm.spec.rope_theta)


def build_image(cm: Any, engine: Any, weights: Any) -> HbmImage:
    """Weight rows and norm blocks where the placement put them, the engine's KV cache, the RoPE tables."""
    from llmaccel.host.backends.xrt_layout import weight_bank_images   # the weight rows as the host writes them

    s, cpc = cm.spec, cm.hw.channels_per_core
    ends: dict[int, int] = {}
    for r in cm.regions:
        for ch in range(r.channel0, r.channel0 + r.n_channels):
            ends[ch] = max(ends.get(ch, 0), r.end)
    rope_addr = -(-ends.get(0, 0) // ALIGN) * ALIGN
    table_bytes = cm.max_len * s.head_dim * 4
    ends[0] = rope_addr + 2 * table_bytes
    ch_bytes = -(-max(ends.values()) // ALIGN) * ALIGN
    data = np.zeros((max(ends) + 1) * ch_bytes, np.uint8)
    for ch, bank in weight_bank_images(cm, weights).items():
        data[ch * ch_bytes:ch * ch_bytes + len(bank)] = np.frombuffer(bytes(bank), np.uint8)
    for r in cm.regions:
        if r.kind == "norm":
            block = engine.mem.block_bytes(r)
            per = r.bytes_per_channel
            for k in range(r.n_channels):
                part = block[k * per:(k + 1) * per]
                a = (r.channel0 + k) * ch_bytes + r.addr
                data[a:a + part.size] = part
    cos = np.concatenate([_rope_rows(cm, np.array([p]))[0] for p in range(cm.max_len)])
    sin = np.concatenate([_rope_rows(cm, np.array([p]))[1] for p in range(cm.max_len)])
    data[rope_addr:rope_addr + table_bytes] = cos.astype(F32).reshape(-1).view(np.uint8)
    data[rope_addr + table_bytes:rope_addr + 2 * table_bytes] = sin.astype(F32).reshape(-1).view(np.uint8)
    img = HbmImage(data, ch_bytes, rope_addr)
    write_kv(img, cm, engine)
    return img


def write_kv(img: HbmImage, cm: Any, engine: Any) -> None:
    """The engine's KV cache (INT8 rows + FP32 scales) into the image: token t of a head in channel
    channel0 + t % cpc at local row t // cpc (``simulator.functional.memory``)."""
    hd, cpc = cm.spec.head_dim, cm.hw.channels_per_core
    for r in cm.regions:
        if r.kind != "kv":
            continue
        k8, sk = engine.mem.kv[r.tensor]
        tpc, rb = r.tokens_per_channel, r.row_bytes
        for h in range(r.heads):
            for tok in range(tpc * cpc):
                a = (r.channel0 + tok % cpc) * img.channel_bytes + r.addr + h * tpc * rb + (tok // cpc) * rb
                img.data[a:a + hd] = k8[h, tok].view(np.uint8)
                img.data[a + hd:a + hd + 4] = np.asarray([sk[h, tok]], F32).view(np.uint8)


# --------------------------------------------------------------------------- launches

@dataclass
class Launch:
    """One program launch as the host queues it: which program, and the registers it sets."""

    program: Any                      # simulator.compiled.CompiledProgram
    base_lines: int = 0               # layer base register (HBM line offset from the template's layer)
    position: int = 0                 # runtime position of the program's first token
    load_x: bool = False              # the host writes the residual input before this launch


@dataclass
class TopRun:
    out: np.ndarray                   # the region read back after the last launch ([rows, elems])
    image: np.ndarray
    status: dict
    wall_s: float


def step_launches(cm: Any, phase: str, ctx: int, tokens: int, position: int) -> list[Launch]:
    """Every layer of one step, as the host launches them (``simulator.functional_model``)."""
    if cm.hw.n_cores != 1:
        raise IsaTopError(f"the ISA top runs one core; design '{cm.hw.name}' has {cm.hw.n_cores} "
                          "(compile for a one-core design)")
    out = []
    for i in range(cm.spec.num_layers):
        prog = cm.program(phase, ctx, tokens, cm.group_of(i))
        base = cm.layer_base_lines[i][0] - cm.layer_base_lines[prog.template_layer][0]
        out.append(Launch(prog, base, position, load_x=i == 0))
    return out


def run_top(exe: Path, cm: Any, launches: list[Launch], img: HbmImage, x: np.ndarray, run_dir: Path,
            read_back: str = "logits", policy: int = 0, edit: Optional[Any] = None) -> TopRun:
    """Write the launches' inputs under ``run_dir``, run them on the C-simulated top in one process (the
    on-chip buffers persist between launches, as on the board), read back a region and the image.

    ``edit(words_list) -> words_list`` may alter the programs' words first (tests break them)."""
    import time
    from llmaccel.simulator.isa import UNITS
    from llmaccel.simulator.timing import initial_tokens
    from llmaccel.simulator.timing_engine import UNIT_INDEX

    s, hw = cm.spec, cm.hw
    names = {v: k for k, v in UNIT_INDEX.items()}
    init = np.zeros((5, 5), np.int32)
    for (core, src, dst), n in initial_tokens(hw).items():
        if core == 0:
            init[UNITS.index(names[src]), UNITS.index(names[dst])] = n
    progs: list = []
    for L in launches:
        if not any(p is L.program for p in progs):
            progs.append(L.program)
    words = [np.asarray(p.stream(0).words, np.uint32) for p in progs]
    if edit is not None:
        words = edit(words, progs)
    offs = np.cumsum([0] + [w.size for w in words])
    table = []
    for L in launches:
        i = next(j for j, p in enumerate(progs) if p is L.program)
        table.append([int(offs[i]), int(words[i].size), L.base_lines, L.position, L.program.tokens, int(L.load_x)])
    x = np.atleast_2d(np.asarray(x, F32))
    xr, outr = cm.act_region("x"), cm.act_region(read_back)
    out_rows = launches[-1].program.tokens if read_back != "logits" else 1
    cfg = {"channel_bytes": img.channel_bytes, "channels_per_core": hw.channels_per_core, "max_len": cm.max_len,
           "rope_addr": img.rope_addr, "n_regions": len(cm.regions), "x_buffer": xr.buffer,
           "x_offset_lines": xr.offset_lines, "x_rows": x.shape[0], "x_elems": x.shape[1],
           "out_buffer": outr.buffer, "out_offset_lines": outr.offset_lines, "out_rows": out_rows,
           "out_elems": outr.elems, "slab_words": slab_words(cm), "init_tokens": init, "policy": int(policy),
           "base_lines": 0, "position": 0, "tokens": 1, "load_x": 0}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "words.u32").write_bytes(np.concatenate(words).astype("<u4").tobytes())
    (run_dir / "launches.i32").write_bytes(np.asarray(table, "<i4").tobytes())
    (run_dir / "regions.i32").write_bytes(region_table(cm.regions).astype("<i4").tobytes())
    (run_dir / "hbm.u8").write_bytes(img.data.tobytes())
    (run_dir / "x.f32").write_bytes(x.astype("<f4").tobytes())
    (run_dir / "cfg.bin").write_bytes(pack_config(cfg))
    for f in ("status.i32", "out.f32", "hbm_out.u8"):
        (run_dir / f).unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), str(run_dir)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    st_path = run_dir / "status.i32"
    if not st_path.is_file():
        raise IsaTopError(f"the ISA top did not run (rc={proc.returncode}): {proc.stderr[-2000:]}")
    st = np.fromfile(st_path, "<i4")
    status = {"code": int(st[0]), "status": STATUS[int(st[0])] if 0 <= st[0] < len(STATUS) else "?",
              "instr": int(st[1]), "executed": dict(zip(UNITS, map(int, st[2:7]))), "detail": int(st[7]),
              "launch": int(st[8])}
    if status["code"] != 0 and 0 <= status["launch"] < len(launches):
        names_l = launches[status["launch"]].program.stream(0).names
        if 0 <= status["instr"] < len(names_l):
            status["op"] = names_l[status["instr"]]
    out = np.fromfile(run_dir / "out.f32", "<f4").reshape(out_rows, outr.elems)
    return TopRun(out, np.fromfile(run_dir / "hbm_out.u8", np.uint8), status, wall)


def require_ok(run: TopRun) -> TopRun:
    if run.status["code"] != 0:
        raise IsaTopError(f"ISA top stopped: {run.status}")
    return run


def decode_on_top(exe: Path, cm: Any, img: HbmImage, weights: Any, token: int, position: int, run_dir: Path,
                  **kw) -> TopRun:
    """One decode step: every layer of the position's bucket, then the LM head, in one process."""
    launches = step_launches(cm, "decode", cm.decode_bucket_of(position + 1), 1, position)
    launches.append(Launch(cm.program("head"), 0, 0, load_x=False))
    return run_top(exe, cm, launches, img, np.asarray(weights.embed[int(token)], F32), run_dir, **kw)


def prefill_on_top(exe: Path, cm: Any, img: HbmImage, weights: Any, ids: list[int],
                   run_dir: Path) -> tuple[np.ndarray, list[TopRun]]:
    """A prompt on the top as the host launches it (``simulator.functional_model.FunctionalModel.prefill``):
    the bucket padded after the prompt, chunk by chunk (chunks of padding only are not launched), each
    chunk's layers reading back the residual rows, then the LM head on the last prompt token's row.
    The image's KV cache is updated in place. Returns (logits, the runs)."""
    n = len(ids)
    bucket = cm.prefill_bucket_of(n)
    chunk = cm.prefill_chunk(bucket)
    padded = np.zeros(bucket, np.int64)
    padded[:n] = ids
    x_last, runs = None, []
    for q0 in range(0, bucket, chunk):
        if q0 >= n:
            break
        t = min(chunk, bucket - q0)
        run = require_ok(run_top(exe, cm, step_launches(cm, "prefill", q0 + t, t, q0), img,
                                 np.asarray(weights.embed[padded[q0:q0 + t]], F32), run_dir, read_back="x"))
        img.data = run.image
        runs.append(run)
        if q0 <= n - 1 < q0 + t:
            x_last = run.out[n - 1 - q0]
    run = require_ok(run_top(exe, cm, [Launch(cm.program("head"), 0, 0, load_x=True)], img, x_last, run_dir))
    runs.append(run)
    return run.out[0], runs
