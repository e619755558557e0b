"""The bundled tiny Llama is real, trained, loadable offline, and reproducible by its script.

Every figure here is computed in the test from the committed files; nothing is
read back from TRAINING.md or training_log.json except the loss curve of a
smoke run the test itself starts.
"""
from __future__ import annotations

import importlib.util
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from llmaccel.assets import bundled_model_dir, calibration_text_path, heldout_text_path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "train_tiny_llama.py"

# The shapes issue 2 asks for: every dimension divisible by the quantization
# group (128) and by the N:M block (M = 16).
EXPECTED = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 32,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}
MAX_CHECKPOINT_BYTES = 16 * 1000 * 1000


@pytest.fixture(scope="module")
def model():
    from transformers import LlamaForCausalLM

    m = LlamaForCausalLM.from_pretrained(bundled_model_dir(), dtype=torch.float32, local_files_only=True)
    m.eval()
    return m


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_model_dir(), local_files_only=True)


def _perplexity(model, ids: torch.Tensor, window: int) -> float:
    nll, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, ids.numel() - 1, window):
            chunk = ids[start:start + window]
            logits = model(input_ids=chunk[None]).logits[0, :-1].float()
            nll += torch.nn.functional.cross_entropy(logits, chunk[1:], reduction="sum").item()
            count += chunk.numel() - 1
    return math.exp(nll / count)


def test_checkpoint_loads_with_stated_shapes(model):
    cfg = model.config
    assert cfg.model_type == "llama"
    for key, value in EXPECTED.items():
        assert getattr(cfg, key) == value, key
    assert cfg.vocab_size in (2048, 4096)
    assert cfg.rms_norm_eps == pytest.approx(1e-5)
    rope = getattr(cfg, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", None))
    assert theta == pytest.approx(10000.0)
    assert rope.get("rope_type", "default") == "default"
    # Every linear dimension fits group size 128 and N:M with M = 16.
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear):
            for dim in mod.weight.shape:
                assert dim % 128 == 0 and dim % 16 == 0, (name, dim)
    # Parameter count from the shapes alone (untied embeddings, no biases).
    h, i, v, n = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, cfg.num_hidden_layers
    kv = cfg.num_key_value_heads * cfg.head_dim
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h
    assert sum(p.numel() for p in model.parameters()) == 2 * v * h + n * per_layer + h


def test_checkpoint_is_float16_and_small():
    path = bundled_model_dir() / "model.safetensors"
    assert path.stat().st_size <= MAX_CHECKPOINT_BYTES
    with safe_open(str(path), framework="pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert dtypes == {"F16"}


def test_model_is_trained(model, tokenizer):
    """Perplexity on unseen text far below a uniform guess, and far below the same net untrained."""
    from transformers import LlamaForCausalLM

    text = heldout_text_path().read_text(encoding="utf-8")
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"][:2048])
    assert ids.numel() == 2048
    window = model.config.max_position_embeddings
    ppl = _perplexity(model, ids, window)
    assert ppl < model.config.vocab_size / 10, ppl

    torch.manual_seed(0)
    untrained = LlamaForCausalLM(model.config).float().eval()
    ppl_untrained = _perplexity(untrained, ids, window)
    assert ppl_untrained > model.config.vocab_size / 2, ppl_untrained
    assert ppl * 10 < ppl_untrained


def test_tokenizer_round_trips(tokenizer, model):
    assert len(tokenizer) == model.config.vocab_size
    assert tokenizer.eos_token_id == model.config.eos_token_id
    samples = [
        heldout_text_path().read_text(encoding="utf-8")[:3000],
        calibration_text_path().read_text(encoding="utf-8")[:3000],
        "def f(x):\n\treturn x ** 2  # tabs, spaces   and trailing  \n",
        "Unicode: naïve café, Ελληνικά, 日本語, emoji 🐍, NUL-free \u00a0nbsp.",
        "",
    ]
    for text in samples:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
    # Byte-level BPE compresses English: clearly fewer tokens than bytes.
    sample = samples[0]
    assert len(tokenizer(sample, add_special_tokens=False)["input_ids"]) < len(sample.encode()) / 2


def test_texts_have_the_stated_sizes():
    heldout = heldout_text_path().read_text(encoding="utf-8")
    calibration = calibration_text_path().read_text(encoding="utf-8")
    assert 20_000 <= len(heldout.encode()) <= 40_000
    assert 15_000 <= len(calibration.encode()) <= 30_000


def _load_script():
    spec = importlib.util.spec_from_file_location("train_tiny_llama", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def test_heldout_is_never_in_the_training_split():
    """Rebuild the corpus split and check the committed held-out text is exactly the unseen part."""
    recorded = json.loads((bundled_model_dir() / "training_log.json").read_text())["python"]
    if recorded != platform.python_version():
        pytest.skip(f"corpus comes from Python {recorded}'s stdlib; this is {platform.python_version()}")
    script = _load_script()
    docs = script.build_corpus()
    train, heldout, calibration = script.split_corpus(docs)
    assert script.join_documents(heldout) == heldout_text_path().read_text(encoding="utf-8")
    assert script.join_documents(calibration) == calibration_text_path().read_text(encoding="utf-8")
    train_text = "\n".join(d.text for d in train)
    for doc in heldout:
        for para in doc.text.split("\n\n"):
            if len(para) >= 200:
                assert para not in train_text, para[:80]
    train_names = {d.name for d in train}
    assert all(d.name in train_names for d in calibration)


SMOKE_ARGS = [
    "--steps", "30", "--hidden-size", "64", "--intermediate-size", "128", "--num-layers", "2",
    "--num-heads", "4", "--num-kv-heads", "2", "--vocab-size", "512", "--seq-len", "64",
    "--batch-size", "8", "--max-corpus-chars", "60000", "--eval-every", "0", "--log-every", "10",
    "--threads", "1",
]


def _smoke(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *SMOKE_ARGS, "--out-dir", str(out / "model"), "--text-dir", str(out / "text")],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_training_script_smoke_run(tmp_path):
    from transformers import AutoTokenizer, LlamaForCausalLM

    proc = _smoke(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model_dir = tmp_path / "model"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "TRAINING.md"):
        assert (model_dir / name).is_file(), name
    assert not list(tmp_path.glob("model.tmp.*")), "temporary directory left behind"
    tok_cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"  # loadable by transformers 4.x too
    m = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    assert m.config.hidden_size == 64 and m.config.vocab_size == len(tok) == 512
    ids = torch.tensor([tok("The list.sort() method", add_special_tokens=False)["input_ids"]])
    assert torch.isfinite(m(input_ids=ids).logits).all()

    losses = json.loads((model_dir / "training_log.json").read_text())["losses"]
    assert len(losses) == 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.3, (first, last)
    assert (tmp_path / "text" / "heldout.txt").stat().st_size > 20_000

    # Same seed, same inputs: same bits.
    again = tmp_path / "again"
    proc2 = _smoke(again)
    assert proc2.returncode == 0, proc2.stderr[-2000:]
    assert (again / "model" / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()
    assert (again / "model" / "tokenizer.json").read_bytes() == (model_dir / "tokenizer.json").read_bytes()
