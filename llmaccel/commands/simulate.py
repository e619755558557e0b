"""`llmaccel simulate`: timing-only simulation of a model shape + recipe on an accelerator design."""
from __future__ import annotations

import argparse

NAME = "simulate"
HELP = "cycle-approximate timing, energy and roofline of a model on a design (no weights needed)"
DEFAULT_DESIGN = "flightllm-u280"
DEFAULT_RECIPE = "flightllm"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="llama2-7b", help="model preset, config.json path or checkpoint directory")
    p.add_argument("--design", default=None, help=f"design preset name or design YAML path (default {DEFAULT_DESIGN})")
    p.add_argument("--preset-path", action="append", default=[], metavar="DIR",
                   help="a directory of design YAMLs searched after the bundled presets and $LLMACCEL_PRESET_PATH "
                        "(repeatable)")
    p.add_argument("--device", default=None, help="a GPU device preset: the modelled GPU baseline instead of a design")
    p.add_argument("--recipe", default=None, help="compression recipe name or YAML path (default flightllm on a "
                                                  "design, fp16 on a GPU)")
    p.add_argument("--prefill", type=int, default=512, help="prompt tokens")
    p.add_argument("--decode", type=int, default=512, help="generated tokens (decode steps)")
    p.add_argument("--max-len", type=int, default=2048, help="compiled maximum length (tokens)")
    p.add_argument("--no-fuse", action="store_true", help="emit element-wise ops as separate SFU instructions")
    p.add_argument("--trace", default=None, help="write a Chrome/Perfetto trace JSON of the simulated programs")
    p.add_argument("--plot", default=None,
                   help="write a PNG: where a decode token's time and energy go (stacked bars) and unit utilization")
    p.add_argument("--explain", action="store_true",
                   help="say where each decode token's time and energy go, and the memory-system and overhead "
                        "figures behind them")


def run(args) -> dict:
    from llmaccel.mapping.designs import load_design
    from llmaccel.mapping.sim_api import build_compiler
    from llmaccel.simulator.analytical import estimate
    from llmaccel.mapping.sim_api import simulate_with

    if args.trace is not None:       # bad output paths are refused before the simulation runs
        from llmaccel.simulator.trace import check_trace_dest
        check_trace_dest(args.trace)
    if args.plot is not None:
        from llmaccel.reports.figures import check_png_dest
        check_png_dest(args.plot)
    if args.device is not None:
        from llmaccel.commands._gpu_simulate import run_device
        out = run_device(args)
        if out is not None:
            return out
    args.design = args.design or DEFAULT_DESIGN
    args.recipe = args.recipe or DEFAULT_RECIPE
    comp, design, device = build_compiler(args.model, load_design(args.design, args.preset_path), args.recipe, max_len=args.max_len,
                                          fuse=not args.no_fuse)
    from llmaccel.simulator.power import PowerModel
    res = simulate_with(comp, args.prefill, args.decode, design_name=design.name, device_name=device.name,
                        recipe_name=str(args.recipe), power=PowerModel.build(design, device))
    out = res.to_dict()
    if args.decode:
        ana = estimate(comp.spec, comp.hw, comp.f, args.prefill, args.decode,
                       comp.prefill_chunk(comp.prefill_bucket_of(args.prefill)))
        out["analytical"] = {k: ana[k] for k in ("ttft_s", "prefill_bound", "decode_ms_per_token",
                                                  "decode_tokens_per_s", "decode_bound")}
    out["from_reports"] = _from_reports(comp.hw, design)
    if args.explain:
        out["explain"] = _explain(comp.hw)
        out["explain"]["from_reports"] = out["from_reports"]
    if args.trace is not None:
        from llmaccel.simulator.trace import write_trace
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
    if "explain" in o:
        _print_explain(o)
    for k in ("trace", "plot"):
        if k in o:
            print(f"  wrote {o[k]}")


def _from_reports(hw, design) -> list[dict]:
    """Every value the timing and resource models took from a csynth report the design names, with the
    value the model would have used and the report it came from (empty: the models' own figures)."""
    import dataclasses
    from llmaccel.simulator.resources import unit_costs
    rows = [{"unit": v.unit, "value": v.field, "reported": v.value, "model": v.model_value, "report": v.report,
             "loop": v.loop} for v in hw.from_reports]
    if design.reported:
        mine, model = unit_costs(design), unit_costs(dataclasses.replace(design, reported=()))
        for unit, key in (("mpe", "dsp_chain"), ("sfu", "sfu_lane")):
            r = design.reported_unit(unit)
            if r is None:
                continue
            for res in ("LUT", "FF", "DSP", "BRAM36", "URAM"):
                rows.append({"unit": unit, "value": f"resources.{key}.{res}", "reported": mine[key].get(res),
                             "model": model[key].get(res), "report": r.resources_report, "loop": None})
    return rows


