#!/usr/bin/env python3
"""Train the tiny Llama that ships with llmaccel, from scratch, on CPU.

Why this exists: quantization and pruning recipes are only comparable when the
model they degrade has learned something; a randomly initialised checkpoint has
a perplexity near its vocabulary size whatever is done to it. This script makes
a small but genuinely trained ``LlamaForCausalLM`` whose shapes are divisible by
the hardware's group size (128) and N:M block (M=16).

The corpus is text that every CPython installation carries, so nothing is
downloaded and the licence is clear (PSF-2.0):

* ``pydoc_data.topics`` -- the English language-reference / library-reference
  sections that ``help()`` prints (generated from CPython's ``Doc/`` tree);
* the docstrings of the pure-Python standard library (module, class and
  function docstrings, read with ``ast`` so that nothing is imported) and of
  the modules compiled into the interpreter.

Test suites (code fixtures) and site-packages (third-party licences) are left
out. The held-out and calibration texts are whole documents
chosen by a content hash, so the split does not depend on file order.

Everything is seeded and single-process; the same Python installation, seed,
thread count and ``--steps`` give the same bits. ``--max-minutes`` is only a
safety stop: when it fires the run is reported as truncated. One torch thread
is the default because the 2-core machines are shared: with two threads, any
other busy process stalls every OpenMP barrier and a step took 5-7x longer.

Usage (the committed checkpoint)::

    python scripts/train_tiny_llama.py

Smoke run::

    python scripts/train_tiny_llama.py --steps 20 --hidden-size 64 \
        --intermediate-size 128 --num-layers 2 --num-heads 4 --num-kv-heads 2 \
        --vocab-size 512 --seq-len 64 --batch-size 4 --max-corpus-chars 200000 \
        --out-dir /tmp/m --text-dir /tmp/t
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "llmaccel" / "assets" / "tiny-llama"
DEFAULT_TEXT_DIR = REPO_ROOT / "llmaccel" / "assets" / "text"

# Folders of the stdlib left out: test suites (code fixtures, not prose) and
# site-packages (third-party code under other licences).
_EXCLUDED_DIRS = {"test", "tests", "site-packages", "dist-packages", "__pycache__"}
_MIN_DOCSTRING_CHARS = 60
_HELDOUT_TARGET_CHARS = 30_000
_CALIBRATION_TARGET_CHARS = 20_000
_SPLIT_DOC_MIN_CHARS = 1_000   # held-out/calibration docs: whole, mid-sized documents
_SPLIT_DOC_MAX_CHARS = 6_000
_DOC_SEPARATOR = "\n\n"
_SPECIAL_TOKENS = ["<s>", "</s>", "<pad>"]


@dataclass(frozen=True)
class Document:
    """One unit of the corpus; the split never cuts inside a document."""

    name: str
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256((self.name + "\0" + self.text).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- corpus
def pydoc_topic_documents() -> list[Document]:
    """The reference-manual sections behind ``help('TOPIC')``."""
    from pydoc_data.topics import topics

    return [Document(f"pydoc:{key}", topics[key].strip()) for key in sorted(topics)]


def stdlib_docstring_documents(seen: set[str]) -> list[Document]:
    """One document per stdlib module: its docstrings, in source order.

    Docstrings seen before (``Return self.`` and friends, inherited copies) are
    dropped so that the held-out text cannot reappear verbatim in training.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in _EXCLUDED_DIRS and not d.startswith("config-")
        )
        files.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py"))
    files.sort(key=lambda p: p.relative_to(root).as_posix())

    docs: list[Document] = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a handful of files are Python-2 fixtures or other encodings
        parts = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc and len(doc) >= _MIN_DOCSTRING_CHARS and doc not in seen:
                    seen.add(doc)
                    parts.append(doc.strip())
        if parts:
            name = path.relative_to(root).as_posix()
            docs.append(Document(f"stdlib:{name}", _DOC_SEPARATOR.join(parts)))
    return docs


def builtin_module_documents(seen: set[str]) -> list[Document]:
    """Docstrings of the modules compiled into the interpreter (``sys``, ``math``, ``_io`` ...).

    These are C modules, so ``ast`` cannot see them; importing a built-in
    module has no side effects, unlike importing arbitrary stdlib modules.
    """
    import importlib
    import inspect

    docs: list[Document] = []
    for mod_name in sorted(sys.builtin_module_names):
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        objs = [mod]
        for attr in sorted(dir(mod)):
            obj = getattr(mod, attr, None)
            if inspect.isclass(obj) or inspect.isroutine(obj):
                objs.append(obj)
                if inspect.isclass(obj):
                    objs.extend(getattr(obj, a, None) for a in sorted(vars(obj)))
        parts = []
        for obj in objs:
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str):
                doc = inspect.cleandoc(doc)
                if len(doc) >= _MIN_DOCSTRING_CHARS and doc not in seen:
                    seen.add(doc)
                    parts.append(doc.strip())
        if parts:
            docs.append(Document(f"builtin:{mod_name}", _DOC_SEPARATOR.join(parts)))
    return docs


