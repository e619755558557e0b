"""Benchmark: design-space exploration of Llama2-7B on flightllm-u280 variants, on 2 cores with Ray.

Prints ONE JSON line:
* the main sweep (>= 500 design points x recipes, analytical pruning on, a fresh store): wall time,
  points per minute (target >= 200), how many points were simulated / pruned / did not fit;
* the same sweep again from its store (target < 5 s): in-process, and as ``llmaccel explore`` run
  twice in fresh processes (imports included): the first draws the fronts, the second is the rerun;
* a smaller sweep run with and without pruning: the two Pareto fronts must be equal;
* peak RSS: of this process, and of this process plus every descendant (Ray's raylet, GCS and
  workers), sampled from /proc every 0.2 s.
The load average at the start and the end is printed: the machine is shared, and a loaded run is
slower for reasons that are not the explorer's.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAIN = {  # 2 x 6 x 7 x 2 x 2 = 336 designs x 2 recipes = 672 points
    "name": "bench-explore", "designs": ["flightllm-u280"], "models": ["llama2-7b"],
    "recipes": ["flightllm", "w4-g128-rtn"], "workloads": [{"prefill": 512, "decode": 128}],
    "knobs": {"cores": [2, 4], "chains_per_core": {"start": 16, "stop": 56, "step": 8},
              "clock_MHz": {"start": 150, "stop": 300, "step": 25}, "decoders_per_channel": [7, 14],
              "hbm_port_bits": [256, 512]},
}
SMALL = {  # 2 x 2 x 4 x 2 = 32 points, every one simulated in the unpruned run
    "name": "bench-explore-small", "designs": ["flightllm-u280"], "models": ["llama2-7b"],
    "recipes": ["flightllm"], "workloads": [{"prefill": 512, "decode": 128}], "batch_size": 4,
    "knobs": {"cores": [2, 4], "chains_per_core": [24, 56], "clock_MHz": [150, 200, 250, 300],
              "decoders_per_channel": [7, 14]},
}


def _rss_tree_kB(root_pid: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/status") as f:
                kb = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
        rss[int(d)] = kb
    total, todo = 0, [root_pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


class PeakRss(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak_kB = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak_kB = max(self.peak_kB, _rss_tree_kB(os.getpid()))
            time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from llmaccel.reports.explore import explore, load_spec
    load0 = os.getloadavg()
    rss = PeakRss()
    rss.start()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = load_spec(MAIN)
        t0 = time.perf_counter()
        first = explore(spec, tmp / "main.sqlite", workers=args.workers, progress=False)
        wall = time.perf_counter() - t0
        statuses: dict[str, int] = {}
        for r in first.rows:
            statuses[r["status"] if not r.get("pruned_by") else "pruned"] = statuses.get(
                r["status"] if not r.get("pruned_by") else "pruned", 0) + 1
        t0 = time.perf_counter()
        again = explore(spec, tmp / "main.sqlite", workers=args.workers, progress=False)
        rerun_s = time.perf_counter() - t0
        import yaml
        (tmp / "main.yaml").write_text(yaml.safe_dump(MAIN))
        cmd = [sys.executable, "-m", "llmaccel", "explore", str(tmp / "main.yaml"), "--store", str(tmp / "main.sqlite"),
               "--out", str(tmp / "out"), "--quiet", "--json", "--workers", str(args.workers)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        t0 = time.perf_counter()
        cli = subprocess.run(cmd, capture_output=True, text=True, env=env)     # draws front.md and the plots
        first_cli_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        cli = subprocess.run(cmd, capture_output=True, text=True, env=env)     # the same command again
        rerun_cli_s = time.perf_counter() - t0
        cli_counts = json.loads(cli.stdout)["counts"] if cli.returncode == 0 else {"error": cli.stderr[-300:]}
        small = load_spec(SMALL)
        t0 = time.perf_counter()
        full = explore(small, tmp / "full.sqlite", workers=args.workers, progress=False, prune=False)
        full_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pruned = explore(small, tmp / "pruned.sqlite", workers=args.workers, progress=False, prune=True)
        pruned_s = time.perf_counter() - t0
    rss.stop.set()
    rss.join()
    key = ("decode_tokens_per_s", "tokens_per_J", "ttft_s", "resource_share")
    fa = {r["hash"]: [r[k] for k in key] for r in full.front_rows()}
    fb = {r["hash"]: [r[k] for k in key] for r in pruned.front_rows()}
    n = first.counts["points"]
    print(json.dumps({
        "benchmark": "explore", "model": "llama2-7b", "workers": args.workers, "cpus": os.cpu_count(),
        "workload": MAIN["workloads"][0], "points": n,
        "wall_s": round(wall, 2), "points_per_minute": round(60 * n / wall, 1), "target_points_per_minute": 200,
        "statuses": statuses, "simulated": first.counts["simulated"], "pruned": first.counts["pruned"],
        "front_sizes": {g: len(h) for g, h in first.fronts.items()},
        "rerun_from_cache_s": round(rerun_s, 3), "first_cli_from_cache_s": round(first_cli_s, 3),
        "rerun_cli_s": round(rerun_cli_s, 3), "target_rerun_s": 5.0,
        "rerun_recomputed": again.counts["estimated"] + again.counts["simulated"], "rerun_cli_counts": cli_counts,
        "small_sweep": {"points": full.counts["points"], "unpruned_simulated": full.counts["simulated"],
                        "pruned_simulated": pruned.counts["simulated"], "unpruned_s": round(full_s, 2),
                        "pruned_s": round(pruned_s, 2), "front_size": len(fa), "fronts_equal": fa == fb},
        "peak_rss_driver_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_with_ray_MB": round(rss.peak_kB / 1024, 1),
        "loadavg_start": [round(x, 2) for x in load0], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
