"""`llmaccel demo`: the end-to-end tour on the bundled trained model, in well under two minutes.

compress (default recipe) -> perplexity before/after on the held-out text ->
compile for the U280 design -> greedy generation on the simulator backend
(functional engine + timing of the same programs), checked token by token
against the PyTorch reference of the compressed model -> the projected
Llama2-7B figures of the same design and recipe (timing only, no weights).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from llmaccel.assets import bundled_model_dir
from llmaccel.commands._common import at_least, load_tokenizer, positive_int, progress

NAME = "demo"
HELP = ("compress the bundled model, compile it for a design, generate on the simulator checked against "
        "the reference, and project Llama2-7B")
DEFAULT_PROMPT = "The Python interpreter"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default=None, help="compression recipe (default: the project default)")
    p.add_argument("--prompt", default=DEFAULT_PROMPT)
    p.add_argument("--max-new-tokens", type=positive_int, default=32)
    p.add_argument("--eval-tokens", type=at_least(2), default=4096, help="held-out tokens for perplexity")
    p.add_argument("--design", default="flightllm-u280", help="accelerator design preset")
    p.add_argument("--project-model", default="llama2-7b", help="model preset for the projected figures")


def run(args) -> dict:
    from llmaccel.gpu_baseline.evaluate import perplexity
    from llmaccel.gpu_baseline.reference import ReferenceModel
    from llmaccel.assets import calibration_text_path, heldout_text_path
    from llmaccel.mapping.compress import compress_checkpoint, load_compressed
    from llmaccel.mapping.recipe import DEFAULT_RECIPE, get_recipe
    from llmaccel.errors import LlmaccelError

    # names used only at the end of the tour are checked first: a typo fails at once, not after minutes
    from llmaccel.simulator.design import load_design
    from llmaccel.simulator.specs import load_model_spec
    load_design(args.design)
    load_model_spec(args.project_model)
    t0 = time.perf_counter()
    say = progress(True)
    model_dir = bundled_model_dir()
    recipe = get_recipe(args.recipe or DEFAULT_RECIPE)
    tok = load_tokenizer(model_dir)
    eval_ids = tok(heldout_text_path().read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
    prompt_ids = tok(args.prompt, add_special_tokens=False)["input_ids"]
    if not prompt_ids:
        raise LlmaccelError("--prompt is empty after tokenization; give at least one token of text")
    limit = load_model_spec(model_dir).max_position_embeddings
    if len(prompt_ids) + args.max_new_tokens > limit:   # checked here, not after a minute of evaluation
        raise LlmaccelError(f"--prompt ({len(prompt_ids)} tokens) + --max-new-tokens {args.max_new_tokens} "
                            f"exceeds the model's {limit} positions; allowed: --max-new-tokens <= "
                            f"{limit - len(prompt_ids)}")

    say("fp32 reference: perplexity")
    fp32 = ReferenceModel.from_checkpoint(model_dir)
    ppl_fp32 = perplexity(fp32, eval_ids, max_tokens=args.eval_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        say(f"compressing with recipe {recipe.name}")
        stats = compress_checkpoint(model_dir, recipe, Path(tmp) / "compressed",
                                    calibration=calibration_text_path().read_text(encoding="utf-8"), progress=say)
        compressed = load_compressed(Path(tmp) / "compressed")
    ref = ReferenceModel.from_compressed(compressed)
    say("compressed reference: perplexity")
    ppl_c = perplexity(ref, eval_ids, max_tokens=args.eval_tokens)
    say(f"compiling for {args.design} and generating on the simulator")
    from llmaccel.host.demo_flow import run_accelerator_demo
    accel = run_accelerator_demo(compressed, design=args.design, prompt_ids=prompt_ids,
                                 max_new_tokens=args.max_new_tokens, reference=ref)
    new_ids = accel["generated_token_ids"]
    text = tok.decode(new_ids, skip_special_tokens=True)
    say(f"projecting {args.project_model} on {args.design}")
    from llmaccel.mapping.sim_api import simulate
    proj = simulate(args.project_model, args.design, recipe.name, prefill=512, decode=512)
    result = {
        "model": model_dir.name, "recipe": recipe.name, "design": args.design,
        "avg_bits": stats["avg_bits"], "storage_bits_per_weight": stats["storage_bits_per_weight"],
        "sparsity": stats["sparsity"], "perplexity_fp32": ppl_fp32, "perplexity_compressed": ppl_c,
        "prompt": args.prompt, "generated_text": text, "generated_token_ids": new_ids,
        "tokens_match_reference": accel["tokens_match_reference"],
        "max_rel_logit_diff": accel["max_rel_logit_diff"],
        "reference_reductions": accel["reference_reductions"],
        "simulated": {k: accel[k] for k in ("ttft_s", "decode_tokens_per_s", "tokens_per_J", "energy_J")},
        "projected": {"model": args.project_model, "prefill": 512, "decode": 512,
                      **{k: getattr(proj, k) for k in ("ttft_s", "decode_ms_per_token", "decode_tokens_per_s",
                                                      "power_W", "tokens_per_J", "hbm_bw_utilization",
                                                      "roofline_decode_tokens_per_s")}},
        "wall_s": time.perf_counter() - t0,
    }
    if not args.json:
        print(f"model {model_dir.name}, recipe {recipe.name}: {stats['avg_bits']:.2f} code bits/weight, "
              f"{stats['storage_bits_per_weight']:.2f} stored bits/weight, sparsity {stats['sparsity']:.0%}")
        print(f"held-out perplexity: fp32 {ppl_fp32:.3f} -> compressed {ppl_c:.3f} "
              f"({100 * (ppl_c / ppl_fp32 - 1):+.1f}%)")
        print(f"prompt: {args.prompt!r}\ncontinuation (greedy, simulated {args.design}): {text!r}")
        sim = result["simulated"]
        print(f"functional check vs PyTorch reference ({result['reference_reductions']} reductions): tokens "
              f"{'identical' if result['tokens_match_reference'] else 'DIFFER'}, "
              f"max logit diff {result['max_rel_logit_diff']:.2e} of max |logit|")
        print(f"simulated on {args.design}: ttft {sim['ttft_s'] * 1e3:.3f} ms, "
              f"{sim['decode_tokens_per_s']:.0f} tokens/s, {sim['tokens_per_J']:.1f} tokens/J")
        pj = result["projected"]
        print(f"projected {pj['model']} on {args.design} ({recipe.name}, prefill 512 + decode 512): "
              f"ttft {pj['ttft_s']:.2f} s, {pj['decode_tokens_per_s']:.1f} tokens/s "
              f"(roofline {pj['roofline_decode_tokens_per_s']:.1f}), {pj['power_W']:.1f} W, "
              f"{pj['tokens_per_J']:.2f} tokens/J, HBM {pj['hbm_bw_utilization']:.0%} busy")
        print(f"demo took {result['wall_s']:.1f} s")
    return result