def build_corpus() -> list[Document]:
    seen: set[str] = set()
    docs = pydoc_topic_documents() + stdlib_docstring_documents(seen) + builtin_module_documents(seen)
    # Ascii-only control characters aside, keep text as is; drop empty docs.
    return [d for d in docs if d.text]


def split_corpus(docs: list[Document]) -> tuple[list[Document], list[Document], list[Document]]:
    """Return (train, heldout, calibration); calibration is a subset of train.

    Documents are ranked by content hash (stable, order-free) and taken whole
    until each target size is reached.
    """
    ranked = sorted(
        (d for d in docs if _SPLIT_DOC_MIN_CHARS <= len(d.text) <= _SPLIT_DOC_MAX_CHARS),
        key=lambda d: d.digest,
    )
    heldout: list[Document] = []
    size = 0
    for d in ranked:
        if size >= _HELDOUT_TARGET_CHARS:
            break
        heldout.append(d)
        size += len(d.text) + len(_DOC_SEPARATOR)
    heldout_names = {d.name for d in heldout}
    train = [d for d in docs if d.name not in heldout_names]

    calibration: list[Document] = []
    size = 0
    for d in reversed(ranked):  # the other end of the ranking: disjoint from held-out
        if size >= _CALIBRATION_TARGET_CHARS:
            break
        if d.name in heldout_names:
            continue
        calibration.append(d)
        size += len(d.text) + len(_DOC_SEPARATOR)
    return train, heldout, calibration


def join_documents(docs: list[Document]) -> str:
    return _DOC_SEPARATOR.join(d.text for d in docs) + "\n"


# --------------------------------------------------------------------------- tokenizer
def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE (GPT-2 style): every byte is representable, so any text round-trips."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    if tok.get_vocab_size() != vocab_size:
        raise SystemExit(
            f"tokenizer: vocab_size {vocab_size} not reached (got {tok.get_vocab_size()}); "
            "the corpus is too small for this vocabulary"
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=None,
        clean_up_tokenization_spaces=False,
    )


def encode_documents(tokenizer, docs: list[Document]) -> torch.Tensor:
    ids: list[int] = []
    for d in docs:
        ids.extend(tokenizer(d.text + _DOC_SEPARATOR, add_special_tokens=False)["input_ids"])
    return torch.tensor(ids, dtype=torch.long)


# --------------------------------------------------------------------------- model
def make_config(args, vocab_size: int, bos_id: int, eos_id: int, pad_id: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.num_layers,
        num_attention_heads=args.num_heads,
        num_key_value_heads=args.num_kv_heads,
        head_dim=args.hidden_size // args.num_heads,
        max_position_embeddings=args.max_position_embeddings,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        initializer_range=0.02,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )


