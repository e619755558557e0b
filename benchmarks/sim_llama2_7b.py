"""Benchmark: timing-only Llama2-7B on flightllm-u280, prefill 512 + decode 512.

Prints ONE JSON line: wall time (median of --repeats runs, each in a fresh
process so caches do not carry over), peak RSS of the worst run, and the
simulated figures. Target (issue 3): under 10 s and 2 GB on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, time
t0 = time.perf_counter()
from mapping.sim_api import simulate
from simulator.design import load_design
from simulator.resources import fit_check
from simulator.specs.device import load_device
from sparse_dsp.errors import LlmaccelError
d = load_design("flightllm-u280")
try:
    fit_check(d, load_device(d.device))
    fit = None
except LlmaccelError as exc:   # the figures below then describe a design that does not fit: say so
    fit = str(exc)
r = simulate("llama2-7b", "flightllm-u280", "{recipe}", prefill=512, decode=512, check_fit=False)
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB
print(json.dumps({{"wall_s": wall, "peak_rss_MiB": rss, "design_fit_error": fit, "ttft_s": r.ttft_s,
                  "decode_ms_per_token": r.decode_ms_per_token, "decode_tokens_per_s": r.decode_tokens_per_s,
                  "power_W": r.power_W, "tokens_per_J": r.tokens_per_J}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--recipe", default="flightllm")
    args = ap.parse_args()
    runs = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", CHILD.format(recipe=args.recipe)], check=True,
                             capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    walls = [r["wall_s"] for r in runs]
    res = {"benchmark": "sim_llama2_7b", "model": "llama2-7b", "design": "flightllm-u280", "recipe": args.recipe,
           "prefill": 512, "decode": 512, "repeats": args.repeats,
           "wall_s_median": statistics.median(walls), "wall_s_max": max(walls),
           "peak_rss_MiB_max": max(r["peak_rss_MiB"] for r in runs),
           "target_wall_s": 10.0, "target_rss_MiB": 2048,
           **{k: runs[0][k] for k in ("design_fit_error", "ttft_s", "decode_ms_per_token", "decode_tokens_per_s", "power_W",
                                      "tokens_per_J")}}
    res["meets_target"] = res["wall_s_max"] < 10.0 and res["peak_rss_MiB_max"] < 2048
    print(json.dumps(res))


if __name__ == "__main__":
    main()
