"""A measurement file as gpu-bench writes it, for tests that need one (written under tmp_path only).

The figures are made up for the tests and are self-consistent by hand
arithmetic: 4 ms/token = 250 tokens/s; 512 decode tokens over 2.048 s at
300 W = 614.4 J, 512 / 614.4 = 0.8333 tokens/J; a copy of 1.6e12 B/s against a
2039 GB/s peak is 0.7847 of it.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

BASE = {
    "schema_version": 1,
    "provenance": "measured",
    "date": "2026-12-01T09:30:00Z",
    "commit": "134bdeb",
    "command": "llmaccel gpu-bench --json",
    "gpu": {
        "name": "NVIDIA A100-SXM4-80GB", "device_preset": "a100-sxm-80gb", "driver_version": "550.54.15",
        "cuda_version": "12.4", "memory_total_MiB": 81920, "power_limit_W": 400,
        "sm_clock_max_MHz": 1410, "mem_clock_max_MHz": 1593, "sm_clock_MHz": 1410, "mem_clock_MHz": 1593,
        "torch_version": "2.5.1", "triton_version": "3.1.0", "nvml_version": "12.550.54",
    },
    "copy_bandwidth": {"provenance": "measured", "bytes_copied": 1 << 30, "repeats": 20,
                       "GBps": 1600.0, "peak_GBps": 2039.0, "share_of_peak": 0.7847},
    "idle_power": {"provenance": "measured", "W": 60.0, "seconds": 5.0},
    "runs": [
        {"provenance": "measured", "phase": "decode", "model": "llama2-7b", "recipe": "w4-g128-rtn",
         "impl": "triton-int8act", "weights": "synthetic", "prefill": 512, "decode": 512, "repeats": 3,
         "cuda_graphs": True, "ms_per_token": 4.0, "tokens_per_s": 250.0,
         "energy_J": 614.4, "avg_power_W": 300.0, "tokens_per_J": 0.8333},
        {"provenance": "measured", "phase": "prefill", "model": "llama2-7b", "recipe": "w4-g128-rtn",
         "impl": "triton-int8act", "weights": "synthetic", "prefill": 512, "decode": 512, "repeats": 3,
         "ms_per_token": 0.2, "tokens_per_s": 5000.0},
    ],
    "kernels": [
        {"provenance": "measured", "kernel": "decode_gemv", "format": "w4-g128-sym", "activation": "int8",
         "shape": {"out_features": 4096, "in_features": 4096, "tokens": 1}, "split_k": 4, "repeats": 100,
         "ms": 0.01, "bytes_moved": 12_000_000, "GBps": 1200.0, "share_of_copy": 0.75},
    ],
    "notes": [],
}


def measurement_dict(**top) -> dict:
    """A deep copy of BASE with top-level fields replaced."""
    d = copy.deepcopy(BASE)
    d.update(top)
    return d


def write_json(folder: Path, name: str, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(json.dumps(data))
    return p
