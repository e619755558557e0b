"""`llmaccel run`: generate text on the accelerator (simulated by default) and report its stats.

With no ``--artifact`` the bundled model is compressed with ``--recipe`` and
compiled for ``--design`` into a temporary directory first.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from llmaccel.assets import bundled_model_dir
from llmaccel.commands._common import finite_float, nonnegative_int, positive_int, progress

NAME = "run"
HELP = "generate tokens with a compiled model on the simulator (default), an XRT board or a CUDA GPU, with stats"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", required=True, help="prompt text (tokenized with the checkpoint's tokenizer)")
    p.add_argument("--max-new-tokens", type=positive_int, default=32)
    p.add_argument("--artifact", default=None, help="compiled artifact directory (default: compile the bundled model)")
    p.add_argument("--compressed", default=None,
                   help="compressed model the artifact was compiled from (default: the one its manifest names)")
    p.add_argument("--tokenizer", default=None,
                   help="checkpoint dir whose tokenizer to use when the artifact carries none (llmaccel compile's)")
    p.add_argument("--recipe", default="w8", help="recipe when compressing the bundled model (no --artifact)")
    p.add_argument("--design", default=None, help="design preset (default flightllm-u280; with --artifact it must "
                                                  "be the artifact's)")
    p.add_argument("--max-len", type=positive_int, default=None, help="compiled maximum length when compiling here")
    p.add_argument("--temperature", type=finite_float, default=0.0, help="0 = greedy")
    p.add_argument("--top-k", type=nonnegative_int, default=0, help="0 = off")
    p.add_argument("--top-p", type=finite_float, default=1.0, help="1 = off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="simulator", choices=("simulator", "xrt", "gpu"))
    p.add_argument("--xclbin", default=None, help="xclbin for --backend xrt")
    p.add_argument("--check-reference", action="store_true",
                   help="also run the PyTorch reference of the compressed model on the same prompt and report "
                        "tokens_match_reference and the max logit difference (greedy only)")


def inapplicable(args) -> dict[str, str]:
    """Flags the chosen mode would ignore (the CLI refuses them when given)."""
    out = {}
    if args.artifact:
        out.update({"recipe": "does not apply with --artifact (the artifact is already compressed)",
                    "max_len": "does not apply with --artifact (the artifact fixes its compiled length)"})
    else:
        out.update({d: "applies only with --artifact" for d in ("compressed", "tokenizer")})
    if args.backend != "xrt":
        out["xclbin"] = "applies only with --backend xrt"
    if args.temperature == 0:
        out.update({d: "does not apply to greedy decoding (--temperature 0); give --temperature > 0"
                    for d in ("top_k", "top_p", "seed")})
    else:
        out["check_reference"] = "compares greedy tokens; give --temperature 0"
    return out


def run(args) -> dict:
    from llmaccel.host.artifact import compile_artifact
    from llmaccel.host.session import Session
    from llmaccel.errors import LlmaccelError

    say = progress(not args.json)
    backend_kw = {"xclbin": args.xclbin} if args.backend == "xrt" else {}
    if args.backend == "gpu":
        from llmaccel.host.backends.gpu import resolve_device
        resolve_device(None)     # no CUDA: one clear error before compressing anything
    with tempfile.TemporaryDirectory(prefix="llmaccel-run-") as tmp:
        if args.artifact:
            say(f"loading {args.artifact}")
            sess = Session.load(args.artifact, args.compressed, args.design, backend=args.backend,
                                tokenizer=args.tokenizer, **backend_kw)
        else:
            from llmaccel.assets import calibration_text_path
            from llmaccel.mapping.compress import compress_checkpoint
            from llmaccel.mapping.recipe import get_recipe

            from llmaccel.simulator.design import load_design
            load_design(args.design or "flightllm-u280")   # a bad --design fails before compressing
            model_dir = bundled_model_dir()
            if not (model_dir / "config.json").is_file():
                raise LlmaccelError(f"the bundled model is missing at '{model_dir}'; give --artifact")
            from llmaccel.simulator.specs import load_model_spec
            limit = load_model_spec(model_dir).max_position_embeddings
            if args.max_new_tokens >= limit:    # before compressing: a prompt has at least one token
                raise LlmaccelError(f"--max-new-tokens {args.max_new_tokens} leaves no room for the prompt in "
                                    f"the model's {limit} positions; allowed: at most {limit - 1}")
            recipe = get_recipe(args.recipe)
            say(f"compressing the bundled model with recipe {recipe.name}")
            calib = calibration_text_path().read_text(encoding="utf-8") if recipe.needs_calibration else None
            compress_checkpoint(model_dir, recipe, Path(tmp) / "compressed", calibration=calib)
            design = args.design or "flightllm-u280"
            say(f"compiling for {design}")
            art = compile_artifact(Path(tmp) / "compressed", Path(tmp) / "artifact", design, args.max_len,
                                   tokenizer_dir=model_dir)
            sess = Session.load(art, backend=args.backend, **backend_kw)
        say(f"generating {args.max_new_tokens} tokens on the {args.backend}")
        toks = []
        step_logits = []

        def show(tok: int) -> None:
            toks.append(tok)
            if args.check_reference:
                step_logits.append(np.array(sess.logits, np.float32))
            if not args.json:
                print(sess.decode_text([tok]), end="", flush=True)

        if not args.json:
            print(args.prompt, end="", flush=True)
        for _ in sess.stream(args.prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                             top_p=args.top_p, seed=args.seed, on_token=show):
            pass
        st = sess.last_stats.to_dict()
        if not args.json:
            print()
            print(f"[{st['backend']} {st['design']}] prompt {st['prompt_tokens']} tokens, generated "
                  f"{st['generated_tokens']}; simulated TTFT {_ms(st['ttft_s'])}, decode "
                  f"{_num(st['decode_tokens_per_s'])} tokens/s, {_num(st['tokens_per_J'])} tokens/J; "
                  f"host {st['wall_s']:.2f} s", file=sys.stderr)
        out = {"prompt": args.prompt, "token_ids": toks, "text": sess.decode_text(toks),
               "recipe": sess.artifact.compressed.recipe.name, "max_len": sess.max_len, "stats": st}
        if args.check_reference:
            from llmaccel.host.demo_flow import check_against_reference
            say("checking against the PyTorch reference")
            check = check_against_reference(sess.artifact.compressed, sess.encode_prompt(args.prompt), toks,
                                            step_logits)
            out.update(check)
            if not args.json:
                print(f"reference: tokens {'match' if check['tokens_match_reference'] else 'DIFFER'}; max logit "
                      f"difference {check['max_abs_logit_diff']:.3g} ({check['max_rel_logit_diff']:.2e} of max)",
                      file=sys.stderr)
        return out


def _ms(s) -> str:
    return "n/a" if s is None else f"{1e3 * s:.3f} ms"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:,.0f}"