def lr_at(step: int, total: int, peak: float, warmup: int, floor_ratio: float) -> float:
    """Linear warm-up, then cosine decay to ``floor_ratio * peak`` at the last step."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor_ratio + (1.0 - floor_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


@torch.no_grad()
def perplexity(model, ids: torch.Tensor, window: int) -> tuple[float, int]:
    """Non-overlapping windows; each window predicts its own tokens after the first."""
    model.eval()
    nll, count = 0.0, 0
    for start in range(0, ids.numel() - 1, window):
        chunk = ids[start:start + window]
        if chunk.numel() < 2:
            break
        out = model(input_ids=chunk[None], labels=chunk[None])
        n = chunk.numel() - 1
        nll += out.loss.item() * n
        count += n
    return math.exp(nll / count), count


# --------------------------------------------------------------------------- IO
def make_tokenizer_files_portable(model_dir: Path) -> None:
    """Let transformers 4.x (the package allows >= 4.45) load what transformers 5 saved.

    Version 5 names its class ``TokenizersBackend`` and no longer writes
    ``special_tokens_map.json``; 4.x knows neither. ``PreTrainedTokenizerFast``
    is understood by both.
    """
    cfg_path = model_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    special_map = {k: cfg[k] for k in ("bos_token", "eos_token", "pad_token") if k in cfg}
    (model_dir / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n",
                                                       encoding="utf-8")


def atomic_replace_dir(tmp: Path, final: Path) -> None:
    """Swap a fully written directory into place so no half-written checkpoint looks complete."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def render_training_md(info: dict) -> str:
    hp = info["hyperparameters"]
    cfg = info["model"]
    lines = [
        "# tiny-llama: how this checkpoint was made",
        "",
        "Written by `scripts/train_tiny_llama.py` at the end of its run; every number",
        "below was measured by that run (nothing edited by hand).",
        "",
        "## Corpus and licence",
        "",
        "Text shipped inside CPython itself, so every machine with Python has it offline:",
        "",
        "- `pydoc_data/topics.py`: the language/library reference sections printed by `help()`,",
        "  generated from CPython's `Doc/` tree;",
        "- docstrings (module, class, function) of the pure-Python standard library, read with `ast`",
        "  (no imports; test suites and site-packages excluded), and the docstrings of the modules",
        "  built into the interpreter (`sys`, `math`, `_io`, ...); repeated docstrings kept once.",
        "",
        "Licence: **PSF-2.0** (Python Software Foundation License Version 2, the licence of",
        "CPython and its documentation). The derived checkpoint and texts are redistributed",
        "under the same terms; see https://docs.python.org/3/license.html.",
        "",
        f"- Python: {info['python']} (stdlib at `{info['stdlib_root_name']}`)",
        f"- documents: {info['corpus']['documents']} ({info['corpus']['chars']} characters), "
        f"corpus sha256 `{info['corpus']['sha256'][:16]}…`",
        f"- split: {info['corpus']['train_documents']} training documents "
        f"({info['corpus']['train_tokens']} tokens); held-out {info['corpus']['heldout_documents']} "
        f"whole documents ({info['corpus']['heldout_chars']} chars, {info['corpus']['heldout_tokens']} tokens) "
        "never seen by the tokenizer or the model; calibration "
        f"{info['corpus']['calibration_documents']} training documents ({info['corpus']['calibration_chars']} chars).",
        "",
        "## Tokenizer",
        "",
        f"Byte-level BPE (`tokenizers`), vocab {cfg['vocab_size']}, trained on the training split only;",
        "special tokens `<s>`, `</s>`, `<pad>` (ids 0, 1, 2). Any UTF-8 text round-trips exactly.",
        "No BOS is prepended: the model was trained on plain token streams of documents joined",
        "by blank lines, which is also how `heldout.txt` and `calibration.txt` are laid out.",
        "",
        "## Model",
        "",
        f"`LlamaForCausalLM`, {info['parameters']} parameters: hidden {cfg['hidden_size']}, "
        f"intermediate {cfg['intermediate_size']}, {cfg['num_hidden_layers']} layers, "
        f"{cfg['num_attention_heads']} heads / {cfg['num_key_value_heads']} KV heads (head_dim "
        f"{cfg['head_dim']}), max positions {cfg['max_position_embeddings']}, RoPE theta 10000, "
        "RMSNorm eps 1e-5, untied embeddings. Trained in fp32, stored in float16 "
        f"(`model.safetensors`, {info['checkpoint_bytes']} bytes).",
        "",
        "## Training",
        "",
        "| hyper-parameter | value |",
        "| --- | --- |",
    ]
    for key in sorted(hp):
        lines.append(f"| {key} | {hp[key]} |")
    lines += [
        "",
        f"- steps run: {info['steps_run']} of {hp['steps']}"
        + (" (**stopped early by --max-minutes**)" if info["truncated"] else ""),
        f"- tokens seen: {info['tokens_seen']}",
        f"- wall time: {info['train_seconds']:.0f} s on {hp['threads']} CPU threads ({info['cpu']})",
        f"- final train loss (mean of the last {info['final_loss_window']} steps): {info['final_train_loss']:.4f}",
        "- held-out perplexity on its first 4096 tokens during training (monitoring only): "
        + (", ".join(f"step {s}: {p:.1f}" for s, p in info["heldout_monitor"]) or "not logged"),
        "",
        "## Held-out evaluation (fp32)",
        "",
        "The saved float16 weights reloaded and run in float32, non-overlapping windows of "
        f"{info['eval_window']} tokens over `llmaccel/assets/text/heldout.txt`:",
        "",
        f"- perplexity over all {info['heldout_eval_tokens']} predicted tokens: **{info['heldout_ppl']:.2f}**",
        f"- perplexity over the first 2048 tokens: {info['heldout_ppl_first2048']:.2f}",
        f"- training-split perplexity of the same model on `calibration.txt`: {info['calibration_ppl']:.2f}",
        f"- (uniform guess over the vocabulary: {cfg['vocab_size']})",
        "",
        "## Reproduce",
        "",
        "```",
        info["command"],
        "```",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=450, help="optimizer steps (sets the LR schedule)")
    p.add_argument("--max-minutes", type=float, default=29.0, help="safety stop; the run is then marked truncated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (part of the determinism key)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% of --steps")
    p.add_argument("--min-lr-ratio", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--hidden-size", type=int, default=256)
    p.add_argument("--intermediate-size", type=int, default=768)
    p.add_argument("--num-layers", type=int, default=4)
    p.add_argument("--num-heads", type=int, default=8)
    p.add_argument("--num-kv-heads", type=int, default=4)
    p.add_argument("--vocab-size", type=int, default=2048)
    p.add_argument("--max-position-embeddings", type=int, default=512)
    p.add_argument("--max-corpus-chars", type=int, default=None,
                   help="truncate the training split (smoke runs only)")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--eval-every", type=int, default=200,
                   help="log held-out perplexity on its first 4096 tokens (monitoring only, never used to select)")
    p.add_argument("--out-dir", type=Path, default=DEFAULT_MODEL_DIR)
    p.add_argument("--text-dir", type=Path, default=DEFAULT_TEXT_DIR)
    args = p.parse_args(argv)
    if args.seq_len > args.max_position_embeddings:
        p.error(f"--seq-len {args.seq_len} exceeds --max-position-embeddings {args.max_position_embeddings}")
    if args.hidden_size % args.num_heads or args.num_heads % args.num_kv_heads:
        p.error("--hidden-size must divide by --num-heads and --num-heads by --num-kv-heads")
    if args.steps < 1:
        p.error("--steps must be >= 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    t_start = time.time()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    docs = build_corpus()
    corpus_text = join_documents(docs)
    train_docs, heldout_docs, calib_docs = split_corpus(docs)
    if args.max_corpus_chars is not None:
        kept, size = [], 0
        for d in train_docs:
            if size >= args.max_corpus_chars:
                break
            kept.append(d)
            size += len(d.text)
        train_docs = kept
    heldout_text = join_documents(heldout_docs)
    calibration_text = join_documents(calib_docs)
    print(f"[corpus] {len(docs)} documents, {len(corpus_text)} chars; train {len(train_docs)} docs, "
          f"heldout {len(heldout_docs)} docs / {len(heldout_text)} chars, "
          f"calibration {len(calib_docs)} docs / {len(calibration_text)} chars", flush=True)

    tokenizer = train_tokenizer([d.text for d in train_docs], args.vocab_size)
    train_ids = encode_documents(tokenizer, train_docs)
    heldout_ids = torch.tensor(tokenizer(heldout_text, add_special_tokens=False)["input_ids"])
    calib_ids = torch.tensor(tokenizer(calibration_text, add_special_tokens=False)["input_ids"])
    print(f"[tokens] train {train_ids.numel()}, heldout {heldout_ids.numel()} "
          f"({len(heldout_text) / heldout_ids.numel():.2f} chars/token), "
          f"{time.time() - t_start:.1f} s so far", flush=True)

    from transformers import LlamaForCausalLM

    config = make_config(args, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id,
                         tokenizer.pad_token_id)
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(config).float()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[model] {n_params} parameters", flush=True)

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
    )
    warmup = args.warmup_steps if args.warmup_steps is not None else max(1, args.steps // 20)
    gen = torch.Generator().manual_seed(args.seed + 1)
    n_windows = train_ids.numel() - args.seq_len - 1
    if n_windows < 1:
        raise SystemExit(f"training split has {train_ids.numel()} tokens, fewer than --seq-len {args.seq_len}")

    losses: list[float] = []
    monitor: list[tuple[int, float]] = []
    t_train = time.time()
    truncated = False
    model.train()
    for step in range(args.steps):
        if (time.time() - t_train) / 60.0 > args.max_minutes:
            truncated = True
            print(f"[train] --max-minutes {args.max_minutes} reached at step {step}; stopping", flush=True)
            break
        lr = lr_at(step, args.steps, args.lr, warmup, args.min_lr_ratio)
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, n_windows, (args.batch_size,), generator=gen)
        batch = torch.stack([train_ids[s:s + args.seq_len + 1] for s in starts.tolist()])
        out = model(input_ids=batch[:, :-1], labels=batch[:, :-1])
        # labels are shifted inside the model: position t predicts input t+1.
        loss = out.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        losses.append(loss.item())
        if step % args.log_every == 0 or step == args.steps - 1:
            elapsed = time.time() - t_train
            tok_s = (step + 1) * args.batch_size * args.seq_len / max(elapsed, 1e-9)
            print(f"[train] step {step + 1}/{args.steps} loss {loss.item():.4f} lr {lr:.2e} "
                  f"{elapsed:.0f} s {tok_s:.0f} tok/s", flush=True)
        if args.eval_every and (step + 1) % args.eval_every == 0:
            ppl, _ = perplexity(model, heldout_ids[:4096], args.max_position_embeddings)
            monitor.append((step + 1, ppl))
            print(f"[monitor] step {step + 1} heldout[:4096] ppl {ppl:.2f}", flush=True)
            model.train()
    train_seconds = time.time() - t_train
    steps_run = len(losses)

    # Save fp16, reload in fp32 and evaluate what users will actually load.
    args.out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=args.out_dir.parent, prefix=args.out_dir.name + ".tmp."))
    model.eval()
    model.half().save_pretrained(tmp_dir, safe_serialization=True)
    tokenizer.save_pretrained(tmp_dir)
    make_tokenizer_files_portable(tmp_dir)
    reloaded = LlamaForCausalLM.from_pretrained(tmp_dir, dtype=torch.float32, local_files_only=True,
                                                trust_remote_code=False)
    window = args.max_position_embeddings
    heldout_ppl, heldout_n = perplexity(reloaded, heldout_ids, window)
    first_ppl, _ = perplexity(reloaded, heldout_ids[:2048], window)
    calib_ppl, _ = perplexity(reloaded, calib_ids, window)
    final_window = min(50, steps_run)
    final_loss = sum(losses[-final_window:]) / final_window
    print(f"[eval] heldout ppl {heldout_ppl:.2f} ({heldout_n} tokens), first-2048 {first_ppl:.2f}, "
          f"calibration ppl {calib_ppl:.2f}, final train loss {final_loss:.4f}", flush=True)

    hyper = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
             if k not in {"out_dir", "text_dir", "log_every"}}
    hyper.update({"warmup_steps": warmup, "optimizer": "AdamW(betas=(0.9, 0.95), eps=1e-8)",
                  "schedule": "linear warm-up then cosine to min_lr_ratio*lr"})
    info = {
        "python": platform.python_version(),
        "stdlib_root_name": Path(sysconfig.get_paths()["stdlib"]).name,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "corpus": {
            "documents": len(docs), "chars": len(corpus_text),
            "sha256": hashlib.sha256(corpus_text.encode("utf-8")).hexdigest(),
            "train_documents": len(train_docs), "train_tokens": int(train_ids.numel()),
            "heldout_documents": len(heldout_docs), "heldout_chars": len(heldout_text),
            "heldout_tokens": int(heldout_ids.numel()),
            "calibration_documents": len(calib_docs), "calibration_chars": len(calibration_text),
        },
        "model": {k: getattr(config, k) for k in (
            "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings")},
        "parameters": n_params,
        "hyperparameters": hyper,
        "steps_run": steps_run,
        "truncated": truncated,
        "tokens_seen": steps_run * args.batch_size * args.seq_len,
        "train_seconds": train_seconds,
        "final_loss_window": final_window,
        "final_train_loss": final_loss,
        "losses": losses,
        "heldout_monitor": monitor,
        "eval_window": window,
        "heldout_eval_tokens": heldout_n,
        "heldout_ppl": heldout_ppl,
        "heldout_ppl_first2048": first_ppl,
        "calibration_ppl": calib_ppl,
        "checkpoint_bytes": (tmp_dir / "model.safetensors").stat().st_size,
        "command": "python scripts/train_tiny_llama.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])),
    }
    (tmp_dir / "training_log.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    (tmp_dir / "TRAINING.md").write_text(render_training_md(info), encoding="utf-8")
    tmp_dir.chmod(0o755)
    for f in tmp_dir.iterdir():
        f.chmod(0o644)
    atomic_replace_dir(tmp_dir, args.out_dir)
    atomic_write_text(args.text_dir / "heldout.txt", heldout_text)
    atomic_write_text(args.text_dir / "calibration.txt", calibration_text)
    print(f"[done] wrote {args.out_dir} and {args.text_dir} in {time.time() - t_start:.0f} s", flush=True)
    return info


if __name__ == "__main__":
    main()
