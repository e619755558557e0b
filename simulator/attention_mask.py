"""Causal attention facts both the compiler and the timing engine use (one definition).

A score tile of queries ``[q0, q1)`` against keys ``[k0, k1)``: how many (query, key) pairs are
causal, and which fraction of its 64 x 64 blocks has any (FlightLLM computes only those blocks).
The timing engine derives them from instruction fields (SYS set_position, MM key0/qgroup).
"""
from __future__ import annotations

import math

ATTN_BLOCK = 64           # FlightLLM block-sparse attention block (64x64), anchors/hardware.yaml


def causal_pairs(q0: int, q1: int, k0: int, k1: int) -> int:
    """Number of (query, key) pairs with key <= query, query in [q0, q1), key in [k0, k1)."""
    total = 0
    full_from = max(q0, k1 - 1)
    if q1 > full_from:
        total += (q1 - full_from) * (k1 - k0)
    lo, hi = max(q0, k0), min(q1, full_from)
    if hi > lo:
        n = hi - lo
        total += n * (lo + 1 - k0) + n * (n - 1) // 2
    return total


def block_density(q0: int, q1: int, k0: int, k1: int, block: int = ATTN_BLOCK) -> float:
    """Fraction of the block grid of a causal score tile that is not fully masked (computed blocks)."""
    nq = math.ceil((q1 - q0) / block)
    nk = math.ceil((k1 - k0) / block)
    active = 0
    for bq in range(nq):
        q_last = min(q1, q0 + (bq + 1) * block) - 1
        for bk in range(nk):
            if k0 + bk * block <= q_last:
                active += 1
    return active / (nq * nk)


def causal_row_elems(q0: int, row0: int, rows: int, qgroup: int) -> int:
    """Keys a causal softmax touches over score rows row0 .. row0 + rows - 1 (row i: query q0 + i // qgroup)."""
    return sum(q0 + 1 + i // qgroup for i in range(row0, row0 + rows))