def _explain(hw) -> dict:
    """The figures behind the breakdown: the memory system and the per-instruction overheads."""
    mem = hw.mem
    return {
        "memory_system": mem.describe(),
        "sequential_GBps_per_channel_1KiB": mem.bandwidth_GBps(pattern="sequential", access_bytes=1024),
        "overheads": {"issue_cycles_per_instruction": mem.issue_cycles,
                      "setup_cycles_per_transfer": mem.setup_cycles,
                      "hbm_read_latency_cycles": mem.latency_cycles("sequential"),
                      "sync_cycles_per_barrier": hw.sync_cycles,
                      "instruction_memory": hw.instruction_memory,
                      "instruction_fetch_bytes_per_cycle_per_core": hw.ifetch_bytes_per_cycle,
                      "instruction_fetch_latency_cycles": hw.ifetch_latency_cycles},
        "multi_core": ("every core runs the same instruction stream up to channel numbers and addresses, so "
                       "their schedules are identical and core 0 stands for all; the only skew is the "
                       "barrier network's, bounded by the SLR crossings inside sync_cycles_per_barrier (each "
                       "barrier completes at the last arrival plus that latency)")
        if hw.n_cores > 1 else "one core: no barriers to skew",
        "estimates": "issue/setup cycles, the converter latency and the sync vector/routing cycles are this "
                     "project's estimates (simulator/presets/memory/hbm_u280.yaml, simulator/timing_params.py)",
    }


def _print_explain(o: dict) -> None:
    bd = o.get("breakdown") or {}
    ms, mj = bd.get("decode_ms_per_token", {}), bd.get("decode_mJ_per_token", {})
    if ms:
        total = sum(ms.values()) or 1.0
        print("  where a decode token goes (exposed time: each cycle to the first active category)")
        for k, v in ms.items():
            e = f"{mj[k]:8.2f} mJ" if k in mj else ""
            print(f"    {k:18s} {v:8.3f} ms {100 * v / total:5.1f} %  {e}")
    ex = o["explain"]
    m = ex["memory_system"]
    print(f"  HBM path        kernel port {m['kernel_port']}; HBM side {m['hbm_axi_port']}; "
          f"{ex['sequential_GBps_per_channel_1KiB']:.2f} GB/s per channel for 1 KiB sequential bursts")
    ov = ex["overheads"]
    print(f"  overheads       issue {ov['issue_cycles_per_instruction']} cy/instruction, setup "
          f"{ov['setup_cycles_per_transfer']} cy/transfer, HBM latency {ov['hbm_read_latency_cycles']} cy, "
          f"barrier {ov['sync_cycles_per_barrier']} cy, instructions in {ov['instruction_memory']}")
    print(f"  multi-core      {ex['multi_core']}")
    rows = ex.get("from_reports") or []
    if not rows:
        print("  HLS reports     none: every unit figure is the model's own")
    for r in rows:
        at = f" (loop {r['loop']})" if r["loop"] else ""
        print(f"  from report     {r['unit']} {r['value']} = {r['reported']:g} (model {r['model']:g}) from "
              f"{r['report']}{at}")


def _plot(res, path: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    bd = res.breakdown or {}
    ms, mj = bd.get("decode_ms_per_token", {}), bd.get("decode_mJ_per_token", {})
    cmap = plt.get_cmap("tab10")
    bottoms = [0.0, 0.0]
    total_ms = sum(ms.values()) or 1.0
    total_mj = sum(mj.values()) or 1.0
    for i, k in enumerate(ms):
        # both bars in percent of the token's total so time and energy share one axis
        vals = [100 * ms[k] / total_ms, 100 * mj.get(k, 0.0) / total_mj if mj else 0.0]
        a0.bar(["time", "energy"], vals, bottom=bottoms, color=cmap(i % 10), label=k)
        bottoms = [b + v for b, v in zip(bottoms, vals)]
    a0.set_ylabel("% of a decode token")
    a0.set_title(f"{total_ms:.2f} ms" + (f", {total_mj:.0f} mJ" if mj else "") + " per token")
    a0.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    labels = ["decode", "roofline (BW)", "roofline (compute)"]
    vals = [res.decode_tokens_per_s, res.roofline_decode_bw_tokens_per_s, res.roofline_decode_compute_tokens_per_s]
    a1.bar(labels, vals, color=["tab:blue", "tab:gray", "tab:gray"])
    a1.set_ylabel("tokens/s")
    a1.set_title(f"{res.model} on {res.design}: decode")
    a1.tick_params(axis="x", labelsize=7)
    units = list(res.unit_busy_decode)
    x = range(len(units))
    a2.bar([i - 0.2 for i in x], [100 * res.unit_busy_prefill[u] for u in units], 0.4, label="prefill")
    a2.bar([i + 0.2 for i in x], [100 * res.unit_busy_decode[u] for u in units], 0.4, label="decode")
    a2.set_xticks(list(x), units)
    a2.set_ylabel("busy %")
    a2.legend()
    fig.tight_layout()
    from llmaccel.reports.figures import save_png
    return str(save_png(fig, path, "--plot"))
