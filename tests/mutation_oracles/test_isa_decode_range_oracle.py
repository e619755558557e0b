"""Oracles for simulator.isa.decode's input contract (issue 15 survivors).

The contract (decode's docstring, docs ISA section): a word stream is unsigned 32-bit integers; anything
else is one IsaError saying so, before any word is interpreted.
"""
from __future__ import annotations

import numpy as np
import pytest

from llmaccel.simulator.isa import IsaError, decode


def test_a_word_above_32_bits_is_rejected_as_not_uint32():
    # 0 is in range, 2**32 is one past the largest uint32: only the largest element (the max) is out of range,
    # so a check that looked at the smallest element only would let the stream through to opcode decoding.
    words = np.array([0, 1 << 32], dtype=np.int64)
    with pytest.raises(IsaError, match="unsigned 32-bit"):
        decode(words)


def test_a_negative_word_is_rejected_as_not_uint32():
    with pytest.raises(IsaError, match="unsigned 32-bit"):
        decode(np.array([-1, 6], dtype=np.int64))
