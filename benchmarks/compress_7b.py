"""Compress a Llama2-7B-shaped checkpoint (synthetic FP16 weights) and report time and peak memory.

Target (issue 2): peak RSS under 6 GB. The checkpoint is written tensor by
tensor (never whole in memory) into a temporary directory, compressed with
RTN W4 g128 + 2:4 magnitude pruning, and removed afterwards. Prints one JSON line.
Usage: python benchmarks/compress_7b.py [--layers N] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmaccel.mapping.checkpoint import write_safetensors_streaming  # noqa: E402
from llmaccel.mapping.compress import compress_checkpoint  # noqa: E402
from llmaccel.mapping.recipe import LayerRule, Recipe  # noqa: E402

# Llama-2-7b-hf config.json (Touvron et al. 2023; the public Hugging Face config)
LLAMA2_7B = dict(model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=4096,
                 intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096,
                 rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)


def write_synthetic_checkpoint(path: Path, cfg: dict, seed: int = 0) -> int:
    h, inter, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    specs = [("model.embed_tokens.weight", "F16", (v, h))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        specs += [(f"{p}.input_layernorm.weight", "F16", (h,)), (f"{p}.post_attention_layernorm.weight", "F16", (h,))]
        specs += [(f"{p}.self_attn.{n}.weight", "F16", (h, h)) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
        specs += [(f"{p}.mlp.gate_proj.weight", "F16", (inter, h)), (f"{p}.mlp.up_proj.weight", "F16", (inter, h)),
                  (f"{p}.mlp.down_proj.weight", "F16", (h, inter))]
    specs += [("model.norm.weight", "F16", (h,)), ("lm_head.weight", "F16", (v, h))]
    rng = np.random.default_rng(seed)

    def produce():
        for name, _, shape in specs:
            if len(shape) == 1:
                yield np.ones(shape, np.float16)
            else:  # Llama's init scale (std 0.02)
                yield (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(cfg))
    write_safetensors_streaming(path / "model.safetensors", specs, produce())
    return sum(int(np.prod(s)) for _, _, s in specs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=32, help="decoder layers (32 = the real Llama2-7B)")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    cfg = dict(LLAMA2_7B, num_hidden_layers=args.layers)
    work = Path(tempfile.mkdtemp(prefix="llmaccel-7b-", dir=args.workdir))
    try:
        t0 = time.perf_counter()
        n_params = write_synthetic_checkpoint(work / "ckpt", cfg)
        t_write = time.perf_counter() - t0
        rss_after_write = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
        rule = LayerRule(bits=4, group_size=128, symmetric=True, method="rtn", nm=(2, 4), prune_method="magnitude")
        recipe = Recipe("w4-g128-rtn+2:4-magnitude", attn=rule, mlp=rule, lm_head_bits=8, act_bits=8, kv_bits=8)
        t1 = time.perf_counter()
        stats = compress_checkpoint(work / "ckpt", recipe, work / "compressed",
                                    progress=lambda m: print(f"  .. {m}", file=sys.stderr, flush=True))
        t_compress = time.perf_counter() - t1
        out_bytes = sum(f.stat().st_size for f in (work / "compressed").iterdir())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
        print(json.dumps({
            "benchmark": "compress_7b", "layers": args.layers, "params": n_params,
            "recipe": recipe.name, "checkpoint_write_s": round(t_write, 1), "compress_wall_s": round(t_compress, 1),
            "peak_rss_GB": round(peak, 3), "peak_rss_during_write_GB": round(rss_after_write, 3),
            "target_peak_rss_GB": 6.0, "meets_target": peak < 6.0,
            "input_GB": round(n_params * 2 / 1e9, 2), "output_GB": round(out_bytes / 1e9, 2),
            "storage_bits_per_weight": round(stats["storage_bits_per_weight"], 3), "sparsity": stats["sparsity"],
        }))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
