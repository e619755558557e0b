"""Tiny random checkpoints of every supported family, built with transformers and saved as safetensors.

Deterministic: the same ``seed`` gives the same weights (torch.manual_seed before building, then
every 2-D weight redrawn from N(0, 0.08), larger than transformers' init so that quantization
error is visible in the logits; 1-D norm weights and biases redrawn around their init so a
wrong bias or norm path shows too). Shapes fit the packed formats (in_features multiples of 128
for group size 128). Loading back goes through :func:`load_hf` only: local files, no remote code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

TINY_FAMILIES = ("llama", "llama3", "mistral", "qwen2", "gpt2", "opt")
HIDDEN, INTER, LAYERS, HEADS, KV_HEADS, VOCAB, MAX_POS = 128, 256, 2, 4, 2, 256, 128


def _configs() -> dict[str, Callable[..., Any]]:
    import transformers as T
    common = dict(hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  num_key_value_heads=KV_HEADS, vocab_size=VOCAB, max_position_embeddings=MAX_POS, rms_norm_eps=1e-5,
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=None)
    return {
        "llama": lambda **kw: T.LlamaConfig(**{**common, **kw}),
        # Llama 3.1-style frequency-dependent scaling; original context shorter than the tiny max so it bites
        "llama3": lambda **kw: T.LlamaConfig(**{**common, "rope_parameters": {
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}, "tie_word_embeddings": True, **kw}),
        "mistral": lambda **kw: T.MistralConfig(**{**common, "sliding_window": None, **kw}),
        "qwen2": lambda **kw: T.Qwen2Config(**{**common, **kw}),
        "gpt2": lambda **kw: T.GPT2Config(**{"n_embd": HIDDEN, "n_inner": INTER, "n_layer": LAYERS, "n_head": HEADS,
                                             "vocab_size": VOCAB, "n_positions": MAX_POS, "bos_token_id": 1,
                                             "eos_token_id": 2, **kw}),
        "opt": lambda **kw: T.OPTConfig(**{"hidden_size": HIDDEN, "ffn_dim": INTER, "num_hidden_layers": LAYERS,
                                           "num_attention_heads": HEADS, "vocab_size": VOCAB,
                                           "max_position_embeddings": MAX_POS, "word_embed_proj_dim": HIDDEN,
                                           "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, **kw}),
    }


def hf_config(family: str, **overrides: Any):
    """The transformers config object of a tiny ``family`` (one of TINY_FAMILIES), with overrides."""
    cfgs = _configs()
    if family not in cfgs:
        raise ValueError(f"tiny family {family!r}; allowed: {list(TINY_FAMILIES)}")
    return cfgs[family](**overrides)


def build_tiny_checkpoint(family: str, path: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """A randomly initialised transformers model of ``family`` saved (safetensors) under ``path``."""
    import torch
    from transformers import AutoModelForCausalLM
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_config(family, **overrides))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.08)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            else:   # norm weights
                p.copy_(1.0 + torch.randn(p.shape, generator=gen) * 0.05)
    path = Path(path)
    model.save_pretrained(path, safe_serialization=True)
    return path


def load_hf(path: str | Path):
    """The saved model back, as transformers loads it: local files only, never the directory's own code."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    return model.eval()
