"""`llmaccel simulate`: timing-only simulation of a model shape + recipe on an accelerator design."""
from __future__ import annotations

import argparse

from llmaccel.commands._common import output_file

NAME = "simulate"
HELP = "cycle-approximate timing, energy and roofline of a model on a design (no weights needed)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="llama2-7b", help="model preset, config.json path or checkpoint directory")
    p.add_argument("--design", default="flightllm-u280", help="design preset name or design YAML path")
    p.add_argument("--recipe", default="flightllm", help="compression recipe name or YAML path")
    p.add_argument("--prefill", type=int, default=512, help="prompt tokens")
    p.add_argument("--decode", type=int, default=512, help="generated tokens (decode steps)")
    p.add_argument("--max-len", type=int, default=2048, help="compiled maximum length (tokens)")
    p.add_argument("--no-fuse", action="store_true", help="emit element-wise ops as separate SFU instructions")
    p.add_argument("--trace", type=output_file, default=None,
                   help="write a Chrome/Perfetto trace JSON of the simulated programs")
    p.add_argument("--plot", type=output_file, default=None, help="write a PNG: time breakdown and unit utilization")


def run(args) -> dict:
    from mapping.sim_api import build_compiler
    from simulator.analytical import estimate
    from simulator.api import simulate_compiled

    if args.trace is not None:       # bad output paths are refused before the simulation runs
        from simulator.trace import check_trace_dest
        check_trace_dest(args.trace)
    if args.plot is not None:
        from reports.figures import check_png_dest
        check_png_dest(args.plot)
    comp, design, device = build_compiler(args.model, args.design, args.recipe, max_len=args.max_len,
                                          fuse=not args.no_fuse)
    res = simulate_compiled(comp, args.prefill, args.decode, design_name=design.name, device_name=device.name,
                            recipe_name=str(args.recipe))
    out = res.to_dict()
    if args.decode:
        ana = estimate(comp.spec, comp.hw, comp.f, args.prefill, args.decode,
                       comp.prefill_chunk(comp.prefill_bucket_of(args.prefill)))
        out["analytical"] = {k: ana[k] for k in ("ttft_s", "prefill_bound", "decode_ms_per_token",
                                                  "decode_tokens_per_s", "decode_bound")}
    if args.trace is not None:
        from simulator.trace import write_trace
        pb = comp.prefill_bucket_of(args.prefill)
        segs = [("prefill", comp.prefill_programs(pb)[0])]
        if args.decode:
            segs.append(("decode", comp.layer_program("decode", comp.decode_bucket_of(args.prefill + 1), 1)))
        segs.append(("lm_head", comp.head_program()))
        out["trace"] = str(write_trace(args.trace, segs, comp.hw))
    if args.plot is not None:
        out["plot"] = _plot(res, args.plot)
    if not args.json:
        _print(out)
    return out


def _print(o: dict) -> None:
    print(f"{o['model']} on {o['design']} ({o['recipe']}), prefill {o['prefill_tokens']} + decode {o['decode_tokens']}")
    print(f"  TTFT            {o['ttft_s'] * 1e3:10.1f} ms   (roofline {o['roofline_prefill_s'] * 1e3:.1f} ms)")
    print(f"  decode          {o['decode_ms_per_token']:10.3f} ms/token = {o['decode_tokens_per_s']:.1f} tokens/s "
          f"(bandwidth roofline {o['roofline_decode_tokens_per_s']:.1f})")
    print(f"  HBM utilization {o['hbm_bw_utilization'] * 100:10.1f} % decode, "
          f"{o['prefill_hbm_bw_utilization'] * 100:.1f} % prefill")
    pw = o["power_W"]
    print(f"  power           {pw:10.1f} W decode, {o['tokens_per_J']:.2f} tokens/J" if pw else
          f"  power           not reported ({'; '.join(o['notes'])})")
    print("  busy % decode   " + ", ".join(f"{k} {v * 100:.0f}" for k, v in o["unit_busy_decode"].items()))
    print("  busy % prefill  " + ", ".join(f"{k} {v * 100:.0f}" for k, v in o["unit_busy_prefill"].items()))
    if "analytical" in o:
        a = o["analytical"]
        print(f"  analytical      TTFT {a['ttft_s'] * 1e3:.1f} ms ({a['prefill_bound']}-bound), decode "
              f"{a['decode_ms_per_token']:.3f} ms/token ({a['decode_bound']}-bound)")
    for k in ("trace", "plot"):
        if k in o:
            print(f"  wrote {o[k]}")


def _plot(res, path: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = ["decode", "roofline (BW)", "roofline (compute)"]
    vals = [res.decode_tokens_per_s, res.roofline_decode_bw_tokens_per_s, res.roofline_decode_compute_tokens_per_s]
    a1.bar(labels, vals, color=["tab:blue", "tab:gray", "tab:gray"])
    a1.set_ylabel("tokens/s")
    a1.set_title(f"{res.model} on {res.design}: decode")
    units = list(res.unit_busy_decode)
    x = range(len(units))
    a2.bar([i - 0.2 for i in x], [100 * res.unit_busy_prefill[u] for u in units], 0.4, label="prefill")
    a2.bar([i + 0.2 for i in x], [100 * res.unit_busy_decode[u] for u in units], 0.4, label="decode")
    a2.set_xticks(list(x), units)
    a2.set_ylabel("busy %")
    a2.legend()
    fig.tight_layout()
    from reports.figures import save_png
    return str(save_png(fig, path, "--plot"))
