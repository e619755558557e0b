"""Whole-model execution on the functional engine: prefill and decode steps, with their timing.

Function and timing come from the same run of the same programs: every
program this module executes on :class:`~simulator.functional.FunctionalEngine`
is also handed to the timing engine (``simulator.timing``), and the cycles of
exactly those programs are what a step reports. As in ``simulator.api``, the
first layer of a step is timed alone (pipeline fill) and each further layer by
its steady-state increment (the overlap with the previous layer's tail).

The model is a ``simulator.compiled.CompiledModel`` holding every program a
session may run (``mapping`` compiles it; an artifact stores it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from llmaccel.simulator.compiled import CompiledModel
from llmaccel.simulator.functional import F32, FunctionalEngine, FunctionalError, ModelWeights
from llmaccel.simulator.timing import Work, layer_timing, program_work


@dataclass
class StepResult:
    """One prefill or decode step: the logits of its last token and the simulated work of the programs run."""

    logits: np.ndarray
    work: Work
    seconds: float
    programs: int
    instructions: int


@dataclass
class FunctionalModel:
    """Runs prefill/decode of one sequence on the functional engine; the KV cache lives in its HBM image."""

    comp: CompiledModel
    weights: ModelWeights
    engine: FunctionalEngine = field(init=False)
    length: int = 0                                # tokens in the KV cache

    def __post_init__(self) -> None:
        self.engine = FunctionalEngine(self.comp, self.weights)

    @property
    def max_len(self) -> int:
        return int(self.comp.max_len)

    def reset(self) -> None:
        self.engine.reset_kv()
        self.length = 0

    def _embed(self, ids: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """What the host writes into the residual: the token embeddings, plus (GPT-2, OPT) the learned
        position embeddings, added in FP32 as the reference does."""
        vocab = self.weights.embed.shape[0]
        if ids.size and (ids.min() < 0 or ids.max() >= vocab):
            raise FunctionalError(f"token id {int(ids.max() if ids.max() >= vocab else ids.min())} is outside "
                                  f"the vocabulary 0..{vocab - 1}")
        x = self.weights.embed[ids].astype(F32)
        if self.comp.spec.arch.positions == "learned":
            table = self.weights.positions
            if table is None or positions.max() >= table.shape[0]:
                raise FunctionalError(f"{self.comp.spec.family} adds learned position embeddings: the compressed "
                                      "model has none for these positions (embed_positions)")
            x = (x + table[positions]).astype(F32)
        return x

    def _layers(self, phase: str, ctx_len: int, tokens: int, x: np.ndarray, positions: np.ndarray,
                work: Work) -> tuple[np.ndarray, int, int]:
        cm = self.comp
        n0 = self.engine.instructions_executed
        nl = cm.spec.num_layers
        for i in range(nl):
            prog = cm.program(phase, ctx_len, tokens, cm.group_of(i))
            self.engine.run(prog, positions, x if i == 0 else None, layer=i)
            lt = layer_timing(prog, cm.hw, cm.cache)
            work.add(lt.first if i == 0 else lt.steady)
        return self.engine.residual(), nl, self.engine.instructions_executed - n0

    def _head(self, x_last: np.ndarray, work: Work) -> np.ndarray:
        prog = self.comp.program("head")
        self.engine.run(prog, np.zeros(1, np.int64), x_last.reshape(1, -1))
        work.add(program_work(prog, self.comp.hw, self.comp.cache))
        return self.engine.logits()

    def prefill(self, ids: list[int]) -> StepResult:
        """A new sequence: run the prompt's prefill bucket (padded, chunk by chunk), then the LM head.

        The bucket's chunk programs are launched up to the one holding the last prompt token; chunks
        that would hold padding only are not launched (and not timed).

        The caller validates lengths (host.Session); ``prefill_bucket_of`` raises beyond the maximum.
        """
        ids = np.asarray(ids, np.int64)
        n = len(ids)
        if n == 0:
            raise FunctionalError("prompt is empty; at least one token is required")
        bucket = self.comp.prefill_bucket_of(n)
        chunk = self.comp.prefill_chunk(bucket)
        self.reset()
        work = Work()
        padded = np.zeros(bucket, np.int64)
        padded[:n] = ids                    # padding after the prompt: causality keeps it out of real tokens
        x_last, progs, instrs = None, 0, 0
        for q0 in range(0, bucket, chunk):
            if q0 >= n:
                break           # a chunk of padding only: the host does not launch it (nothing real in it)
            t = min(chunk, bucket - q0)
            pos = np.arange(q0, q0 + t)
            x, p, k = self._layers("prefill", q0 + t, t, self._embed(padded[q0:q0 + t], pos), pos, work)
            progs, instrs = progs + p, instrs + k
            if q0 <= n - 1 < q0 + t:
                x_last = x[n - 1 - q0]
        n0 = self.engine.instructions_executed
        logits = self._head(x_last, work)
        self.length = n
        return StepResult(logits, work, work.cycles / self.comp.hw.clock_hz, progs + 1,
                          instrs + self.engine.instructions_executed - n0)

    def decode(self, token: int) -> StepResult:
        """Append one token at position ``length`` and return the next token's logits."""
        if self.length == 0:
            raise FunctionalError("decode before prefill: the KV cache is empty")
        pos = self.length
        bucket = self.comp.decode_bucket_of(pos + 1)
        work = Work()
        x, p, k = self._layers("decode", bucket, 1, self._embed(np.asarray([token], np.int64), np.asarray([pos])),
                               np.asarray([pos]), work)
        n0 = self.engine.instructions_executed
        logits = self._head(x[0], work)
        self.length = pos + 1
        return StepResult(logits, work, work.cycles / self.comp.hw.clock_hz, p + 1,
                          k + self.engine.instructions_executed - n0)
