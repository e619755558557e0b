"""Compiler: model shape (or compressed model) + recipe + design -> per-bucket Programs.

Input abstraction: ``ModelFormats`` = a ``ModelSpec`` plus the packed
``LayerFormat`` of every linear (from a recipe for timing-only runs, or read
off a ``CompressedModel``). Nothing else about the weights matters to timing.

What the compiler decides:

* **Placement** (``mapping.placement``): every layer's weights, split by
  output rows over the cores, and the INT8 KV cache, split by KV head over the
  cores, are placed in lockstep over the core's own HBM channels; no access
  crosses a channel. Too little HBM -> one ``PlacementError``.
* **Tiling / buffers** (``mapping.tiling``): weight tiles of whole rows that
  double-buffer in the weight buffer, K/V tiles in the KV buffer, prefill
  chunks whose activations fit the activation buffer. Decode keeps one token's
  activations on chip for the whole layer (always-on-chip decode) or the
  design is rejected.
* **Fusion**: element-wise ops following a linear (RoPE on q/k, SiLU x up,
  residual adds, INT8 quantization of the next input and of K/V) run in the
  matrix engine's output path (``OpDesc.fused``) instead of as separate SFU
  instructions; QK^T streams into the SFU softmax, whose output feeds PV
  directly (attention with softmax fused).
* **Dependencies**: wait/release tokens between LD, ST, MPE and SFU of a core,
  cross-core barriers for the all-gathers (after attention, o_proj, up/gate,
  down). Weight/KV tiles use a double-buffer token loop (2 initial tokens).
* **Length-adaptive compilation**: one program per bucket (decode every 16
  context tokens, prefill every 128 prompt tokens, up to ``max_len``); a
  program compiled for a bucket's upper end serves every length in it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from mapping.placement import HbmPlacement
from mapping.recipe import MIXED_CHOICES, Recipe, get_recipe
from mapping import tiling as T
from simulator.specs.model import ModelSpec
from simulator.timing import Program
from simulator.timing_costs import OpDesc
from simulator.timing_engine import UNIT_INDEX
from simulator.timing_params import HwParams
from sparse_dsp.errors import LlmaccelError
from sparse_dsp.packed_format import LayerFormat

DECODE_BUCKET = 16      # FlightLLM length-adaptive compilation (anchors/hardware.yaml length_buckets)
PREFILL_BUCKET = 128
DEFAULT_MAX_LEN = 2048
INITIAL_SLOT_TOKENS = T.BUFFER_SLOTS

B_LD, B_ST, B_MPE, B_SFU, B_SYS = (1 << UNIT_INDEX[u] for u in ("LD", "ST", "MPE", "SFU", "SYS"))
MISC_MAX_ROWS = 63          # simulator.isa MISC.rows is a 6-bit field (1..63)
HBM_LINE = 64               # simulator.isa addresses HBM in 64-byte lines


def hbm_row_bytes(fmt: LayerFormat) -> int:
    """A weight row in HBM, padded to whole 64-byte lines (the ISA addresses lines)."""
    return -(-fmt.row_bytes // HBM_LINE) * HBM_LINE
ATTN_LEAVES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_LEAVES = ("gate_proj", "up_proj", "down_proj")
LEAF_PATH = {**{k: f"self_attn.{k}" for k in ATTN_LEAVES}, **{k: f"mlp.{k}" for k in MLP_LEAVES}}


class CompileError(LlmaccelError):
    """A model/recipe/design combination the compiler cannot map, or a length beyond the compiled maximum."""


# --------------------------------------------------------------------------- formats

@dataclass(frozen=True)
class ModelFormats:
    """The compiler's input: shapes plus the packed format of every linear."""

    spec: ModelSpec
    layers: tuple[tuple[tuple[str, LayerFormat], ...], ...]   # per layer: ((leaf, fmt), ...) in execution order
    lm_head: LayerFormat
    source: str = ""

    def layer(self, i: int) -> dict[str, LayerFormat]:
        return dict(self.layers[i])

    @property
    def weight_bytes(self) -> int:
        return sum(f.total_bytes for lay in self.layers for _, f in lay) + self.lm_head.total_bytes

    def layer_groups(self) -> list[tuple[tuple, list[int]]]:
        """Layers with identical formats (timing is simulated once per group)."""
        groups: dict[tuple, list[int]] = {}
        for i, lay in enumerate(self.layers):
            groups.setdefault(lay, []).append(i)
        return list(groups.items())


