"""The compiler: ModelFormats + design (HwParams) + max length -> a ``simulator.compiled.CompiledModel``.

What it decides (each in its own module): the partition over cores and the HBM placement
(``partition``), the on-chip layout (``layout``), the tiles (``mapping.tiling``), the
instructions of every program (``emit``), their words and the model around them (``lower``),
the instruction-storage report (``storage``).

**Length-adaptive compilation**: one program per bucket (decode every 16 context tokens, prefill
every 128 prompt tokens, up to ``max_len``); a program compiled for a bucket's upper end serves
every length in it. Layers of one format group share a program (a template holding its first
layer's addresses; the host's layer base register moves it to each layer).
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

from llmaccel.mapping import tiling as T
from llmaccel.mapping.compiler.emit import Emitter, Sink
from llmaccel.mapping.compiler.formats import CompileError, ModelFormats, check_datapath
from llmaccel.mapping.compiler.layout import act_layout, buffer_ids
from llmaccel.mapping.compiler.lower import build_program
from llmaccel.mapping.compiler.partition import core_slices, layer_bases, linear_rows, place
from llmaccel.simulator.compiled import CompiledModel, CompiledProgram, ProgramKey
from llmaccel.simulator.timing_params import HwParams

DECODE_BUCKET = 16      # FlightLLM length-adaptive compilation (anchors/hardware.yaml length_buckets)
PREFILL_BUCKET = 128
DEFAULT_MAX_LEN = 2048


class _Placement:
    """The placed regions, with the lookups callers use (by name, bytes used, the placement.json dict)."""

    def __init__(self, regions, hw: HwParams):
        self.regions = list(regions)
        self._by = {r.tensor: r for r in self.regions}
        self._hw = hw

    def region(self, tensor: str):
        return self._by[tensor]

    @property
    def bytes_used(self) -> int:
        return sum(r.bytes_per_channel * r.n_channels for r in self.regions)

    def to_dict(self) -> dict:
        return {"n_channels": self._hw.hbm_channels, "channel_bytes": self._hw.hbm_channel_bytes,
                "n_cores": self._hw.n_cores, "regions": [r.to_dict() for r in self.regions]}


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
        if max_len > spec.max_context:
            raise CompileError(f"max_len={max_len} exceeds {spec.name}'s sliding window of {spec.sliding_window} "
                               f"positions (windowed attention is not implemented); allowed: max_len <= "
                               f"{spec.max_context}")
        self.f, self.hw, self.spec = formats, hw, spec
        self.max_len, self.decode_bucket, self.prefill_bucket, self.fuse = max_len, decode_bucket, prefill_bucket, fuse
        self.sl = core_slices(spec, hw.n_cores)
        self.cpc = hw.channels_per_core
        self._dec_per_ch = max(1, hw.decoders_per_core // hw.channels_per_core)
        self.kv_tile = T.kv_tile_tokens(spec.head_dim, self.cpc, hw.kv_buf_bytes_per_core, spec.gqa_group_size,
                                        formats.kv_dtype)
        self._check_formats()
        self._check_tiles()
        self._check_decode_on_chip()
        regions, self.kv_bytes_total = place(formats, hw, self.sl, max_len)
        self.placement = _Placement(regions, hw)
        self.groups = [layers for _, layers in formats.layer_groups()]
        self.layer_base = layer_bases(regions, self.groups, spec.num_layers, hw.n_cores)
        self.buffers = buffer_ids(hw)
        self.act = act_layout(spec, self.buffers, max_len, layernorm=spec.arch.norm.kind == "layernorm")
        self.emitter = Emitter(spec, hw, [formats.layer(i) for i in range(spec.num_layers)], formats.lm_head,
                               self.sl, {r.tensor: r for r in regions}, self.buffers, {a.name: a for a in self.act},
                               max_len, self.kv_tile, fuse, kv_kind=formats.kv_load_kind)
        self._cache: dict[tuple, CompiledProgram] = {}

    # ---------------------------------------------------------------- checks
    def _linear_rows(self, leaf: str, core: int) -> int:
        return linear_rows(self.sl, self.spec.head_dim, leaf, core)

    def _check_formats(self) -> None:
        check_datapath(self.f, self.hw)      # FP16 weights on an fp16 engine, integer weights on an int8 one
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
                T.weight_tiling(fmt, max(self._linear_rows(leaf, 0), 1), self.cpc, self.hw.weight_buf_bytes_per_core,
                                leaf, align=self._dec_per_ch)
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

    # ---------------------------------------------------------------- programs
    @property
    def symmetric(self) -> bool:
        """Every core gets an identical slice (then timing needs core 0's stream only)."""
        sl = self.sl
        return all(len(set(v)) == 1 for v in (sl.kv_heads, sl.hidden_rows, sl.ffn_rows, sl.vocab_rows))

    def layer_program(self, phase: str, ctx_len: int, tokens: int, group: int = 0, layer: Optional[int] = None,
                      sink: Optional[Sink] = None, core0_only: bool = False) -> Optional[CompiledProgram]:
        """One decoder layer of format group ``group`` (addresses of ``layer``, default the group's first)."""
        core0_only = core0_only and self.symmetric
        layer = self.groups[group][0] if layer is None else layer
        cores = range(1 if core0_only else self.hw.n_cores)
        if sink is not None:
            self.emitter.layer(sink, phase, ctx_len, tokens, layer, cores)
            return None
        key = (phase, ctx_len, tokens, group, layer, core0_only)
        if key not in self._cache:
            self._cache[key] = build_program(
                lambda sk: self.emitter.layer(sk, phase, ctx_len, tokens, layer, cores), phase, ctx_len, tokens,
                group, layer, self.hw.n_cores if core0_only else 1)
        return self._cache[key]

    def head_program(self, sink: Optional[Sink] = None, core0_only: bool = False) -> Optional[CompiledProgram]:
        core0_only = core0_only and self.symmetric
        cores = range(1 if core0_only else self.hw.n_cores)
        if sink is not None:
            self.emitter.head(sink, cores)
            return None
        key = ("head", core0_only)
        if key not in self._cache:
            self._cache[key] = build_program(lambda sk: self.emitter.head(sk, cores), "head", 0, 1, -1, -1,
                                             self.hw.n_cores if core0_only else 1)
        return self._cache[key]

    def prefill_programs(self, bucket_len: int, group: int = 0, layer: Optional[int] = None) -> list[CompiledProgram]:
        chunk = self.prefill_chunk(bucket_len)
        return [self.layer_program("prefill", q0 + min(chunk, bucket_len - q0), min(chunk, bucket_len - q0),
                                   group=group, layer=layer) for q0 in range(0, bucket_len, chunk)]

    def all_program_keys(self) -> list[ProgramKey]:
        """Every program a session may run: the head, every decode bucket, every prefill chunk, per group."""
        keys: list[ProgramKey] = [("head", 0, 1, -1)]
        for g in range(len(self.groups)):
            keys += [("decode", b, 1, g) for b in range(self.decode_bucket, self.max_len + 1, self.decode_bucket)]
            for b in range(self.prefill_bucket, self.max_len + 1, self.prefill_bucket):
                ch = self.prefill_chunk(b)
                keys += [("prefill", q0 + min(ch, b - q0), min(ch, b - q0), g) for q0 in range(0, b, ch)]
        return list(dict.fromkeys(keys))

    def compile_model(self, keys: Optional[Iterable[ProgramKey]] = None, core0_only: bool = False) -> CompiledModel:
        """The CompiledModel holding the programs ``keys`` (default: every program a session may run)."""
        from llmaccel.mapping.compiler.lower import compiled_model
        keys = self.all_program_keys() if keys is None else list(dict.fromkeys(keys))
        progs = {}
        for k in keys:
            phase, ctx, tok, g = k
            progs[k] = (self.head_program(core0_only=core0_only) if phase == "head"
                        else self.layer_program(phase, ctx, tok, group=g, core0_only=core0_only))
        return compiled_model(self, progs)

    # ---------------------------------------------------------------- storage
    def storage_report(self) -> dict:
        from llmaccel.mapping.compiler.storage import storage_report
        return storage_report(self)
