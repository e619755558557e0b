"""GPT-2 (GPT2LMHeadModel): LayerNorm, learned absolute positions, GELU (tanh form) MLP, biases
everywhere, tied LM head; multi-head attention (no GQA).

The checkpoint stores Conv1D weights as [in, out] and q|k|v fused in ``attn.c_attn``; the
description says so (``layout='conv1d'``, ``part``), and mapping.checkpoint splits and transposes
them into the canonical [out, in] q/k/v on reading.
"""
from __future__ import annotations

from typing import Any

from llmaccel.simulator.families.base import (Architecture, Family, FamilyError, LearnedPositions, Norm, Projection, activation, describe_by_activation, need,
                                     refuse_if)


def _p(leaf: str, key: str, hf: str, group: str, part=None) -> Projection:
    return Projection(leaf, key, hf, group, bias=True, layout="conv1d", part=part)  # type: ignore[arg-type]


ARCH = Architecture(
    family="gpt2", layer_prefix="transformer.h.{i}.",
    projections=(_p("q_proj", "self_attn.q_proj", "attn.c_attn", "attn_in", (0, 3)),
                 _p("k_proj", "self_attn.k_proj", "attn.c_attn", "attn_in", (1, 3)),
                 _p("v_proj", "self_attn.v_proj", "attn.c_attn", "attn_in", (2, 3)),
                 _p("o_proj", "self_attn.o_proj", "attn.c_proj", "attn_out"),
                 _p("up_proj", "mlp.up_proj", "mlp.c_fc", "mlp_in"),
                 _p("down_proj", "mlp.down_proj", "mlp.c_proj", "mlp_out")),
    attn_norm="ln_1", mlp_norm="ln_2", final_norm="transformer.ln_f", embed="transformer.wte", lm_head="lm_head",
    norm=Norm("layernorm", "layer_norm_epsilon"), activation="gelu_tanh", gated=False, positions="learned",
    learned_positions=LearnedPositions("transformer.wpe", 0))


def _read(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    for key, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                    ("reorder_and_upcast_attn", False), ("add_cross_attention", False)):
        refuse_if(cfg.get(key, ok) != ok, where, key, cfg.get(key), repr(ok).lower())
    act = activation(cfg, "activation_function", "gelu_new", where)
    hidden = need(cfg, "n_embd", where, "gpt2")
    heads = need(cfg, "n_head", where, "gpt2")
    if not isinstance(hidden, int) or not isinstance(heads, int) or heads <= 0 or hidden % heads:
        raise FamilyError(f"{where}: n_embd={hidden!r} must be a multiple of n_head={heads!r}")
    return dict(
        family="gpt2", hidden_size=hidden, intermediate_size=cfg.get("n_inner") or 4 * hidden,
        num_layers=need(cfg, "n_layer", where, "gpt2"), num_heads=heads, num_kv_heads=heads,
        head_dim=hidden // heads, vocab_size=need(cfg, "vocab_size", where, "gpt2"),
        max_position_embeddings=need(cfg, "n_positions", where, "gpt2"),
        rms_norm_eps=cfg.get("layer_norm_epsilon", 1e-5), rope_theta=10000.0, rope_scaling=None,
        tie_word_embeddings=cfg.get("tie_word_embeddings", True), activation=act, sliding_window=None)


FAMILY = Family(name="gpt2", model_types=("gpt2",), architectures=("GPT2LMHeadModel",), read=_read,
                describe=describe_by_activation(ARCH))
