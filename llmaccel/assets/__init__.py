"""Data that ships inside the llmaccel package: a small trained Llama and its texts.

Why bundled: accuracy figures (perplexity before/after compression) only mean
something on a model that has learned its data, and the tests, the demo and the
compression recipes must run offline on a fresh clone. The checkpoint is made by
``scripts/train_tiny_llama.py``; ``tiny-llama/TRAINING.md`` says how, on what
corpus (CPython's own documentation and docstrings, PSF-2.0) and how well.

Paths are resolved next to this file, which works for an editable install and a
regular (unzipped) wheel install alike.
"""
from __future__ import annotations

from pathlib import Path

_ASSETS_DIR = Path(__file__).resolve().parent

__all__ = ["bundled_model_dir", "heldout_text_path", "calibration_text_path"]


def bundled_model_dir() -> Path:
    """Directory of the bundled ``tiny-llama`` checkpoint.

    It holds ``config.json``, ``model.safetensors`` (float16) and the tokenizer
    files, so both ``LlamaForCausalLM.from_pretrained(dir)`` and
    ``AutoTokenizer.from_pretrained(dir)`` load it offline.
    """
    return _ASSETS_DIR / "tiny-llama"


def heldout_text_path() -> Path:
    """Fixed evaluation text: whole corpus documents that neither the tokenizer nor the model saw.

    Perplexities reported by llmaccel are measured on this file so that figures
    from different runs and recipes stay comparable.
    """
    return _ASSETS_DIR / "text" / "heldout.txt"


def calibration_text_path() -> Path:
    """Calibration text for GPTQ / Wanda, drawn from the training split.

    Kept apart from the held-out text on purpose: calibrating on the evaluation
    text would flatter the compressed model's perplexity.
    """
    return _ASSETS_DIR / "text" / "calibration.txt"
