"""The dense FP16 baseline: the same checkpoint through transformers, as GPU users run it today.

Greedy generation with a static KV cache (``cache_implementation="static"``),
optionally with ``torch.compile`` of the forward (``mode="reduce-overhead"``,
CUDA graphs inside), which is where it helps: the decode step of a small
batch is launch-bound. Checkpoints are local directories only
(``local_files_only=True``, ``trust_remote_code=False``).

Timing does not reach into transformers' internals: prefill is the time of
``generate`` with one new token; decode ms/token is the extra time of N new
tokens over one, divided by N - 1.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import torch

from llmaccel.errors import LlmaccelError


@dataclass
class HfTiming:
    """Medians over repeats of one prompt length and one number of new tokens (measured)."""

    prefill_ms: float
    decode_ms_per_token: float
    prompt_tokens: int
    new_tokens: int
    repeats: int


class HfBaseline:
    """A transformers LlamaForCausalLM in FP16 (or another dtype on CPU for tests) with a static cache."""

    def __init__(self, model, device: torch.device, compiled: bool):
        self.model, self.device, self.compiled = model, device, compiled

    @classmethod
    def from_checkpoint(cls, checkpoint_dir: Union[str, Path], device: str = "cuda",
                        dtype: torch.dtype = torch.float16, compile: bool = False) -> "HfBaseline":
        from transformers import LlamaForCausalLM
        path = Path(checkpoint_dir)
        if not (path / "config.json").is_file():
            raise LlmaccelError(f"checkpoint '{path}' has no config.json; allowed: a local Hugging Face Llama directory")
        model = LlamaForCausalLM.from_pretrained(str(path), dtype=dtype, local_files_only=True,
                                                 trust_remote_code=False)
        return cls.from_model(model, device, compile)

    @classmethod
    def from_model(cls, model, device: str = "cuda", compile: bool = False) -> "HfBaseline":
        dev = torch.device(device)
        model = model.to(dev).eval()
        if compile:
            model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
        return cls(model, dev, compile)

    @torch.no_grad()
    def generate_greedy(self, prompt: list[int], max_new_tokens: int) -> list[int]:
        ids = torch.tensor([prompt], dtype=torch.long, device=self.device)
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                  min_new_tokens=max_new_tokens, do_sample=False,
                                  cache_implementation="static", pad_token_id=0)
        return out[0, len(prompt):].tolist()

    def _timed(self, prompt: list[int], n: int) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        t0 = time.perf_counter()
        self.generate_greedy(prompt, n)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0

    def time_generation(self, prompt: list[int], new_tokens: int, repeats: int = 3, warmup: int = 1) -> HfTiming:
        """Prefill ms and decode ms/token, medians of ``repeats`` (after ``warmup`` untimed runs)."""
        if new_tokens < 2:
            raise LlmaccelError(f"new_tokens={new_tokens} is invalid; allowed: >= 2 (decode time is N over 1)")
        for _ in range(warmup):
            self._timed(prompt, new_tokens)
            self._timed(prompt, 1)
        one = statistics.median(self._timed(prompt, 1) for _ in range(repeats))
        many = statistics.median(self._timed(prompt, new_tokens) for _ in range(repeats))
        return HfTiming(one * 1e3, max(many - one, 0.0) * 1e3 / (new_tokens - 1), len(prompt), new_tokens, repeats)


def synthetic_llama(config: dict, device: str = "cuda", dtype: torch.dtype = torch.float16, seed: int = 0,
                    std: float = 0.02):
    """A LlamaForCausalLM of ``config``'s shapes with random weights made on the device (no checkpoint)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)          # built in ``dtype``: a 7B model in FP32 first would need 27 GB
    try:
        with torch.device(device):
            model = LlamaForCausalLM(LlamaConfig(**config))
    finally:
        torch.set_default_dtype(old)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, std)
    return model
