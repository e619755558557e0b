"""Llama 2 and 3 (LlamaForCausalLM): RMSNorm, RoPE (any supported type), grouped-query attention,
SwiGLU MLP, no biases. Mistral and Qwen2 read their configs through :func:`read_llama_like`."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from llmaccel.simulator.families.base import (Architecture, Family, FamilyError, Norm, Projection, activation, need, refuse_if,
                                     sliding_window)
from llmaccel.simulator.families.rope import read_rope


def projections(qkv_bias: bool = False) -> tuple[Projection, ...]:
    """The Llama-layout projections (the HF path is the canonical path)."""
    def p(leaf: str, key: str, group: str, bias: bool = False) -> Projection:
        return Projection(leaf, key, key, group, bias)   # type: ignore[arg-type]
    return (p("q_proj", "self_attn.q_proj", "attn_in", qkv_bias), p("k_proj", "self_attn.k_proj", "attn_in", qkv_bias),
            p("v_proj", "self_attn.v_proj", "attn_in", qkv_bias), p("o_proj", "self_attn.o_proj", "attn_out"),
            p("gate_proj", "mlp.gate_proj", "mlp_in"), p("up_proj", "mlp.up_proj", "mlp_in"),
            p("down_proj", "mlp.down_proj", "mlp_out"))


@lru_cache(maxsize=None)
def llama_like_architecture(family: str, qkv_bias: bool = False) -> Architecture:
    """The Llama-layout block (one object per family: the engines ask for it on every step)."""
    return Architecture(
        family=family, layer_prefix="model.layers.{i}.", projections=projections(qkv_bias),
        attn_norm="input_layernorm", mlp_norm="post_attention_layernorm", final_norm="model.norm",
        embed="model.embed_tokens", lm_head="lm_head", norm=Norm("rmsnorm", "rms_norm_eps"),
        activation="silu", gated=True, positions="rope")


def read_llama_like(cfg: dict[str, Any], where: str, family: str, window: bool) -> dict[str, Any]:
    """ModelSpec fields of a Llama-layout decoder (Llama, Mistral, Qwen2)."""
    act = activation(cfg, "hidden_act", "silu", where)
    refuse_if(act != "silu", where, "hidden_act", cfg.get("hidden_act"), "['silu'] (the SwiGLU MLP)")
    hidden = need(cfg, "hidden_size", where, family)
    heads = need(cfg, "num_attention_heads", where, family)
    head_dim = cfg.get("head_dim")
    if head_dim is None:
        if not isinstance(hidden, int) or not isinstance(heads, int) or heads <= 0 or hidden % heads:
            raise FamilyError(f"{where}: head_dim is absent and hidden_size={hidden!r} is not a multiple of "
                             f"num_attention_heads={heads!r}")
        head_dim = hidden // heads
    theta, scaling = read_rope(cfg, where)
    return dict(
        family=family, hidden_size=hidden, intermediate_size=need(cfg, "intermediate_size", where, family),
        num_layers=need(cfg, "num_hidden_layers", where, family), num_heads=heads,
        num_kv_heads=cfg.get("num_key_value_heads") or heads, head_dim=head_dim,
        vocab_size=need(cfg, "vocab_size", where, family),
        max_position_embeddings=need(cfg, "max_position_embeddings", where, family),
        rms_norm_eps=cfg.get("rms_norm_eps", 1e-6), rope_theta=theta, rope_scaling=scaling,
        tie_word_embeddings=cfg.get("tie_word_embeddings", False), activation=act,
        sliding_window=sliding_window(cfg, where, window))


def _read(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    for key in ("attention_bias", "mlp_bias"):
        refuse_if(bool(cfg.get(key)), where, key, cfg.get(key), "false (the Llama block has no biases)")
    refuse_if(cfg.get("pretraining_tp", 1) not in (1, None), where, "pretraining_tp", cfg.get("pretraining_tp"), "1")
    return read_llama_like(cfg, where, "llama", window=False)


FAMILY = Family(name="llama", model_types=("llama",), architectures=("LlamaForCausalLM",), read=_read,
                describe=lambda spec: llama_like_architecture("llama"))
