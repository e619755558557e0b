"""Model quality of a recipe: held-out perplexity of the recipe applied to a real checkpoint.

The design-point figures are for a model *shape* (Llama2-7B has no weights
here); quality needs weights, so the spec names a checkpoint (the bundled
trained tiny Llama by default) and each recipe is compressed and evaluated on
it with the PyTorch reference (gpu_baseline), the numerics contract in code.
The figure is labelled with the checkpoint it was measured on. Results are
cached in the store under a key that hashes the checkpoint files, the recipe,
the text and the code version.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Callable, Optional

from llmaccel.reports.explore.points import canonical, code_version, _recipe_dict
from llmaccel.reports.explore.spec import Quality
from llmaccel.errors import LlmaccelError


def checkpoint_dir(q: Quality) -> Path:
    if q.checkpoint == "bundled":
        # llmaccel.assets is a data package (paths only, no imports of ours), read here for its files
        from llmaccel.assets import bundled_model_dir
        return bundled_model_dir()
    p = Path(q.checkpoint)
    if not (p / "config.json").is_file():
        raise LlmaccelError(f"field 'quality.checkpoint': '{p}' is not a checkpoint directory (config.json + "
                            f"*.safetensors); allowed: 'bundled' or a local checkpoint directory")
    return p


def _texts(q: Quality) -> tuple[str, str]:
    from llmaccel.assets import calibration_text_path, heldout_text_path
    ev = Path(q.eval_text) if q.eval_text else heldout_text_path()
    if not ev.is_file():
        raise LlmaccelError(f"field 'quality.eval_text': '{ev}' is not a file")
    return ev.read_text(encoding="utf-8"), calibration_text_path().read_text(encoding="utf-8")


def quality_base_key(q: Quality) -> str:
    """Hash of the checkpoint files, the evaluation text and the evaluation settings."""
    h = hashlib.sha256()
    d = checkpoint_dir(q)
    for f in sorted(d.iterdir()):
        if f.suffix in (".json", ".safetensors") and f.is_file():
            h.update(f.name.encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())
    ev, cal = _texts(q)
    h.update(hashlib.sha256(ev.encode()).digest())
    h.update(hashlib.sha256(cal.encode()).digest())
    h.update(canonical({"eval_tokens": q.eval_tokens, "window": q.window, "code": code_version()}).encode())
    return h.hexdigest()[:24]


def recipe_key(base_key: str, recipe: str) -> str:
    return hashlib.sha256(canonical({"base": base_key, "recipe": _recipe_dict(recipe)}).encode()).hexdigest()[:24]


def recipe_perplexity(q: Quality, recipe: str, say: Optional[Callable[[str], None]] = None) -> float:
    """Compress the checkpoint with ``recipe`` and measure held-out perplexity with the reference model."""
    from llmaccel.gpu_baseline.evaluate import perplexity
    from llmaccel.gpu_baseline.reference import ReferenceModel
    from llmaccel.host.session import load_tokenizer
    from llmaccel.mapping.compress import compress_checkpoint, load_compressed
    from llmaccel.mapping.recipe import get_recipe
    r = get_recipe(recipe)
    d = checkpoint_dir(q)
    ev, cal = _texts(q)
    ids = load_tokenizer(d)(ev, add_special_tokens=False)["input_ids"]
    with tempfile.TemporaryDirectory() as tmp:
        compress_checkpoint(d, r, Path(tmp) / "artifact", calibration=cal if r.needs_calibration else None,
                            progress=say)
        model = ReferenceModel.from_compressed(load_compressed(Path(tmp) / "artifact"))
        return perplexity(model, ids, window=q.window, max_tokens=q.eval_tokens)
