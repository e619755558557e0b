"""`llmaccel run`: generates with stats as JSON; bad input is one error line."""
from __future__ import annotations

import json

from llmaccel.cli import main


def test_run_json_on_an_artifact(host_w8, capsys):
    import pytest
    if not (host_w8[1] / "tokenizer.json").is_file():
        pytest.fail(f"the bundled model has no tokenizer.json: {host_w8[1]} (a tracked file is missing)")
    rc = main(["run", "--artifact", str(host_w8[1]), "--prompt", "def f", "--max-new-tokens", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(out["token_ids"]) == 4
    st = out["stats"]
    assert st["backend"] == "simulator" and st["design"] == "flightllm-u280"
    assert st["ttft_s"] > 0 and st["decode_tokens_per_s"] > 0 and st["tokens_per_J"] > 0


def test_run_bad_input_is_one_error(host_w8, capsys):
    rc = main(["run", "--artifact", str(host_w8[1]), "--prompt", "x", "--temperature", "1", "--top-p", "2", "--json"])
    assert rc == 2 and "top_p" in json.loads(capsys.readouterr().out)["error"]
    rc = main(["run", "--artifact", str(host_w8[1]), "--design", "flightllm-u55c", "--prompt", "x", "--json"])
    assert rc == 2 and "flightllm-u280" in json.loads(capsys.readouterr().out)["error"]
