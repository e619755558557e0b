"""Emission: one decoder layer (or the LM head) for one bucket, as ISA instructions per core.

What the emitter decides, per core, in program order:

* **Fusion**: element-wise ops following a linear run in the matrix engine's output path
  (``MM/MV.fuse``: RoPE on q/k, SiLU(gate) x up in place on the gate vector, the KV
  quantization of v; residual adds as ``accumulate`` into the residual); QK^T writes the
  scores into the SFU buffer, whose softmax feeds P.V.
* **Dependencies**: wait/release tokens between LD, ST, MPE and SFU of a core, cross-core SYS
  barriers for the all-gathers (after attention, o_proj, up/gate, down). Weight/KV tiles use a
  double-buffer token loop (2 initial tokens); parameter LDs (norm blocks) release the SFU;
  set_position releases ST (the position register), the last K/V store releases the first K/V
  tile LD (the tiles read the new rows back from HBM). Every pair is balanced in a program.
* **Slots**: the tokens between LD and the MPE count free slots, they do not name them, so the
  slots are a ring (:class:`SlotRing`) over every tile of a program, across linears and K/V
  tiles: the i-th tile LD of a core's program writes ring slot ``i % BUFFER_SLOTS``, and its
  slot token is the one the (i - BUFFER_SLOTS)-th tile's MV/MM released, i.e. that of the slot's
  last reader. So no legal unit schedule overwrites a slot before it has been read
  (``mapping.compiler.hazards`` proves it per program). Slot indices restarting at 0 per linear
  (the earlier scheme) let an LD that runs ahead refill a slot the previous linear had not read.

Every instruction goes to ``sink(core, instr, name)``; the name is the debug side table only.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

from llmaccel.mapping import tiling as T
from llmaccel.mapping.compiler.formats import CompileError
from llmaccel.mapping.compiler.layout import column_lines
from llmaccel.mapping.compiler.partition import hbm_row_bytes, linear_rows, norm_block_lines
from llmaccel.simulator import isa
from llmaccel.simulator.compiled import ActRegion, BufferIds, CoreSlices, HbmRegion
from llmaccel.simulator.isa import LINE_BYTES, LD, MISC, MM, MV, ST, SYS, UNIT_BIT
from llmaccel.simulator.specs.model import ModelSpec
from llmaccel.simulator.timing_params import HwParams
from llmaccel.sparse_dsp.packed_format import LayerFormat

B_LD, B_ST, B_MPE, B_SFU, B_SYS = (UNIT_BIT[u] for u in ("LD", "ST", "MPE", "SFU", "SYS"))
MISC_MAX_ROWS = (1 << 6) - 1          # simulator.isa MISC.rows is a 6-bit field (1..63)
Sink = Callable[[int, isa.Instr, str], None]


class SlotRing:
    """The tile slots of one core's program: the next slot of each buffer, in LD program order.

    One counter per buffer id: when K/V tiles stream through the weight buffer (a design
    without its own KV buffer) both kinds share the ring, as they share the MPE -> LD token
    counter, and their slot sizes are then the same (``HwParams.kv_buf_bytes_per_core``).
    """

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def take(self, buffer: int, slot_lines: int) -> int:
        """The line offset of the next slot of ``buffer`` (slots of ``slot_lines`` lines)."""
        i = self._next.get(buffer, 0)
        self._next[buffer] = i + 1
        return (i % T.BUFFER_SLOTS) * slot_lines


class Emitter:
    """Emits programs for one compiled placement and layout (facts only; no state between programs)."""

    def __init__(self, spec: ModelSpec, hw: HwParams, layers: list[dict[str, LayerFormat]], lm_head: LayerFormat,
                 sl: CoreSlices, regions: dict[str, HbmRegion], bufs: BufferIds, act: dict[str, ActRegion],
                 max_len: int, kv_tile: int, fuse: bool, kv_kind: str = "kv_cache"):
        self.spec, self.hw, self.layers, self.lm_head, self.sl = spec, hw, layers, lm_head, sl
        self.kv_kind = kv_kind          # the KV rows' LD/ST kind: kv_cache (INT8 + scale) or kv_cache_fp16
        self.regions, self.b, self.act, self.max_len, self.kv_tile, self.fuse = regions, bufs, act, max_len, kv_tile, fuse
        self.arch = spec.arch
        self.layernorm = self.arch.norm.kind == "layernorm"
        self.act_fuse = _act_fuse(self.arch)
        self.slab_lines = sum(-(-4 * a.elems // LINE_BYTES) for a in act.values() if a.buffer == bufs.activation)
        self.cpc = hw.channels_per_core
        self.dec_per_ch = max(1, hw.decoders_per_core // hw.channels_per_core)
        self.w_slot_lines = hw.weight_buf_bytes_per_core // T.BUFFER_SLOTS // LINE_BYTES
        self.kv_slot_lines = hw.kv_buf_bytes_per_core // T.BUFFER_SLOTS // LINE_BYTES
        if bufs.kv == bufs.weight:   # K/V tiles through the weight buffer: one ring, one slot size
            self.w_slot_lines = self.kv_slot_lines = min(self.w_slot_lines, self.kv_slot_lines)

    # ---------------------------------------------------------------- operands
    def _a(self, name: str, elem: int = 0) -> tuple[int, int]:
        r = self.act[name]
        return r.buffer, r.offset_lines + column_lines(elem, name)

    # ---------------------------------------------------------------- programs
    def layer(self, sink: Sink, phase: str, ctx_len: int, tokens: int, layer: int, cores: range) -> None:
        """One decoder layer for ``tokens`` new tokens ending at context ``ctx_len``.

        Dependency protocol (per core): the layer starts with a SYS->SFU token (left by
        the previous layer's last barrier, or an initial token), weight/KV tile LDs take
        MPE->LD slot tokens (two initial), every tile's MV/MM returns one (the slots are
        the core's :class:`SlotRing`); set_position gives ST the position register (SYS->ST);
        the K/V stores precede the K/V tile LDs that read the new rows back (ST->LD);
        each all-gather is a SYS barrier between the producing and the consuming unit.
        """
        s = self.spec
        lay = self.layers[layer]
        q0 = ctx_len - tokens
        mv = "MV" if tokens == 1 else "MM"
        fz = self.fuse
        rope = self.arch.positions == "rope"
        if not fz and (self.arch.biased or not self.arch.gated or not rope or self.layernorm):
            raise CompileError(f"--no-fuse programs exist for the Llama dataflow only; {self.arch.family} needs the "
                               "fused output path (compile without --no-fuse)")
        for c in cores:
            emit = _core_sink(sink, c)
            # the position register: ST reads it to name the program's tokens; the token orders it
            emit(SYS(op="set_position", imm=q0, release=B_ST), "set_position")
            # 1. input norm, after the previous layer's all-gather
            self._norm(emit, c, layer, "norm_in", "x", tokens, wait=B_SYS, release=B_MPE)
            # 2. q, k, v projections; RoPE and KV quantization fused into the output path
            qk_fuse = "rope" if (fz and rope) else "none"
            self._linear(emit, c, layer, "q_proj", lay["q_proj"], tokens, mv, "h", "q", first_wait=B_SFU,
                         fuse=qk_fuse)
            self._linear(emit, c, layer, "k_proj", lay["k_proj"], tokens, mv, "h", "k", fuse=qk_fuse)
            self._linear(emit, c, layer, "v_proj", lay["v_proj"], tokens, mv, "h", "v",
                         last_release=B_ST if fz else B_SFU,
                         fuse="quantize" if fz and self.kv_kind == "kv_cache" else "none")   # FP16 KV: no quantize
            if not fz:   # the same element-wise work as separate SFU instructions
                qr, kr = linear_rows(self.sl, s.head_dim, "q_proj", c), linear_rows(self.sl, s.head_dim, "k_proj", c)
                self._misc(emit, "rope_q", "rope", tokens, qr, self._a("q"), self._a("q"), wait=B_MPE)
                self._misc(emit, "rope_k", "rope", tokens, kr, self._a("k"), self._a("k"))
                # ST stores the quantized K/V; QK^T reads the rotated q (SFU -> MPE)
                self._misc(emit, "quantize_kv", "quantize", tokens, 2 * kr, self._a("k"), self._a("k"),
                           release=B_ST | B_MPE)
            # 3. store the new K and V rows into this core's KV channels
            stored = self._store_kv(emit, c, layer, q0, tokens, wait=B_SYS | (B_MPE if fz else B_SFU))
            # 4. attention (QK^T -> softmax -> PV), KV head by KV head; then all-gather
            self._attention(emit, c, layer, q0, ctx_len, tokens, first_wait=0 if fz else B_SFU,
                            after_store=B_ST if stored else 0)
            emit(SYS(wait=B_MPE, release=B_MPE, op="barrier"), "barrier_attn")
            # 5. o_proj + residual add, all-gather
            done = self._residual_linear(emit, c, layer, "o_proj", lay["o_proj"], tokens, mv, "attn",
                                         tmp_next="down_proj" in self.arch.biased)
            emit(SYS(wait=done, release=B_SFU, op="barrier"), "barrier_o")
            # 6. post-attention norm
            self._norm(emit, c, layer, "norm_post", "x", tokens, wait=B_SYS, release=B_MPE)
            # 7. MLP: gate, up (act(gate) * up fused on up's output, in place on the gate vector), or
            #    act(up) fused on up's output; all-gather
            if self.arch.gated:
                self._linear(emit, c, layer, "gate_proj", lay["gate_proj"], tokens, mv, "h", "mlp", first_wait=B_SFU)
                if fz:
                    self._linear(emit, c, layer, "up_proj", lay["up_proj"], tokens, mv, "h", "mlp",
                                 last_release=B_SYS, fuse=self.act_fuse)
                    emit(SYS(wait=B_MPE, release=B_MPE, op="barrier"), "barrier_mlp")
                else:
                    self._linear(emit, c, layer, "up_proj", lay["up_proj"], tokens, mv, "h", "tmp", last_release=B_SFU)
                    self._misc(emit, "silu_mul", "mul", tokens, 2 * self.sl.ffn_rows[c], self._a("mlp"),
                               self._a("mlp"), aux=self._a("tmp"), wait=B_MPE, release=B_SYS)
                    emit(SYS(wait=B_SFU, release=B_MPE, op="barrier"), "barrier_mlp")
            else:
                self._linear(emit, c, layer, "up_proj", lay["up_proj"], tokens, mv, "h", "mlp", first_wait=B_SFU,
                             last_release=B_SYS, fuse=self.act_fuse)
                emit(SYS(wait=B_MPE, release=B_MPE, op="barrier"), "barrier_mlp")
            # 8. down + residual add, all-gather; the barrier leaves the next layer's SYS->SFU token
            done = self._residual_linear(emit, c, layer, "down_proj", lay["down_proj"], tokens, mv, "mlp",
                                         tmp_prev="o_proj" in self.arch.biased)
            emit(SYS(wait=done, release=B_SFU, op="barrier"), "barrier_layer")
            emit(SYS(op="end"), "end")

    def _residual_linear(self, emit, c: int, layer: int, leaf: str, fmt: LayerFormat, tokens: int, mv: str,
                         src: str, tmp_prev: bool = False, tmp_next: bool = False) -> int:
        """x += leaf(src): accumulated straight into the residual; with a bias, x + (y + b) in the contract's
        order: the bias preloaded into ``tmp``, the linear accumulated onto it, then an SFU add into x.
        ``tmp`` is shared: the add that reads it releases LD (``tmp_next``), and the next biased
        residual's bias LD waits for that before it overwrites ``tmp`` (``tmp_prev``).
        Returns the unit the following barrier waits on."""
        if leaf not in self.arch.biased:
            self._linear(emit, c, layer, leaf, fmt, tokens, mv, src, "x", first_wait=B_SYS, last_release=B_SYS,
                         accumulate=True)
            return B_MPE
        self._linear(emit, c, layer, leaf, fmt, tokens, mv, src, "tmp", first_wait=B_SYS, last_release=B_SFU,
                     bias_wait=B_SFU if tmp_prev else 0)
        row0 = sum(linear_rows(self.sl, self.spec.head_dim, leaf, j) for j in range(c))
        rows = linear_rows(self.sl, self.spec.head_dim, leaf, c)
        self._misc(emit, f"residual_{leaf}", "add", tokens, rows, self._a("x", row0), self._a("x", row0),
                   aux=self._a("tmp", row0), wait=B_MPE, release=B_SYS | (B_LD if tmp_next else 0))
        return B_SFU

    def head(self, sink: Sink, cores: range) -> None:
        """Final RMSNorm + LM head for one token (decode, and the last prompt token of prefill)."""
        for c in cores:
            emit = _core_sink(sink, c)
            self._norm(emit, c, -1, "norm_in", "x", 1, wait=B_SYS, release=B_MPE)
            self._linear(emit, c, -1, "lm_head", self.lm_head, 1, "MV", "h", "logits", first_wait=B_SFU,
                         last_release=B_SYS)
            emit(SYS(wait=B_MPE, release=B_SFU, op="barrier"), "barrier_logits")
            emit(SYS(op="end"), "end")

    # ---------------------------------------------------------------- pieces
    def _norm(self, emit, c: int, layer: int, slot: str, src: str, tokens: int, wait: int, release: int) -> None:
        """LD the norm's parameter block into the SFU buffer, then the norm over the token rows."""
        name = f"norm_final.c{c}" if layer < 0 else f"L{layer}.{slot}.c{c}"
        r = self.regions[name]
        pb, po = self._a(slot)
        total = norm_block_lines(self.spec.hidden_size, self.layernorm)
        per = r.bytes_per_channel // LINE_BYTES
        parts = [(ch, min(per, total - ch * per)) for ch in range(self.cpc) if total - ch * per > 0]
        for i, (ch, lines) in enumerate(parts):
            emit(LD(release=B_SFU if i == len(parts) - 1 else 0, channel=r.channel0 + ch, dst_buffer=pb,
                    kind="norm_weights", src_addr_lines=r.addr // LINE_BYTES, length_lines=lines,
                    dst_offset_lines=po + ch * per, rows=1, row_elems=self.spec.hidden_size), f"ld_{slot}.ch{ch}")
        op = self.arch.norm.kind
        label = "rmsnorm_final" if layer < 0 else {"norm_in": "rmsnorm_in", "norm_post": "rmsnorm_post"}[slot]
        label = label.replace("rmsnorm", op)
        self._misc(emit, label, op, tokens, self.spec.hidden_size, self._a(src), self._a("h"), aux=(pb, po),
                   wait=wait | B_LD, release=release)

    def _misc(self, emit, name: str, op: str, rows: int, row_len: int, src: tuple[int, int], dst: tuple[int, int],
              aux: tuple[int, int] = (0, 0), wait: int = 0, release: int = 0, qgroup: int = 1) -> None:
        """An SFU op; MISC holds at most 63 rows, so longer ones are split (deps on the ends)."""
        chunks = [(r0, min(MISC_MAX_ROWS, rows - r0)) for r0 in range(0, rows, MISC_MAX_ROWS)]
        for j, (r0, n) in enumerate(chunks):
            emit(MISC(wait=wait if j == 0 else 0, release=release if j == len(chunks) - 1 else 0, op=op,
                      src_buffer=src[0], src_offset_lines=src[1], dst_buffer=dst[0], dst_offset_lines=dst[1],
                      aux_buffer=aux[0], aux_offset_lines=aux[1], row_len=row_len, row0=r0, rows=n, qgroup=qgroup),
                 name if len(chunks) == 1 else f"{name}[{j}]")

    def _linear(self, emit, c: int, layer: int, leaf: str, fmt: LayerFormat, tokens: int, opcode: str,
                src: str, dst: str, first_wait: int = 0, last_release: int = 0, fuse: str = "none",
                accumulate: bool = False, bias_wait: int = 0) -> None:
        """Weight tiles: one LD per channel (lockstep, same local range), then one MV/MM per tile."""
        rows = linear_rows(self.sl, self.spec.head_dim, leaf, c)
        tl = T.weight_tiling(fmt, rows, self.cpc, self.hw.weight_buf_bytes_per_core, leaf, align=self.dec_per_ch)
        region = self.regions[f"lm_head.c{c}" if leaf == "lm_head" else f"L{layer}.{leaf}.c{c}"]
        rpt_ch = tl.rows_per_tile // self.cpc
        rb = hbm_row_bytes(fmt)
        row_lines = rb // LINE_BYTES
        dst_row_lines = -(-T.decoded_row_bytes(fmt) // LINE_BYTES)
        rows_of_ch = [max(0, min(tl.rows_per_channel, rows - ch * tl.rows_per_channel)) for ch in range(self.cpc)]
        ab, ao = self._a(src)
        ob, oo = self._a(dst)
        if leaf in self.arch.biased:     # y + b: the core's bias rows preloaded into the destination, accumulated
            br = self.regions[f"L{layer}.{leaf}.bias.c{c}"]
            bb, bo = self._a(dst, br.row0)
            emit(LD(wait=bias_wait, channel=br.channel0, dst_buffer=bb, kind="bias",
                    src_addr_lines=br.addr // LINE_BYTES, length_lines=br.bytes_per_channel // LINE_BYTES,
                    rows=tokens, src_row_stride_lines=0, dst_row_stride_lines=self.slab_lines, dst_offset_lines=bo, row_elems=br.rows), f"ld_{leaf}.bias")
            accumulate = True
        for t in range(tl.n_tiles):
            r0 = t * rpt_ch
            per_ch = [max(0, min(rpt_ch, rc - r0)) for rc in rows_of_ch]
            chans = [ch for ch in range(self.cpc) if per_ch[ch] > 0]
            slot = emit.ring.take(self.b.weight, self.w_slot_lines)
            for n_i, ch in enumerate(chans):
                emit(LD(wait=B_MPE if n_i == 0 else 0, release=B_MPE if n_i == len(chans) - 1 else 0,
                        channel=region.channel0 + ch, dst_buffer=self.b.weight, kind="weight_codes", bits=fmt.bits,
                        src_addr_lines=(region.addr + r0 * rb) // LINE_BYTES, length_lines=row_lines, nm=fmt.nm,
                        asymmetric=not fmt.symmetric, dst_offset_lines=slot, rows=per_ch[ch],
                        src_row_stride_lines=row_lines, dst_row_stride_lines=dst_row_lines,
                        group_size=fmt.group_size, row_elems=fmt.in_features), f"ld_{leaf}[{t}].ch{ch}")
            last = t == tl.n_tiles - 1
            kw = dict(wait=B_LD | (first_wait if t == 0 else 0), release=B_LD | (last_release if last else 0),
                      act_buffer=ab, act_offset_lines=ao, wt_buffer=self.b.weight, wt_offset_lines=slot,
                      out_buffer=ob, out_offset_lines=oo, fuse=fuse, nm=fmt.nm, accumulate=accumulate,
                      n=sum(per_ch), k=fmt.in_features)
            ins = MM(m=tokens, **kw) if opcode == "MM" else MV(**kw)
            emit(ins, f"{opcode.lower()}_{leaf}[{t}]")

    def _kv_rows_in(self, ch: int, k0: int, k1: int) -> tuple[int, int]:
        """Channel ch holds tokens t with t % cpc == ch at local row t // cpc: (first row, count) in [k0, k1)."""
        first = -(-(k0 - ch) // self.cpc) if k0 > ch else 0
        last = (k1 - 1 - ch) // self.cpc if k1 - 1 >= ch else -1
        return first, max(0, last - first + 1)

    def _kv_addr(self, region: HbmRegion, h: int, r: int) -> tuple[int, int]:
        """(line, byte offset in the line) of KV row r of head h in one channel of the region."""
        a = region.addr + h * region.tokens_per_channel * region.row_bytes + r * region.row_bytes
        return a // LINE_BYTES, a % LINE_BYTES

    def _store_kv(self, emit, c: int, layer: int, q0: int, tokens: int, wait: int) -> bool:
        """The new K/V rows into HBM; the last ST releases LD (the K/V tile LDs read those rows back).
        Returns whether there was a store (then ST -> LD holds its token)."""
        hd = self.spec.head_dim
        first = True
        stores: list[tuple[ST, str]] = []
        for kv in ("k", "v"):
            region = self.regions[f"L{layer}.kv_{kv}.c{c}"]
            for h in range(self.sl.kv_heads[c]):
                sb, so = self._a(kv, (region.head0 + h) * hd)
                for ch in range(self.cpc):
                    r, n = self._kv_rows_in(ch, q0, q0 + tokens)
                    if n == 0:
                        continue
                    line, off = self._kv_addr(region, h, r)
                    stores.append((ST(wait=wait if first else 0, channel=region.channel0 + ch, src_buffer=sb,
                                      kind=self.kv_kind, dst_addr_lines=line, src_offset_lines=so, rows=n,
                                      row_elems=hd, dst_byte_offset=off,
                                      length_lines=-(-(off + n * region.row_bytes) // LINE_BYTES)),
                                   f"st_{kv}[h{h}].ch{ch}"))
                    first = False
        for i, (ins, name) in enumerate(stores):
            emit(dataclasses.replace(ins, release=B_LD) if i == len(stores) - 1 else ins, name)
        return bool(stores)

    def _attention(self, emit, c: int, layer: int, q0: int, ctx: int, tokens: int, first_wait: int = 0,
                   after_store: int = 0) -> None:
        """QK^T, softmax, P.V per KV head; ``first_wait``: what the first QK^T tile waits on besides its
        tile (the SFU where RoPE on q was a separate instruction). ``after_store`` (B_ST): the first K
        tile LD waits for the K/V stores: the tiles read the new rows back from HBM (the runtime
        position may put them in any tile), and every later LD is behind it on the LD unit."""
        s = self.spec
        hd, g = s.head_dim, s.gqa_group_size
        rk, rv = self.regions[f"L{layer}.kv_k.c{c}"], self.regions[f"L{layer}.kv_v.c{c}"]
        n_tiles = math.ceil(ctx / self.kv_tile)
        q_rows = tokens * g                         # query vectors sharing one K/V head
        op_mm = MV if q_rows == 1 else MM
        nh = self.sl.kv_heads[c]
        scores, probs = self._a("scores"), self._a("probs")
        for h in range(nh):
            gh = rk.head0 + h
            qb, qo = self._a("q", gh * g * hd)
            ob, oo = self._a("attn", gh * g * hd)
            for kv, region in (("k", rk), ("v", rv)):
                for j in range(n_tiles):
                    k0, k1 = j * self.kv_tile, min(ctx, (j + 1) * self.kv_tile)
                    n_tok = k1 - k0
                    slot = emit.ring.take(self.b.kv, self.kv_slot_lines)
                    parts = [(ch,) + self._kv_rows_in(ch, k0, k1) for ch in range(self.cpc)]
                    parts = [p for p in parts if p[2] > 0]
                    for n_i, (ch, r, n) in enumerate(parts):
                        line, off = self._kv_addr(region, h, r)
                        first = h == 0 and kv == "k" and j == 0
                        emit(LD(wait=(B_MPE | (after_store if first else 0)) if n_i == 0 else 0,
                                release=B_MPE if n_i == len(parts) - 1 else 0,
                                channel=region.channel0 + ch, dst_buffer=self.b.kv, kind=self.kv_kind,
                                src_addr_lines=line, src_byte_offset=off, rows=n, row_elems=hd,
                                length_lines=-(-(off + n * region.row_bytes) // LINE_BYTES), dst_offset_lines=slot),
                             f"ld_{kv}[h{h},{j}].ch{ch}")
                    last = j == n_tiles - 1
                    mm = {"m": q_rows, "qgroup": g} if op_mm is MM else {}
                    if kv == "k":   # scores = q . K^T: the K tile is the matrix (rows = keys), q the vectors
                        emit(op_mm(wait=B_LD | (first_wait if h == 0 and j == 0 else 0),
                                   release=B_LD | (B_SFU if last else 0), mode="qk", act_buffer=qb,
                                   act_offset_lines=qo, wt_buffer=self.b.kv, wt_offset_lines=slot,
                                   out_buffer=scores[0], out_offset_lines=scores[1], n=n_tok, k=hd, key0=k0, **mm),
                             f"qk[h{h},{j}]")
                    else:           # out = p . V: rows = head_dim outputs, cols = keys of the tile
                        emit(op_mm(wait=B_LD | (B_SFU if j == 0 else 0),
                                   release=B_LD | (B_SYS if (h == nh - 1 and last) else 0), mode="pv",
                                   act_buffer=probs[0], act_offset_lines=probs[1], wt_buffer=self.b.kv,
                                   wt_offset_lines=slot, out_buffer=ob, out_offset_lines=oo, n=hd, k=n_tok, key0=k0,
                                   accumulate=j > 0, **mm), f"pv[h{h},{j}]")
                if kv == "k":
                    self._misc(emit, f"softmax[h{h}]", "softmax", q_rows, ctx, scores, probs, wait=B_MPE,
                               release=B_MPE, qgroup=g)


def _act_fuse(arch) -> str:
    """The output-path op of the MLP's up projection for a family's activation."""
    if arch.gated:
        if arch.activation != "silu":
            raise CompileError(f"{arch.family}: a gated MLP with activation '{arch.activation}' has no fused op; "
                               "allowed: silu (silu_mul)")
        return "silu_mul"
    fused = {"gelu_tanh": "gelu", "relu": "relu", "gelu": "gelu_erf"}
    if arch.activation not in fused:
        raise CompileError(f"{arch.family}: activation '{arch.activation}' after a plain MLP has no fused op; "
                           f"allowed: {sorted(fused)}")
    return fused[arch.activation]


class CoreSink:
    """One core's part of a program as it is emitted: instructions go to ``sink``; ``ring`` is the
    core's tile-slot ring (one per core per program: a launch starts with every slot free)."""

    def __init__(self, sink: Sink, core: int):
        self.sink, self.core, self.ring = sink, core, SlotRing()

    def __call__(self, ins: isa.Instr, name: str) -> None:
        self.sink(self.core, ins, name)


def _core_sink(sink: Sink, core: int) -> CoreSink:
    return CoreSink(sink, core)


def counting_sink() -> tuple[Sink, list[int]]:
    """A sink that only counts words (storage report)."""
    total = [0]

    def sink(core: int, ins: isa.Instr, name: str) -> None:
        total[0] += ins.WORDS
    return sink, total


def no_sink(core: int, ins: isa.Instr, name: str) -> None:
    return None


__all__ = ["CoreSink", "Emitter", "SlotRing", "Sink", "counting_sink", "MISC_MAX_ROWS", "B_LD", "B_ST", "B_MPE",
           "B_SFU", "B_SYS",
           "Optional"]
