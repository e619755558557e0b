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


def test_run_check_reference_reports_the_match(host_w8, capsys):
    """--check-reference: the simulator's greedy tokens against the PyTorch reference of the same compressed
    model (host.demo_flow.check_against_reference, the demo's check): in the units' reduction order the
    reference's tokens and logits are the simulator's, bit for bit."""
    import pytest
    if not (host_w8[1] / "tokenizer.json").is_file():
        pytest.skip("checkpoint without a tokenizer (bundled model not in the tree yet)")
    rc = main(["run", "--artifact", str(host_w8[1]), "--prompt", "def f", "--max-new-tokens", "4", "--json",
               "--check-reference"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["tokens_match_reference"] is True
    assert out["reference_token_ids"] == out["token_ids"]
    assert out["max_abs_logit_diff"] == 0.0 and out["max_rel_logit_diff"] == 0.0
    rc = main(["run", "--artifact", str(host_w8[1]), "--prompt", "def f", "--json"])
    assert "tokens_match_reference" not in json.loads(capsys.readouterr().out)


def test_run_check_reference_needs_greedy(host_w8, capsys):
    rc = main(["run", "--artifact", str(host_w8[1]), "--prompt", "x", "--temperature", "0.7", "--check-reference",
               "--json"])
    assert rc == 2 and "--check-reference compares greedy tokens" in json.loads(capsys.readouterr().out)["error"]
