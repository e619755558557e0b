"""The functional (bit-accurate) engine: decodes a compiled program's words and executes them.

It walks every instruction of every core in program order, with the cross-core
barriers as the only synchronisation, and does each instruction's arithmetic
with the per-unit goldens (``simulator.functional.units``). Everything an
instruction does comes from its fields: which buffer and offset its operands
are (``CompiledModel.act`` names the vectors for messages and for the host),
what the matrix engine computes (``mode``), the output path (``accumulate``,
``fuse``), which norm and which parameters (``MISC.op``, the block an LD of
kind norm_weights put at ``aux``), what a SYS does, the position the program
was compiled for (SYS set_position). Weight LDs read the rows their channel
and line address name in the HBM image (``simulator.functional.memory``).
Nothing recomputes the model on the side: a dropped LD leaves its tile
missing (an error), an LD that points at other rows decodes other weights
(other logits), a dropped ST leaves the KV cache without that token (other
logits), a dropped barrier leaves another core's rows un-gathered (an error).

Runtime position: a decode program is compiled for its bucket's last position;
the host launches it with the token's real position (the position register):
it relocates the new token's KV store and masks keys after it. Prefill runs a
padded bucket: padding tokens come after the prompt, so causality keeps them
out of every real token's result. Layer programs are templates: the host's
layer base register (``CompiledModel.layer_base_lines``) moves their HBM
addresses to the launched layer.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from llmaccel.simulator import isa
from llmaccel.simulator.compiled import ActRegion, CompiledModel, CompiledProgram
from llmaccel.simulator.functional import units as U
from llmaccel.simulator.functional.memory import HbmImage
from llmaccel.simulator.functional.weights import F32, FunctionalError, ModelWeights
from llmaccel.simulator.golden.sfu import rope_tables_of

ELEMS_PER_LINE = isa.LINE_BYTES // 4


@dataclass
class _Core:
    """One core's on-chip state while a program runs."""

    act: dict[str, np.ndarray] = field(default_factory=dict)        # vector region -> [rows, elems] FP32
    params: dict[int, np.ndarray] = field(default_factory=dict)     # buffer id -> bytes (parameter blocks)
    wslot: dict[int, list] = field(default_factory=dict)            # weight-buffer offset -> LD parts
    kvslot: dict[int, list] = field(default_factory=dict)           # KV-buffer offset -> [region, head, parts]
    written: dict[str, list] = field(default_factory=dict)          # region -> column arrays since the last barrier
    pending: dict[str, np.ndarray] = field(default_factory=dict)    # region -> bool[elems] awaiting RoPE
    done: dict[str, np.ndarray] = field(default_factory=dict)       # weight region -> bool[rows] computed
    aq: dict[tuple, tuple] = field(default_factory=dict)            # quantized operands, dropped on write
    q0: int = 0                                                     # SYS set_position


