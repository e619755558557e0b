"""Qwen2 (Qwen2ForCausalLM): the Llama block with biases on q, k and v (none on o or the MLP).

Sliding-window attention applies only when ``use_sliding_window`` is true; then, as for Mistral,
sequences longer than the window are refused.
"""
from __future__ import annotations

from typing import Any

from llmaccel.simulator.families.base import Family
from llmaccel.simulator.families.llama import llama_like_architecture, read_llama_like


def _read(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    return read_llama_like(cfg, where, "qwen2", window=bool(cfg.get("use_sliding_window", False)))


FAMILY = Family(name="qwen2", model_types=("qwen2",), architectures=("Qwen2ForCausalLM",), read=_read,
                describe=lambda spec: llama_like_architecture("qwen2", qkv_bias=True))
