"""Token sampling: greedy, temperature, top-k, top-p, deterministic for a seed.

The exact algorithm (so that any implementation reproduces the same tokens):

1. ``temperature == 0``: greedy, ``argmax`` of the logits; ties go to the lowest id.
2. otherwise, in float64: ``z = logits / temperature``;
   * top-k (``top_k > 0``): keep the ``top_k`` largest ``z``; ties at the boundary are
     broken toward lower ids (stable sort of ``-z``); the others get probability 0;
   * ``p = softmax(z)`` over the kept ids (``exp(z - max z)``, divided by its sum);
   * top-p (``top_p < 1``): sort the kept ids by ``p`` descending (stable, lower ids
     first on ties), keep the shortest prefix whose cumulative probability reaches
     ``top_p`` (at least one id), renormalise;
   * draw ``u = rng.random()`` from ``numpy.random.Generator(PCG64(seed))`` (one draw per
     token, the generator created once per request) and return the first id, in the
     sorted order, whose cumulative probability exceeds ``u``.

Same logits, parameters and seed give the same tokens, on every machine numpy runs on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from llmaccel.host.errors import SessionError


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        t, k, p, s = self.temperature, self.top_k, self.top_p, self.seed
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise SessionError(f"temperature={t!r} is invalid; allowed: a finite number >= 0 (0 = greedy)")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise SessionError(f"top_k={k!r} is invalid; allowed: an integer >= 0 (0 = no top-k)")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0.0 < p <= 1.0):
            raise SessionError(f"top_p={p!r} is invalid; allowed: 0 < top_p <= 1 (1 = no top-p)")
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise SessionError(f"seed={s!r} is invalid; allowed: an integer >= 0")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Sampler:
    """One request's sampler: owns the seeded generator so that a request's draws are reproducible."""

    def __init__(self, params: SamplingParams):
        self.params = params
        self.rng = np.random.Generator(np.random.PCG64(params.seed))

    def __call__(self, logits: np.ndarray) -> int:
        logits = np.asarray(logits)
        if self.params.greedy:
            return int(np.argmax(logits))
        return sample_token(logits, self.params, self.rng)


def sample_token(logits: np.ndarray, params: SamplingParams, rng: Optional[np.random.Generator]) -> int:
    z = np.asarray(logits, np.float64) / float(params.temperature)
    order = np.argsort(-z, kind="stable")                    # descending, lower ids first on ties
    if params.top_k and params.top_k < len(order):
        order = order[:params.top_k]
    zk = z[order]
    e = np.exp(zk - zk[0])
    p = e / e.sum()
    if params.top_p < 1.0:
        cum = np.cumsum(p)
        n = int(np.searchsorted(cum, params.top_p, side="left")) + 1
        order, p = order[:n], p[:n] / p[:n].sum()
    u = rng.random()
    idx = int(np.searchsorted(np.cumsum(p), u, side="right"))
    return int(order[min(idx, len(order) - 1)])
