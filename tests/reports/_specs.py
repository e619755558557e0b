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
