"""Fixtures of the host tests: the bundled model (or, until it is in the tree, a same-shape random one)."""
from __future__ import annotations

from pathlib import Path

import pytest


def bundled_or_random(tmp_factory) -> tuple[Path, bool]:
    """(checkpoint dir, is_bundled). The random stand-in has the bundled model's shapes (tiny preset)."""
    from llmaccel.assets import bundled_model_dir
    d = bundled_model_dir()
    if (d / "config.json").is_file():
        return d, True
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(1)
    cfg = LlamaConfig(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=8,
                      num_key_value_heads=4, vocab_size=2048, max_position_embeddings=512, rms_norm_eps=1e-6,
                      tie_word_embeddings=False)
    out = tmp_factory.mktemp("random-tiny") / "ckpt"
    LlamaForCausalLM(cfg).save_pretrained(out, safe_serialization=True)
    return out, False


@pytest.fixture(scope="session")
def host_ckpt(tmp_path_factory):
    return bundled_or_random(tmp_path_factory)


@pytest.fixture(scope="session")
def host_w8(tmp_path_factory, host_ckpt):
    """The model compressed with w8 (RTN) and compiled for flightllm-u280 at max_len 128."""
    from host.artifact import compile_artifact
    from mapping.compress import compress_checkpoint
    from mapping.recipe import get_recipe
    ckpt, _ = host_ckpt
    root = tmp_path_factory.mktemp("host-w8")
    compress_checkpoint(ckpt, get_recipe("w8"), root / "compressed")
    art = compile_artifact(root / "compressed", root / "artifact", "flightllm-u280", 128, tokenizer_dir=ckpt)
    return root / "compressed", art
