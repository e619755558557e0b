"""Inverse-CDF sampling at the top of the unit interval (issue 15 survivor host/sampling.py:81).

``sample_token`` draws u in [0, 1) and returns the token whose cumulative-probability bin holds u.
Ten equal logits give p = 0.1 each, and in float64 0.1 summed ten times is 0.9999999999999999, not 1:
a draw u = 1 - 2**-53 (the largest float below 1, a value a [0, 1) generator can return) then lies past
the last float cumsum. By the definition the draw is in the last bin [0.9, 1), so the answer is the last
token of the descending order; equal logits keep ascending ids (documented stable tie rule), so id 9.
"""
from __future__ import annotations

import numpy as np

from llmaccel.host.sampling import SamplingParams, sample_token


class _FixedDraw:
    """The random source with one chosen draw (the sampler only calls ``random()``)."""

    def __init__(self, u: float):
        self.u = u

    def random(self) -> float:
        return self.u


def test_a_draw_past_the_rounded_cumsum_is_the_last_token():
    u = float(np.nextafter(1.0, 0.0))
    assert np.cumsum(np.full(10, 0.1))[-1] <= u < 1.0      # the float case this test is about
    params = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, seed=0)
    assert sample_token(np.zeros(10), params, _FixedDraw(u)) == 9
    assert sample_token(np.zeros(10), params, _FixedDraw(0.0)) == 0     # first bin [0, 0.1)


def test_top_p_renormalises_the_kept_tokens():
    """Nucleus sampling (Holtzman et al.): keep the smallest prefix with mass >= top_p, then draw from
    it renormalised. By hand: p = (0.5, 0.3, 0.2), top_p 0.7 keeps tokens 0 and 1 with probabilities
    0.625 and 0.375, so a draw u = 0.6 is token 0 and u = 0.63 is token 1; token 2 is never drawn."""
    logits = np.log(np.array([0.5, 0.3, 0.2]))
    params = SamplingParams(temperature=1.0, top_k=0, top_p=0.7, seed=0)
    assert sample_token(logits, params, _FixedDraw(0.6)) == 0
    assert sample_token(logits, params, _FixedDraw(0.63)) == 1
    assert sample_token(logits, params, _FixedDraw(float(np.nextafter(1.0, 0.0)))) == 1
