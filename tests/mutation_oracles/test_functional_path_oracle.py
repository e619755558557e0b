"""Oracles for the functional engine's units and FunctionalModel bookkeeping (issue 15 survivors).

Each expected value is a hand computation or the documented contract, never a value read back from the code.
"""
from __future__ import annotations

import numpy as np
import pytest

from simulator.functional import FunctionalError
from simulator.functional.units import group_sums

F32 = np.float32
# FP32 has a 24-bit significand: an INT8 x INT8 partial sum is exact while G * 127 * 127 <= 2**24, i.e.
# G <= floor(16777216 / 16129) = 1040 (hand computation; 1040 * 16129 = 16 774 160 <= 16 777 216).
LARGEST_EXACT_GROUP = 1040


def test_the_largest_exact_group_is_accepted_and_exact():
    g = LARGEST_EXACT_GROUP
    wg = np.full((1, 1, g), 127, F32)                 # [NG=1, O=1, G]
    q = np.full((1, g), -127, np.int8)                # [T=1, K=G]
    got = group_sums(wg, q, g)
    assert got.shape == (1, 1, 1)
    assert int(got[0, 0, 0]) == -127 * 127 * g       # -16 774 160, exact in FP32


def test_one_past_the_largest_exact_group_is_one_error():
    g = LARGEST_EXACT_GROUP + 1
    with pytest.raises(FunctionalError, match="group_size"):
        group_sums(np.ones((1, 1, g), F32), np.ones((1, g), np.int8), g)