class FunctionalEngine:
    """Executes the programs of one :class:`CompiledModel` on ``ModelWeights``; keeps the HBM KV cache."""

    def __init__(self, cm: CompiledModel, weights: ModelWeights):
        self.cm, self.w = cm, weights
        self.n_cores = cm.hw.n_cores
        self.head_dim = cm.spec.head_dim
        self.mem = HbmImage(cm, weights)
        self.regions = {r.name: r for r in cm.act}
        self._by_buf: dict[int, list[tuple[int, int, ActRegion]]] = {}
        for r in cm.act:
            lines = -(-r.elems // ELEMS_PER_LINE)
            self._by_buf.setdefault(r.buffer, []).append((r.offset_lines, r.offset_lines + lines, r))
        self.cores: list[_Core] = [_Core() for _ in range(self.n_cores)]
        self.instructions_executed = 0
        self._memo: dict = {}           # bounded: quantized operands, norms shared by the cores
        self._ops: dict = {}            # what an LD/ST addresses (a pure function of its fields and base)
        self._plans: dict = {}          # (words digest, core, layer base) -> bound instructions

    def reset_kv(self) -> None:
        self.mem.reset_kv()

    # ------------------------------------------------------------------ operands
    def _vec(self, buf: int, off: int, what: str) -> tuple[ActRegion, int]:
        """The vector region at line ``off`` of buffer ``buf`` and the element it starts at."""
        for lo, hi, r in self._by_buf.get(buf, ()):
            if lo <= off < hi:
                return r, (off - lo) * ELEMS_PER_LINE
        raise FunctionalError(f"{what}: buffer {buf} line {off} holds no vector (not a compiled on-chip region)")

    def _arr(self, core: _Core, r: ActRegion, rows: Optional[int] = None) -> np.ndarray:
        a = core.act.get(r.name)
        if a is None:
            a = core.act[r.name] = np.full((self._T if rows is None else rows, r.elems), np.nan, F32)
        return a

    def _read(self, core: _Core, r: ActRegion, col0: int, n: int, what: str) -> np.ndarray:
        a = core.act.get(r.name)
        if col0 + n > r.elems:
            raise FunctionalError(f"{what}: reads elements {col0}..{col0 + n - 1} of '{r.name}' ({r.elems} long)")
        x = None if a is None else a[:, col0:col0 + n]
        if x is None or np.isnan(x).any():
            raise FunctionalError(f"{what}: '{r.name}' elements {col0}..{col0 + n - 1} are incomplete when read "
                                  "(a missing instruction or barrier before it)")
        p = core.pending.get(r.name)
        if p is not None and p[col0:col0 + n].any():
            raise FunctionalError(f"{what}: '{r.name}' elements {col0}.. are read before their RoPE (their linear's "
                                  "rows of this core are not all computed)")
        return x

    def _quantized(self, core: _Core, r: ActRegion, col0: int, n: int, heads: int, what: str) -> tuple:
        key = (r.name, col0, n, heads)
        hit = core.aq.get(key)
        if hit is None:
            x = self._read(core, r, col0, n, what)
            mk = (key, x.tobytes())           # every core quantizes the same gathered vector: once
            hit = self._memo.get(mk)
            if hit is None:
                if len(self._memo) > 512:
                    self._memo.clear()
                if heads:
                    q8, s = U.quantize_heads(x, heads)
                    hit = (q8.reshape(-1, heads), s.reshape(-1))
                else:                      # INT8 codes held as exact FP32 values, the group matmul's operand
                    q8, s = U.quantize_activation(x)
                    hit = (q8.astype(F32), s)
                self._memo[mk] = hit
            core.aq[key] = hit
        return hit

    def _write(self, core: _Core, r: ActRegion, cols: np.ndarray, v: np.ndarray, gathered: bool = True) -> None:
        a = self._arr(core, r)
        a[:, cols] = v
        if gathered:
            core.written.setdefault(r.name, []).append(cols)
        for k in [k for k in core.aq if k[0] == r.name]:
            del core.aq[k]

    # ------------------------------------------------------------------ program execution
    def run(self, prog: CompiledProgram, positions: np.ndarray, x: Optional[np.ndarray] = None,
            layer: int = -1) -> None:
        """Execute one program for tokens at runtime ``positions`` (all cores, barriers included).

        ``x`` [tokens, hidden] is written into every core's residual vector first (the host writes the
        embeddings, or the last prompt token's hidden state for the head program); ``layer`` sets the
        layer base register (the template's own layer when -1)."""
        positions = np.asarray(positions, np.int64)
        T = int(prog.tokens)
        if len(positions) != T:
            raise FunctionalError(f"program runs {T} tokens, {len(positions)} positions given")
        if prog.replicas != 1 or len(prog.cores) != self.n_cores:
            raise FunctionalError("the functional engine runs every core's stream (compile without core0_only)")
        self._T, self._pos = T, positions
        self._cos = self._sin = None       # the RoPE tables of these positions, made when a rope op needs them
        bases = [0] * self.n_cores
        if layer >= 0 and prog.template_layer >= 0:
            lb = self.cm.layer_base_lines
            bases = [lb[layer][c] - lb[prog.template_layer][c] for c in range(self.n_cores)]
        xr = self.regions["x"]
        for c in range(self.n_cores):
            keep = self.cores[c].act.get("x")
            core = self.cores[c] = _Core()
            core.act["x"] = np.array(x, F32) if x is not None else keep
            if core.act["x"] is None or core.act["x"].shape != (T, xr.elems):
                raise FunctionalError(f"core {c}: no residual input of {T} tokens for the {prog.phase} program")
        plans = [self._plan(prog, c, bases[c]) for c in range(self.n_cores)]
        n_seg = {len(p) for p in plans}
        for seg in range(max(n_seg)):
            for c in range(self.n_cores):
                if seg >= len(plans[c]):
                    continue
                core = self.cores[c]
                for fn, ins, name, pre in plans[c][seg]:
                    fn(core, ins, name, pre)
                self.instructions_executed += len(plans[c][seg])
            if len(n_seg) > 1 and seg == min(n_seg) - 1:
                stuck = [c for c, p in enumerate(plans) if len(p) > seg + 1]
                raise FunctionalError(f"cores {stuck} wait at a barrier that cores "
                                      f"{[c for c in range(self.n_cores) if c not in stuck]} never reach (deadlock)")
            if seg < max(n_seg) - 1:
                self._gather()
                self.instructions_executed += self.n_cores

    def _plan(self, prog: CompiledProgram, c: int, base: int) -> list[list[tuple]]:
        """The core's instructions split at its barriers, each bound to its handler with the operands its
        fields name resolved once (a pure function of the words and the layer base)."""
        key = (self._digest(prog, c), c, base)
        hit = self._plans.get(key)
        if hit is not None:
            return hit
        segs: list[list[tuple]] = [[]]
        for ins, name in self._decoded(prog, c):
            t = type(ins)
            if t is isa.SYS:
                if ins.op == "barrier":
                    segs.append([])
                elif ins.op == "set_position":
                    segs[-1].append((self._set_position, ins, name, None))
                continue
            if t is isa.LD:
                what = f"core {c} {name}"
                addr = (ins.src_addr_lines + base) * isa.LINE_BYTES + ins.src_byte_offset
                if ins.kind == "weight_codes":
                    segs[-1].append((self._ld_weight, ins, name, self._weight_rows(ins, addr, what)))
                elif ins.kind == "kv_cache":
                    segs[-1].append((self._ld_kv, ins, name, self._kv_rows(ins.channel, addr, ins.rows,
                                                                            ins.row_elems, what)))
                elif ins.kind == "norm_weights":
                    segs[-1].append((self._ld_norm, ins, name, self._norm_share(ins, addr, what)))
                elif ins.kind == "bias":
                    segs[-1].append((self._ld_bias, ins, name, self._bias_values(ins, addr, what)
                                     + self._vec(ins.dst_buffer, ins.dst_offset_lines, what)))
                else:
                    raise FunctionalError(f"{what}: LD kind '{ins.kind}' is not executed by the functional engine")
            elif t is isa.ST:
                addr = (ins.dst_addr_lines + base) * isa.LINE_BYTES + ins.dst_byte_offset
                if ins.kind != "kv_cache":
                    raise FunctionalError(f"{name}: stores kind '{ins.kind}'; only the KV cache is written by ST")
                segs[-1].append((self._st, ins, name, self._kv_rows(ins.channel, addr, ins.rows, ins.row_elems, name)
                                 + self._vec(ins.src_buffer, ins.src_offset_lines, name)))
            elif t is isa.MISC:
                aux = self._vec(ins.aux_buffer, ins.aux_offset_lines, name) if ins.op in ("add", "mul") else (None, 0)
                segs[-1].append((self._misc, ins, name, self._vec(ins.src_buffer, ins.src_offset_lines, name)
                                 + self._vec(ins.dst_buffer, ins.dst_offset_lines, name) + aux))
            else:
                ops = self._vec(ins.act_buffer, ins.act_offset_lines, name) + \
                    self._vec(ins.out_buffer, ins.out_offset_lines, name)
                fn = {"linear": self._linear, "qk": self._qk, "pv": self._pv}[ins.mode]
                segs[-1].append((fn, ins, name, ops))
        self._plans[key] = segs
        return segs

    def _digest(self, prog: CompiledProgram, core: int) -> str:
        return hashlib.blake2b(np.ascontiguousarray(prog.stream(core).words, "<u4").tobytes(),
                               digest_size=16).hexdigest()

    def _decoded(self, prog: CompiledProgram, core: int) -> list[tuple[isa.Instr, str]]:
        st = prog.stream(core)
        key = ("functional", self._digest(prog, core))
        memo = self.cm.cache.decoded
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = list(zip(isa.decode(st.words), st.names))
        return hit

    def _gather(self) -> None:
        """All-gather: the vector elements each core's matrix engine wrote since the last barrier reach every core."""
        for src in range(self.n_cores):
            sc = self.cores[src]
            for name, cols_l in sc.written.items():
                cols = cols_l[0] if len(cols_l) == 1 else np.concatenate(cols_l)
                data = sc.act[name][:, cols]
                r = self.regions[name]
                for dst in range(self.n_cores):
                    if dst != src:
                        dc = self.cores[dst]
                        a = dc.act.get(name)
                        if a is None:
                            a = dc.act[name] = np.full((sc.act[name].shape[0], r.elems), np.nan, F32)
                        a[:, cols] = data
                        for k in [k for k in dc.aq if k[0] == name]:
                            del dc.aq[k]
            sc.written = {}

    def _set_position(self, core: _Core, ins: isa.SYS, name: str, pre) -> None:
        core.q0 = ins.imm

    # -- LD / ST
    def _weight_rows(self, ins: isa.LD, addr: int, what: str):
        key = ("ld", ins.channel, addr, ins.rows, ins.length_lines, ins.bits, ins.nm, ins.group_size,
               ins.row_elems, ins.asymmetric)
        hit = self._ops.get(key)
        if hit is None:
            hit = self._ops[key] = self._resolve_weight_rows(ins, addr, what) + (len(self._ops),)
        return hit

    def _resolve_weight_rows(self, ins: isa.LD, addr: int, what: str):
        r, ch = self.mem.find(ins.channel, addr, ins.rows * ins.length_lines * isa.LINE_BYTES, what)
        if r.kind != "weight":
            raise FunctionalError(f"{what}: loads weight codes from '{r.tensor}', which holds {r.kind}")
        rows = self.mem.weight_rows(r, ch, addr, ins.length_lines, ins.rows, what)
        p, w8, sc = self.mem.decode_rows(r, rows)
        f = p.fmt
        got = (ins.bits, ins.nm, ins.group_size, ins.row_elems, ins.asymmetric)
        want = (f.bits, f.nm, f.group_size, f.in_features, not f.symmetric)
        if got != want:
            raise FunctionalError(f"{what}: decodes (bits, nm, group_size, row_elems, asymmetric)={got}, the "
                                  f"rows of '{r.tensor}' are packed as {want}")
        return (r, rows, w8, sc)         # _weight_rows adds a serial number naming this LD operand

    def _ld_weight(self, core: _Core, ins: isa.LD, name: str, hit) -> None:
        parts = core.wslot.get(ins.dst_offset_lines)
        if parts is None or parts[0][0] is not hit[0]:
            parts = core.wslot[ins.dst_offset_lines] = []
        parts.append(hit)

    def _ld_kv(self, core: _Core, ins: isa.LD, name: str, pre) -> None:
        r, head, tokens = pre
        slot = core.kvslot.get(ins.dst_offset_lines)
        if slot is None or slot[0] is not r or slot[1] != head:
            slot = core.kvslot[ins.dst_offset_lines] = [r, head, []]
        k8, sk = self.mem.kv[r.tensor]
        slot[2].append((tokens, k8[head, tokens], sk[head, tokens]))

    def _norm_share(self, ins: isa.LD, addr: int, what: str) -> np.ndarray:
        r, ch = self.mem.find(ins.channel, addr, ins.length_lines * isa.LINE_BYTES, what)
        if r.kind != "norm":
            raise FunctionalError(f"{what}: loads norm weights from '{r.tensor}', which holds {r.kind}")
        return self.mem.norm_share(r, ch, addr, ins.length_lines, what)

    def _bias_values(self, ins: isa.LD, addr: int, what: str) -> tuple[np.ndarray]:
        r, ch = self.mem.find(ins.channel, addr, ins.length_lines * isa.LINE_BYTES, what)
        if r.kind != "bias" or ch != 0 or addr != r.addr:
            raise FunctionalError(f"{what}: loads a bias from '{r.tensor}' byte {addr - r.addr} of channel "
                                  f"{r.channel0 + ch}, which holds {r.kind} (a bias LD reads its region from the start)")
        if ins.row_elems != r.rows or ins.length_lines * isa.ELEMS_PER_LINE_F32 < r.rows:
            raise FunctionalError(f"{what}: {ins.row_elems} bias elements, the region holds {r.rows}")
        return (self.mem.bias(r),)

    def _ld_bias(self, core: _Core, ins: isa.LD, name: str, pre) -> None:
        b, dst, d0 = pre
        if ins.rows != self._T or (ins.src_row_stride_lines and ins.rows > 1):
            raise FunctionalError(f"{name}: broadcasts a bias to {ins.rows} rows (stride {ins.src_row_stride_lines}); "
                                  f"the program runs {self._T} tokens")
        self._write(core, dst, d0 + np.arange(b.size), np.broadcast_to(b, (self._T, b.size)))

    def _ld_norm(self, core: _Core, ins: isa.LD, name: str, data: np.ndarray) -> None:
        buf = core.params.get(ins.dst_buffer)
        end = ins.dst_offset_lines * isa.LINE_BYTES + data.size
        if buf is None or buf.size < end:
            grown = np.zeros(max(end, 0 if buf is None else buf.size), np.uint8)
            if buf is not None:
                grown[:buf.size] = buf
            buf = core.params[ins.dst_buffer] = grown
        buf[ins.dst_offset_lines * isa.LINE_BYTES:end] = data

    def _kv_rows(self, channel: int, addr: int, rows: int, elems: int, what: str):
        key = ("kv", channel, addr, rows, elems)
        hit = self._ops.get(key)
        if hit is None:
            r, ch = self.mem.find(channel, addr, rows * (elems + isa.KV_SCALE_BYTES), what)
            if r.kind != "kv" or elems != self.head_dim:
                raise FunctionalError(f"{what}: addresses KV rows of {elems} elements in '{r.tensor}' ({r.kind}); "
                                      f"KV rows hold head_dim={self.head_dim}")
            hit = self._ops[key] = (r,) + self.mem.kv_tokens(r, ch, addr, rows, what)
        return hit

    def _st(self, core: _Core, ins: isa.ST, name: str, pre) -> None:
        what = name
        r, head, tokens, src, col0 = pre
        idx = tokens - core.q0                                  # which of the program's tokens
        if idx.min() < 0 or idx.max() >= self._T:
            raise FunctionalError(f"{what}: stores tokens {tokens.tolist()} outside the program's tokens "
                                  f"{core.q0}..{core.q0 + self._T - 1}")
        vals = self._read(core, src, col0, ins.row_elems, what)[idx]
        q, s = U.quantize_heads(vals, self.head_dim)           # [n, 1, D], [n, 1]
        k8, sk = self.mem.kv[r.tensor]
        dest = self._pos[idx]                                   # the runtime position register
        k8[head, dest] = q[:, 0]
        sk[head, dest] = s[:, 0]

    # -- matrix engine
    def _linear(self, core: _Core, ins, name: str, pre) -> None:
        parts = core.wslot.pop(ins.wt_offset_lines, None)
        if not parts:
            raise FunctionalError(f"{name}: weight slot {ins.wt_offset_lines} holds no loaded tile (a dropped LD)")
        r = parts[0][0]
        key = ("tile",) + tuple(p[4] for p in parts)
        hit = self._ops.get(key)
        if hit is None:
            fmt = self.w.linears[r.key].fmt
            hit = self._ops[key] = (np.concatenate([p[1] for p in parts]),
                                    U.grouped_weights(np.concatenate([p[2] for p in parts]), fmt.group_size),
                                    U.group_scales(np.concatenate([p[3] for p in parts])))
        rows, w8, sc = hit
        fmt = self.w.linears[r.key].fmt
        tokens = ins.m if type(ins) is isa.MM else 1
        if ins.n != len(rows) or ins.k != fmt.in_features or ins.nm != fmt.nm or tokens != self._T:
            raise FunctionalError(f"{name}: n={ins.n} rows of k={ins.k} (nm {ins.nm}) for {tokens} tokens, but the "
                                  f"slot holds {len(rows)} rows of '{r.tensor}' ({fmt.in_features} wide, nm {fmt.nm}) "
                                  f"and the program runs {self._T} tokens")
        src, a0, out, o0 = pre
        y = U.linear_tile(w8, sc, fmt.group_size, self._quantized(core, src, a0, ins.k, 0, name))
        ckey = ("cols", key, o0)
        cols = self._ops.get(ckey)
        if cols is None:
            cols = self._ops[ckey] = o0 + r.row0 + rows
        if cols[-1] >= out.elems:
            raise FunctionalError(f"{name}: output rows reach element {int(cols[-1])} of '{out.name}' ({out.elems})")
        old = None
        if ins.accumulate or ins.fuse == "silu_mul":
            a = core.act.get(out.name)
            old = None if a is None else a[:, cols]
            if old is None or np.isnan(old).any():
                raise FunctionalError(f"{name}: {'accumulates onto' if ins.accumulate else 'gates with'} "
                                      f"'{out.name}' elements that were never written")
        self._write(core, out, cols, U.epilogue(y, old, ins.accumulate, ins.fuse))
        done = core.done.get(r.tensor)
        if done is None:
            done = core.done[r.tensor] = np.zeros(r.rows, bool)
        done[rows] = True
        if ins.fuse == "rope":
            p = core.pending.setdefault(out.name, np.zeros(out.elems, bool))
            p[cols] = True
            if done.all():
                allc = o0 + r.row0 + np.arange(r.rows)
                a = core.act[out.name]
                if self._cos is None:     # the family's RoPE (its type and scaling), as the host writes the tables
                    self._cos, self._sin = rope_tables_of(self.cm.spec, self._pos)
                a[:, allc] = U.apply_rope(a[:, allc], self.head_dim, self._cos, self._sin)
                p[allc] = False

    def _take_kv(self, core: _Core, ins, name: str, want: str):
        slot = core.kvslot.pop(ins.wt_offset_lines, None)
        if slot is None:
            raise FunctionalError(f"{name}: KV slot {ins.wt_offset_lines} holds no loaded tile (a dropped LD)")
        r, head, parts = slot
        if r.kv != want:
            raise FunctionalError(f"{name}: needs a {want.upper()} tile, the slot holds '{r.tensor}'")
        tokens = np.concatenate([p[0] for p in parts])
        order = np.argsort(tokens, kind="stable")
        tokens = tokens[order]
        keys = ins.n if ins.mode == "qk" else ins.k
        if len(tokens) != keys or tokens[0] != ins.key0 or tokens[-1] != ins.key0 + keys - 1:
            raise FunctionalError(f"{name}: key0={ins.key0} and {keys} keys, but the tile holds keys "
                                  f"{int(tokens[0])}..{int(tokens[-1])} ({len(tokens)})")
        vals = np.concatenate([p[1] for p in parts])[order]
        scales = np.concatenate([p[2] for p in parts])[order]
        return r.head0 + head, tokens, vals, scales

    def _group(self, ins) -> int:
        g = ins.qgroup if type(ins) is isa.MM else 1
        rows = ins.m if type(ins) is isa.MM else 1
        if rows != self._T * g:
            raise FunctionalError(f"{ins.MNEMONIC} {ins.mode}: {rows} query rows, the program runs {self._T} tokens "
                                  f"x {g} heads per KV head")
        return g

    def _qk(self, core: _Core, ins, name: str, pre) -> None:
        g = self._group(ins)
        gh, tokens, k8, sk = self._take_kv(core, ins, name, "k")
        if ins.k != self.head_dim:
            raise FunctionalError(f"{name}: k={ins.k}, the K rows hold head_dim={self.head_dim}")
        qr, q0, out, _ = pre
        q8, s_q = self._quantized(core, qr, q0, g * self.head_dim, self.head_dim, name)
        if ins.key0 == 0 or out.name not in core.act:     # a new head's scores
            core.act[out.name] = np.full((self._T * g, self.cm.max_len), np.nan, F32)
        sc = core.act[out.name]
        if tokens[-1] >= sc.shape[1]:
            raise FunctionalError(f"{name}: key {int(tokens[-1])} beyond the compiled maximum {sc.shape[1]}")
        sc[:, tokens] = U.attention_scores(q8, s_q, k8[:, None, :], sk[:, None], 1)

    def _pv(self, core: _Core, ins, name: str, pre) -> None:
        g = self._group(ins)
        gh, tokens, v8, sv = self._take_kv(core, ins, name, "v")
        hd = self.head_dim
        if ins.n != hd:
            raise FunctionalError(f"{name}: n={ins.n}, the V rows hold head_dim={hd}")
        pr, _, out, o0 = pre
        p = core.act.get(pr.name)
        if p is None or np.isnan(p[:, tokens]).any():
            raise FunctionalError(f"{name}: probabilities of keys {int(tokens[0])}.. are not computed")
        cols = o0 + np.arange(g * hd)
        if ins.accumulate:
            acc = self._arr(core, out)[:, cols]
            if np.isnan(acc).any():
                raise FunctionalError(f"{name}: accumulates onto '{out.name}' elements that were never written")
            acc = acc.reshape(self._T * g, hd)
        else:
            acc = np.zeros((self._T * g, hd), F32)
        acc = U.weighted_value_sum(acc, p[:, tokens], sv, v8)
        self._write(core, out, cols, acc.reshape(self._T, g * hd))

    # -- SFU
    def _misc(self, core: _Core, ins: isa.MISC, name: str, pre) -> None:
        rows = np.arange(ins.row0, ins.row0 + ins.rows)
        src, s0, dst, d0, aux, x0 = pre
        if ins.op in ("add", "mul"):
            a = self._read(core, src, s0, ins.row_len, name)[rows]
            b = self._read(core, aux, x0, ins.row_len, name)[rows]
            out = self._arr(core, dst)
            cols = d0 + np.arange(ins.row_len)
            out[np.ix_(rows, cols)] = U.add(a, b) if ins.op == "add" else U.mul(a, b)
            core.written.setdefault(dst.name, []).append(cols)
            for k in [k for k in core.aq if k[0] == dst.name]:
                del core.aq[k]
            return
        if ins.op == "softmax":
            sc = core.act.get(src.name)
            if sc is None:
                raise FunctionalError(f"{name}: no scores to normalise (its QK^T did not run)")
            if rows[-1] >= sc.shape[0] or ins.row_len > sc.shape[1]:
                raise FunctionalError(f"{name}: rows {ins.row0}..{rows[-1]} x {ins.row_len} keys beyond the scores")
            qpos = self._pos[rows // ins.qgroup]
            try:
                p = U.masked_softmax(sc[rows, :ins.row_len], qpos)
            except FunctionalError as exc:
                raise FunctionalError(f"{name}: {exc}") from None
            if ins.row0 == 0 or dst.name not in core.act:
                core.act[dst.name] = np.full(sc.shape, np.nan, F32)
            core.act[dst.name][rows, :ins.row_len] = p
            return
        if ins.op in ("rmsnorm", "layernorm"):
            if ins.row_len != src.elems or s0 or d0:
                raise FunctionalError(f"{name}: row length {ins.row_len} from element {s0}; the norm covers all "
                                      f"{src.elems} elements of '{src.name}'")
            pb = core.params.get(ins.aux_buffer)
            lines = 1 + (2 if ins.op == "layernorm" else 1) * -(-ins.row_len // ELEMS_PER_LINE)
            lo = ins.aux_offset_lines * isa.LINE_BYTES
            if pb is None or pb.size < lo + lines * isa.LINE_BYTES:
                raise FunctionalError(f"{name}: no norm parameters at buffer {ins.aux_buffer} line "
                                      f"{ins.aux_offset_lines} (a dropped LD of kind norm_weights)")
            block = pb[lo:lo + lines * isa.LINE_BYTES]
            x = self._arr(core, src)[rows]
            if np.isnan(x).any():
                raise FunctionalError(f"{name}: rows of '{src.name}' are incomplete (an all-gather did not happen)")
            key = ("norm", ins.op, block.tobytes(), x.tobytes())
            h = self._memo.get(key)
            if h is None:
                h = self._memo[key] = U.norm(ins.op, x, block, ins.row_len)
            out = self._arr(core, dst)
            out[rows] = h
            for k in [k for k in core.aq if k[0] == dst.name]:
                del core.aq[k]
            return
        raise FunctionalError(f"{name}: SFU op '{ins.op}' is not executed by the functional engine (fused "
                              "programs carry rope/quantize/silu_mul in the matrix engine's output path)")

    # ------------------------------------------------------------------ results
    def residual(self) -> np.ndarray:
        x = self.cores[0].act["x"]
        for c in range(1, self.n_cores):
            if not np.array_equal(self.cores[c].act["x"], x, equal_nan=True):
                raise FunctionalError(f"core {c}'s residual differs from core 0's after the layer (missing gather)")
        if np.isnan(x).any():
            raise FunctionalError("residual has rows no core computed")
        return x.copy()

    def logits(self) -> np.ndarray:
        lg = self.cores[0].act.get("logits")
        if lg is None or np.isnan(lg).any():
            raise FunctionalError("logits incomplete: an LM-head tile or the final all-gather did not run")
        return lg[0].copy()
