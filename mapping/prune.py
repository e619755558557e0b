"""N:M pruning masks by magnitude or by Wanda (|W| * ||x||).

Wanda (Sun et al., ICLR 2024) scores a weight by its magnitude times the L2
norm of its input feature over calibration tokens, so a small weight on a
loud channel survives; magnitude pruning ignores the inputs. Both keep
exactly N of every M consecutive input columns, the pattern the sparse DSP
chain's activation MUX can select.
"""
from __future__ import annotations

from typing import Optional

import torch

from llmaccel.errors import LlmaccelError


def nm_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Bool mask [O, K] keeping the ``n`` highest-scoring columns of every block of ``m``.

    Ties break toward the lower column so that the mask is deterministic.
    """
    o, k = scores.shape
    if k % m:
        raise LlmaccelError(f"N:M pattern {n}:{m}: M={m} must divide in_features={k}")
    blocks = scores.reshape(o, k // m, m)
    # stable descending sort: equal scores keep column order
    order = torch.sort(blocks, dim=2, descending=True, stable=True).indices[..., :n]
    mask = torch.zeros_like(blocks, dtype=torch.bool)
    mask.scatter_(2, order, True)
    return mask.reshape(o, k)


def prune_scores(weight: torch.Tensor, method: str, input_norm: Optional[torch.Tensor]) -> torch.Tensor:
    if method == "magnitude":
        return weight.abs()
    if method == "wanda":
        if input_norm is None:
            raise LlmaccelError("prune_method='wanda' needs calibration activations (input norms)")
        return weight.abs() * input_norm.reshape(1, -1)
    raise LlmaccelError(f"prune_method='{method}' is not supported; allowed: ['magnitude', 'wanda']")
