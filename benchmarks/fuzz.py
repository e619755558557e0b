"""Long fuzz run: >= 1e5 seeded hostile inputs (ISA words, YAML specs, checkpoints, manifests, artifacts, CLI).

The generators and the judge are those of the bounded suite (``tests/fuzz/fuzz_cases.py``);
this script only runs many more of them. A case is one of: ok, refused (one
LlmaccelError / exit 2), crash (any other exception, exit code outside {0, 2},
stdout under --json that is not one JSON object, a traceback), silent (an input
known to be bad that was accepted: exit 0 / loaded), timeout (a CLI case over
``--cli-limit-s``; bad input must be refused at the edge, not after minutes).

CLI cases call the in-process ``llmaccel.cli.main(argv)``, the code behind the
console script, so a case costs milliseconds instead of an interpreter start.

Prints ONE JSON line: cases run, crashes and silent acceptances (totals and per
format), the first examples of each, the seed and the wall time. Exit status 1
when any crash, silent acceptance or timeout was found.

    python3 benchmarks/fuzz.py                      # 100,000 cases, seed 11
    python3 benchmarks/fuzz.py --cases 1000000 --seed 3
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))

from fuzz_cases import FORMATS, fuzz  # noqa: E402

# Share of the cases per format: the ISA decoder is cheap (microseconds a case), CLI and
# checkpoint cases cost milliseconds; every format gets thousands of cases at 1e5.
SHARES = {"isa": 0.73, "yaml": 0.10, "checkpoint": 0.05, "manifest": 0.05, "compiled": 0.02, "cli": 0.05}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000, help="total cases (default 100000)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"comma list of {', '.join(FORMATS)}")
    ap.add_argument("--cli-limit-s", type=float, default=30.0, help="per CLI case wall-time limit")
    args = ap.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or args.cases <= 0:
        ap.error(f"unknown formats {unknown}" if unknown else "--cases must be positive")
    share = sum(SHARES[f] for f in formats)
    counts = {f: max(1, round(args.cases * SHARES[f] / share)) for f in formats}

    from tqdm import tqdm
    t0 = time.perf_counter()
    with tqdm(total=sum(counts.values()), unit="case", file=sys.stderr, mininterval=2.0) as bar:
        tally = fuzz(counts, args.seed, cli_limit_s=args.cli_limit_s, progress=bar.update)
    wall = time.perf_counter() - t0
    result = {
        "benchmark": "fuzz", "seed": args.seed, "cases": tally.total(),
        "crashes": tally.total("crash"), "silent_acceptances": tally.total("silent"),
        "timeouts": tally.total("timeout"), "per_format": tally.counts,
        "examples": tally.examples, "wall_s": round(wall, 1),
        "cases_per_s": round(tally.total() / wall, 1),
    }
    print(json.dumps(result))
    return 1 if result["crashes"] or result["silent_acceptances"] or result["timeouts"] else 0


if __name__ == "__main__":
    sys.exit(main())
