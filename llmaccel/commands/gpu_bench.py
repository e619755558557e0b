"""`llmaccel gpu-bench`: measure the compressed model's kernels and whole-model runs on this machine's GPU.

Writes one measurement file (gpu_baseline/measured.py's schema, every figure
tagged ``measured``) atomically and never over an existing one; ``--json``
prints the same object. Without a CUDA GPU it stops with one error (use
``llmaccel simulate --device <gpu>`` for modelled figures); without NVML it
stops too, unless ``--no-energy`` says to measure without energy.
"""
from __future__ import annotations

import argparse
import json
import sys

NAME = "gpu-bench"
HELP = "measure prefill/decode ms/token, tokens/s, HBM GB/s and NVML energy on this machine's CUDA GPU"


def _shape(s: str) -> tuple[int, int]:
    try:
        o, k = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{s}' is not OxK (e.g. 4096x4096)") from None
    return o, k


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="llama2-7b", help="model preset whose shapes run with synthetic weights")
    p.add_argument("--recipe", default="w4-g128-rtn", help="recipe whose packed formats the model runs")
    p.add_argument("--prefill", type=int, default=128, help="prompt tokens")
    p.add_argument("--decode", type=int, default=128, help="decode steps")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--activations", default="int8,fp16", help="comma list of int8 (the contract), fp16 (weight-only)")
    p.add_argument("--gemv", type=_shape, action="append", default=None,
                   help="GEMV shape OxK (repeatable; default 4096x4096 and 11008x4096)")
    p.add_argument("--no-hf", action="store_true", help="skip the dense FP16 transformers baseline")
    p.add_argument("--hf-compile", action="store_true", help="torch.compile the transformers baseline")
    p.add_argument("--bundled-tokens", type=int, default=32, help="greedy tokens of the bundled model to check (0: off)")
    p.add_argument("--no-energy", action="store_true", help="measure without NVML (no energy, no driver/clocks)")
    p.add_argument("--device-preset", default=None, help="GPU device preset when the NVML name maps to none")
    p.add_argument("--out", default=None, help="measurement file to write (default: print only)")


def run(args) -> dict:
    from llmaccel.gpu_baseline.bench import BenchConfig, require_cuda
    from llmaccel.errors import LlmaccelError

    acts = tuple(a.strip() for a in args.activations.split(",") if a.strip())
    bad = [a for a in acts if a not in ("int8", "fp16")]
    if bad or not acts:
        raise LlmaccelError(f"--activations {args.activations!r} is invalid; allowed: a comma list of int8, fp16")
    for name in ("prefill", "decode", "repeats"):
        if getattr(args, name) < 1:
            raise LlmaccelError(f"--{name}={getattr(args, name)} is invalid; allowed: an integer >= 1")
    if args.decode < 2:
        raise LlmaccelError(f"--decode={args.decode} is invalid; allowed: >= 2")
    require_cuda()                       # one clear error before anything else is loaded
    from llmaccel.gpu_baseline.bench import run_gpu_bench
    from llmaccel.gpu_baseline.measured import write_measurement
    cfg = BenchConfig(model=args.model, recipe=args.recipe, prefill=args.prefill, decode=args.decode,
                      repeats=args.repeats, activations=acts,
                      gemv_shapes=tuple(args.gemv) if args.gemv else BenchConfig.gemv_shapes,
                      include_hf=not args.no_hf, hf_compile=args.hf_compile, bundled_tokens=args.bundled_tokens,
                      energy=not args.no_energy, device_preset=args.device_preset,
                      command="llmaccel gpu-bench " + " ".join(sys.argv[2:]))
    say = (lambda s: None) if args.json else (lambda s: print(f"  .. {s}", file=sys.stderr, flush=True))
    m = run_gpu_bench(cfg, say)
    if args.out:
        path = write_measurement(m, args.out)
        say(f"wrote {path}")
    out = json.loads(m.model_dump_json())
    if not args.json:
        for r in m.runs:
            print(f"{r.impl:16s} {r.phase:7s} {r.ms_per_token:8.3f} ms/token {r.tokens_per_s:9.1f} tokens/s"
                  + (f" {r.tokens_per_J:7.2f} tokens/J" if r.tokens_per_J else ""))
        for k in m.kernels:
            print(f"{k.kernel:12s} {k.format:14s} {k.activation:4s} {k.ms * 1e3:9.1f} us {k.GBps:7.0f} GB/s "
                  f"{100 * (k.share_of_copy or 0):5.1f} % of copy")
    return out
