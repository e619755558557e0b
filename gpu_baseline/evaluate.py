"""Perplexity of a reference model on a held-out text.

Windows are evaluated independently (each from an empty KV cache), the way
the accelerator runs a prompt; the perplexity is exp of the mean negative
log-likelihood over every predicted token.
"""
from __future__ import annotations

import math

import torch

from gpu_baseline.reference import ReferenceModel


def perplexity(model: ReferenceModel, token_ids: list[int], window: int = 256, max_tokens: int | None = None) -> float:
    ids = token_ids[:max_tokens] if max_tokens else token_ids
    nll, count = 0.0, 0
    for start in range(0, len(ids) - 1, window):
        chunk = ids[start:start + window + 1]
        if len(chunk) < 2:
            break
        logits, _ = model.prefill(chunk[:-1], len(chunk) - 1)
        logp = torch.log_softmax(logits.double(), dim=-1)
        target = torch.tensor(chunk[1:], device=logits.device)
        nll -= float(logp.gather(1, target[:, None]).sum())
        count += len(chunk) - 1
    return math.exp(nll / count)
