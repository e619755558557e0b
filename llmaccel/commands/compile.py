"""`llmaccel compile`: compile a model (shape + recipe, or a compressed model) onto a design.

Writes an artifact directory (``mapping.artifact_io``: schema version + content hash):

* ``programs.bin``: the ISA words (uint32, little-endian) of every program, back to back;
* ``programs.json``: index of the programs: phase, context length, tokens, core, word offset/count;
  a decode bucket is one layer program, a prefill bucket a list of chunk programs (shared
  between buckets where identical);
* ``placement.json``: every tensor's HBM channels and channel-local address range;
* manifest: model, design, recipe, max_len, bucket sizes and the instruction-storage report.

Programs are layer templates (layer 0's addresses; layer i's tensors are in placement.json),
one per bucket (length-adaptive compilation).
"""
from __future__ import annotations

import argparse

NAME = "compile"
HELP = "compile a model onto an accelerator design: per-bucket ISA programs + HBM placement artifact"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="llama2-7b",
                   help="model preset / config.json path, or a compressed-model artifact directory")
    p.add_argument("--design", default="flightllm-u280",
                   help="design name (looked up on the preset search path) or design YAML path; the artifact "
                        "stores the whole design, so it runs without the YAML")
    p.add_argument("--preset-path", action="append", default=[], metavar="DIR",
                   help="a directory of design YAMLs searched after the bundled presets and $LLMACCEL_PRESET_PATH "
                        "(repeatable)")
    p.add_argument("--recipe", default="flightllm", help="compression recipe (ignored for a compressed model)")
    p.add_argument("--max-len", type=int, default=None,
                   help="compiled maximum length (tokens; default 2048, or for a compressed model the longest "
                        "multiple of 128 its positions allow, at most 2048)")
    p.add_argument("--out", required=True, help="artifact directory to write")
    p.add_argument("--force", action="store_true",
                   help="replace --out if it is an existing compiled-program artifact (nothing else is replaced)")
    p.add_argument("--verify", action="store_true",
                   help="prove every compiled program race-free before writing (mapping.compiler.hazards: no slot, "
                        "buffer or HBM row is overwritten while a reader may still need it, under any unit "
                        "scheduling the wait/release tokens allow; ~0.4 s per Llama2-7B program)")
    p.add_argument("--no-storage-report", action="store_true",
                   help="skip the per-length instruction-storage comparison (it compiles every length)")


def inapplicable(args) -> dict[str, str]:
    """Flags the chosen mode would ignore (the CLI refuses them when given)."""
    if not isinstance(_load_model_kind(args.model), str):
        return {"recipe": "does not apply to a compressed-model artifact (it was compressed with its own recipe)"}
    return {}


def _load_model_kind(arg: str):
    from pathlib import Path
    p = Path(arg)
    return p if p.is_dir() and (p / "manifest.json").is_file() else arg


def _load_model(arg: str):
    from pathlib import Path
    p = Path(arg)
    if p.is_dir() and (p / "manifest.json").is_file():
        from llmaccel.mapping.compress import load_compressed
        return load_compressed(p)
    return arg


def compile_artifact(comp, design, recipe_name: str, out: str, storage: bool = True,
                     compressed=None, force: bool = False) -> dict:
    """Write the artifact; ``design`` (an AcceleratorDesign) is stored whole in the manifest."""
    from llmaccel.mapping.artifact_io import design_record
    from llmaccel.mapping.compiled_artifact import write_compiled_artifact
    meta = {**design_record(design), "recipe": recipe_name}
    if compressed is not None and getattr(compressed, "content_hash", None):
        meta["compressed_model"] = {"path": str(compressed.path), "content_hash": compressed.content_hash}
    return write_compiled_artifact(comp, out, meta, storage=storage, force=force)


def run(args) -> dict:
    from llmaccel.mapping.artifact_io import check_artifact_dest
    from llmaccel.mapping.compiled_artifact import SCHEMA
    from llmaccel.mapping.designs import load_design
    from llmaccel.mapping.sim_api import build_compiler

    check_artifact_dest(args.out, SCHEMA, args.force)   # before compiling: refuse a bad --out at once
    design = load_design(args.design, args.preset_path)
    model = _load_model(args.model)
    max_len = args.max_len
    if max_len is None:
        from llmaccel.mapping.compiler import DEFAULT_MAX_LEN, PREFILL_BUCKET
        max_len = DEFAULT_MAX_LEN
        if not isinstance(model, str):
            max_len = max(PREFILL_BUCKET, min(max_len, model.shape.max_position_embeddings) // PREFILL_BUCKET
                          * PREFILL_BUCKET)
    comp, design, _ = build_compiler(model, design, args.recipe, max_len=max_len)
    rname = comp.f.source if not isinstance(model, str) else str(args.recipe)
    verified = None
    if args.verify:                  # before anything is written: a race is an error, not an artifact
        from llmaccel.mapping.compiler.hazards import check_programs
        verified = check_programs(comp.compile_model())
    out = compile_artifact(comp, design, rname, args.out, storage=not args.no_storage_report,
                           compressed=None if isinstance(model, str) else model, force=args.force)
    if verified is not None:
        out["verified_race_free_programs"] = verified
    if not args.json:
        print(f"wrote {out['artifact']}: {out['programs']} programs, {out['instruction_words']} words "
              f"({out['decode_buckets']} decode + {out['prefill_buckets']} prefill buckets)"
              + (f"; {verified} programs verified race-free" if verified is not None else ""))
        if out["storage"]:
            s = out["storage"]
            print(f"instruction storage: {s['instruction_bytes_bucketed'] / 2**20:.1f} MiB bucketed vs "
                  f"{s['instruction_bytes_per_length'] / 2**20:.1f} MiB one program per length "
                  f"({100 * s['instruction_storage_saving']:.1f} % saved)")
    return out
