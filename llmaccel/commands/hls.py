"""`llmaccel hls emit|run|report`: the Vitis HLS flow of the kernel library.

emit writes a project (sources, a golden-vector testbench, TCL) for one
kernel configuration; run executes it with Vitis HLS where installed, or
builds and runs its testbench with g++ (--gxx); report parses a csynth.xml.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from llmaccel.errors import LlmaccelError

NAME = "hls"
HELP = "Vitis HLS flow: emit a kernel project, run it (Vitis or g++ csim), parse csynth reports"
DEVICE_ALIASES = {"u280": "alveo-u280", "u55c": "alveo-u55c"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="hls_command", required=True)
    emit = sub.add_parser("emit", help="write a Vitis HLS project for one kernel configuration, or the kernels "
                                       "and layer tops of a compressed model on a design")
    what = emit.add_mutually_exclusive_group(required=True)
    what.add_argument("--kernel",
                      help="configuration name (e.g. mv_n2m16_w4_g64_k256_o64_c4); 'list' prints the known ones")
    what.add_argument("--compressed", metavar="ART",
                      help="a compressed model (llmaccel compress --out): emit its layer tops, linear kernels and "
                           "streaming decoders with golden vectors from its own weights")
    emit.add_argument("--design", default=None,
                      help="with --compressed: design preset or YAML (its device, clock, DSP chain, N:M support; "
                           "default flightllm-u280)")
    emit.add_argument("--steps", type=int, default=3, help="with --compressed: decode steps in the layer testbench")
    emit.add_argument("--out", help="project directory to create (default: hls_<kernel>)")
    emit.add_argument("--device", default="alveo-u280", help="FPGA device preset (alveo-u280, alveo-u55c, u280, u55c)")
    emit.add_argument("--clock-mhz", type=float, default=None, help="kernel clock target (default 225 MHz)")
    emit.add_argument("--seed", type=int, default=0, help="seed of the golden test vectors")
    emit.add_argument("--force", action="store_true", help="replace an existing project directory")
    run = sub.add_parser("run", help="run an emitted project with vitis_hls / vitis-run, or its testbench with g++")
    run.add_argument("path", help="project directory written by 'llmaccel hls emit'")
    run.add_argument("--steps", default="csim,csynth,cosim,export", help="comma list of csim,csynth,cosim,export")
    run.add_argument("--gxx", action="store_true", help="build and run the testbench with g++ (no Vitis needed)")
    rep = sub.add_parser("report", help="parse a csynth.xml (file or directory)")
    rep.add_argument("path", help="csynth.xml, or a directory holding one")
    rep.add_argument("--unit",
                     help="also give the figures a design naming this report gets for this simulator unit "
                          "(mpe: a linear_mv_top report, sfu: an sfu_top report)")
    for p in (emit, run, rep):  # accept --json after the subcommand too (`llmaccel hls report X --json`)
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print one JSON object on stdout")


def inapplicable(args) -> dict[str, str]:
    """Flags the chosen action would ignore (the CLI refuses them when given)."""
    if args.hls_command == "emit" and args.kernel == "list":
        return {d: "does not apply to '--kernel list'" for d in ("out", "device", "clock_mhz", "seed", "force")}
    if args.hls_command == "run" and args.gxx:
        return {"steps": "does not apply with --gxx (g++ runs the C simulation testbench only)"}
    return {}


def _emit(args) -> dict[str, Any]:
    from llmaccel.hls_kernels.configs import FAMILIES, REGISTRY, get_config
    from llmaccel.hls_kernels.flow.writer import write_project

    if args.compressed is not None:
        return _emit_compressed(args)
    for flag in ("design",):
        if getattr(args, flag) is not None:
            raise LlmaccelError(f"--{flag} applies only with --compressed")
    if args.kernel == "list":       # from the registry: every configuration, grouped by its family's record
        return {"kernels": sorted(REGISTRY),
                "families": {f.name: {"top": f.top, "description": f.description, "smallest": f.smallest.name,
                                      "simulator_unit": f.sim_unit,
                                      "configurations": sorted(n for n, c in REGISTRY.items() if c.family == f.name)}
                             for f in FAMILIES.values()}}
    cfg = get_config(args.kernel)
    device = DEVICE_ALIASES.get(args.device, args.device)
    out = write_project(cfg, args.out or f"hls_{cfg.name}", device=device, clock_mhz=args.clock_mhz,
                        seed=args.seed, overwrite=args.force)
    return {"project": str(out), **json.loads((out / "project.json").read_text())}


def _emit_compressed(args) -> dict[str, Any]:
    import numpy as np
    import torch

    from llmaccel.hls_kernels.flow.model_emit import DesignForEmit, ModelForEmit, ModelLayer, emit_model
    from llmaccel.mapping import llama_math as lm
    from llmaccel.mapping.compress import load_compressed
    from llmaccel.simulator.design import load_design

    if args.device != "alveo-u280" or args.clock_mhz is not None:
        raise LlmaccelError("--device and --clock-mhz do not apply with --compressed: the design gives both")
    if not 1 <= args.steps <= 64:
        raise LlmaccelError(f"--steps {args.steps} must be in 1..64 (the layer top's cache depth)")
    d = load_design(args.design or "flightllm-u280")
    model = load_compressed(args.compressed)
    shape = model.shape
    _check_layer_top_block(shape.arch)
    layers = []
    for i in range(shape.num_layers):
        projections = {leaf: model.linears[f"layers.{i}.{path}"] for leaf, path in shape.arch.linear_keys.items()}
        dense = [leaf for leaf, w in projections.items() if getattr(w, "fmt", None) is None]
        if dense:
            raise LlmaccelError(f"layer {i}: projections {dense} are not packed (quantized); the HLS kernels need "
                                f"packed weights (compress with a quantizing recipe)")
        layers.append(ModelLayer(i, projections, np.asarray(model.tensors[f"layers.{i}.input_layernorm"], np.float32),
                                 np.asarray(model.tensors[f"layers.{i}.post_attention_layernorm"], np.float32)))
    cos, sin = lm.rope_cos_sin(shape, torch.arange(64), lm.inv_freq(shape))
    embed = np.asarray(model.tensors["embed_tokens"], np.float32)
    ids = np.arange(1, args.steps + 1) % embed.shape[0]
    name = Path(args.compressed).resolve().name
    emit = ModelForEmit(name, model.content_hash, shape.num_heads, shape.num_kv_heads, shape.head_dim,
                        float(shape.rms_norm_eps), tuple(layers), embed[ids], cos.numpy(), sin.numpy())
    me = d.matrix_engine
    target = DesignForEmit(d.name, d.device, float(d.clock_MHz), me.chain_len, tuple(me.supported_nm))
    out = Path(args.out or f"hls_{name}")
    index = emit_model(emit, target, out, seed=args.seed, overwrite=args.force)
    return {"project": str(out), "inputs": f"embeddings of token ids 1..{args.steps}", **index}


def _check_layer_top_block(arch) -> None:
    """The decoder-layer top (kernels/decoder_layer.hpp) and its golden compute the Llama block: RMSNorm,
    SiLU-gated MLP, RoPE, no biases. Any other block is refused by name, never emitted with vectors that
    leave its biases, LayerNorm or activation out."""
    differs = [f"{what}={got!r} (the top has {want!r})" for what, got, want in (
        ("norm", arch.norm.kind, "rmsnorm"), ("activation", arch.activation, "silu"), ("gated", arch.gated, True),
        ("positions", arch.positions, "rope"), ("biases", list(arch.biased), []))
        if got != want]
    if differs:
        raise LlmaccelError(f"hls emit --compressed: model family '{arch.family}' has {', '.join(differs)}; the "
                            "decoder-layer top implements the llama block only (families llama, llama3, mistral; the HLS "
                            "units have no LayerNorm, GELU/ReLU or bias yet, the ISA top neither)")


def _run(args) -> dict[str, Any]:
    from llmaccel.hls_kernels.flow.backend import check_steps, run_gxx_testbench, run_vitis

    if args.gxx:
        result = run_gxx_testbench(args.path)
        if not result["passed"]:
            raise LlmaccelError(f"testbench of {result['name']} failed:\n{result['output']}")
        return result
    return run_vitis(args.path, check_steps([s.strip() for s in args.steps.split(",") if s.strip()]))


def _report(args) -> dict[str, Any]:
    from llmaccel.hls_kernels.flow.report import parse_csynth, reported_units
    from llmaccel.simulator.specs._yaml import to_dict

    rep = parse_csynth(args.path)
    if args.unit:
        from llmaccel.simulator.design import REPORTED_UNITS
        if args.unit not in REPORTED_UNITS:
            raise LlmaccelError(f"--unit '{args.unit}' is not a unit the simulator takes reports for; allowed: "
                                f"{', '.join(REPORTED_UNITS)}")
        units = {u.unit: u for u in reported_units(args.path)}
        if args.unit not in units:
            raise LlmaccelError(f"--unit {args.unit}: {args.path} holds reports for {sorted(units)} only")
        rep["simulator_overrides"] = to_dict(units[args.unit])
    return rep


def _print_human(cmd: str, result: dict[str, Any]) -> None:
    if cmd == "emit":
        if result.get("family") == "model":
            print(f"wrote {result['project']}: {len(result['layers'])} layer top(s), {len(result['linear'])} MV "
                  f"kernel(s), {len(result['decoders'])} streaming decoder(s) for design {result['design']}")
        elif "kernels" in result:
            for fam, f in result["families"].items():
                print(f"{fam} ({f['top']}): {f['description']}")
                for n in f["configurations"]:
                    print(f"  {n}")
        else:
            print(f"wrote {result['project']} ({result['top']}, part {result['part']}, {result['clock_MHz']} MHz)")
    elif cmd == "run":
        if "passed" in result:
            print(result["output"].rstrip())
        else:
            print(f"{result['tool']} ran {','.join(result['steps'])}; log {result['log']}; "
                  f"csynth report {result['csynth_xml']}")
    else:
        lat, clock = result.get("latency_cycles", {}), result.get("clock", {})
        print(f"{result.get('top', '?')} on {result.get('part', '?')} (HLS {result.get('tool_version', '?')}): "
              f"latency best/avg/worst {lat.get('best')}/{lat.get('average')}/{lat.get('worst')} cycles, "
              f"estimated clock {clock.get('estimated_ns')} ns")
        used, avail = result.get("resources_used", {}), result.get("resources_available", {})
        for res, n in used.items():
            print(f"  {res:9s} {n} / {avail.get(res)}")
        for lp in result.get("loops") or []:
            print(f"  loop {lp['path']}: trip {lp.get('trip_count')}, latency {lp.get('latency_cycles')}, "
                  f"II {lp.get('pipeline_ii', '-')}")
        if result.get("missing"):
            print(f"  missing from the report: {', '.join(result['missing'])}")


def run(args) -> dict[str, Any]:
    handler = {"emit": _emit, "run": _run, "report": _report}[args.hls_command]
    result = handler(args)
    if not args.json:
        _print_human(args.hls_command, result)
    return result
