"""The host driver: one Session serves one sequence at a time on a compiled artifact.

Usage::

    s = Session.load("artifact_dir")                     # backend="simulator" by default
    for tok in s.stream("def main():", max_new_tokens=32, temperature=0.8, top_k=40, seed=1):
        print(s.decode_text([tok]), end="")
    print(s.last_stats)

Life of a request: ``prefill(prompt)`` starts a new sequence (the KV cache is
reset and filled with the prompt), ``decode_step(token)`` appends one token and
returns the next logits, ``stream``/``generate`` do both with sampling.
Everything a request is given is validated *before* the session's state is
touched: a bad prompt, a bad sampling parameter, or a length beyond the
compiled maximum is one :class:`SessionError`, and the KV cache, its length
and the last logits are exactly what they were, so the session carries on.

Stats are per request: time to first token and decode tokens/s as simulated
for the device (simulator backend) next to the host's wall-clock time; energy
from the simulator's energy model over the same programs.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np

from llmaccel.host.artifact import CompiledArtifact, load_artifact
from llmaccel.host.backends import make_backend
from llmaccel.host.errors import SessionError
from llmaccel.host.sampling import Sampler, SamplingParams

Prompt = Union[str, Sequence[int]]


@dataclass
class RequestStats:
    """One request (prefill + its decode steps). ``*_s`` simulated device seconds unless named ``wall``."""

    backend: str
    design: str
    prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: Optional[float] = None                 # prefill + first token's LM head, simulated
    decode_s: float = 0.0                          # decode steps after the first token, simulated
    decode_tokens_per_s: Optional[float] = None
    energy_J: Optional[float] = None
    tokens_per_J: Optional[float] = None           # generated tokens / energy of the decode steps
    decode_energy_J: Optional[float] = None
    instructions_executed: int = 0
    wall_ttft_s: float = 0.0
    wall_s: float = 0.0
    wall_tokens_per_s: Optional[float] = None

    def to_dict(self) -> dict:
        return asdict(self)


class Session:
    """A compiled artifact on a backend, with the tokenizer of the model's checkpoint."""

    def __init__(self, artifact: CompiledArtifact, backend: str = "simulator", tokenizer: Any = None,
                 **backend_kw: Any):
        self.artifact = artifact
        self.backend = make_backend(backend, artifact, **backend_kw)
        if isinstance(tokenizer, (str, Path)):
            tokenizer = load_tokenizer(Path(tokenizer))
        self.tokenizer = tokenizer
        if tokenizer is None and artifact.tokenizer_dir is not None:
            self.tokenizer = load_tokenizer(artifact.tokenizer_dir)
        self._logits: Optional[np.ndarray] = None
        self.last_stats: Optional[RequestStats] = None

    @classmethod
    def load(cls, artifact_dir: Union[str, Path], compressed: Any = None, design: Optional[str] = None,
             backend: str = "simulator", tokenizer: Any = None, **backend_kw: Any) -> "Session":
        return cls(load_artifact(artifact_dir, compressed, design), backend, tokenizer, **backend_kw)

    # ---------------------------------------------------------------- state
    @property
    def max_len(self) -> int:
        return self.artifact.max_len

    @property
    def length(self) -> int:
        """Tokens in the KV cache."""
        return self.backend.length

    @property
    def vocab_size(self) -> int:
        return int(self.artifact.comp.spec.vocab_size)

    # ---------------------------------------------------------------- tokenizer
    def encode_prompt(self, prompt: Prompt) -> list[int]:
        if isinstance(prompt, str):
            if not prompt:
                raise SessionError("prompt is empty; allowed: at least one token")
            if self.tokenizer is None:
                raise SessionError("prompt is text but this session has no tokenizer; pass token ids, give the "
                                   "checkpoint's tokenizer (--tokenizer DIR / Session.load(..., tokenizer=DIR)), or "
                                   "compile the artifact with host.artifact.compile_artifact(tokenizer_dir=...)")
            ids = list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        else:
            ids = [int(t) for t in prompt] if _all_ints(prompt) else None
            if ids is None:
                raise SessionError("prompt must be text or a sequence of integer token ids")
        if not ids:
            raise SessionError("prompt is empty; allowed: at least one token")
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise SessionError(f"prompt token id {bad[0]} is outside the vocabulary; allowed: 0..{self.vocab_size - 1}")
        if len(ids) > self.max_len:
            raise SessionError(f"prompt has {len(ids)} tokens, beyond the compiled maximum max_len={self.max_len}; "
                               f"allowed: 1..{self.max_len} tokens (recompile with a larger max_len)")
        return ids

    def decode_text(self, ids: Sequence[int]) -> str:
        if self.tokenizer is None:
            return " ".join(str(i) for i in ids)
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    # ---------------------------------------------------------------- steps
    def prefill(self, prompt: Prompt) -> np.ndarray:
        """Start a new sequence with ``prompt``; returns the logits after its last token."""
        ids = self.encode_prompt(prompt)
        out = self.backend.prefill(ids)
        self._logits = out.logits
        self._last_out = out
        return out.logits

    def decode_step(self, token: int) -> np.ndarray:
        """Append ``token`` to the sequence; returns the next logits."""
        if self._logits is None or self.length == 0:
            raise SessionError("decode_step before prefill: start a sequence with prefill(prompt)")
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)) or not 0 <= int(token) < self.vocab_size:
            raise SessionError(f"token={token!r} is invalid; allowed: an integer id in 0..{self.vocab_size - 1}")
        if self.length + 1 > self.max_len:
            raise SessionError(f"the KV cache is full: {self.length} tokens of the compiled maximum "
                               f"max_len={self.max_len}; start a new sequence with prefill()")
        out = self.backend.decode(int(token))
        self._logits = out.logits
        self._last_out = out
        return out.logits

    @property
    def logits(self) -> Optional[np.ndarray]:
        return self._logits

    # ---------------------------------------------------------------- generation
    def stream(self, prompt: Prompt, max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
               top_p: float = 1.0, seed: int = 0, stop_token_ids: Sequence[int] = (),
               on_token: Optional[Callable[[int], None]] = None) -> Iterator[int]:
        """Generate up to ``max_new_tokens`` tokens, yielding each as soon as it is sampled.

        All arguments are validated before anything runs (the generator raises on its first ``next``
        only for backend failures). ``self.last_stats`` holds the request's stats when it ends.
        """
        params, ids = self._validate(prompt, max_new_tokens, temperature, top_k, top_p, seed)
        return self._stream(ids, max_new_tokens, params, set(int(t) for t in stop_token_ids), on_token)

    def generate(self, prompt: Prompt, max_new_tokens: int, **kw: Any) -> dict:
        """Non-streaming: returns {token_ids, text, stats}."""
        toks = list(self.stream(prompt, max_new_tokens, **kw))
        return {"token_ids": toks, "text": self.decode_text(toks), "stats": self.last_stats.to_dict()}

    def _validate(self, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        params = SamplingParams(temperature, top_k, top_p, seed)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
            raise SessionError(f"max_new_tokens={max_new_tokens!r} is invalid; allowed: an integer >= 1")
        ids = self.encode_prompt(prompt)
        # the last generated token is not fed back, so the cache holds prompt + max_new_tokens - 1
        if len(ids) + max_new_tokens - 1 > self.max_len:
            raise SessionError(f"prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) - 1 exceeds the "
                               f"compiled maximum max_len={self.max_len}; allowed: max_new_tokens <= "
                               f"{self.max_len - len(ids) + 1} for this prompt")
        return params, ids

    def _stream(self, ids: list[int], max_new_tokens: int, params: SamplingParams, stop: set,
                on_token: Optional[Callable[[int], None]]) -> Iterator[int]:
        sampler = Sampler(params)
        st = RequestStats(self.backend.name, self.artifact.design_name, prompt_tokens=len(ids))
        self.last_stats = st
        t0 = time.perf_counter()
        out = self.backend.prefill(ids)
        self._logits = out.logits
        st.ttft_s, st.energy_J = out.seconds, out.energy_J
        st.instructions_executed += out.instructions
        dec_e: Optional[float] = 0.0
        for i in range(max_new_tokens):
            tok = sampler(self._logits)
            if i == 0:
                st.wall_ttft_s = time.perf_counter() - t0
            st.generated_tokens += 1
            if on_token is not None:
                on_token(tok)
            yield tok
            if tok in stop or i == max_new_tokens - 1:
                break
            out = self.backend.decode(tok)
            self._logits = out.logits
            st.instructions_executed += out.instructions
            if out.seconds is not None:
                st.decode_s += out.seconds
            dec_e = None if (dec_e is None or out.energy_J is None) else dec_e + out.energy_J
        st.wall_s = time.perf_counter() - t0
        steps = st.generated_tokens - 1
        if steps > 0 and st.decode_s > 0:
            st.decode_tokens_per_s = steps / st.decode_s
        if st.wall_s > 0:
            st.wall_tokens_per_s = st.generated_tokens / st.wall_s
        st.decode_energy_J = dec_e if steps > 0 else None
        if st.energy_J is not None and dec_e is not None:
            st.energy_J += dec_e
        if steps > 0 and dec_e:
            st.tokens_per_J = steps / dec_e


def _all_ints(seq: Any) -> bool:
    try:
        return all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in seq)
    except TypeError:
        return False


def load_tokenizer(path: Path):
    """The checkpoint's own tokenizer: a local directory, loaded as data (mapping.checkpoint)."""
    from llmaccel.mapping.checkpoint import CheckpointError, load_local_tokenizer
    try:
        return load_local_tokenizer(path)
    except CheckpointError as exc:
        raise SessionError(str(exc)) from None
