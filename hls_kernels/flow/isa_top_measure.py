"""Measure the C-simulated ISA top against the functional engine on the bundled model: one JSON line.

``python -m llmaccel.hls_kernels.flow.isa_top_measure [--steps N] [--prompt N]`` compresses the bundled
tiny-llama with a low-bit recipe (:data:`RECIPE`), compiles it for :func:`test_design` (one U280
core, buffers small enough for several weight and K/V tiles), prefills the prompt on the top and on
the engine, then decodes greedily on both, the top on the KV cache it stored itself, and prints the
largest logit difference, whether the tokens agree, and the C-sim wall times (medians).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from llmaccel.hls_kernels.flow import isa_top as T


def recipe() -> Any:
    """4-bit attention, 3-bit asymmetric 8:16 MLP, 8-bit LM head: FlightLLM's shape, RTN (seconds to compress)."""
    from llmaccel.mapping.recipe import LayerRule, Recipe
    return Recipe("lowbit-nm-rtn", attn=LayerRule(bits=4, group_size=128, symmetric=True, method="rtn"),
                  mlp=LayerRule(bits=3, group_size=128, symmetric=False, method="rtn", nm=(8, 16)),
                  act_bits=8, kv_bits=8, lm_head_bits=8)


def test_design() -> Any:
    """One U280 core; 180 KB weight buffer (gate, up, down, LM head in several tiles), 2304 B KV buffer
    (32-token K/V tiles), 12 KB activation buffer (16-token prefill chunks)."""
    from llmaccel.simulator.design import load_design
    return T.single_core_design(load_design("flightllm-u280"), weight_buf_bytes=184320, kv_buf_bytes=2304,
                                act_buf_bytes=12288)


def bundled_setup(out_dir: Path, max_len: int = 128) -> dict:
    """Compress the bundled model into ``out_dir`` and compile it: compiler, compiled model, weights, exe."""
    from llmaccel.assets import bundled_model_dir
    from llmaccel.mapping.compress import compress_checkpoint, load_compressed
    from llmaccel.mapping.sim_api import build_compiler
    from llmaccel.simulator.functional import ModelWeights
    compress_checkpoint(bundled_model_dir(), recipe(), out_dir)
    cz = load_compressed(out_dir)
    comp, _, _ = build_compiler(cz, test_design(), max_len=max_len)
    cm = comp.compile_model()
    return {"comp": comp, "cm": cm, "w": ModelWeights.from_compressed(cz),
            "exe": T.build_top(comp, cm.prefill_chunk(cm.prefill_bucket))}


def main(argv: list[str] | None = None) -> int:
    from llmaccel.simulator.functional_model import FunctionalModel
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--prompt", type=int, default=30)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        s = bundled_setup(Path(tmp) / "model")
        setup_s = time.perf_counter() - t0
        cm, w, exe = s["cm"], s["w"], s["exe"]
        fm = FunctionalModel(cm, w)
        img = T.build_image(cm, fm.engine, w)
        ids = list(range(3, 3 + args.prompt))
        logits, runs = T.prefill_on_top(exe, cm, img, w, ids, Path(tmp) / "run")
        ref = fm.prefill(ids).logits
        diffs = [float(np.max(np.abs(logits - ref)))]
        same = [int(np.argmax(logits)) == int(np.argmax(ref))]
        prefill_s = [r.wall_s for r in runs[:-1]]
        tok, decode_s = int(np.argmax(ref)), []
        for _ in range(args.steps):
            run = T.require_ok(T.decode_on_top(exe, cm, img, w, tok, fm.length, Path(tmp) / "run"))
            r = fm.decode(tok).logits
            img.data = run.image
            diffs.append(float(np.max(np.abs(run.out[0] - r))))
            same.append(int(np.argmax(run.out[0])) == int(np.argmax(r)))
            decode_s.append(run.wall_s)
            tok = int(np.argmax(run.out[0]))
    print(json.dumps({"what": "isa_top_csim_vs_functional", "prompt_tokens": args.prompt, "decode_steps": args.steps,
                      "max_abs_logit_diff": max(diffs), "tokens_match": all(same),
                      "prefill_chunk_csim_s_median": statistics.median(prefill_s),
                      "decode_step_csim_s_median": statistics.median(decode_s), "setup_s": setup_s}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
