"""Pareto dominance over named objectives, each maximised (+1) or minimised (-1).

A missing figure (``None``: e.g. tokens/J on a device with no static power
figure) counts as the worst value, the same way for bounds and for results, so
pruning and the front agree.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from llmaccel.reports.explore.spec import OBJECTIVES


def _key(v: Any, sense: int) -> float:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return -math.inf
    return sense * float(v)


def vector(values: Mapping[str, Any], objectives: Sequence[str]) -> tuple[float, ...]:
    """The objective values oriented so that larger is better in every coordinate."""
    return tuple(_key(values.get(o), OBJECTIVES[o]) for o in objectives)


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and strictly better somewhere."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def front(items: Sequence[tuple[str, tuple[float, ...]]]) -> list[str]:
    """Ids of the non-dominated items (ties are all kept), in input order."""
    out = []
    for i, (ident, v) in enumerate(items):
        if not any(dominates(w, v) for j, (_, w) in enumerate(items) if j != i):
            out.append(ident)
    return out
