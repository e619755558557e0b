"""A compiled model: what the engines execute, as plain data (produced by ``mapping``, owned here).

The contract between the compiler and both engines. A program is the ISA
words of every core (``simulator.isa``) plus a debug side table of names (for
traces and messages only: no engine decides anything from a name). Around
the programs sit the facts the *host* knows when it loads a model onto the
board: where every tensor lies in HBM (:class:`HbmRegion`, what the host
wrote there), where the activation vectors it writes and reads live on chip
(:class:`ActRegion`), the layer base registers it sets per layer launch, the
design's timing parameters and the length buckets.

Imports go sparse_dsp <- simulator <- mapping, so this module names no
compiler type; the engines take a :class:`CompiledModel` and nothing else.
The engines' memoised work lives in :class:`EngineCache`, one explicit
object per compiled model (never attributes on programs, never ``id()`` keys).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmaccel.simulator.specs.model import ModelSpec
from llmaccel.errors import LlmaccelError
from llmaccel.simulator.timing_params import HwParams

ProgramKey = tuple[str, int, int, int]          # (phase, ctx_len, tokens, layer_group); head: ("head", 0, 1, -1)


class CompiledModelError(LlmaccelError):
    """A program or region the compiled model does not hold."""


@dataclass(frozen=True)
class CoreStream:
    """One core's instruction words and, per instruction, its debug name."""

    core: int
    words: np.ndarray                 # uint32
    names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class CompiledProgram:
    """One layer template (or the LM head) for one length bucket."""

    phase: str                        # decode | prefill | head
    ctx_len: int                      # context the program is compiled for (bucket upper end)
    tokens: int                       # tokens it processes (1 for decode, a chunk for prefill)
    layer_group: int                  # format group; -1 for the head
    template_layer: int               # the layer whose addresses the words hold (-1: head)
    cores: tuple[CoreStream, ...]
    replicas: int = 1                 # > 1: only core 0 was emitted; every core runs the same stream

    @property
    def key(self) -> ProgramKey:
        return (self.phase, self.ctx_len, self.tokens, self.layer_group)

    def stream(self, core: int) -> CoreStream:
        for s in self.cores:
            if s.core == core:
                return s
        raise CompiledModelError(f"program {self.key} has no stream for core {core}")


@dataclass(frozen=True)
class HbmRegion:
    """One placed tensor of one core: the same channel-local byte range in each of its channels.

    ``kind`` says what the host wrote there: weight (packed rows of ``key``'s output rows
    ``row0 .. row0 + rows - 1``, ``rows_per_channel`` per channel, each ``row_bytes`` long, line padded),
    kv (``heads`` KV heads from ``head0``, ``tokens_per_channel`` rows of ``row_bytes`` per head and channel),
    norm (the parameter block: eps, gamma, beta), bias (``rows`` FP32 from element ``row0``), embedding.
    """

    tensor: str
    kind: str
    core: int
    channel0: int
    n_channels: int
    addr: int
    bytes_per_channel: int
    layer: int = -1
    key: str = ""
    row0: int = 0
    rows: int = 0
    rows_per_channel: int = 0
    row_bytes: int = 0
    kv: str = ""
    head0: int = 0
    heads: int = 0
    tokens_per_channel: int = 0

    @property
    def end(self) -> int:
        return self.addr + self.bytes_per_channel

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ActRegion:
    """A named activation vector on chip: ``elems`` FP32 per token at ``offset_lines`` of buffer ``buffer``."""

    name: str
    buffer: int
    offset_lines: int
    elems: int


@dataclass(frozen=True)
class CoreSlices:
    kv_heads: tuple[int, ...]
    q_heads: tuple[int, ...]
    hidden_rows: tuple[int, ...]
    ffn_rows: tuple[int, ...]
    vocab_rows: tuple[int, ...]


@dataclass(frozen=True)
class BufferIds:
    """ISA buffer ids of the design's per-core buffers by role (``AcceleratorDesign.buffer_id``)."""

    weight: int
    kv: int
    activation: int
    sfu: int
    output: int


@dataclass
class EngineCache:
    """The engines' memoised work for one compiled model (decoded programs, cycle tables, tile decodes).

    Keys are values (program keys, hardware parameters, field tuples), never object ids."""

    decoded: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    functional: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class CompiledModel:
    spec: ModelSpec
    hw: HwParams
    max_len: int
    decode_bucket: int
    prefill_bucket: int
    kv_tile: int
    prefill_chunks: tuple[tuple[int, int], ...]         # (prefill bucket, chunk tokens)
    layer_groups: tuple[tuple[int, ...], ...]           # layers of each format group
    slices: CoreSlices
    buffers: BufferIds
    act: tuple[ActRegion, ...]
    regions: tuple[HbmRegion, ...]
    layer_base_lines: tuple[tuple[int, ...], ...]       # [layer][core]: HBM line offset from the group's template
    programs: dict[ProgramKey, CompiledProgram]
    weight_bytes: int
    linear_macs: int                                    # MACs of every linear for one token (roofline)
    source: str = ""
    cache: EngineCache = field(default_factory=EngineCache, compare=False, repr=False)

    # ---- buckets (length-adaptive compilation)
    def decode_bucket_of(self, ctx_len: int) -> int:
        self._check_len(ctx_len, "context length")
        return -(-ctx_len // self.decode_bucket) * self.decode_bucket

    def prefill_bucket_of(self, prompt_len: int) -> int:
        self._check_len(prompt_len, "prompt length")
        return -(-prompt_len // self.prefill_bucket) * self.prefill_bucket

    def _check_len(self, n: int, what: str) -> None:
        if not 1 <= n <= self.max_len:
            raise LlmaccelError(f"{what} {n} is beyond the compiled maximum max_len={self.max_len} "
                                f"(allowed 1..{self.max_len}); recompile with a larger --max-len")

    def prefill_chunk(self, bucket: int) -> int:
        for b, c in self.prefill_chunks:
            if b == bucket:
                return c
        raise CompiledModelError(f"no prefill bucket {bucket}; buckets: {[b for b, _ in self.prefill_chunks]}")

    def group_of(self, layer: int) -> int:
        for g, layers in enumerate(self.layer_groups):
            if layer in layers:
                return g
        raise CompiledModelError(f"layer {layer} is in no layer group")

    # ---- programs
    def program(self, phase: str, ctx_len: int = 0, tokens: int = 1, group: int = 0) -> CompiledProgram:
        key = ("head", 0, 1, -1) if phase == "head" else (phase, int(ctx_len), int(tokens), int(group))
        p = self.programs.get(key)
        if p is None:
            raise CompiledModelError(f"the compiled model holds no {phase} program for context {ctx_len}, "
                                     f"{tokens} tokens, layer group {group}; compile it")
        return p

    def prefill_programs(self, bucket: int, group: int = 0) -> list[CompiledProgram]:
        chunk = self.prefill_chunk(bucket)
        return [self.program("prefill", min(q0 + chunk, bucket), min(chunk, bucket - q0), group)
                for q0 in range(0, bucket, chunk)]

    def act_region(self, name: str) -> ActRegion:
        for r in self.act:
            if r.name == name:
                return r
        raise CompiledModelError(f"no activation region '{name}'")

    def placement_dict(self) -> dict[str, Any]:
        return {"n_channels": self.hw.hbm_channels, "channel_bytes": self.hw.hbm_channel_bytes,
                "n_cores": self.hw.n_cores, "regions": [r.to_dict() for r in self.regions]}
