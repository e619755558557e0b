"""Benchmark: does simulated power move with the design? A sweep of flightllm-u280 variants on Llama2-7B.

Varies the matrix engine (chains per core), the kernel clock, the HBM channels used and the HBM port
width; each variant keeps two weight decoders per chain. Designs that do not fit the U280 (resources,
clocks) are skipped and counted. Prints ONE JSON line: the number of designs simulated, the range of
decode power, and the Pearson correlation of decode tokens/s with decode tokens/J (the issue's measure of
whether power responds to the design or only to speed); ``--rows PATH`` also writes every design's figures.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import tempfile


def variants():
    from llmaccel.simulator.design import load_design
    base = load_design("flightllm-u280")
    for chains, mhz, channels, port in itertools.product((24, 40, 56), (150, 225, 300), (16, 32), (256, 512)):
        cpc = channels // base.cores
        dec = max(1, round(2 * chains / cpc))          # two decoders per chain (as the preset)
        yield dataclasses.replace(
            base, name=f"u280-c{chains}-{mhz}MHz-{channels}pc-{port}b", clock_MHz=mhz, hbm_channels=channels,
            hbm_port_bits=port, matrix_engine=dataclasses.replace(base.matrix_engine, chains_per_core=chains),
            weight_decoder=dataclasses.replace(base.weight_decoder, decoders_per_channel=dec))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--prefill", type=int, default=128)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--rows", default=None, help="write per-design figures (JSON) here")
    args = ap.parse_args()
    from tqdm import tqdm

    from llmaccel.mapping.sim_api import simulate
    from llmaccel.simulator.resources import fit_check
    from llmaccel.simulator.specs.device import load_device
    from llmaccel.errors import LlmaccelError

    dev = load_device("alveo-u280")
    rows, skipped = [], []
    for d in tqdm(list(variants()), desc="designs", file=os.sys.stderr):
        try:
            fit_check(d, dev)
        except LlmaccelError as exc:
            skipped.append({"design": d.name, "why": str(exc)[:160]})
            continue
        r = simulate("llama2-7b", d, "flightllm", prefill=args.prefill, decode=args.decode, check_fit=False)
        rows.append({"design": d.name, "decode_tokens_per_s": r.decode_tokens_per_s, "power_W": r.power_W,
                     "tokens_per_J": r.tokens_per_J, "prefill_power_W": r.prefill_power_W,
                     "dynamic_W": {k: v / r.decode_s for k, v in r.energy_breakdown_decode_J.items()}})
    tps = [r["decode_tokens_per_s"] for r in rows]
    tpj = [r["tokens_per_J"] for r in rows]
    pw = [r["power_W"] for r in rows]
    out = {"benchmark": "power_sweep", "model": "llama2-7b", "prefill": args.prefill, "decode": args.decode,
           "designs": len(rows), "skipped_do_not_fit": len(skipped),
           "power_W_min": min(pw), "power_W_max": max(pw), "power_W_median": statistics.median(pw),
           "corr_tokens_per_s_vs_tokens_per_J": statistics.correlation(tps, tpj) if len(rows) > 2 else None,
           "corr_tokens_per_s_vs_power_W": statistics.correlation(tps, pw) if len(rows) > 2 else None}
    if args.rows:
        d = os.path.dirname(os.path.abspath(args.rows))
        fd, tmp = tempfile.mkstemp(suffix=".json", dir=d)
        with os.fdopen(fd, "w") as f:
            json.dump({"rows": rows, "skipped": skipped}, f, indent=1)
        os.replace(tmp, args.rows)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
