"""Helpers shared by subcommands: the bundled model, progress lines, tokenization."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from llmaccel.errors import LlmaccelError


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
    from llmaccel.host.session import load_tokenizer as _load
    return _load(model_dir)


# ----- argument types and readers shared by every subcommand ---------------------------------------
# argparse calls a ``type=`` function on the text given; an ``argparse.ArgumentTypeError`` becomes one
# usage error naming the flag (exit 2), so a bad value is refused before any work starts.

def positive_int(text: str) -> int:
    """An integer >= 1 (token counts, lengths)."""
    return _int_at_least(text, 1)


def at_least(low: int):
    """An argparse type: an integer >= ``low`` (e.g. perplexity needs two tokens)."""
    def parse(text: str) -> int:
        return _int_at_least(text, low)
    parse.__name__ = f"integer >= {low}"
    return parse


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    import argparse
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} must be >= {low}")
    return value


def finite_float(text: str) -> float:
    """A finite number (``nan`` and ``inf``, which float() accepts, are refused)."""
    import argparse
    import math
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' must be a finite number")
    return value


def read_text_file(path: Path, flag: str) -> str:
    """A UTF-8 text file (a prompt, a calibration or held-out text); every problem is one LlmaccelError."""
    if not path.exists():
        raise LlmaccelError(f"{flag} '{path}' does not exist")
    if not path.is_file():
        raise LlmaccelError(f"{flag} '{path}' is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LlmaccelError(f"{flag} '{path}' is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                            f"give a UTF-8 text file") from None
    except OSError as exc:
        raise LlmaccelError(f"{flag} '{path}': cannot read ({exc.strerror or exc})") from None
    if "\x00" in text:
        raise LlmaccelError(f"{flag} '{path}' holds NUL bytes: a binary file, not text")
    if not text.strip():
        raise LlmaccelError(f"{flag} '{path}' is empty; give a file with text in it")
    return text