def _shape_only_bits(spec: ModelSpec, recipe: Recipe) -> dict[str, int]:
    """A deterministic stand-in for the sensitivity-driven allocator when no weights exist.

    Bits are chosen per linear *type* (uniform over layers, so every layer
    has the same program): start every type at the recipe's bits, then lower
    the largest types one step (in MIXED_CHOICES) until the weighted average
    is within ``mixed_avg_bits``. With weights, the real allocation
    (``Recipe.layer_bits``) is used instead.
    """
    shapes = {n: (o, k) for n, o, k in spec.linear_shapes()}
    bits = {n: recipe.rule_for(n).bits for n in shapes}
    size = {n: shapes[n][0] * recipe.rule_for(n).layer_format(*shapes[n], bits=8).kept_per_row for n in shapes}
    total = sum(size.values())
    order = sorted(shapes, key=lambda n: (-size[n], n))
    choices = sorted(MIXED_CHOICES)

    def avg() -> float:
        return sum(size[n] * bits[n] for n in shapes) / total

    while avg() > recipe.mixed_avg_bits + 1e-9:
        for n in order:
            i = choices.index(bits[n]) if bits[n] in choices else 0
            if i > 0:
                bits[n] = choices[i - 1]
                break
        else:
            break
    return bits


def formats_from_recipe(spec: ModelSpec, recipe: Recipe | str) -> ModelFormats:
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if not recipe.quantized:
        raise CompileError(f"recipe '{recipe.name}' keeps FP32 weights; the accelerator runs integer weights "
                           "only: allowed recipes have attn.bits and mlp.bits in 2, 3, 4, 8")
    type_bits = _shape_only_bits(spec, recipe) if (recipe.mixed_avg_bits and not recipe.layer_bits) else {}
    layers = []
    for i in range(spec.num_layers):
        lay = []
        for leaf, o, k in spec.linear_shapes():
            key = f"layers.{i}.{LEAF_PATH[leaf]}"
            b = recipe.layer_bits.get(key) or type_bits.get(leaf) or recipe.rule_for(leaf).bits
            try:
                lay.append((leaf, recipe.rule_for(leaf).layer_format(o, k, bits=b)))
            except LlmaccelError as exc:
                raise CompileError(f"recipe '{recipe.name}' does not fit {spec.name} {leaf} ({o}x{k}): {exc}") from None
        layers.append(tuple(lay))
    head_bits = recipe.lm_head_bits or 8
    lm_head = LayerFormat(spec.vocab_size, spec.hidden_size, head_bits, recipe.attn.group_size, True, None)
    return ModelFormats(spec, tuple(layers), lm_head, source=f"recipe:{recipe.name}")


def formats_from_compressed(cm: Any) -> ModelFormats:
    """Formats of a ``mapping.compress.CompressedModel`` (its PackedLinear layers)."""
    from simulator.specs.model import model_spec_from_hf_config
    spec = model_spec_from_hf_config(cm.config, name=str(getattr(cm, "path", None) or "compressed"))
    layers = []
    for i in range(spec.num_layers):
        lay = []
        for leaf, o, k in spec.linear_shapes():
            w = cm.linears[f"layers.{i}.{LEAF_PATH[leaf]}"]
            if not hasattr(w, "fmt"):
                raise CompileError(f"layers.{i}.{LEAF_PATH[leaf]} is FP32 in this compressed model; the accelerator "
                                   "needs packed integer weights (compress with a quantized recipe)")
            lay.append((leaf, w.fmt))
        layers.append(tuple(lay))
    head = cm.linears.get("lm_head")
    lm_head = head.fmt if hasattr(head, "fmt") else LayerFormat(spec.vocab_size, spec.hidden_size, 8, 128, True, None)
    return ModelFormats(spec, tuple(layers), lm_head, source="compressed")


# --------------------------------------------------------------------------- programs

def _split(n: int, parts: int) -> list[int]:
    base, rem = divmod(n, parts)
    return [base + (1 if i < rem else 0) for i in range(parts)]


@dataclass
class _CoreSlices:
    kv_heads: list[int]
    q_heads: list[int]
    hidden_rows: list[int]
    ffn_rows: list[int]
    vocab_rows: list[int]


