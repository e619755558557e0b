"""Per-layer bit allocation under an average-bits budget.

Sensitivity is measured, not assumed: for every linear and every candidate
width we quantize (RTN, with the layer's own N:M mask) and measure the
relative output error tr(dW H dW^T) / tr(W H W^T) on the calibration
inputs (H = X^T X / n), the quantity GPTQ minimizes. The allocator starts
every layer at the narrowest width and repeatedly upgrades the layer whose
next width buys the largest error reduction per extra bit stored, while the
budget (average code bits per kept weight) allows. Greedy marginal
allocation is optimal for convex error-vs-bits curves, which these are in
practice.
"""
from __future__ import annotations

from fractions import Fraction

from typing import Optional

import torch

from llmaccel.mapping.calibration import InputStats
from llmaccel.mapping.quantize import output_errors, quantize_rtn
from llmaccel.mapping.recipe import MIXED_CHOICES, LayerRule


def layer_sensitivity(weight: torch.Tensor, rule: LayerRule, stats: InputStats,
                      keep: Optional[torch.Tensor]) -> dict[int, float]:
    dequants = [torch.from_numpy(quantize_rtn(weight, rule.layer_format(*weight.shape, bits=bits), keep).dense_float())
                for bits in MIXED_CHOICES]
    return dict(zip(MIXED_CHOICES, output_errors(weight, dequants, stats.hessian)))


def allocate_bits(sensitivity: dict[str, dict[int, float]], sizes: dict[str, int], avg_bits: float) -> dict[str, int]:
    """Bits per layer minimizing the summed sensitivity with sum(size*bits)/sum(size) <= avg_bits."""
    choices = sorted(MIXED_CHOICES)
    total = sum(sizes.values())
    # Exact arithmetic: the budget is the decimal the user wrote (2.3 means 23/10) times an integer
    # weight count; a float product with an absolute slack loses the exact-budget case once the
    # model has more than ~1e7 weights (2.3 * 2**25 rounds below the integer it equals).
    budget = Fraction(repr(float(avg_bits))) * total
    alloc = {k: choices[0] for k in sensitivity}
    used = sum(sizes[k] * alloc[k] for k in alloc)
    while True:
        best, best_gain = None, 0.0
        for k, b in alloc.items():
            i = choices.index(b)
            if i + 1 == len(choices):
                continue
            nb = choices[i + 1]
            extra = sizes[k] * (nb - b)
            if used + extra > budget:
                continue
            gain = (sensitivity[k][b] - sensitivity[k][nb]) / extra
            if gain > best_gain or (gain == best_gain and best is not None and k < best):
                best, best_gain = k, gain
        if best is None:
            return alloc
        nb = choices[choices.index(alloc[best]) + 1]
        used += sizes[best] * (nb - alloc[best])
        alloc[best] = nb
