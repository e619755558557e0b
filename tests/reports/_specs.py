"""Small sweeps for the exploration and report tests (the tiny model shape and the tiny test design)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY_DESIGN = str(ROOT / "tests" / "simulator" / "data" / "tiny-u280.yaml")


def tiny_spec(**over) -> dict:
    spec = {"name": "tiny-sweep", "designs": [TINY_DESIGN], "models": ["tiny"], "recipes": ["w4-g128-rtn"],
            "workloads": [{"prefill": 32, "decode": 16}], "max_len": 256,
            "knobs": {"cores": [1, 2], "clock_MHz": [150, 250], "chains_per_core": [4, 8]}}
    spec.update(over)
    return spec


def tiny_report_spec(**over) -> dict:
    spec = {"name": "tiny-report", "models": ["tiny"], "max_len": 256,
            "workloads": [{"prefill": 32, "decode": 16}, {"prefill": 128, "decode": 64}],
            "fpga": {"designs": [TINY_DESIGN], "recipes": ["w4-g128-rtn"]},
            "gpus": {"devices": ["a100-sxm-80gb", "h100-sxm-80gb"], "recipe": "fp16"}}
    spec.update(over)
    return spec


def write_tiny_report(tmp_path, **over):
    """Run ``llmaccel report`` on the tiny spec; returns (exit code, out dir)."""
    import yaml
    from llmaccel.cli import main
    spec = tmp_path / "report.yaml"
    spec.write_text(yaml.safe_dump(tiny_report_spec(**over)))
    out = tmp_path / "report"
    return main(["report", str(spec), "--out", str(out), "--quiet"]), out
