"""Helpers shared by subcommands: the bundled model, progress lines, tokenization."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from sparse_dsp.errors import LlmaccelError


def model_dir_arg(value: Optional[str]) -> Path:
    """--model: a checkpoint directory; default the bundled trained model."""
    if value is None:
        from llmaccel.assets import bundled_model_dir
        return bundled_model_dir()
    p = Path(value)
    if not p.is_dir():
        raise LlmaccelError(f"--model '{value}' is not a checkpoint directory (config.json + *.safetensors)")
    return p


def progress(enabled: bool):
    """A progress printer on stderr (stdout stays clean for --json)."""
    def say(msg: str) -> None:
        if enabled:
            print(f"  .. {msg}", file=sys.stderr, flush=True)
    return say


def load_tokenizer(model_dir: Path):
    from host.session import load_tokenizer as _load
    return _load(model_dir)
