"""`llmaccel explore`: sweep designs x recipes x workloads (Ray), prune with the analytical bound, store, front."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "explore"
HELP = ("design-space exploration: fit check, analytical bound, cycle simulation per point on Ray; "
        "results in SQLite; Pareto fronts as tables and plots")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="exploration spec YAML (see examples/explore-u280.yaml)")
    p.add_argument("--store", default=None, help="SQLite result store (default OUT/results.sqlite); reused "
                                                  "across runs: points already in it are not recomputed")
    p.add_argument("--out", default=None, help="directory for front.md and the plots (default out/explore-NAME)")
    p.add_argument("--workers", type=int, default=None, help="local Ray CPUs (default: all cores); 1 = serial, no Ray")
    p.add_argument("--address", default=None, help="join an existing Ray cluster (host:port, ray://host:port, auto)")
    p.add_argument("--no-prune", action="store_true", help="simulate every point that fits (no analytical pruning)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> dict:
    from llmaccel.reports.explore import explore, load_spec
    from llmaccel.reports.explore.plots import check_front_outputs, front_table, slug, write_fronts
    from llmaccel.errors import LlmaccelError
    spec = load_spec(args.spec)
    out = Path(args.out) if args.out else Path("out") / f"explore-{slug(spec.name)}"
    store = Path(args.store) if args.store else out / "results.sqlite"
    check_front_outputs(spec, out)
    try:
        res = explore(spec, store, workers=args.workers, address=args.address, progress=not args.quiet,
                      prune=False if args.no_prune else None)
    except KeyboardInterrupt:
        raise LlmaccelError(f"interrupted: every point finished so far is kept in '{store}'; rerun the same "
                            f"command to continue") from None
    files = write_fronts(res, out)
    by_hash = {r["hash"]: r for r in res.rows}
    result = {"spec": spec.name, "store": str(store), "sweep": res.sweep, "counts": res.counts,
              "seconds": round(res.seconds, 3), "objectives": res.objectives, **files,
              # each front in the engine's own order (by point hash), so the JSON is the same however it ran
              "fronts": {g: [{k: by_hash[h].get(k) for k in ("hash", "label", "recipe", "decode_tokens_per_s",
                                                             "tokens_per_J", "ttft_s", "decode_ms_per_token",
                                                             "resource_share", "perplexity")}
                             for h in hashes] for g, hashes in res.fronts.items()}}
    if not args.json:
        c = res.counts
        print(f"{spec.name}: {c['points']} points ({c['cached']} from the store), {c['estimated']} estimated, "
              f"{c['simulated']} simulated, {c['pruned']} pruned by the analytical bound, {res.seconds:.1f} s")
        statuses = {}
        for r in res.rows:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        print("  status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
        for g in sorted(res.fronts):
            print(f"\nPareto front, {g} ({len(res.fronts[g])} points):")
            print(front_table([r for r in res.rows if r["group"] == g and r.get("on_front")],
                              spec.quality is not None))
        print(f"\nstore {store}\ntable {files['table']}")
        for p in files["plots"].values():
            print(f"plot  {p}")
    return result
