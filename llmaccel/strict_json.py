"""The one strict JSON reader for every file a user hands us (config.json, manifests, headers, reports).

Python's ``json`` accepts what no other JSON tool writes and quietly makes it data: a key given
twice keeps the last value, ``NaN``/``Infinity``/``-Infinity`` become floats, ``1e999`` becomes
``inf``, ``bytes`` input is guessed to be UTF-16 or UTF-32. A config with ``"hidden_size"`` twice
or ``"rope_theta": Infinity`` would then be simulated as if it were fine. This module refuses
each of those with one error that names the file and the field (``rope_scaling.factor``), in the
caller's own error class (a :class:`~llmaccel.errors.LlmaccelError`, so the CLI exits 2 with one
line), and never lets a ``json`` or ``RecursionError`` traceback through.

It lives at the top of the ``llmaccel`` namespace, next to :mod:`llmaccel.errors` and importing
only it, so every package (``sparse_dsp`` up) can use it without breaking the import order.
How: the parser's hooks put a marker where a problem is (the hooks do not know where they are
in the document); only when a marker was made is the result walked once to find its path.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

from llmaccel.errors import LlmaccelError


class _Problem:
    """Stands in the parsed document where a refused value was; ``key`` is set for a duplicate key."""

    __slots__ = ("detail", "key")

    def __init__(self, detail: str, key: Optional[str] = None):
        self.detail = detail
        self.key = key


_JSON_TYPE = {dict: "object", list: "list", str: "string", int: "number", float: "number", bool: "boolean",
              type(None): "null"}


def json_type_name(value: Any) -> str:
    """The JSON name of a parsed value's type, for "holds a JSON list, expected an object"."""
    return _JSON_TYPE.get(type(value), type(value).__name__)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _locate(doc: Any) -> tuple[str, _Problem]:
    """The dotted path of the first problem marker in ``doc`` (document order), iteratively (deep input)."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, _Problem):
            return path, value
        if isinstance(value, dict):
            stack.extend((_join(path, str(k)), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
    raise AssertionError("a problem was recorded but not found in the document")   # pragma: no cover


def loads(data: str | bytes, source: str = "JSON text", error: type[Exception] = LlmaccelError,
          expect_object: bool = False) -> Any:
    """Parse ``data`` strictly; every failure is one ``error`` whose text starts with ``source``.

    ``bytes`` must be UTF-8 (no encoding is guessed). Refused, each naming the field: a key given
    twice in one object, ``NaN``, ``Infinity``, ``-Infinity``, a number that overflows to infinity,
    an integer too long for Python to convert. With ``expect_object`` a top level that is not an
    object is refused too.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(f"{source}: not UTF-8 text (byte {exc.start}); a JSON file must be UTF-8") from None
    found = [0]

    def pairs(items: list[tuple[str, Any]]) -> Any:
        obj: dict[str, Any] = {}
        for k, v in items:
            if k in obj:
                found[0] += 1
                return _Problem("", key=k)
            obj[k] = v
        return obj

    def constant(name: str) -> _Problem:
        found[0] += 1
        return _Problem(f"{name} is not a number JSON allows (finite numbers only)")

    def number(text: str) -> Any:
        value = float(text)
        if not math.isfinite(value):
            found[0] += 1
            return _Problem(f"{text} is too large for a 64-bit float (it would read as infinity)")
        return value

    def integer(text: str) -> Any:
        try:
            return int(text)
        except ValueError:   # longer than sys.get_int_max_str_digits()
            found[0] += 1
            return _Problem(f"an integer of {len(text)} digits is longer than this reader allows")

    try:
        doc = json.loads(data, object_pairs_hook=pairs, parse_constant=constant, parse_float=number,
                         parse_int=integer)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error(f"{source}: JSON nested too deeply to read") from None
    if found[0]:
        path, problem = _locate(doc)
        if problem.key is not None:
            raise error(f"{source}: duplicate key '{_join(path, problem.key)}' (JSON readers would keep only "
                        "the last silently; give each key once)")
        raise error(f"{source}: field '{path or '(top level)'}': {problem.detail}")
    if expect_object and not isinstance(doc, dict):
        raise error(f"{source}: holds a JSON {json_type_name(doc)}, expected an object")
    return doc


def read(path: str | os.PathLike, error: type[Exception] = LlmaccelError, expect_object: bool = False,
         source: Optional[str] = None) -> Any:
    """Read and parse a JSON file strictly (see :func:`loads`); ``source`` names it in messages
    (default: the path). A missing or unreadable file is one ``error`` too."""
    p = Path(path)
    where = source if source is not None else str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{where}: file not found") from None
    except OSError as exc:
        raise error(f"{where}: cannot read file ({exc.strerror or exc})") from None
    return loads(raw, where, error, expect_object)
