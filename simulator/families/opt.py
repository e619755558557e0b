"""OPT (OPTForCausalLM): pre-norm LayerNorm block, learned positions with OPT's offset of 2,
ReLU MLP (fc1/fc2), biases everywhere, tied LM head; multi-head attention.

Refused by name: ``do_layer_norm_before=false`` (OPT-350M's post-norm block),
``word_embed_proj_dim != hidden_size`` (project_in/project_out), ``enable_bias=false``,
``layer_norm_elementwise_affine=false`` and ``_remove_final_layer_norm=true``.
"""
from __future__ import annotations

from typing import Any

from llmaccel.simulator.families.base import (Architecture, Family, FamilyError, LearnedPositions, Norm, Projection, activation, describe_by_activation, need,
                                     refuse_if)


def _p(leaf: str, key: str, hf: str, group: str) -> Projection:
    return Projection(leaf, key, hf, group, bias=True)  # type: ignore[arg-type]


ARCH = Architecture(
    family="opt", layer_prefix="model.decoder.layers.{i}.",
    projections=(_p("q_proj", "self_attn.q_proj", "self_attn.q_proj", "attn_in"),
                 _p("k_proj", "self_attn.k_proj", "self_attn.k_proj", "attn_in"),
                 _p("v_proj", "self_attn.v_proj", "self_attn.v_proj", "attn_in"),
                 _p("o_proj", "self_attn.o_proj", "self_attn.out_proj", "attn_out"),
                 _p("up_proj", "mlp.up_proj", "fc1", "mlp_in"),
                 _p("down_proj", "mlp.down_proj", "fc2", "mlp_out")),
    attn_norm="self_attn_layer_norm", mlp_norm="final_layer_norm", final_norm="model.decoder.final_layer_norm",
    embed="model.decoder.embed_tokens", lm_head="lm_head", norm=Norm("layernorm", ""),
    activation="relu", gated=False, positions="learned",
    learned_positions=LearnedPositions("model.decoder.embed_positions", 2))

_OPT_LN_EPS = 1e-5   # OPTDecoderLayer builds nn.LayerNorm(hidden) with torch's default eps; config has no field


def _read(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    hidden = need(cfg, "hidden_size", where, "opt")
    for key, ok in (("do_layer_norm_before", True), ("enable_bias", True), ("layer_norm_elementwise_affine", True),
                    ("_remove_final_layer_norm", False)):
        refuse_if(cfg.get(key, ok) != ok, where, key, cfg.get(key), repr(ok).lower())
    proj = cfg.get("word_embed_proj_dim", hidden)
    refuse_if(proj != hidden, where, "word_embed_proj_dim", proj,
              f"equal to hidden_size={hidden} (project_in/project_out are not implemented)")
    act = activation(cfg, "activation_function", "relu", where)
    heads = need(cfg, "num_attention_heads", where, "opt")
    if not isinstance(hidden, int) or not isinstance(heads, int) or heads <= 0 or hidden % heads:
        raise FamilyError(f"{where}: hidden_size={hidden!r} must be a multiple of num_attention_heads={heads!r}")
    return dict(
        family="opt", hidden_size=hidden, intermediate_size=need(cfg, "ffn_dim", where, "opt"),
        num_layers=need(cfg, "num_hidden_layers", where, "opt"), num_heads=heads, num_kv_heads=heads,
        head_dim=hidden // heads, vocab_size=need(cfg, "vocab_size", where, "opt"),
        max_position_embeddings=need(cfg, "max_position_embeddings", where, "opt"),
        rms_norm_eps=_OPT_LN_EPS, rope_theta=10000.0, rope_scaling=None,
        tie_word_embeddings=cfg.get("tie_word_embeddings", True), activation=act, sliding_window=None)


FAMILY = Family(name="opt", model_types=("opt",), architectures=("OPTForCausalLM",), read=_read,
                describe=describe_by_activation(ARCH))
