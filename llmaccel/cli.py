"""The `llmaccel` command: discovers subcommands in llmaccel.commands.

This module is the one top-level error path of the toolkit. Whatever the
input, a run ends in exactly one of these ways:

* success: exit 0 (``--json``: the command's result, one JSON object on stdout);
* bad input (:class:`LlmaccelError`, an argparse usage error, a flag that does
  not apply to the chosen mode, an I/O error on a path the user gave): one line
  on stderr, exit 2 (``--json``: one ``{"error": ...}`` object on stdout);
* a bug (any other exception): one line saying so and where it happened
  (file:line, exception type), exit 3; ``LLMACCEL_TRACEBACK=1`` adds the
  traceback for developers;
* Ctrl-C: one line, exit 130.

Under ``--json`` everything else a command or a library would print on stdout
goes to stderr, so stdout carries one JSON object and nothing more.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import pkgutil
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

import llmaccel.commands as commands_pkg
from llmaccel.errors import LlmaccelError

EXIT_OK, EXIT_INPUT, EXIT_BUG, EXIT_INTERRUPT = 0, 2, 3, 130
_REPO_ROOT = Path(__file__).resolve().parent.parent


class UsageError(LlmaccelError):
    """A command line argparse refused (unknown flag, missing value, bad type)."""

    def __init__(self, message: str, usage: str):
        super().__init__(message)
        self.usage = usage


class _HelpRequested(Exception):
    """``-h`` was given: the help text, printed by :func:`main` (as JSON under ``--json``)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing and exiting, so :func:`main` decides the output.

    Abbreviated long options are off: ``--out`` must be spelled out, so adding a flag to a subcommand never
    changes what an existing command line means, and the flags given can be told exactly.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # argparse's hook for every usage error
        raise UsageError(f"{message} (see '{self.prog} --help')", self.format_usage().strip())

    def print_help(self, file=None):
        raise _HelpRequested(self.format_help())

    def exit(self, status: int = 0, message: Optional[str] = None):  # pragma: no cover - only -h/--version
        if status:
            raise UsageError((message or "invalid command line").strip(), self.format_usage().strip())
        raise _HelpRequested(message or "")


