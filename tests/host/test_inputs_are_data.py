"""Tokenizers load from local directories as data: a tokenizer carrying its own Python never runs it, never prompts."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmaccel.host.errors import SessionError
from llmaccel.host.session import load_tokenizer
from llmaccel.assets import bundled_model_dir
from llmaccel.errors import LlmaccelError

REPO = Path(__file__).resolve().parents[2]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _hostile_dir(root: Path, weights_from: Path | None = None) -> tuple[Path, Path]:
    """A checkpoint directory whose tokenizer_config.json maps AutoTokenizer to its own module; importing
    that module writes a marker file. Returns (directory, marker path)."""
    d, marker = root / "hostile", root / "MARKER"
    d.mkdir()
    src = bundled_model_dir()
    for name in TOKENIZER_FILES:
        shutil.copyfile(src / name, d / name)
    if weights_from is not None:
        for f in weights_from.iterdir():
            if f.suffix in (".json", ".safetensors") and not (d / f.name).exists():
                shutil.copyfile(f, d / f.name)
    (d / "hostile_tok.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('code from an input ran')\n"
        "from transformers import PreTrainedTokenizerFast\n"
        "class HostileTokenizer(PreTrainedTokenizerFast):\n    pass\n")
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.update(tokenizer_class="HostileTokenizer", auto_map={"AutoTokenizer": [None, "hostile_tok.HostileTokenizer"]})
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    return d, marker


def _answer_yes(code_or_argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run with 'y' waiting on stdin: transformers' remote-code prompt would read it and run the code."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, *code_or_argv], input="y\ny\n", capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_a_tokenizer_with_its_own_code_is_refused_without_a_prompt(tmp_path):
    d, marker = _hostile_dir(tmp_path)
    r = _answer_yes(["-c", f"from host.session import load_tokenizer\nload_tokenizer({str(d)!r})"], tmp_path)
    assert r.returncode != 0 and "SessionError" in r.stderr and "never runs code from an input" in r.stderr
    assert "[y/N]" not in r.stdout + r.stderr and "Do you wish" not in r.stdout + r.stderr
    assert not marker.exists()


def test_the_cli_gives_one_json_error_and_runs_nothing(tiny_checkpoint, tmp_path):
    d, marker = _hostile_dir(tmp_path, weights_from=tiny_checkpoint)
    r = _answer_yes(["-m", "llmaccel", "compress", "--eval", "--model", str(d), "--recipes", "w8", "--json"],
                    tmp_path)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stdout + r.stderr
    assert "auto_map" in json.loads(lines[0])["error"]
    assert "[y/N]" not in r.stdout + r.stderr and not marker.exists()


def test_calibration_text_never_runs_a_tokenizers_code(tiny_checkpoint, tmp_path, calib_text, monkeypatch):
    from llmaccel.mapping.compress import compress_checkpoint
    from llmaccel.mapping.recipe import get_recipe
    d, marker = _hostile_dir(tmp_path, weights_from=tiny_checkpoint)
    monkeypatch.setattr("builtins.input", lambda *a: "y")     # a user who would answer yes to a prompt
    with pytest.raises(LlmaccelError, match="never runs code from an input"):
        compress_checkpoint(d, get_recipe("w4-g128-gptq"), tmp_path / "o", calibration=calib_text)
    assert not marker.exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["meta-llama/Llama-2-7b-hf", "gpt2", "does/not/exist"])
def test_a_tokenizer_that_is_not_a_local_directory_is_an_error(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)              # so a relative name cannot be a directory by chance
    with pytest.raises(SessionError, match="is not a local directory; .* never downloads"):
        load_tokenizer(Path(name))


def test_the_bundled_tokenizer_still_loads():
    tok = load_tokenizer(bundled_model_dir())
    assert tok("hello world", add_special_tokens=False)["input_ids"]
