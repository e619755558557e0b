"""The functional (bit-accurate) engine: executes the compiler's Programs on the packed weights.

It walks every instruction of a compiled program, core by core, in program
order, with the cross-core barriers as the only synchronisation, and does
each instruction's arithmetic with the per-unit goldens of
``simulator.golden`` (one golden per unit, shared with the HLS and RTL
checks). Nothing here recomputes the model on the side: an LD that is
dropped leaves its tile missing (an error), an LD that points at other rows
decodes other weights (other logits), a dropped ST leaves the KV cache
without that token (other logits), a dropped barrier leaves another core's
rows un-gathered (an error).

What the engine models:

* **HBM image.** Weights are read where the placement put them: an LD's
  (channel, channel-local address, bytes) names the tensor region and the
  rows inside it. Weight rows of a core's slice are laid out channel-major
  (core row ``r`` in channel ``r // rows_per_channel`` at local row
  ``r % rows_per_channel``, each row padded to 64-byte lines), KV tokens
  interleaved (token ``t`` of a head in channel ``t % cpc`` at local row
  ``t // cpc``), as ``mapping.compiler`` emits them. The KV cache is an
  INT8 + FP32-scale array per (layer, core, K|V) region, written only by ST.
* **Weight decode.** An LD of weight rows decodes them with the packed-format
  decoder (``PackedLinear.dense_int8``, the Python golden of the on-chip
  decoder) into the double-buffer slot the LD names; the MV/MM of that slot
  consumes it. Decoded rows are memoised per LD operand (a pure function of
  the HBM image, which does not change for weights).
* **Matrix engine.** MV/MM = golden activation quantization + INT32 group
  partial sums + FP32 rescale (``simulator.golden.linear``) on the tile's rows;
  outputs land at the rows the weights came from. Fused element-wise ops
  (RoPE, residual add, SiLU x up) run once a core's slice of the linear is
  complete. QK^T tiles use ``golden.attention.attention_scores``; softmax is
  ``golden.sfu.softmax``; the P.V tiles accumulate position by position in
  order (the contract's order; equal to ``golden.attention.decode_attention``
  bit for bit, tested).
* **Runtime position.** A decode program is compiled for its bucket's upper
  end (length-adaptive compilation); the runtime position (the ISA's
  ``SYS set_position``) relocates the new token's KV store and masks keys after
  it. Prefill runs a padded bucket: padding tokens come after the prompt, so
  causality keeps them out of every real token's result.

What the compiler does not (yet) say and this engine derives, listed in
docs/host.md: which activation buffer an MV reads and writes (from the leaf
of the tensor its weights came from), which norm weights an RMSNorm uses
(from the op name and the layer of the program), the runtime position.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from simulator.golden.attention import attention_scores, quantize_heads, weighted_value_sum
from simulator.golden.linear import group_partial_sums, quantize_activation, rescale_groups
from simulator.golden.sfu import add, mul, rmsnorm, rope, rope_tables, silu, softmax
from sparse_dsp.errors import LlmaccelError
from sparse_dsp.packed_format import PackedLinear

F32 = np.float32
HBM_LINE_BYTES = 64          # simulator.isa.LINE_BYTES: HBM is addressed in 64-byte lines
KV_SCALE_BYTES = 4           # one FP32 scale per (token, kv head) after the INT8 head_dim values

ATTN_LEAVES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_LEAVES = ("gate_proj", "up_proj", "down_proj")
LEAF_PATH = {**{k: f"self_attn.{k}" for k in ATTN_LEAVES}, **{k: f"mlp.{k}" for k in MLP_LEAVES}}
# Dataflow of the activation buffer: what each linear reads and where its output goes.
LINEAR_INPUT = {"q_proj": "h", "k_proj": "h", "v_proj": "h", "o_proj": "attn", "gate_proj": "h",
                "up_proj": "h", "down_proj": "a", "lm_head": "h"}
LINEAR_OUTPUT = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate",
                 "up_proj": "up", "down_proj": "d", "lm_head": "logits"}
NORM_OF = {"rmsnorm_in": "input_layernorm", "rmsnorm_post": "post_attention_layernorm"}
GATHERED = ("attn", "x", "a", "logits")     # activations every core needs whole (all-gathered at barriers)

_TENSOR_RE = re.compile(r"^L(\d+)\.(\w+)\.c(\d+)$")
_HEAD_RE = re.compile(r"^lm_head\.c(\d+)$")


class FunctionalError(LlmaccelError):
    """A program that cannot be executed: a missing tile, an un-gathered row, an access outside its region."""


def hbm_row_bytes(row_bytes: int) -> int:
    """A packed weight row in HBM, padded to whole 64-byte lines (the ISA addresses lines)."""
    return -(-row_bytes // HBM_LINE_BYTES) * HBM_LINE_BYTES


@dataclass
class ModelWeights:
    """What the functional engine needs of a compressed model: packed linears, norms, FP16 embeddings."""

    linears: dict[str, PackedLinear]
    norms: dict[str, np.ndarray]
    embed: np.ndarray                 # [vocab, hidden] FP32 (stored FP16, used as FP32: contract section 1)

    @classmethod
    def from_compressed(cls, cm: Any) -> "ModelWeights":
        for k, w in cm.linears.items():
            if not isinstance(w, PackedLinear):
                raise FunctionalError(f"linear '{k}' is FP32 in this compressed model; the accelerator runs packed "
                                      "integer weights: compress with a quantized recipe (w8, w4-g128-gptq, ...)")
        if getattr(cm.recipe, "act_bits", None) != 8 or getattr(cm.recipe, "kv_bits", None) != 8:
            raise FunctionalError(f"recipe '{cm.recipe.name}' does not use INT8 activations and KV cache "
                                  "(act_bits=8, kv_bits=8), which is what the accelerator computes")
        norms = {k: np.asarray(v, F32) for k, v in cm.tensors.items() if k != "embed_tokens"}
        return cls(dict(cm.linears), norms, np.asarray(cm.tensors["embed_tokens"]).astype(F32))


@dataclass
class _Tensor:
    """A placed tensor: which weights (or KV region) it holds and how its rows map to HBM."""

    name: str
    kind: str                          # weight | kv
    core: int
    channel0: int
    n_channels: int
    addr: int
    end: int
    leaf: str = ""
    layer: int = -1
    packed: Optional[PackedLinear] = None
    row0: int = 0                      # first global output row of this core's slice
    rows: int = 0                      # rows of this core's slice
    rows_per_channel: int = 0
    row_bytes: int = 0
    kv: str = ""                       # k | v
    kv_head0: int = 0                  # first global kv head of this core
    heads: int = 0


@dataclass
class _Tile:
    """A decoded tile in a double-buffer slot: weight rows, or K/V tokens of one head."""

    tensor: _Tensor
    rows: list[np.ndarray] = field(default_factory=list)      # weight: core rows; kv: token positions
    data: list[Any] = field(default_factory=list)


@dataclass
class _Core:
    """One core's on-chip state while a program runs."""

    buf: dict[str, np.ndarray] = field(default_factory=dict)
    wslot: dict[int, _Tile] = field(default_factory=dict)
    kvslot: dict[int, _Tile] = field(default_factory=dict)
    written: dict[str, np.ndarray] = field(default_factory=dict)   # gathered buffers: columns written here
    done_rows: dict[str, np.ndarray] = field(default_factory=dict)  # tensor -> bool[rows] computed
    scores: dict[int, np.ndarray] = field(default_factory=dict)
    probs: dict[int, np.ndarray] = field(default_factory=dict)
    attn_acc: dict[int, np.ndarray] = field(default_factory=dict)
    q8: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    cur_head: int = -1
    misc_row: dict[str, int] = field(default_factory=dict)
    act_q: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