def _command_modules():
    mods = []
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{commands_pkg.__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="llmaccel", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def _option_dests(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Every option string of the parser tree (subcommands included) -> its destination."""
    out: dict[str, str] = {}
    for action in parser._actions:
        for opt in action.option_strings:
            out.setdefault(opt, action.dest)
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                for opt, dest in _option_dests(child).items():
                    out.setdefault(opt, dest)
    return out


def _given_flags(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, str]:
    """The options spelled out on the command line: destination -> the spelling used."""
    dests = _option_dests(parser)
    given: dict[str, str] = {}
    for tok in argv:
        if tok == "--":
            break
        opt = tok.split("=", 1)[0]
        if opt in dests:
            given.setdefault(dests[opt], opt)
    return given


def _check_flags(args: argparse.Namespace, given: dict[str, str]) -> None:
    """An empty value is an error (no flag here means anything by ""; ``--artifact ""`` once meant "none");
    a flag that does not apply to the chosen mode is an error (the module's ``inapplicable(args)``)."""
    empty = [given.get(dest, dest) for dest, value in vars(args).items() if value == "" and not dest.startswith("_")]
    if empty:
        raise LlmaccelError("; ".join(f"{name}: an empty value; give one, or leave {name} out" for name in empty))
    rule = getattr(args._module, "inapplicable", None)
    if rule is None:
        return
    reasons = rule(args)
    bad = [f"{given[dest]} {why}" for dest, why in reasons.items() if dest in given]
    if bad:
        raise LlmaccelError("; ".join(bad))


def _check_argv_text(argv: list[str]) -> None:
    """Arguments are text: bytes that are not UTF-8 (kept by Python as lone surrogates) are refused here."""
    for i, tok in enumerate(argv):
        try:
            tok.encode("utf-8")
        except UnicodeEncodeError:
            shown = tok.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise LlmaccelError(f"command-line argument {i + 1} ('{shown}') is not valid UTF-8 text; "
                                f"give UTF-8 text or a file path") from None


def _bug_location(exc: BaseException) -> str:
    """file:line of the innermost frame in this repository (else the innermost frame) of ``exc``."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown location"
    ours = [f for f in frames if Path(f.filename).resolve().is_relative_to(_REPO_ROOT)]
    f = (ours or frames)[-1]
    try:
        name = Path(f.filename).resolve().relative_to(_REPO_ROOT)
    except ValueError:
        name = Path(f.filename)
    return f"{name}:{f.lineno} in {f.name}"


def _os_error_message(exc: OSError) -> str:
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        target = f"'{exc.filename}'" + (f" -> '{exc.filename2}'" if exc.filename2 is not None else "")
        return f"cannot use {target}: {what}"
    return f"I/O error: {what}"


def _finite_json(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as the strings 'nan', 'inf', '-inf' (stated, not dropped)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v) for v in obj]
    return obj


def _dumps(obj: Any) -> str:
    try:
        return json.dumps(obj, default=_jsonable, allow_nan=False)
    except ValueError:
        return json.dumps(_finite_json(json.loads(json.dumps(obj, default=_jsonable))), allow_nan=False)


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv[:argv.index("--")] if "--" in argv else "--json" in argv


def _command_name(argv: list[str]) -> str:
    names = {m.NAME for m in _command_modules()}
    return next((t for t in argv if t in names), "")


def _idle_threads_sleep() -> None:
    """OpenMP threads that sleep, not spin, between torch's parallel regions (set before torch loads).

    Our tensors are mostly small (the demo, compress, the reference), so torch runs thousands of
    short parallel regions; with GNU OpenMP's default (active waiting) each idle worker spins on its core, and whenever anything
    else runs on the machine the regions wait for descheduled workers. Measured on this project's
    shared 2-core machine (load average ~8), compressing the bundled model with the default recipe:
    2 threads spinning 340 s wall / 153 s CPU; 2 threads sleeping 67-80 s / 30-33 s CPU; 1 thread
    72 s / 30 s CPU. A user's own OMP_WAIT_POLICY is kept; set for every command, as
    ``llmaccel compress`` suffers the same.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: Optional[list[str]] = None) -> int:
    """Run one command line; return the exit code (0 ok, 2 bad input, 3 bug, 130 interrupted)."""
    _idle_threads_sleep()
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(argv)
    real_stdout = sys.stdout
    prog = "llmaccel"

    def emit_error(kind: str, message: str, code: int, **extra) -> int:
        if as_json:
            print(_dumps({"error": message, "kind": kind, "exit_code": code, **extra}), file=real_stdout,
                  flush=True)
        else:
            print(f"{prog}: {'error' if kind != 'bug' else 'internal error'}: {message}", file=sys.stderr,
                  flush=True)
            if kind == "usage" and extra.get("usage"):
                print(extra["usage"], file=sys.stderr)
        return code

    try:
        _check_argv_text(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        prog = f"llmaccel {args.command}"
        _check_flags(args, _given_flags(parser, argv))
        # Under --json, stray prints (ours or a library's) go to stderr: stdout is one JSON object.
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            result = args._module.run(args)
        if as_json:
            print(_dumps(result), file=real_stdout, flush=True)
        return EXIT_OK
    except _HelpRequested as h:
        if as_json:
            print(_dumps({"help": h.text}), file=real_stdout)
        else:
            print(h.text, end="" if h.text.endswith("\n") else "\n", file=real_stdout)
        return EXIT_OK
    except UsageError as exc:
        prog = _command_name(argv) and f"llmaccel {_command_name(argv)}" or "llmaccel"
        return emit_error("usage", str(exc), EXIT_INPUT, usage=exc.usage)
    except LlmaccelError as exc:
        problems = list(getattr(exc, "problems", ()))   # a spec file's every problem (SpecError), for scripts
        return emit_error("input", str(exc), EXIT_INPUT, **({"problems": problems} if len(problems) > 1 else {}))
    except KeyboardInterrupt:
        return emit_error("interrupted", "interrupted", EXIT_INTERRUPT)
    except BrokenPipeError:  # `llmaccel ... | head`: the reader left; nothing more to say
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")
        return EXIT_INPUT
    except OSError as exc:  # a path the user gave: unwritable, a file where a directory is needed, disk full
        return emit_error("io", _os_error_message(exc), EXIT_INPUT)
    except SystemExit as exc:  # a library's sys.exit() inside a command: still one line, never a silent exit
        where = _bug_location(exc)
        return emit_error("bug", f"this is a bug in llmaccel, please report it: SystemExit({exc.code!r}) at {where}",
                          EXIT_BUG, exception="SystemExit", where=where)
    except MemoryError:
        return emit_error("resources", "out of memory (try a smaller model, --max-len or input)", EXIT_INPUT)
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into one line
        where = _bug_location(exc)
        if os.environ.get("LLMACCEL_TRACEBACK"):
            traceback.print_exception(exc, file=sys.stderr)
        msg = (f"this is a bug in llmaccel, please report it: {type(exc).__name__} at {where}: "
               f"{str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))
        return emit_error("bug", msg, EXIT_BUG, exception=type(exc).__name__, where=where)


def _jsonable(obj):
    try:
        import numpy as np
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses
        return dataclasses.asdict(obj)
    return str(obj)


if __name__ == "__main__":
    sys.exit(main())
