"""Sampling at temperatures other than 1, against the documented algorithm written out by hand.

host/sampling.py documents: p_i proportional to exp(logit_i / T) over the kept ids, ids sorted by
probability (ties to the lower id), one draw u from PCG64(seed), the first id whose cumulative
probability exceeds u. Here the probabilities come from q_i ** (1 / T) of a known distribution q
(logits = log q), a different route to the same numbers; a temperature applied as a product
(q ** T) or not at all moves the thresholds and changes the drawn id for some seeds.
"""
from __future__ import annotations

import numpy as np
import pytest

from llmaccel.host.sampling import Sampler, SamplingParams, sample_token

Q = np.array([0.05, 0.5, 0.15, 0.3])


def _expected(u: float, temperature: float, top_k: int = 0) -> int:
    w = Q ** (1.0 / temperature)
    ids = sorted(range(len(Q)), key=lambda i: (-w[i], i))
    if top_k:
        ids = ids[:top_k]
    tot = sum(w[i] for i in ids)
    cum = 0.0
    for i in ids:
        cum += w[i] / tot
        if cum > u:
            return i
    return ids[-1]


@pytest.mark.parametrize("temperature", [0.5, 0.7, 2.0, 3.0])
def test_temperature_scales_the_logits_by_division(temperature):
    logits = np.log(Q)
    hits = 0
    for seed in range(300):
        u = np.random.Generator(np.random.PCG64(seed)).random()
        got = sample_token(logits, SamplingParams(temperature=temperature, seed=seed),
                           np.random.Generator(np.random.PCG64(seed)))
        want = _expected(u, temperature)
        # a draw within 1e-12 of a threshold may go either way in floating point; none is that close here
        assert got == want, (seed, u, got, want)
        hits += got == 1
    # and the distribution moved the right way: hotter flattens, colder sharpens (Q[1] = 0.5)
    assert (hits / 300 < 0.5) if temperature > 1 else (hits / 300 > 0.5)


def test_top_k_with_temperature_and_one_request_draws_once_per_token():
    logits = np.log(Q)
    s = Sampler(SamplingParams(temperature=2.0, top_k=2, seed=11))
    rng = np.random.Generator(np.random.PCG64(11))
    for _ in range(50):
        assert s(logits) == _expected(rng.random(), 2.0, top_k=2)


def test_temperature_zero_is_greedy_and_ties_go_to_the_lowest_id():
    assert Sampler(SamplingParams(temperature=0.0))(np.array([0.1, 0.7, 0.7, 0.2])) == 1