class Compiler:
    """Compiles ModelFormats onto a design (HwParams) with a fixed max length."""

    def __init__(self, formats: ModelFormats, hw: HwParams, max_len: int = DEFAULT_MAX_LEN,
                 decode_bucket: int = DECODE_BUCKET, prefill_bucket: int = PREFILL_BUCKET, fuse: bool = True):
        spec = formats.spec
        if max_len <= 0 or max_len % decode_bucket or max_len % prefill_bucket:
            raise CompileError(f"max_len={max_len} must be a positive multiple of the bucket sizes "
                               f"(decode {decode_bucket}, prefill {prefill_bucket})")
        if max_len > spec.max_position_embeddings:
            raise CompileError(f"max_len={max_len} exceeds {spec.name}'s max_position_embeddings="
                               f"{spec.max_position_embeddings}")
        self.f, self.hw, self.spec = formats, hw, spec
        self.max_len, self.decode_bucket, self.prefill_bucket, self.fuse = max_len, decode_bucket, prefill_bucket, fuse
        C = hw.n_cores
        if spec.num_kv_heads < C:
            raise CompileError(f"design has {C} cores but {spec.name} has {spec.num_kv_heads} KV heads; "
                               f"allowed: cores <= num_kv_heads (attention is split by KV head)")
        kvh = _split(spec.num_kv_heads, C)
        self.sl = _CoreSlices(kvh, [h * spec.gqa_group_size for h in kvh], _split(spec.hidden_size, C),
                              _split(spec.intermediate_size, C), _split(spec.vocab_size, C))
        self.cpc = hw.channels_per_core
        self._dec_per_ch = max(1, hw.decoders_per_core // hw.channels_per_core)
        self.kv_tile = T.kv_tile_tokens(spec.head_dim, self.cpc, hw.kv_buf_bytes_per_core, spec.gqa_group_size)
        self._check_formats()
        self._check_tiles()
        self._check_decode_on_chip()
        self.placement = self._place()
        self._cache: dict[tuple, Program] = {}

    # ---------------------------------------------------------------- checks
    def _linear_rows(self, leaf: str, core: int) -> int:
        hd = self.spec.head_dim
        return {"q_proj": self.sl.q_heads[core] * hd, "k_proj": self.sl.kv_heads[core] * hd,
                "v_proj": self.sl.kv_heads[core] * hd, "o_proj": self.sl.hidden_rows[core],
                "gate_proj": self.sl.ffn_rows[core], "up_proj": self.sl.ffn_rows[core],
                "down_proj": self.sl.hidden_rows[core]}[leaf]

    def _check_formats(self) -> None:
        nm_ok = self.hw.extras.get("supported_nm")
        bits_ok = self.hw.extras.get("supported_bits")
        for lay in set(self.f.layers):
            for leaf, fmt in lay:
                if nm_ok is not None and fmt.nm not in nm_ok:
                    allowed = ", ".join("dense" if p is None else f"{p[0]}:{p[1]}" for p in nm_ok)
                    raise CompileError(f"{leaf} uses N:M {fmt.nm[0]}:{fmt.nm[1]}, which design '{self.hw.name}' "
                                       f"does not support; allowed: {allowed}")
                if bits_ok is not None and fmt.bits not in bits_ok:
                    raise CompileError(f"{leaf} uses {fmt.bits}-bit weights; design '{self.hw.name}' decodes "
                                       f"{list(bits_ok)}")

    def _check_tiles(self) -> None:
        for lay in set(self.f.layers):
            for leaf, fmt in lay:
                T.weight_tiling(fmt, max(self._linear_rows(leaf, 0), 1), self.cpc, self.hw.weight_buf_bytes_per_core, leaf,
                                 align=self._dec_per_ch)
        T.weight_tiling(self.f.lm_head, self.sl.vocab_rows[0], self.cpc, self.hw.weight_buf_bytes_per_core, "lm_head",
                        align=self._dec_per_ch)

    def _act_per_token(self, ctx: int) -> int:
        s, c = self.spec, 0
        return T.act_bytes_per_token(s.hidden_size, self.sl.q_heads[c] * s.head_dim, s.q_dim, s.intermediate_size,
                                     self.sl.ffn_rows[c], s.gqa_group_size, ctx)

    def _check_decode_on_chip(self) -> None:
        need = self._act_per_token(self.max_len)
        if need > self.hw.act_buf_bytes_per_core:
            raise CompileError(f"always-on-chip decode needs {need} bytes of activation buffer per core at "
                               f"max_len={self.max_len}; the design has {self.hw.act_buf_bytes_per_core}: "
                               "enlarge the activation buffer or lower max_len")

    # ---------------------------------------------------------------- placement
    def _place(self) -> HbmPlacement:
        hw, s = self.hw, self.spec
        total_w = self.f.weight_bytes
        kv_total = 2 * s.num_layers * s.num_kv_heads * self.max_len * T.kv_row_bytes(s.head_dim)
        cap = hw.hbm_capacity_bytes
        if total_w > cap:
            raise CompileError(f"{s.name} weights need {total_w / 2**30:.2f} GiB with {self.f.source}; the device "
                               f"HBM holds {cap / 2**30:.2f} GiB: weights exceed HBM capacity (use fewer bits, "
                               "more sparsity, or a device with more HBM)")
        pl = HbmPlacement(hw.hbm_channels, hw.hbm_channel_bytes, hw.n_cores)
        tpc = math.ceil(self.max_len / self.cpc)
        kvrb = T.kv_row_bytes(s.head_dim)
        for i in range(s.num_layers):
            lay = self.f.layer(i)
            for c in range(hw.n_cores):
                for leaf, fmt in lay.items():
                    rows = self._linear_rows(leaf, c)
                    pl.allocate(f"L{i}.{leaf}.c{c}", c, math.ceil(rows / self.cpc) * hbm_row_bytes(fmt))
                for kv in ("k", "v"):
                    pl.allocate(f"L{i}.kv_{kv}.c{c}", c, self.sl.kv_heads[c] * tpc * kvrb)
        for c in range(hw.n_cores):
            pl.allocate(f"lm_head.c{c}", c, math.ceil(self.sl.vocab_rows[c] / self.cpc) * hbm_row_bytes(self.f.lm_head))
            pl.allocate(f"embed.c{c}", c, math.ceil(s.vocab_size / hw.n_cores / self.cpc) * s.hidden_size * 2)
        self.kv_bytes_total = kv_total
        return pl

    # ---------------------------------------------------------------- buckets
    def decode_bucket_of(self, ctx_len: int) -> int:
        if not (1 <= ctx_len <= self.max_len):
            raise CompileError(f"context length {ctx_len} is beyond the compiled maximum max_len={self.max_len} "
                               f"(allowed 1..{self.max_len}); recompile with a larger --max-len")
        return math.ceil(ctx_len / self.decode_bucket) * self.decode_bucket

    def prefill_bucket_of(self, prompt_len: int) -> int:
        if not (1 <= prompt_len <= self.max_len):
            raise CompileError(f"prompt length {prompt_len} is beyond the compiled maximum max_len={self.max_len} "
                               f"(allowed 1..{self.max_len}); recompile with a larger --max-len")
        return math.ceil(prompt_len / self.prefill_bucket) * self.prefill_bucket

    def prefill_chunk(self, bucket_len: int) -> int:
        return T.prefill_chunk_tokens(lambda t: self._act_per_token(bucket_len), bucket_len,
                                      self.hw.act_buf_bytes_per_core)

    # ---------------------------------------------------------------- emission
    @property
    def symmetric(self) -> bool:
        """Every core gets an identical slice (then timing needs core 0's stream only)."""
        sl = self.sl
        return all(len(set(v)) == 1 for v in (sl.kv_heads, sl.hidden_rows, sl.ffn_rows, sl.vocab_rows))

    def layer_program(self, phase: str, ctx_len: int, tokens: int, group: int = 0, layer: int = 0,
                      sink: Optional[Callable] = None, core0_only: bool = False) -> Program:
        """One decoder layer for ``tokens`` new tokens ending at context ``ctx_len``.

        Dependency protocol (per core): the layer starts with a SYS->SFU token (left by
        the previous layer's last barrier, or an initial token), weight/KV tile LDs take
        MPE->LD slot tokens (two initial), every tile's MV/MM returns one; each
        all-gather is a SYS barrier between the producing and the consuming unit.
        """
        core0_only = core0_only and self.symmetric
        key = (phase, ctx_len, tokens, group, layer, core0_only)
        if sink is None and key in self._cache:
            return self._cache[key]
        ops: list[OpDesc] = []
        emit = sink or ops.append
        s, hw = self.spec, self.hw
        lay = self.f.layer(layer)
        q0 = ctx_len - tokens        # first new token position
        mv = "MV" if tokens == 1 else "MM"
        fz = self.fuse
        for c in range(1 if core0_only else hw.n_cores):
            # 1. input RMSNorm (+ INT8 quantize), after the previous layer's all-gather
            self._misc(emit, c, "rmsnorm_in", "rmsnorm", tokens, s.hidden_size, wait=B_SYS, release=B_MPE)
            # 2. q, k, v projections; RoPE and KV quantization fused into the output path
            self._linear(emit, c, layer, "q_proj", lay["q_proj"], tokens, mv, first_wait=B_SFU,
                         fused="rope" if fz else "")
            self._linear(emit, c, layer, "k_proj", lay["k_proj"], tokens, mv, fused="rope" if fz else "")
            self._linear(emit, c, layer, "v_proj", lay["v_proj"], tokens, mv, last_release=B_ST if fz else B_SFU,
                         fused="quantize" if fz else "")
            if not fz:   # the same element-wise work as separate SFU instructions
                self._misc(emit, c, "rope_q", "rope", tokens, self._linear_rows("q_proj", c), wait=B_MPE)
                self._misc(emit, c, "rope_k", "rope", tokens, self._linear_rows("k_proj", c))
                self._misc(emit, c, "quantize_kv", "quantize", tokens, 2 * self._linear_rows("k_proj", c),
                           release=B_ST)
            # 3. store the new K and V rows into this core's KV channels
            self._store_kv(emit, c, layer, q0, tokens, wait=B_MPE if fz else B_SFU)
            # 4. attention (QK^T -> softmax -> PV), KV head by KV head; then all-gather
            self._attention(emit, c, layer, q0, ctx_len, tokens)
            emit(OpDesc("SYS", c, "barrier_attn", wait=B_MPE, release=B_MPE, func="barrier"))
            # 5. o_proj + residual add (fused)
            self._linear(emit, c, layer, "o_proj", lay["o_proj"], tokens, mv, first_wait=B_SYS,
                         last_release=B_SYS, fused="add" if fz else "")
            emit(OpDesc("SYS", c, "barrier_o", wait=B_MPE, release=B_SFU, func="barrier"))
            # 6. post-attention RMSNorm
            self._misc(emit, c, "rmsnorm_post", "rmsnorm", tokens, s.hidden_size, wait=B_SYS, release=B_MPE)
            # 7. gate, up (SiLU(gate) * up fused on up's output), all-gather
            self._linear(emit, c, layer, "gate_proj", lay["gate_proj"], tokens, mv, first_wait=B_SFU)
            self._linear(emit, c, layer, "up_proj", lay["up_proj"], tokens, mv,
                         last_release=B_SYS if fz else B_SFU, fused="silu_mul" if fz else "")
            if not fz:
                self._misc(emit, c, "silu_mul", "mul", tokens, 2 * self.sl.ffn_rows[c], wait=B_MPE, release=B_SYS)
                emit(OpDesc("SYS", c, "barrier_mlp", wait=B_SFU, release=B_MPE, func="barrier"))
            else:
                emit(OpDesc("SYS", c, "barrier_mlp", wait=B_MPE, release=B_MPE, func="barrier"))
            # 8. down + residual add, all-gather; the barrier leaves the next layer's SYS->SFU token
            self._linear(emit, c, layer, "down_proj", lay["down_proj"], tokens, mv, first_wait=B_SYS,
                         last_release=B_SYS, fused="add" if fz else "")
            emit(OpDesc("SYS", c, "barrier_layer", wait=B_MPE, release=B_SFU, func="barrier"))
        prog = Program(phase, ctx_len, tokens, ops, layer_group=group, replicas=hw.n_cores if core0_only else 1)
        if sink is None:
            self._cache[key] = prog
        return prog

    def head_program(self, sink: Optional[Callable] = None, core0_only: bool = False) -> Program:
        """Final RMSNorm + LM head for one token (decode, and the last prompt token of prefill)."""
        ops: list[OpDesc] = []
        emit = sink or ops.append
        core0_only = core0_only and self.symmetric
        for c in range(1 if core0_only else self.hw.n_cores):
            self._misc(emit, c, "rmsnorm_final", "rmsnorm", 1, self.spec.hidden_size, wait=B_SYS, release=B_MPE)
            self._linear(emit, c, -1, "lm_head", self.f.lm_head, 1, "MV", first_wait=B_SFU, last_release=B_SYS)
            emit(OpDesc("SYS", c, "barrier_logits", wait=B_MPE, release=B_SFU, func="barrier"))
        return Program("head", 0, 1, ops, replicas=self.hw.n_cores if core0_only else 1)

    def _misc(self, emit, c: int, name: str, func: str, rows: int, row_len: int, wait: int = 0,
              release: int = 0, elems_per_row: Optional[list[int]] = None) -> None:
        """An SFU op; the ISA's MISC holds at most 63 rows, so longer ones are split (deps on the ends).

        ``elems_per_row`` gives the elements really processed per row where fewer than
        ``row_len`` are (a causal softmax row stops at the diagonal)."""
        chunks = [(r0, min(MISC_MAX_ROWS, rows - r0)) for r0 in range(0, rows, MISC_MAX_ROWS)]
        for j, (r0, n) in enumerate(chunks):
            elems = n * row_len if elems_per_row is None else sum(elems_per_row[r0:r0 + n])
            emit(OpDesc("MISC", c, name if len(chunks) == 1 else f"{name}[{j}]", func=func,
                        wait=wait if j == 0 else 0, release=release if j == len(chunks) - 1 else 0,
                        tokens=n, elems=elems, cols=row_len))

    def _linear(self, emit, c: int, layer: int, leaf: str, fmt: LayerFormat, tokens: int, opcode: str,
                first_wait: int = 0, last_release: int = 0, fused: str = "") -> None:
        """Weight tiles: one LD per channel (lockstep, same local range), then one MV/MM per tile."""
        rows = self.sl.vocab_rows[c] if leaf == "lm_head" else self._linear_rows(leaf, c)
        tl = T.weight_tiling(fmt, rows, self.cpc, self.hw.weight_buf_bytes_per_core, leaf,
                                 align=self._dec_per_ch)
        region = self.placement.region(f"lm_head.c{c}" if leaf == "lm_head" else f"L{max(layer, 0)}.{leaf}.c{c}")
        rpt_ch = tl.rows_per_tile // self.cpc
        rb = hbm_row_bytes(fmt)
        rows_of_ch = [max(0, min(tl.rows_per_channel, rows - ch * tl.rows_per_channel)) for ch in range(self.cpc)]
        for t in range(tl.n_tiles):
            r0 = t * rpt_ch
            per_ch = [max(0, min(rpt_ch, rc - r0)) for rc in rows_of_ch]
            chans = [ch for ch in range(self.cpc) if per_ch[ch] > 0]
            r_tile = sum(per_ch)
            for n_i, ch in enumerate(chans):
                emit(OpDesc("LD", c, f"ld_{leaf}[{t}].ch{ch}", wait=B_MPE if n_i == 0 else 0,
                            release=B_MPE if n_i == len(chans) - 1 else 0, kind="weight",
                            channel0=region.channel0 + ch, n_channels=1,
                            hbm_addr=region.addr + r0 * rb, bytes_per_channel=per_ch[ch] * rb,
                            buf_addr=(t % T.BUFFER_SLOTS), tensor=region.tensor,
                            bits=fmt.bits, index_bits=fmt.index_bits, kept=per_ch[ch] * fmt.kept_per_row,
                            rows=per_ch[ch], nm=fmt.nm, k_dense=fmt.in_features, group_size=fmt.group_size,
                            asymmetric=not fmt.symmetric))
            last = t == tl.n_tiles - 1
            emit(OpDesc(opcode, c, f"{opcode.lower()}_{leaf}[{t}]",
                        wait=B_LD | (first_wait if t == 0 else 0), release=B_LD | (last_release if last else 0),
                        rows=r_tile, cols=fmt.kept_per_row, tokens=tokens, nm=fmt.nm, k_dense=fmt.in_features,
                        group_size=fmt.group_size, macs=tokens * r_tile * fmt.kept_per_row, buf_addr=t % T.BUFFER_SLOTS,
                        fused=fused))

    def _kv_rows_in(self, ch: int, k0: int, k1: int) -> tuple[int, int]:
        """Channel ch holds tokens t with t % cpc == ch at local row t // cpc: (first row, count) in [k0, k1)."""
        first = -(-(k0 - ch) // self.cpc) if k0 > ch else 0
        last = (k1 - 1 - ch) // self.cpc if k1 - 1 >= ch else -1
        return first, max(0, last - first + 1)

    def _store_kv(self, emit, c: int, layer: int, q0: int, tokens: int, wait: int) -> None:
        kvrb = T.kv_row_bytes(self.spec.head_dim)
        tpc = math.ceil(self.max_len / self.cpc)
        first = True
        for kv in ("k", "v"):
            region = self.placement.region(f"L{layer}.kv_{kv}.c{c}")
            for h in range(self.sl.kv_heads[c]):
                base = region.addr + h * tpc * kvrb
                for ch in range(self.cpc):
                    r, n = self._kv_rows_in(ch, q0, q0 + tokens)
                    if n == 0:
                        continue
                    emit(OpDesc("ST", c, f"st_{kv}[h{h}].ch{ch}", wait=wait if first else 0, kind="kv",
                                channel0=region.channel0 + ch, n_channels=1, tensor=region.tensor,
                                hbm_addr=base + r * kvrb, bytes_per_channel=n * kvrb))
                    first = False

    def _attention(self, emit, c: int, layer: int, q0: int, ctx: int, tokens: int) -> None:
        s = self.spec
        hd, g = s.head_dim, s.gqa_group_size
        kvrb = T.kv_row_bytes(hd)
        tpc = math.ceil(self.max_len / self.cpc)
        rk, rv = self.placement.region(f"L{layer}.kv_k.c{c}"), self.placement.region(f"L{layer}.kv_v.c{c}")
        n_tiles = math.ceil(ctx / self.kv_tile)
        q_rows = tokens * g                         # query vectors sharing one K/V head
        op_mm = "MV" if q_rows == 1 else "MM"
        nh = self.sl.kv_heads[c]
        for h in range(nh):
            for kv, region in (("k", rk), ("v", rv)):
                for j in range(n_tiles):
                    k0, k1 = j * self.kv_tile, min(ctx, (j + 1) * self.kv_tile)
                    n_tok = k1 - k0
                    parts = [(ch,) + self._kv_rows_in(ch, k0, k1) for ch in range(self.cpc)]
                    parts = [p for p in parts if p[2] > 0]
                    for n_i, (ch, r, n) in enumerate(parts):
                        emit(OpDesc("LD", c, f"ld_{kv}[h{h},{j}].ch{ch}", wait=B_MPE if n_i == 0 else 0,
                                    release=B_MPE if n_i == len(parts) - 1 else 0, kind="kv",
                                    channel0=region.channel0 + ch, n_channels=1, tensor=region.tensor,
                                    hbm_addr=region.addr + h * tpc * kvrb + r * kvrb, bytes_per_channel=n * kvrb,
                                    rows=n, buf_addr=j % T.BUFFER_SLOTS))
                    pairs = T.causal_pairs(q0, q0 + tokens, k0, k1) * g
                    dens = T.block_density(q0, q0 + tokens, k0, k1) if tokens > 1 else 1.0
                    last = j == n_tiles - 1
                    if kv == "k":   # scores = q . K^T: the K tile is the matrix (rows = keys), q the vectors
                        emit(OpDesc(op_mm, c, f"qk[h{h},{j}]", wait=B_LD, release=B_LD | (B_SFU if last else 0),
                                    rows=n_tok, cols=hd, k_dense=hd, tokens=q_rows, density=dens, macs=pairs * hd,
                                    buf_addr=j % T.BUFFER_SLOTS))
                    else:           # out = p . V: rows = head_dim outputs, cols = keys of the tile
                        emit(OpDesc(op_mm, c, f"pv[h{h},{j}]", wait=B_LD | (B_SFU if j == 0 else 0),
                                    release=B_LD | (B_SYS if (h == nh - 1 and last) else 0),
                                    rows=hd, cols=n_tok, k_dense=n_tok, tokens=q_rows, density=dens,
                                    macs=pairs * hd, buf_addr=j % T.BUFFER_SLOTS))
                if kv == "k":
                    # causal: query q0 + i sees keys 0..q0 + i (rows of one query share its length)
                    per_row = [q0 + 1 + i // g for i in range(q_rows)]
                    self._misc(emit, c, f"softmax[h{h}]", "softmax", q_rows, ctx, wait=B_MPE, release=B_MPE,
                               elems_per_row=per_row)

    # ---------------------------------------------------------------- ISA
    def to_isa(self, op: OpDesc):
        """The ``simulator.isa`` instruction of a compiled op (one core's stream).

        Field values are passed as computed: one that does not fit its ISA field is an IsaError, never clamped.
        """
        from simulator import isa
        ids = self.hw.extras.get("buffer_ids", {})
        wbuf, abuf = ids.get("weight", 0), ids.get("activation", 0)
        kvbuf, obuf = ids.get("kv", wbuf), ids.get("output", abuf)
        L = HBM_LINE
        if op.opcode == "LD":
            if op.kind == "weight":
                row_lines = -(-op.bytes_per_channel // max(op.rows, 1) // L)
                dec_row = op.kept // max(op.rows, 1) + 2 * (op.k_dense // op.group_size)
                dst_row_lines = -(-dec_row // L)
                slot_lines = self.hw.weight_buf_bytes_per_core // T.BUFFER_SLOTS // L
                return isa.LD(wait=op.wait, release=op.release, mem="hbm", channel=op.channel0, dst_buffer=wbuf,
                              kind="weight_codes", bits=op.bits, src_addr_lines=op.hbm_addr // L,
                              length_lines=row_lines, nm=op.nm, asymmetric=op.asymmetric,
                              dst_offset_lines=op.buf_addr * slot_lines, rows=op.rows,
                              src_row_stride_lines=row_lines, dst_row_stride_lines=dst_row_lines,
                              group_size=op.group_size)
            first = op.hbm_addr // L
            last = (op.hbm_addr + op.bytes_per_channel - 1) // L
            slot_lines = self.hw.kv_buf_bytes_per_core // T.BUFFER_SLOTS // L
            return isa.LD(wait=op.wait, release=op.release, mem="hbm", channel=op.channel0, dst_buffer=kvbuf,
                          kind="kv_cache", bits=0, src_addr_lines=first, length_lines=last - first + 1,
                          dst_offset_lines=op.buf_addr * slot_lines, rows=1)
        if op.opcode == "ST":
            first = op.hbm_addr // L
            last = (op.hbm_addr + op.bytes_per_channel - 1) // L
            return isa.ST(wait=op.wait, release=op.release, mem="hbm", channel=op.channel0, src_buffer=obuf,
                          kind="kv_cache", dst_addr_lines=first, length_lines=last - first + 1)
        if op.opcode in ("MV", "MM"):
            kw = dict(wait=op.wait, release=op.release, act_buffer=abuf,
                      wt_buffer=kvbuf if op.name.startswith(("qk", "pv")) else wbuf, out_buffer=obuf,
                      fuse=op.fused or "none", nm=op.nm, n=op.rows, k=op.k_dense or op.cols)
            if op.opcode == "MM":
                return isa.MM(m=op.tokens, **kw)
            return isa.MV(**kw)
        if op.opcode == "MISC":
            return isa.MISC(wait=op.wait, release=op.release, op=op.func, src_buffer=abuf, dst_buffer=abuf,
                            aux_buffer=abuf, rows=op.tokens, row_len=op.cols)
        return isa.SYS(wait=op.wait, release=op.release, op="barrier")

    def isa_streams(self, prog: Program) -> dict[int, list]:
        """Per-core ISA instruction lists of a program (a program runs on one core in the ISA)."""
        out: dict[int, list] = {}
        for op in prog.ops:
            out.setdefault(op.core, []).append(self.to_isa(op))
        return out

    # ---------------------------------------------------------------- storage
    def instruction_words(self) -> dict[str, int]:
        from simulator.isa import WORDS_PER_OP
        return dict(WORDS_PER_OP)

    def _words_of(self, emit_fn: Callable[[Callable], Any]) -> int:
        words = self.instruction_words()
        total = [0]

        def sink(op: OpDesc) -> None:
            total[0] += words[op.opcode]
        emit_fn(sink)
        return total[0]

    def _layer_words(self, q0: int, tokens: int, memo: dict) -> int:
        """Words of one layer program (all cores) for tokens [q0, q0 + tokens).

        Only attention (KV tiles) and the K/V stores depend on the position; the rest
        depends on ``tokens`` only. Both parts come from the same emitters as the programs.
        """
        ctx = q0 + tokens
        cores = range(self.hw.n_cores)
        if ("fixed", tokens) not in memo:
            full = self._words_of(lambda sk: self.layer_program("decode" if tokens == 1 else "prefill",
                                                                 ctx, tokens, sink=sk))
            var = self._words_of(lambda sk: [(self._attention(sk, c, 0, q0, ctx, tokens),
                                              self._store_kv(sk, c, 0, q0, tokens, 0)) for c in cores])
            memo[("fixed", tokens)] = full - var
        key = ("var", q0, tokens)
        if key not in memo:
            memo[key] = self._words_of(lambda sk: [(self._attention(sk, c, 0, q0, ctx, tokens),
                                                    self._store_kv(sk, c, 0, q0, tokens, 0)) for c in cores])
        return memo[("fixed", tokens)] + memo[key]

    def storage_report(self) -> dict[str, Any]:
        """Instruction bytes of bucketed programs vs one program per length (decode and prefill).

        Programs are per layer (addresses differ per layer), so both totals count
        ``num_layers`` layer streams plus the LM head per program. A prefill program
        for length L is its chunk programs; a decode program for context L covers
        the token at position L - 1.
        """
        nl = self.spec.num_layers
        head = self._words_of(lambda sk: self.head_program(sink=sk))
        memo: dict = {}

        def decode_words(ctx: int) -> int:
            return nl * self._layer_words(ctx - 1, 1, memo) + head

        def prefill_words(length: int, bucket: int) -> int:
            chunk = self.prefill_chunk(bucket)
            return nl * sum(self._layer_words(q0, min(chunk, length - q0), memo)
                            for q0 in range(0, length, chunk)) + head

        per_len = sum(decode_words(L) + prefill_words(L, L) for L in range(1, self.max_len + 1))
        dec_b = list(range(self.decode_bucket, self.max_len + 1, self.decode_bucket))
        pre_b = list(range(self.prefill_bucket, self.max_len + 1, self.prefill_bucket))
        bucketed = sum(decode_words(b) for b in dec_b) + sum(prefill_words(b, b) for b in pre_b)
        return {"decode_buckets": len(dec_b), "prefill_buckets": len(pre_b), "programs_bucketed": len(dec_b) + len(pre_b),
                "programs_per_length": 2 * self.max_len,
                "instruction_bytes_bucketed": 4 * bucketed, "instruction_bytes_per_length": 4 * per_len,
                "instruction_storage_saving": 1.0 - bucketed / per_len}

    def prefill_programs(self, bucket_len: int, group: int = 0, layer: int = 0) -> list[Program]:
        chunk = self.prefill_chunk(bucket_len)
        progs = []
        for q0 in range(0, bucket_len, chunk):
            n = min(chunk, bucket_len - q0)
            progs.append(self.layer_program("prefill", q0 + n, n, group=group, layer=layer))
        return progs
