"""`llmaccel simulate` as users run it: --json with the breakdown, --explain, --plot, bad HBM ports."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

TINY_DESIGN = Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml"


def llmaccel(*args):
    return subprocess.run([sys.executable, "-m", "llmaccel", *args], capture_output=True, text=True, timeout=600)


def test_simulate_json_explain_and_plot(tmp_path):
    png = tmp_path / "where.png"
    proc = llmaccel("simulate", "--model", "tiny", "--design", str(TINY_DESIGN), "--recipe", "w4-g128-rtn",
                    "--prefill", "32", "--decode", "16", "--max-len", "256", "--explain", "--plot", str(png),
                    "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    ms = out["breakdown"]["decode_ms_per_token"]
    assert abs(sum(ms.values()) - out["decode_ms_per_token"]) < 1e-9 * out["decode_ms_per_token"]
    ex = out["explain"]
    assert ex["memory_system"]["hbm_axi_port"].startswith("256 b x 450 MHz")
    assert ex["overheads"]["setup_cycles_per_transfer"] >= 1
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_simulate_explain_prints_the_breakdown():
    proc = llmaccel("simulate", "--model", "tiny", "--design", str(TINY_DESIGN), "--recipe", "w4-g128-rtn",
                    "--prefill", "32", "--decode", "16", "--max-len", "256", "--explain")
    assert proc.returncode == 0, proc.stderr
    for word in ("weight_stream", "kv_reads", "lm_head", "HBM path", "overheads"):
        assert word in proc.stdout


def _design_with(tmp_path, **changes):
    d = yaml.safe_load(TINY_DESIGN.read_text())
    d.update(changes)
    p = tmp_path / "d.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_simulate_hbm_port_the_hbm_cannot_take_is_one_error(tmp_path):
    for changes, words in (({"hbm_clock_MHz": 600}, ("hbm_clock_MHz", "600", "450")),
                           ({"hbm_port_bits": 384}, ("hbm_port_bits=384", "512"))):
        proc = llmaccel("simulate", "--model", "tiny", "--design", str(_design_with(tmp_path, **changes)),
                        "--recipe", "w4-g128-rtn", "--prefill", "32", "--decode", "4", "--max-len", "256", "--json")
        assert proc.returncode == 2, proc.stderr
        err = json.loads(proc.stdout)["error"]
        assert all(w in err for w in words), err
        assert "Traceback" not in proc.stderr
