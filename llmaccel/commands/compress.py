"""`llmaccel compress`: compress a checkpoint with a recipe; `--eval` compares recipes by perplexity."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from llmaccel.commands._common import (at_least, load_tokenizer, model_dir_arg, progress,
                                       read_text_file)

NAME = "compress"
HELP = "compress a Llama checkpoint (quantize, prune, pack); --eval compares recipes by held-out perplexity"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint directory (default: the bundled trained tiny Llama)")
    p.add_argument("--recipe", default=None, help="recipe name or YAML file (default: flightllm)")
    p.add_argument("--out", help="artifact directory to write (default: out/<model>-<recipe>)")
    p.add_argument("--force", action="store_true",
                   help="replace --out if it is an existing compressed-model artifact (nothing else is replaced)")
    p.add_argument("--eval", action="store_true", help="evaluate recipes on the held-out text instead")
    p.add_argument("--recipes", help="comma-separated recipes for --eval (default: the standard table)")
    p.add_argument("--eval-text", help="held-out text file (default: the bundled held-out text)")
    p.add_argument("--calibration-text", help="calibration text file (default: the bundled calibration text)")
    p.add_argument("--max-eval-tokens", type=at_least(2), default=None, help="evaluate on the first N tokens only")
    p.add_argument("--plot", help="with --eval: write a perplexity-vs-bits plot (PNG) here")


def inapplicable(args) -> dict[str, str]:
    """Flags the chosen mode would ignore (the CLI refuses them when given)."""
    from llmaccel.mapping.recipe import DEFAULT_RECIPE, EVAL_RECIPES, get_recipe
    if args.eval:
        out = {"recipe": "does not apply with --eval (give the recipes to compare with --recipes)",
               "out": "does not apply with --eval (nothing is kept; use --plot for a figure)",
               "force": "does not apply with --eval (nothing is kept)"}
        names = _recipe_list(args.recipes) if args.recipes else list(EVAL_RECIPES)
    else:
        out = {d: "applies only with --eval" for d in ("recipes", "eval_text", "max_eval_tokens", "plot")}
        names = [args.recipe or DEFAULT_RECIPE]
    if args.calibration_text is not None and not any(get_recipe(n).needs_calibration for n in names):
        out["calibration_text"] = (f"does not apply: recipe(s) {', '.join(names)} use no calibration "
                                   f"(only GPTQ, Wanda and mixed precision do)")
    return out


def _recipe_list(text: str) -> list[str]:
    """--recipes 'a,b': every name non-empty (an empty --recipes is an error, not the default table)."""
    from llmaccel.errors import LlmaccelError
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise LlmaccelError(f"--recipes '{text}' has an empty name; give comma-separated recipe names "
                            f"(e.g. w8,w4-g128-rtn) or leave --recipes out for the standard table")
    return names


def _read_text(path: str | None, default_fn, flag: str) -> str:
    return read_text_file(Path(path) if path else default_fn(), flag)


def evaluate_recipes(model_dir: Path, recipe_names: list[str], eval_text: str, calib_text,
                     max_eval_tokens: int | None, say) -> list[dict]:
    from llmaccel.gpu_baseline.evaluate import perplexity
    from llmaccel.gpu_baseline.reference import ReferenceModel
    from llmaccel.mapping.compress import compress_checkpoint, load_compressed
    from llmaccel.mapping.recipe import get_recipe
    recipes = [get_recipe(n) for n in recipe_names]   # validate all names before any work
    calib_text = calib_text() if any(r.needs_calibration for r in recipes) else None
    tok = load_tokenizer(model_dir)
    ids = tok(eval_text, add_special_tokens=False)["input_ids"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipes:
            say(f"recipe {recipe.name}: compressing")
            stats = compress_checkpoint(model_dir, recipe, Path(tmp) / "artifact", calibration=calib_text,
                                        force=True)   # our own temporary artifact of the previous recipe
            model = ReferenceModel.from_compressed(load_compressed(Path(tmp) / "artifact"))
            ppl = perplexity(model, ids, max_tokens=max_eval_tokens)
            say(f"recipe {recipe.name}: perplexity {ppl:.3f}")
            rows.append({"name": recipe.name, "avg_bits": round(stats["avg_bits"], 4),
                         "storage_bits_per_weight": round(stats["storage_bits_per_weight"], 4),
                         "sparsity": round(stats["sparsity"], 4), "perplexity": round(ppl, 4),
                         "layer_bits": stats["layer_bits"] or None})
    return rows


def run(args) -> dict:
    from llmaccel.assets import calibration_text_path, heldout_text_path
    from llmaccel.mapping.recipe import DEFAULT_RECIPE, EVAL_RECIPES, get_recipe
    from llmaccel.reports.compression import plot_recipes, recipe_table
    if args.plot is not None:      # a bad plot path (--eval only) is refused before any work
        from llmaccel.reports.figures import check_png_dest
        check_png_dest(args.plot)
    model_dir = model_dir_arg(args.model)
    say = progress(True)
    # calibration text is read only when a recipe needs it (GPTQ, Wanda, mixed precision)
    calib = lambda: _read_text(args.calibration_text, calibration_text_path, "--calibration-text")
    if args.eval:
        names = _recipe_list(args.recipes) if args.recipes is not None else list(EVAL_RECIPES)
        text = _read_text(args.eval_text, heldout_text_path, "--eval-text")
        rows = evaluate_recipes(model_dir, names, text, calib, args.max_eval_tokens, say)
        result = {"model": str(model_dir), "recipes": rows}
        if args.plot is not None:
            result["plot"] = str(plot_recipes(rows, args.plot, f"{model_dir.name}: held-out perplexity"))
        if not args.json:
            print(recipe_table(rows))
            if args.plot:
                print(f"plot: {result['plot']}")
        return result
    from llmaccel.mapping.compress import compress_checkpoint
    recipe = get_recipe(args.recipe or DEFAULT_RECIPE)
    calib = calib() if recipe.needs_calibration else None
    # an empty --out is an error (sparse_dsp.safe_paths), not the default
    out = args.out if args.out is not None else str(Path("out") / f"{model_dir.name}-{recipe.name.replace(':', '_')}")
    stats = compress_checkpoint(model_dir, recipe, out, calibration=calib, progress=say, force=args.force)
    if not args.json:
        print(f"wrote {out}: {stats['avg_bits']:.2f} code bits/weight, "
              f"{stats['storage_bits_per_weight']:.2f} stored bits/weight, sparsity {stats['sparsity']:.2f}")
    return {"recipe": recipe.name, **stats}
