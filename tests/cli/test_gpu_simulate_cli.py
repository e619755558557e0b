"""`llmaccel simulate --device <gpu>`: the modelled GPU baseline through the real CLI."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmaccel.cli import main

TINY_DESIGN = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")


@pytest.fixture(autouse=True)
def _no_committed_measurements(tmp_path, monkeypatch):
    """These tests check the datasheet path; committed measurements must not change them."""
    empty = tmp_path / "no-measurements"
    empty.mkdir()
    monkeypatch.setattr("llmaccel.gpu_baseline.measured.MEASUREMENTS_DIR", empty)


def _run(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr().out
    return rc, json.loads(out.strip().splitlines()[-1])


def test_issue_command_as_a_user_runs_it():
    proc = subprocess.run([sys.executable, "-m", "llmaccel", "simulate", "--model", "llama2-7b", "--device",
                           "a100-sxm-80gb", "--recipe", "w4-g128-rtn", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    o = json.loads(proc.stdout)
    assert o["provenance"] == "modelled" and o["device"] == "a100-sxm-80gb" and o["recipe"] == "w4-g128-rtn"
    assert o["efficiency_source"] in ("datasheet roofline",) or o["efficiency_source"].startswith("measured:")
    assert o["decode_tokens_per_s"] == pytest.approx(1e3 / o["decode_ms_per_token"])
    assert o["bound"] == "memory" and o["power_source"]


def test_default_recipe_on_a_gpu_is_fp16_and_text_output(capsys):
    assert main(["simulate", "--device", "h100-sxm-80gb", "--prefill", "128", "--decode", "16"]) == 0
    text = capsys.readouterr().out
    assert "llama2-7b on h100-sxm-80gb (fp16)" in text and "modelled" in text
    assert "datasheet TDP (upper bound, not measured)" in text


def test_plot_is_written(capsys, tmp_path):
    png = tmp_path / "gpu.png"
    rc, o = _run(capsys, ["simulate", "--device", "h200-sxm-141gb", "--recipe", "w4-g128-rtn", "--plot", str(png),
                          "--json"])
    assert rc == 0 and o["plot"] == str(png) and png.stat().st_size > 1000


@pytest.mark.parametrize("argv, msg", [
    (["--device", "a100-sxm-80gb", "--design", "flightllm-u280"], "is a GPU and --design flightllm-u280"),
    (["--device", "alveo-u280"], "an FPGA run needs an accelerator design"),
    (["--device", "alveo-u55c", "--design", TINY_DESIGN], "does not match design"),
    (["--device", "h100-sxm-80gb", "--trace", "t.json"], "--trace applies to FPGA designs"),
    (["--device", "h100-sxm-80gb", "--no-fuse"], "--no-fuse applies to FPGA designs"),
    (["--device", "h100-sxm-80gb", "--prefill", "2000", "--decode", "100"], "exceeds --max-len 2048"),
    (["--device", "v100s-pcie-32gb", "--model", "llama2-13b", "--prefill", "1024", "--decode", "1024",
      "--max-len", "4096"], None),
    (["--device", "h100-sxm-80gb", "--recipe", "w5"], "unknown recipe 'w5'"),
    (["--device", "b200"], "unknown device preset 'b200'"),
])
def test_bad_combinations_are_one_json_error(capsys, argv, msg):
    rc, o = _run(capsys, ["simulate", *argv, "--json"])
    if msg is None:      # llama2-13b FP16 (26 GB + 3.4 GB KV at 2048 tokens) fits a 32 GB V100S
        assert rc == 0 and o["resident_GB"] < 32
        return
    assert rc == 2 and msg in o["error"]


def test_fpga_device_with_its_own_design_runs_the_fpga_path(capsys):
    rc, o = _run(capsys, ["simulate", "--model", "tiny", "--device", "alveo-u280", "--design", TINY_DESIGN,
                          "--recipe", "w4-g128-rtn", "--prefill", "32", "--decode", "8", "--max-len", "256", "--json"])
    assert rc == 0 and "hbm_bw_utilization" in o and o["design"]


def test_model_too_big_for_the_gpu_names_sizes(capsys, tmp_path):
    # Llama2-70B shapes as a config.json (no preset): 69e9 FP16 weights are ~138 GB
    cfg = dict(model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=8192, intermediate_size=28672,
               num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8, vocab_size=32000,
               max_position_embeddings=4096, rms_norm_eps=1e-5)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    rc, o = _run(capsys, ["simulate", "--model", str(tmp_path / "config.json"), "--device", "a100-pcie-40gb",
                          "--json"])
    assert rc == 2
    assert "does not fit a100-pcie-40gb" in o["error"] and "the GPU has 40 GB" in o["error"]
    assert "weights 13" in o["error"] and "KV cache" in o["error"]
