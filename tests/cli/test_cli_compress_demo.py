"""`llmaccel compress` and `llmaccel demo` as users run them: subprocesses, JSON on stdout."""
import json
import math
import subprocess
import sys

import pytest
import torch

from llmaccel.mapping.compress import load_compressed


def llmaccel(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "llmaccel", *args], capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}")
    return proc


def test_compress_writes_a_loadable_artifact(tiny_checkpoint, tmp_path):
    out = tmp_path / "w8"
    res = json.loads(llmaccel("compress", "--model", str(tiny_checkpoint), "--recipe", "w8", "--out", str(out),
                              "--json").stdout)
    assert res["recipe"] == "w8" and res["avg_bits"] == 8.0 and res["sparsity"] == 0.0
    cm = load_compressed(out)
    assert cm.content_hash == res["content_hash"]


@pytest.mark.parametrize("args, field", [
    (["--recipe", "w5"], "unknown recipe 'w5'"),
    (["--model", "/nonexistent/ckpt"], "--model '/nonexistent/ckpt' is not a checkpoint directory"),
])
def test_compress_bad_input_is_one_json_error(tiny_checkpoint, tmp_path, args, field):
    base = ["compress", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "o"), "--json"]
    proc = llmaccel(*base, *args, check=False)
    assert proc.returncode == 2
    err = json.loads(proc.stdout)["error"]
    assert field in err
    assert not (tmp_path / "o").exists()


def hf_perplexity(model_dir, text, max_tokens, window=256):
    """Independent perplexity with transformers, same windows as gpu_baseline.evaluate."""
    from transformers import AutoTokenizer, LlamaForCausalLM
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = LlamaForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    ids = tok(text, add_special_tokens=False)["input_ids"][:max_tokens]
    nll, n = 0.0, 0
    for s in range(0, len(ids) - 1, window):
        chunk = torch.tensor(ids[s:s + window + 1])
        if len(chunk) < 2:
            break
        with torch.no_grad():
            logits = model(chunk[None, :-1]).logits[0].double()
        nll -= float(torch.log_softmax(logits, -1).gather(1, chunk[1:, None]).sum())
        n += len(chunk) - 1
    return math.exp(nll / n)


@pytest.fixture(scope="module")
def bundled():
    from llmaccel.assets import bundled_model_dir, heldout_text_path
    d = bundled_model_dir()
    if not (d / "model.safetensors").is_file():
        pytest.fail("the bundled trained model is missing from llmaccel/assets")
    return d, heldout_text_path().read_text(encoding="utf-8")


def test_eval_table_on_the_bundled_model(bundled, tmp_path):
    model_dir, text = bundled
    png = tmp_path / "ppl.png"
    res = json.loads(llmaccel("compress", "--eval", "--recipes", "fp32,w8,2:4-magnitude", "--max-eval-tokens", "1024",
                              "--plot", str(png), "--json").stdout)
    rows = {r["name"]: r for r in res["recipes"]}
    assert set(rows) == {"fp32", "w8", "2:4-magnitude"}
    assert rows["fp32"]["perplexity"] == pytest.approx(hf_perplexity(model_dir, text, 1024), rel=1e-4)
    assert rows["w8"]["avg_bits"] == 8 and rows["2:4-magnitude"]["sparsity"] == pytest.approx(0.5)
    assert rows["fp32"]["perplexity"] < rows["2:4-magnitude"]["perplexity"]
    assert png.stat().st_size > 10_000


def test_demo_runs_end_to_end(bundled):
    model_dir, text = bundled
    res = json.loads(llmaccel("demo", "--json", "--max-new-tokens", "8", "--eval-tokens", "512").stdout)
    assert res["perplexity_fp32"] == pytest.approx(hf_perplexity(model_dir, text, 512), rel=1e-4)
    assert res["perplexity_compressed"] > 0 and len(res["generated_token_ids"]) == 8
    assert res["recipe"] == "flightllm" and res["avg_bits"] <= 3.5 + 1e-9 and res["sparsity"] > 0
    # the simulated accelerator generated the reference's tokens, and against the reference in the units'
    # reduction order its logits are the same bits over prefill and every decode step (docs/numerics.md
    # section 5; with torch's vectorized order the demo measured 9.2e-3 of max |logit| on an AVX2 host)
    assert res["tokens_match_reference"] is True and res["max_rel_logit_diff"] == 0.0
    sim, proj = res["simulated"], res["projected"]
    assert sim["decode_tokens_per_s"] > 0 and sim["tokens_per_J"] > 0
    assert proj["model"] == "llama2-7b"
    assert 0 < proj["decode_tokens_per_s"] <= proj["roofline_decode_tokens_per_s"]
    assert 0 < proj["hbm_bw_utilization"] <= 1


def test_demo_rejects_bad_token_count():
    proc = llmaccel("demo", "--json", "--max-new-tokens", "0", check=False)
    assert proc.returncode == 2 and "--max-new-tokens: 0 must be >= 1" in json.loads(proc.stdout)["error"]
