"""GPU kernel targets (issue 10): W4 g128 decode GEMV vs copy bandwidth, 7B-shaped W4 decode vs its roofline.

Targets on an H100/H200-class GPU: the GEMV at 4096x4096 and 11008x4096
reaches >= 80 % of the copy bandwidth measured in the same run; the
Llama2-7B-shaped W4 decode step (synthetic weights, CUDA graph) >= 70 % of its
bandwidth roofline (its bytes per token at the measured copy bandwidth).
Prints one JSON line; with --out also writes the full measurement file
(gpu_baseline/measured.py's schema). Without a CUDA GPU it prints a line
saying why it skipped and exits 0.
Usage: python benchmarks/gpu_kernels.py [--out FILE] [--no-energy] [--repeats N]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GEMV_TARGET = 0.80      # share of copy bandwidth (issue 10 targets)
DECODE_TARGET = 0.70    # share of the decode step's bandwidth roofline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-energy", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device-preset", default=None)
    args = ap.parse_args()
    import torch
    if not torch.cuda.is_available():
        print(json.dumps({"benchmark": "gpu_kernels", "skipped": True,
                          "reason": f"no CUDA GPU (torch {torch.__version__}, torch.cuda.is_available() is False); "
                                    "nothing measured"}))
        return
    from llmaccel.gpu_baseline.bench import BenchConfig, run_gpu_bench
    from llmaccel.gpu_baseline.measured import write_measurement
    cfg = BenchConfig(model="llama2-7b", recipe="w4-g128-rtn", prefill=128, decode=128, repeats=args.repeats,
                      include_hf=False, bundled_tokens=0, energy=not args.no_energy, device_preset=args.device_preset,
                      command="python benchmarks/gpu_kernels.py " + " ".join(sys.argv[1:]))
    m = run_gpu_bench(cfg, lambda s: print(f"  .. {s}", file=sys.stderr, flush=True))
    if args.out:
        write_measurement(m, args.out)
    gemv = {f"{k.shape['out_features']}x{k.shape['in_features']}_{k.activation}": round(k.share_of_copy, 3)
            for k in m.kernels if k.kernel == "decode_gemv"}
    decode = {k.activation: round(k.share_of_copy, 3) for k in m.kernels if k.kernel == "decode_step"}
    w4_int8 = [v for key, v in gemv.items() if key.endswith("_int8")]
    print(json.dumps({
        "benchmark": "gpu_kernels", "gpu": m.gpu.name, "device_preset": m.gpu.device_preset, "provenance": "measured",
        "copy_GBps": round(m.copy_bandwidth.GBps, 1), "copy_share_of_peak": round(m.copy_bandwidth.share_of_peak, 3),
        "gemv_share_of_copy": gemv, "gemv_target": GEMV_TARGET,
        "gemv_meets_target": bool(w4_int8) and min(w4_int8) >= GEMV_TARGET,
        "decode_7b_share_of_roofline": decode, "decode_target": DECODE_TARGET,
        "decode_meets_target": decode.get("int8", 0.0) >= DECODE_TARGET,
        "decode_7b_ms_per_token": {r.impl: round(r.ms_per_token, 3) for r in m.runs if r.phase == "decode"},
        "idle_power_W": None if m.idle_power is None else round(m.idle_power.W, 1),
        "measurement_file": args.out,
    }))


if __name__ == "__main__":
    main()