class FunctionalEngine:
    """Executes compiled programs of one ``mapping.compiler.Compiler`` (duck-typed: simulator does not
    import mapping) on ``ModelWeights``; keeps the HBM KV cache between programs."""

    def __init__(self, comp: Any, weights: ModelWeights):
        if not getattr(comp, "fuse", True):
            raise FunctionalError("the functional engine executes fused programs (compile with fuse=True)")
        self.comp, self.w = comp, weights
        self.spec = comp.spec
        self.n_cores = comp.hw.n_cores
        self.cpc = comp.cpc
        s = self.spec
        self.head_dim, self.g = s.head_dim, s.num_heads // s.num_kv_heads
        self.kv_row_bytes = s.head_dim + KV_SCALE_BYTES
        self.tokens_per_channel = math.ceil(comp.max_len / self.cpc)
        self._decoded: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._tiles: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._op_memo: dict[int, tuple[Any, tuple]] = {}      # id(op) -> (op, resolved operands)
        self._actq_memo: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._norm_memo: dict[tuple, np.ndarray] = {}
        self.tensors: dict[str, _Tensor] = {}
        self._by_channel: dict[int, list[_Tensor]] = {}
        self._build_tensors()
        self.kv_hbm: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.reset_kv()
        self.cores: list[_Core] = [_Core() for _ in range(self.n_cores)]
        self.instructions_executed = 0

    # ------------------------------------------------------------------ HBM image
    def _core_rows(self, leaf: str) -> list[int]:
        sl, hd = self.comp.sl, self.head_dim
        return {"q_proj": [h * hd for h in sl.q_heads], "k_proj": [h * hd for h in sl.kv_heads],
                "v_proj": [h * hd for h in sl.kv_heads], "o_proj": sl.hidden_rows,
                "gate_proj": sl.ffn_rows, "up_proj": sl.ffn_rows, "down_proj": sl.hidden_rows,
                "lm_head": sl.vocab_rows}[leaf]

    def _build_tensors(self) -> None:
        kv_heads = self.comp.sl.kv_heads
        for r in self.comp.placement.regions:
            t = _Tensor(r.tensor, "", r.core, r.channel0, r.n_channels, r.addr, r.addr + r.bytes_per_channel)
            m, mh = _TENSOR_RE.match(r.tensor), _HEAD_RE.match(r.tensor)
            if m and m.group(2) in LEAF_PATH or mh:
                leaf = "lm_head" if mh else m.group(2)
                t.kind, t.leaf, t.layer = "weight", leaf, (-1 if mh else int(m.group(1)))
                key = "lm_head" if mh else f"layers.{t.layer}.{LEAF_PATH[leaf]}"
                if key not in self.w.linears:
                    raise FunctionalError(f"placed tensor '{r.tensor}' has no weights '{key}' in the model")
                t.packed = self.w.linears[key]
                per_core = self._core_rows(leaf)
                t.row0, t.rows = sum(per_core[:r.core]), per_core[r.core]
                t.rows_per_channel = math.ceil(t.rows / self.cpc)
                t.row_bytes = hbm_row_bytes(t.packed.fmt.row_bytes)
            elif m and m.group(2) in ("kv_k", "kv_v"):
                t.kind, t.kv, t.layer = "kv", m.group(2)[-1], int(m.group(1))
                t.kv_head0, t.heads = sum(kv_heads[:r.core]), kv_heads[r.core]
            else:
                t.kind = "other"        # embeddings: looked up by the host (no LD emitted for them)
            self.tensors[r.tensor] = t
            for ch in range(r.channel0, r.channel0 + r.n_channels):
                self._by_channel.setdefault(ch, []).append(t)

    def reset_kv(self) -> None:
        """Zero the KV cache regions (a new sequence)."""
        tok = self.tokens_per_channel * self.cpc
        self.kv_hbm = {t.name: (np.zeros((t.heads, tok, self.head_dim), np.int8), np.zeros((t.heads, tok), F32))
                       for t in self.tensors.values() if t.kind == "kv"}

    def _operands(self, op: Any) -> tuple:
        """What an LD/ST addresses, decoded once per instruction object (a pure function of its fields)."""
        hit = self._op_memo.get(id(op))
        if hit is not None and hit[0] is op:
            return hit[1]
        t, ch = self._resolve(op)
        if t.kind == "weight":
            rows = self._weight_rows(t, ch, op)
            res = (t, rows) + self._decode_rows(t, rows)
        elif t.kind == "kv":
            res = (t,) + self._kv_tokens(t, ch, op)
        else:
            res = (t,)
        self._op_memo[id(op)] = (op, res)
        return res

    def _weight_rows(self, t: _Tensor, ch: int, op: Any) -> np.ndarray:
        off = op.hbm_addr - t.addr
        if off % t.row_bytes or op.bytes_per_channel % t.row_bytes:
            raise FunctionalError(f"{op.name}: address/length not on a {t.row_bytes}-byte row of '{t.name}'")
        n = op.bytes_per_channel // t.row_bytes
        rows = ch * t.rows_per_channel + off // t.row_bytes + np.arange(n)
        if n == 0 or rows[-1] >= t.rows or off // t.row_bytes + n > t.rows_per_channel:
            raise FunctionalError(f"{op.name}: rows {rows.tolist()[:1]}.. beyond the {t.rows} rows of '{t.name}'")
        return rows

    def _resolve(self, op: Any) -> tuple[_Tensor, int]:
        """The placed tensor an LD/ST touches and the channel index inside it; checks the access."""
        ch = op.channel0
        if op.n_channels != 1:
            raise FunctionalError(f"{op.name}: accesses {op.n_channels} channels in one instruction; the engine "
                                  "reads one channel per LD/ST (as the compiler emits them)")
        hits = [t for t in self._by_channel.get(ch, []) if t.addr <= op.hbm_addr < t.end]
        if not hits:
            raise FunctionalError(f"{op.name}: HBM channel {ch} address {op.hbm_addr} is in no placed tensor")
        t = hits[0]
        if op.hbm_addr + op.bytes_per_channel > t.end:
            raise FunctionalError(f"{op.name}: access [{op.hbm_addr}, {op.hbm_addr + op.bytes_per_channel}) leaves "
                                  f"tensor '{t.name}' [{t.addr}, {t.end}) in channel {ch}")
        if getattr(op, "tensor", "") and op.tensor != t.name:
            raise FunctionalError(f"{op.name}: names tensor '{op.tensor}' but its address lies in '{t.name}'")
        return t, ch - t.channel0

    # ------------------------------------------------------------------ weight decode
    def _decode_rows(self, t: _Tensor, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = (t.name, int(rows[0]), len(rows))
        hit = self._decoded.get(key)
        if hit is None:
            p = t.packed
            g = t.row0 + rows
            sub = PackedLinear(_sub_fmt(p, len(g)), p.codes[g], p.indices[g], p.scales[g],
                               None if p.zeros is None else p.zeros[g])
            hit = (sub.dense_int8(), sub.scales)
            self._decoded[key] = hit
        return hit

    # ------------------------------------------------------------------ program execution
    def run(self, prog: Any, positions: np.ndarray, x: Optional[np.ndarray] = None, layer: int = -1) -> None:
        """Execute one program for tokens at runtime ``positions`` (all cores, barriers included).

        ``x`` [tokens, hidden] is loaded into every core's residual buffer first (the host writes the
        embeddings, or the last prompt token's hidden state for the head program).
        """
        positions = np.asarray(positions, np.int64)
        T = int(prog.tokens)
        if len(positions) != T:
            raise FunctionalError(f"program runs {T} tokens, {len(positions)} positions given")
        self._prog, self._pos, self._T, self._layer = prog, positions, T, layer
        self._q0_compiled = int(prog.ctx_len) - T if prog.phase != "head" else 0
        cos, sin = rope_tables(positions, self.head_dim, self.spec.rope_theta) if prog.phase != "head" else (None, None)
        self._cos, self._sin = cos, sin
        for c, core in enumerate(self.cores):
            keep_x = core.buf.get("x")
            self.cores[c] = core = _Core()
            core.buf["x"] = np.array(x, F32) if x is not None else keep_x
            if core.buf["x"] is None or core.buf["x"].shape[0] != T:
                raise FunctionalError(f"core {c}: no residual input of {T} tokens for program '{prog.phase}'")
            for name in GATHERED:
                core.written[name] = None
        streams = [[op for op in prog.ops if op.core == c] for c in range(self.n_cores)]
        pcs = [0] * self.n_cores
        while True:
            at_barrier = []
            for c in range(self.n_cores):
                ops = streams[c]
                while pcs[c] < len(ops):
                    op = ops[pcs[c]]
                    if op.opcode == "SYS" and op.func == "barrier":
                        break
                    self._exec(c, op)
                    pcs[c] += 1
                at_barrier.append(pcs[c] < len(ops))
            if not any(at_barrier):
                break
            if not all(at_barrier):
                stuck = [c for c, b in enumerate(at_barrier) if b]
                raise FunctionalError(f"cores {stuck} wait at a barrier that cores "
                                      f"{[c for c, b in enumerate(at_barrier) if not b]} never reach (deadlock)")
            self._gather()
            for c in range(self.n_cores):
                pcs[c] += 1
                self.instructions_executed += 1

    def _gather(self) -> None:
        """All-gather: every core's newly written rows of the shared activations reach every core."""
        for name in GATHERED:
            for src in range(self.n_cores):
                cols = self.cores[src].written.get(name)
                if cols is None:
                    continue
                data = self.cores[src].buf[name][:, cols]
                for dst in range(self.n_cores):
                    if dst != src:
                        b = self.cores[dst].buf.setdefault(name, np.full_like(self.cores[src].buf[name], np.nan))
                        b[:, cols] = data
                self.cores[src].written[name] = None

    def _buf(self, core: _Core, name: str, width: int) -> np.ndarray:
        b = core.buf.get(name)
        if b is None:
            b = core.buf[name] = np.full((self._T, width), np.nan, F32)
        return b

    def _mark(self, core: _Core, name: str, cols: np.ndarray) -> None:
        if name in GATHERED:
            prev = core.written.get(name)
            core.written[name] = cols if prev is None else np.union1d(prev, cols)
            core.act_q.pop(name, None)

    def _exec(self, c: int, op: Any) -> None:
        self.instructions_executed += 1
        core = self.cores[c]
        k = op.opcode
        if k == "LD":
            self._ld(core, op)
        elif k == "ST":
            self._st(core, op)
        elif k in ("MV", "MM"):
            if op.name.startswith("qk["):
                self._qk(c, core, op)
            elif op.name.startswith("pv["):
                self._pv(c, core, op)
            else:
                self._linear(c, core, op)
        elif k == "MISC":
            self._misc(c, core, op)
        elif k == "SYS":
            pass                        # nop / end: no data effect
        else:
            raise FunctionalError(f"{op.name}: opcode '{k}' is not executable")

    # -- LD / ST
    def _ld(self, core: _Core, op: Any) -> None:
        res = self._operands(op)
        t = res[0]
        if t.kind == "weight":
            slot = core.wslot.get(op.buf_addr)
            if slot is None or slot.tensor is not t:
                slot = core.wslot[op.buf_addr] = _Tile(t)
            slot.data.append(res)             # (tensor, core rows, decoded int8 rows, scales)
        elif t.kind == "kv":
            head, tokens = res[1], res[2]
            slot = core.kvslot.get(op.buf_addr)
            if slot is None or slot.tensor is not t or slot.data[0][0] != head:
                slot = core.kvslot[op.buf_addr] = _Tile(t)
            k8, sk = self.kv_hbm[t.name]
            slot.rows.append(tokens)
            slot.data.append((head, k8[head, tokens], sk[head, tokens]))
        else:
            raise FunctionalError(f"{op.name}: loads from '{t.name}', which holds no weights or KV cache")

    def _kv_tokens(self, t: _Tensor, ch: int, op: Any) -> tuple[int, np.ndarray]:
        off = op.hbm_addr - t.addr
        per_head = self.tokens_per_channel * self.kv_row_bytes
        head, rest = divmod(off, per_head)
        if rest % self.kv_row_bytes or op.bytes_per_channel % self.kv_row_bytes or head >= t.heads:
            raise FunctionalError(f"{op.name}: address {op.hbm_addr} is not a KV row of '{t.name}'")
        r0, n = rest // self.kv_row_bytes, op.bytes_per_channel // self.kv_row_bytes
        if r0 + n > self.tokens_per_channel:
            raise FunctionalError(f"{op.name}: KV rows beyond the head's {self.tokens_per_channel} rows per channel")
        return head, (r0 + np.arange(n)) * self.cpc + ch

    def _st(self, core: _Core, op: Any) -> None:
        res = self._operands(op)
        t = res[0]
        if t.kind != "kv":
            raise FunctionalError(f"{op.name}: stores into '{t.name}'; only the KV cache is written by ST")
        head, tokens = res[1], res[2]
        idx = tokens - self._q0_compiled                      # which of the program's tokens
        if idx.min() < 0 or idx.max() >= self._T:
            raise FunctionalError(f"{op.name}: stores tokens {tokens.tolist()} outside the program's tokens "
                                  f"{self._q0_compiled}..{self._q0_compiled + self._T - 1}")
        src = core.buf.get(t.kv)
        gh = t.kv_head0 + head
        cols = slice(gh * self.head_dim, (gh + 1) * self.head_dim)
        if src is None or np.isnan(src[idx, cols]).any():
            raise FunctionalError(f"{op.name}: {t.kv.upper()} of kv head {gh} was not computed before its store")
        if t.kv == "k":
            done = core.done_rows.get(f"L{self._layer}.k_proj.c{t.core}")
            if done is None or not done.all():
                raise FunctionalError(f"{op.name}: K stored before RoPE (k_proj of core {t.core} incomplete)")
        q, s = quantize_heads(src[idx, cols], self.head_dim)     # [n, 1, D], [n, 1]
        k8, sk = self.kv_hbm[t.name]
        dest = self._pos[idx]                                   # runtime positions (SYS set_position)
        k8[head, dest] = q[:, 0]
        sk[head, dest] = s[:, 0]

    # -- linear layers
    def _act_q(self, core: _Core, name: str) -> tuple[np.ndarray, np.ndarray]:
        hit = core.act_q.get(name)
        if hit is None:
            x = core.buf.get(name)
            if x is None or np.isnan(x).any():
                raise FunctionalError(f"activation '{name}' is incomplete when a linear reads it "
                                      "(a missing instruction or barrier before it)")
            key = (name, x.tobytes())         # every core quantizes the same gathered vector: once
            hit = self._actq_memo.get(key)
            if hit is None:
                if len(self._actq_memo) > 256:
                    self._actq_memo.clear()
                hit = self._actq_memo[key] = quantize_activation(x)
            core.act_q[name] = hit
        return hit

    def _linear(self, c: int, core: _Core, op: Any) -> None:
        tile = core.wslot.pop(op.buf_addr, None)
        if tile is None or tile.tensor.kind != "weight":
            raise FunctionalError(f"{op.name}: weight slot {op.buf_addr} holds no loaded tile (a dropped LD)")
        t = tile.tensor
        key = tuple(map(id, tile.data))       # the memoised LD operands: same LDs, same tile
        hit = self._tiles.get(key)
        if hit is None:
            parts = tile.data
            hit = self._tiles[key] = (np.concatenate([d[1] for d in parts]), np.concatenate([d[2] for d in parts]),
                                      np.concatenate([d[3] for d in parts]))
        rows, w8, sc = hit
        fmt = t.packed.fmt
        if op.rows != len(rows) or op.cols != fmt.kept_per_row or op.tokens != self._T:
            raise FunctionalError(f"{op.name}: {op.rows}x{op.cols} for {op.tokens} tokens, but the slot holds "
                                  f"{len(rows)} rows of '{t.name}' ({fmt.kept_per_row} kept per row) and the "
                                  f"program runs {self._T} tokens")
        q, s_x = self._act_q(core, LINEAR_INPUT[t.leaf])
        y = rescale_groups(group_partial_sums(w8, q, fmt.group_size), sc, s_x)     # golden linear, per tile
        out = self._buf(core, LINEAR_OUTPUT[t.leaf], fmt.out_features)
        out[:, t.row0 + rows] = y
        done = core.done_rows.setdefault(t.name, np.zeros(t.rows, bool))
        done[rows] = True
        if done.all():
            self._complete(core, t, op.fused)

    def _complete(self, core: _Core, t: _Tensor, fused: str) -> None:
        """A core's slice of a linear is complete: the fused output-path ops run on it."""
        cols = t.row0 + np.arange(t.rows)
        fused = fused or ""
        out = core.buf[LINEAR_OUTPUT[t.leaf]]
        if "rope" in fused:
            hd = self.head_dim
            v = out[:, cols].reshape(self._T, -1, hd)
            out[:, cols] = rope(v, self._cos[:, None, :], self._sin[:, None, :]).reshape(self._T, -1)
        if "add" in fused:                          # residual: x += o_proj / down_proj
            x = core.buf["x"]
            x[:, cols] = add(x[:, cols], out[:, cols])
            self._mark(core, "x", cols)
        if "silu_mul" in fused:                     # a = silu(gate) * up
            gate = core.buf.get("gate")
            if gate is None or np.isnan(gate[:, cols]).any():
                raise FunctionalError(f"silu_mul on '{t.name}': gate_proj rows of this core are not computed")
            a = self._buf(core, "a", t.packed.fmt.out_features)
            a[:, cols] = mul(silu(gate[:, cols]), out[:, cols])
            self._mark(core, "a", cols)
        if t.leaf == "lm_head":
            self._mark(core, "logits", cols)
        if t.leaf in ("q_proj",):
            core.q8.clear()

    # -- attention
    def _take_kv(self, core: _Core, op: Any, want: str) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, _Tensor]:
        tile = core.kvslot.pop(op.buf_addr, None)
        if tile is None:
            raise FunctionalError(f"{op.name}: KV slot {op.buf_addr} holds no loaded tile (a dropped LD)")
        if tile.tensor.kv != want:
            raise FunctionalError(f"{op.name}: needs a {want.upper()} tile, slot holds '{tile.tensor.name}'")
        tokens = np.concatenate(tile.rows)
        order = np.argsort(tokens, kind="stable")
        vals = np.concatenate([d[1] for d in tile.data])[order]
        scales = np.concatenate([d[2] for d in tile.data])[order]
        return tile.data[0][0], tokens[order], vals, scales, tile.tensor

    def _q8(self, core: _Core, gh: int) -> tuple[np.ndarray, np.ndarray]:
        hit = core.q8.get(gh)
        if hit is None:
            q = core.buf.get("q")
            hd, g = self.head_dim, self.g
            cols = slice(gh * g * hd, (gh + 1) * g * hd)
            if q is None or np.isnan(q[:, cols]).any():
                raise FunctionalError(f"attention of kv head {gh}: its queries were not computed")
            q8, s_q = quantize_heads(q[:, cols], hd)                 # [T, g, D], [T, g]
            hit = core.q8[gh] = (q8.reshape(-1, hd), s_q.reshape(-1))
        return hit

    def _qk(self, c: int, core: _Core, op: Any) -> None:
        head, tokens, k8, sk, t = self._take_kv(core, op, "k")
        gh = t.kv_head0 + head
        if op.rows != len(tokens) or op.tokens != self._T * self.g:
            raise FunctionalError(f"{op.name}: {op.rows} keys x {op.tokens} queries, the tile holds "
                                  f"{len(tokens)} keys and the head group has {self._T * self.g} queries")
        q8, s_q = self._q8(core, gh)
        sc = core.scores.get(gh)
        if sc is None or core.cur_head != gh:
            sc = core.scores[gh] = np.full((self._T * self.g, int(self._prog.ctx_len)), np.nan, F32)
            core.cur_head = gh
            core.misc_row.pop("softmax", None)
        if tokens.max() >= sc.shape[1]:
            raise FunctionalError(f"{op.name}: key {tokens.max()} beyond the program's context {sc.shape[1]}")
        sc[:, tokens] = attention_scores(q8, s_q, k8[:, None, :], sk[:, None], 1)

    def _softmax(self, core: _Core, op: Any) -> None:
        gh = core.cur_head
        sc = core.scores.get(gh)
        if sc is None:
            raise FunctionalError(f"{op.name}: no scores to normalise (its QK^T did not run)")
        r0 = core.misc_row.get("softmax", 0)
        n = op.tokens
        core.misc_row["softmax"] = r0 + n
        rows = np.arange(r0, r0 + n)
        qpos = self._pos[rows // self.g]
        keys = np.arange(sc.shape[1])
        masked = keys[None, :] > qpos[:, None]
        part = sc[rows]
        if np.isnan(part[~masked]).any():
            raise FunctionalError(f"{op.name}: scores of kv head {gh} are missing for keys the query attends "
                                  "(a K tile was not loaded or not multiplied)")
        p = softmax(np.where(masked, F32(-np.inf), part).astype(F32))
        probs = core.probs.setdefault(gh, np.full(sc.shape, np.nan, F32))
        probs[rows] = p
        core.attn_acc[gh] = np.zeros((sc.shape[0], self.head_dim), F32)

    def _pv(self, c: int, core: _Core, op: Any) -> None:
        head, tokens, v8, sv, t = self._take_kv(core, op, "v")
        gh = t.kv_head0 + head
        p = core.probs.get(gh)
        if p is None or np.isnan(p).any():
            raise FunctionalError(f"{op.name}: probabilities of kv head {gh} are not (fully) computed")
        if op.cols != len(tokens) or op.rows != self.head_dim:
            raise FunctionalError(f"{op.name}: {op.rows}x{op.cols} but the V tile holds {len(tokens)} tokens")
        acc = weighted_value_sum(core.attn_acc[gh], p[:, tokens], sv, v8)
        core.attn_acc[gh] = acc
        hd, g = self.head_dim, self.g
        out = self._buf(core, "attn", self.spec.num_heads * hd)
        cols = np.arange(gh * g * hd, (gh + 1) * g * hd)
        out[:, cols] = acc.reshape(self._T, g * hd)
        self._mark(core, "attn", cols)

    # -- SFU
    def _misc(self, c: int, core: _Core, op: Any) -> None:
        base = op.name.split("[")[0]
        if op.func == "softmax":
            return self._softmax(core, op)
        if op.func != "rmsnorm":
            raise FunctionalError(f"{op.name}: SFU op '{op.func}' is not executed by the functional engine "
                                  "(fused programs carry rope/quantize/silu_mul in the matrix engine's output path)")
        if base == "rmsnorm_final":
            gamma = self.w.norms["norm"]
        elif base in NORM_OF:
            gamma = self.w.norms[f"layers.{self._layer}.{NORM_OF[base]}"]
        else:
            raise FunctionalError(f"{op.name}: unknown RMSNorm '{base}'")
        if op.cols != self.spec.hidden_size:
            raise FunctionalError(f"{op.name}: row length {op.cols}, hidden size is {self.spec.hidden_size}")
        r0 = core.misc_row.get(base, 0)
        core.misc_row[base] = r0 + op.tokens
        x = core.buf["x"][r0:r0 + op.tokens]
        if np.isnan(x).any():
            raise FunctionalError(f"{op.name}: residual rows are incomplete (an all-gather did not happen)")
        key = (id(gamma), x.tobytes())
        h = self._norm_memo.get(key)
        if h is None:
            if len(self._norm_memo) > 4096:
                self._norm_memo.clear()
            h = self._norm_memo[key] = rmsnorm(x, gamma, self.spec.rms_norm_eps)
        out = self._buf(core, "h", self.spec.hidden_size)
        out[r0:r0 + op.tokens] = h
        core.act_q.pop("h", None)

    # ------------------------------------------------------------------ results
    def residual(self) -> np.ndarray:
        x = self.cores[0].buf["x"]
        for c in range(1, self.n_cores):
            if not np.array_equal(self.cores[c].buf["x"], x, equal_nan=True):
                raise FunctionalError(f"core {c}'s residual differs from core 0's after the layer (missing gather)")
        if np.isnan(x).any():
            raise FunctionalError("residual has rows no core computed")
        return x.copy()

    def logits(self) -> np.ndarray:
        lg = self.cores[0].buf.get("logits")
        if lg is None or np.isnan(lg).any():
            raise FunctionalError("logits incomplete: an LM-head tile or the final all-gather did not run")
        return lg[0].copy()


def _sub_fmt(p: PackedLinear, rows: int):
    from sparse_dsp.packed_format import LayerFormat
    f = p.fmt
    return LayerFormat(rows, f.in_features, f.bits, f.group_size, f.symmetric, f.nm)
