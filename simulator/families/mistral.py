"""Mistral (MistralForCausalLM): the Llama block plus a sliding attention window.

A window at least max_position_embeddings long masks nothing; a shorter one is recorded in
``ModelSpec.sliding_window`` and sequences longer than it are refused (the windowed mask is not
implemented), so within the allowed lengths the result is exact.
"""
from __future__ import annotations

from typing import Any

from llmaccel.simulator.families.base import Family
from llmaccel.simulator.families.llama import llama_like_architecture, read_llama_like


def _read(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    return read_llama_like(cfg, where, "mistral", window=True)


FAMILY = Family(name="mistral", model_types=("mistral",), architectures=("MistralForCausalLM",), read=_read,
                describe=lambda spec: llama_like_architecture("mistral"))
