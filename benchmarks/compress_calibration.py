"""Compress the bundled model with a calibrated recipe (default flightllm), one thread: CPU seconds.

Prints one JSON line: the median and all runs of process CPU time and wall time of
``compress_checkpoint``, and the number of float64 layer forwards it ran (mapping.calibration).
Run it on two trees (PYTHONPATH=...) to compare; docs/numerics.md section 6 quotes it.

    PYTHONPATH=$PWD python3 benchmarks/compress_calibration.py --runs 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", default="flightllm")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    import torch
    torch.set_num_threads(1)
    import llmaccel.mapping.calibration as cal
    from llmaccel.assets import bundled_model_dir, calibration_text_path
    from llmaccel.mapping.compress import compress_checkpoint
    from llmaccel.mapping.recipe import get_recipe

    forwards = [0]
    real = cal.layer_forward

    def counted(*args, **kw):
        forwards[0] += 1
        return real(*args, **kw)

    cal.layer_forward = counted
    import llmaccel.mapping.compress as comp
    comp.layer_forward = counted
    text = calibration_text_path().read_text(encoding="utf-8")
    cpu, wall, n_fwd = [], [], []
    for _ in range(a.runs):
        forwards[0] = 0
        with tempfile.TemporaryDirectory() as tmp:
            c0, w0 = time.process_time(), time.perf_counter()
            compress_checkpoint(bundled_model_dir(), get_recipe(a.recipe), Path(tmp) / "o", calibration=text)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        n_fwd.append(forwards[0])
    print(json.dumps({"benchmark": "compress_calibration", "recipe": a.recipe, "threads": 1,
                      "cpu_s_median": statistics.median(cpu), "cpu_s": cpu, "wall_s": wall,
                      "layer_forwards": n_fwd[0], "mapping": str(Path(comp.__file__).parent)}))


if __name__ == "__main__":
    main()
