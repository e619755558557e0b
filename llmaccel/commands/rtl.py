"""`llmaccel rtl gen|sim|synth`: the sparse DSP chain, weight decoder and MV tile in RTL.

gen   writes a configuration's Verilog (sources + a configured top + config.json) to a directory;
sim   runs the unit's cocotb bench on Icarus and prints pass/fail and the measured cycles;
synth runs yosys synth_xilinx -family xcup and prints DSP48E2 / LUT / FF / BRAM36.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from llmaccel.errors import LlmaccelError

NAME = "rtl"
HELP = "sparse DSP chain / weight decoder / MV tile RTL: generate Verilog, simulate (cocotb), synthesize (yosys)"

# CLI flag of each configuration knob (sparse_dsp.rtl.units.KNOBS); --asym is the negation of symmetric
_FLAG = {"chain_len": "chain_len", "nm": "nm", "cascade_groups": "cascade_groups", "bits": "bits",
         "symmetric": "asym", "k": "k", "group_size": "group_size", "n_chains": "n_chains"}


def _config_args(p: argparse.ArgumentParser) -> None:
    # `llmaccel rtl synth --json` as well as `llmaccel rtl --json synth` (SUPPRESS keeps the outer flag)
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")
    from llmaccel.sparse_dsp.rtl.units import UNITS
    names = " | ".join(f"{u.aliases[0]}" for u in UNITS.values())
    p.add_argument("--unit", default="chain", help=f"{names} (default chain; the unit registry's names)")
    p.add_argument("--chain-len", type=int, default=8, help="DSP slices per chain (even, 2..24)")
    p.add_argument("--nm", default="dense", help="dense or N:M (2:4, 4:8, 2:16, 4:16, 8:16)")
    p.add_argument("--cascade-groups", type=int, default=None,
                   help="groups per packed cascade segment (power of 2, <= 4; default longest legal)")
    p.add_argument("--bits", type=int, default=4, help="weight code width: 2, 3, 4 or 8 (decoder, tile)")
    p.add_argument("--asym", action="store_true", help="asymmetric codes with a per-group zero (2-4 bits)")
    p.add_argument("--k", type=int, default=256, help="dense row length K (decoder, tile, sim stimulus)")
    p.add_argument("--group-size", type=int, default=128, help="quantization group size G")
    p.add_argument("--n-chains", type=int, default=2, help="chains in the MV tile")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rtl_action", required=True)
    g = sub.add_parser("gen", help="write the Verilog of one configuration to a directory")
    _config_args(g)
    g.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    g.add_argument("--design", default="flightllm-u280",
                   help="design preset or YAML whose device part and clock the Vivado OOC script uses")
    s = sub.add_parser("sim", help="run the cocotb bench (Icarus) of one configuration")
    _config_args(s)
    s.add_argument("--rows", type=int, default=2, help="output rows (per chain for the tile)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--gap-prob", type=float, default=0.3, help="random valid gaps on the inputs")
    s.add_argument("--stall-prob", type=float, default=0.3, help="random back-pressure on the output")
    s.add_argument("--build-dir", default=None, help="build directory (default: a temporary one)")
    s.add_argument("--waves", action="store_true",
                   help="dump an FST waveform of the bench (kept in --build-dir, or in a new kept directory)")
    y = sub.add_parser("synth", help="yosys synth_xilinx -family xcup resource counts")
    _config_args(y)
    y.add_argument("--workdir", default=None, help="keep yosys script, log and stat here")


def inapplicable(args) -> dict[str, str]:
    """Flags the chosen unit and action would ignore (the CLI refuses them when given): the knobs its
    registry record does not take (a bench-only knob applies to sim only)."""
    from llmaccel.sparse_dsp.rtl.units import ALIASES, KNOBS, UNITS
    if args.unit not in ALIASES:
        return {}
    u = UNITS[ALIASES[args.unit]]
    out = {}
    for knob in KNOBS:
        if knob in u.knobs or (knob in u.stimulus_knobs and args.rtl_action == "sim"):
            continue
        only = f" {args.rtl_action} (only to sim)" if knob in u.stimulus_knobs else ""
        out[_FLAG[knob]] = f"does not apply to --unit {args.unit}{only}"
    return out


def _unit(args) -> str:
    from llmaccel.sparse_dsp.rtl.units import ALIASES, UNITS
    if args.unit not in ALIASES:
        raise LlmaccelError(f"--unit '{args.unit}' is not an RTL unit; allowed: "
                            + ", ".join(a for u in UNITS.values() for a in (*u.aliases, u.name)))
    return ALIASES[args.unit]


def _params(unit: str, args) -> dict:
    from llmaccel.sparse_dsp.rtl.units import UNITS
    params = {}
    for knob in UNITS[unit].knobs:
        v = getattr(args, _FLAG[knob])
        if knob == "nm":
            v = None if v in (None, "dense") else v
        elif knob == "symmetric":
            v = not v
        params[knob] = v
    return params


def _validate(unit: str, params: dict) -> dict:
    from llmaccel.sparse_dsp.rtl.synth import canonical_params
    return canonical_params(unit, params)       # raises one LlmaccelError naming the bad field


def _gen(unit, params, args) -> dict:
    from llmaccel.simulator.design import load_design
    from llmaccel.simulator.specs.device import load_device
    from llmaccel.sparse_dsp.rtl.gen import generate
    design = load_design(args.design)
    part = load_device(design.device).part
    manifest = generate(unit, params, Path(args.out), part=part, clock_MHz=design.clock_MHz)
    if not args.json:
        print(f"wrote {len(manifest['files'])} files for {manifest['top']} to {args.out}")
    return manifest


def _sim(unit, params, args) -> dict:
    from llmaccel.sparse_dsp.rtl.sim import require_cocotb, require_tool, run_bench
    from llmaccel.sparse_dsp.rtl.synth import hdl_parameters
    from llmaccel.sparse_dsp.rtl.units import UNITS
    require_cocotb()
    require_tool("iverilog")
    if args.rows <= 0:
        raise LlmaccelError(f"--rows {args.rows} must be positive")
    for name in ("gap_prob", "stall_prob"):
        if not 0.0 <= getattr(args, name) < 1.0:
            raise LlmaccelError(f"--{name.replace('_', '-')} {getattr(args, name)} must be in [0, 1)")
    hp = hdl_parameters(unit, params)
    spec = {"seed": args.seed, "gap_prob": args.gap_prob, "stall_prob": args.stall_prob}
    rec = UNITS[unit]
    spec[rec.rows_key] = args.rows
    if rec.stimulus_knobs:             # the chain's bench streams rows of K in groups of G
        from llmaccel.sparse_dsp.dsp_chain import ChainConfig
        ChainConfig(params["chain_len"], params["nm"], params["cascade_groups"]).beats_per_group(args.group_size)
        if args.k % args.group_size:
            raise LlmaccelError(f"--k {args.k} must be a multiple of --group-size {args.group_size}")
        spec.update({k: getattr(args, k) for k in rec.stimulus_knobs})
    top = rec.top
    if args.waves and not args.build_dir:
        # the wave file must outlive the run, so it goes to a new directory that is kept and named
        args.build_dir = tempfile.mkdtemp(prefix="llmaccel_rtl_waves_")
    if args.build_dir:
        report = run_bench(top, hp, spec, Path(args.build_dir), waves=args.waves)
    else:
        with tempfile.TemporaryDirectory(prefix="llmaccel_rtl_sim_") as tmp:
            report = run_bench(top, hp, spec, Path(tmp) / "build")
    if report.get("config") is None:  # the bench failed before writing its report (an assertion, no memory)
        raise LlmaccelError(f"RTL bench of {unit} {params} failed before it reported ({report.get('failed')} of "
                            f"{report.get('tests')} tests failed); "
                            + (f"see {Path(args.build_dir) / 'sim.log'}" if args.build_dir
                               else "give --build-dir DIR to keep its sim.log"))
    passed = report.get("failed", 1) == 0 and report.get("mismatches", 1) == 0
    out = {"unit": unit, "config": report.get("config"), "passed": passed,
           "mismatches": report.get("mismatches"), "model": report.get("model"),
           "timing_phase": report.get("timing_phase"), "random_phase": report.get("random_phase"),
           "hdl_parameters": hp, "waves": report.get("waves")}
    if not args.json:
        t, m = out["timing_phase"] or {}, out["model"] or {}
        line = f"{'PASS' if passed else 'FAIL'} {out['config']}: mismatches {out['mismatches']}, " \
               f"total cycles {t.get('total_cycles_seen')} (model {m.get('total_cycles')})"
        if unit == "dsp_chain":
            line += f", latency {t.get('latency_cycles_seen')} (model {m.get('latency_cycles')}), II 1 beat/cycle"
        print(line)
        if out["waves"]:
            print(f"waves: {out['waves']}")
    if not passed:
        raise LlmaccelError(f"RTL bench of {out['config']} failed: {out['mismatches']} mismatches "
                            f"(build dir: {report.get('build_dir')})")
    return out


def _synth(unit, params, args) -> dict:
    from llmaccel.sparse_dsp.rtl.synth import synth_unit
    res = synth_unit(unit, params, Path(args.workdir) if args.workdir else None)
    if not args.json:
        print(f"{unit} {res['params']}: DSP48E2 {res['DSP48E2']}, LUT {res['LUT']}, FF {res['FF']}, "
              f"BRAM36 {res['BRAM36']}")
    return res


def run(args) -> dict:
    unit = _unit(args)
    params = _params(unit, args)
    _validate(unit, params)
    return {"gen": _gen, "sim": _sim, "synth": _synth}[args.rtl_action](unit, params, args)
