"""`llmaccel report`: compare FPGA designs (simulated) with GPUs (measured or modelled): HTML + Markdown."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "report"
HELP = ("energy-efficiency comparison: FPGA designs (simulated) against GPUs (measured where available, "
        "modelled otherwise); writes a self-contained HTML page and a Markdown twin")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="report spec YAML (see examples/report-llama2-7b.yaml)")
    p.add_argument("--out", required=True, help="output directory (report.html, report.md, img/)")
    p.add_argument("--store", default=None, help="SQLite store of the FPGA points (default OUT/results.sqlite)")
    p.add_argument("--workers", type=int, default=1, help="Ray CPUs for the FPGA simulations (default 1: serial)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> dict:
    from llmaccel.reports.comparison import collect, load_report_spec, write_report
    spec = load_report_spec(args.spec)
    out = Path(args.out)
    store = Path(args.store) if args.store else out / "results.sqlite"
    data = collect(spec, store, workers=args.workers, progress=not args.quiet,
                   spec_text=Path(args.spec).read_bytes())
    files = write_report(data, out)
    if not args.json:
        for n in data.notes:
            print(f"note: {n}")
        print(f"wrote {files['html']}\nwrote {files['markdown']}")
    return {**files, "rows": len(data.rows), "notes": data.notes, "provenance": data.provenance.__dict__}
