"""Perplexity of a reference model on a held-out text.

Windows are evaluated independently (each from an empty KV cache), the way
the accelerator runs a prompt; the perplexity is exp of the mean negative
log-likelihood over every predicted token.
"""
from __future__ import annotations

import math

import torch

from llmaccel.gpu_baseline.reference import ReferenceModel
from llmaccel.errors import LlmaccelError


def perplexity(model: ReferenceModel, token_ids: list[int], window: int = 256, max_tokens: int | None = None) -> float:
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 2):
        raise LlmaccelError(f"max_tokens={max_tokens!r} must be an integer >= 2 (one token predicted from "
                            f"another) or None for the whole text")
    ids = token_ids if max_tokens is None else token_ids[:max_tokens]
    if len(ids) < 2:
        raise LlmaccelError(f"the evaluation text has {len(ids)} token(s); perplexity needs at least 2")
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
