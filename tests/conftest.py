"""Shared fixtures: small real Llama checkpoints built by the tests themselves."""
from __future__ import annotations

import os

# pytest -n 2 runs two workers on two cores: one intra-op thread each, or the
# OpenMP pools of the two workers spin against each other (measured 20x slower).
# Set before torch is imported; subprocesses (CLI tests) inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json
from pathlib import Path

import pytest
import torch

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# Triton picks the interpreter when a kernel is *defined*, and kernels that call other @triton.jit
# helpers only work if both were defined in the same mode. Test modules outside tests/gpu_baseline
# (families, CLI) import gpu_baseline.triton too, so the choice is made here, before any of them.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from hypothesis import settings as _hypothesis_settings  # noqa: E402

# Same inputs, same bits: property tests draw the same examples on every run and machine,
# so a CI run cannot fail on an example no developer has seen.
_hypothesis_settings.register_profile("llmaccel", derandomize=True, deadline=None)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "llmaccel"))


def make_llama_checkpoint(path: Path, seed: int = 0, hidden: int = 128, inter: int = 256, layers: int = 2,
                          heads: int = 4, kv_heads: int = 2, vocab: int = 256, max_pos: int = 256,
                          dtype=torch.float32) -> Path:
    """A randomly initialised transformers LlamaForCausalLM saved as a local checkpoint."""
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, vocab_size=vocab,
                      max_position_embeddings=max_pos, rms_norm_eps=1e-5, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).to(dtype)
    # larger-than-default init so that quantization error is visible in logits
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.08)
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_llama_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-llama")


@pytest.fixture(scope="session")
def calib_text() -> str:
    words = ("the accelerator maps every layer onto sparse chains of digital signal processing slices "
             "while weights stream from high bandwidth memory channels and activations stay on chip").split()
    import random
    rng = random.Random(0)
    return " ".join(rng.choice(words) for _ in range(3000))


@pytest.fixture(scope="session")
def llama_checkpoint():
    """``make_llama_checkpoint`` for tests that need other shapes (``from conftest import`` is ambiguous:
    several test folders have a conftest.py)."""
    return make_llama_checkpoint


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (the reference model): two xdist workers on two cores would
    oversubscribe them otherwise, whatever OMP_NUM_THREADS the user exported."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
