"""Load YAML into frozen spec dataclasses, validating once at the edge.

Every spec type (devices, models, accelerator designs) goes through
:func:`build`, so every bad file fails the same way: ONE
:class:`SpecError` naming the file and the dotted field path (``hbm.total_GBps``)
and what is allowed. Internals then trust the dataclasses.

The type of each field comes from the dataclass annotations; supported
annotations are ``int``, ``float``, ``str``, ``bool``, ``Optional[X]``,
``Literal[...]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[str, X]`` and
nested spec dataclasses. ``__post_init__`` checks of a dataclass that raise
:class:`LlmaccelError` are re-raised with the file and field prefix.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from sparse_dsp.errors import LlmaccelError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


class SpecError(LlmaccelError):
    """A spec file or mapping that is missing, malformed, or has a bad field."""


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level must be a mapping."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read file ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: top level must be a mapping of field: value, got {type(data).__name__}")
    return data


def preset_names(kind: str) -> list[str]:
    """Names of the YAML presets of one kind (``devices``, ``models``, ``designs``)."""
    return sorted(p.stem for p in (PRESETS_DIR / kind).glob("*.yaml"))


def preset_path(kind: str, name: str) -> Path:
    """Path of a named preset; an unknown name lists the available ones."""
    path = PRESETS_DIR / kind / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"unknown {kind[:-1]} preset '{name}'; available: {', '.join(preset_names(kind))}")
    return path


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, field: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it in the dataclass's form."""
    origin = typing.get_origin(tp)
    bad = SpecError(f"field '{field}' must be {_type_name(tp)}, got {value!r}")
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, field)
            except SpecError as exc:
                errors.append(exc)
        nested = [a for a in args if a is not type(None) and typing.get_origin(a) is None
                  and dataclasses.is_dataclass(a) or typing.get_origin(a) in (tuple, dict)]
        if len(errors) == 1 and nested and isinstance(value, (dict, list, tuple)):
            raise errors[0]  # the inner error names the nested field that is wrong
        raise bad
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        raise bad
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{field}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SpecError(f"field '{field}' must be a list of {len(args)} items, got {value!r}")
        return tuple(_convert(a, v, f"{field}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        ktp, vtp = typing.get_args(tp)
        return {_convert(ktp, k, f"{field} key"): _convert(vtp, v, f"{field}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return _build(tp, value, field + ".")
    raise TypeError(f"spec loader cannot handle annotation {tp!r} of field '{field}'")  # programming error


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(k for k in data if k not in fields)
    if unknown:
        raise SpecError(f"unknown field '{prefix}{unknown[0]}'; allowed fields: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SpecError(f"missing field '{prefix}{name}' ({_type_name(hints[name])})")
            continue
        kwargs[name] = _convert(hints[name], data[name], prefix + name)
    try:
        return cls(**kwargs)
    except LlmaccelError as exc:
        where = f" in '{prefix.rstrip('.')}'" if prefix else ""
        raise SpecError(f"invalid value{where}: {exc}") from None


def build(cls: type, data: dict[str, Any], source: str | Path) -> Any:
    """Build dataclass ``cls`` from ``data``; every error names ``source`` and the field."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    try:
        return _build(cls, data, "")
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None


def load(cls: type, path: str | Path) -> Any:
    """Read a YAML file and build ``cls`` from it."""
    return build(cls, load_yaml_mapping(path), path)


def to_dict(obj: Any) -> Any:
    """Plain-data form of a spec (tuples as lists), for JSON and YAML output."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
