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

The form rules of :mod:`simulator.specs.schema` (no duplicate keys, no quoted
numbers or booleans, finite numbers, integers where integers are meant,
plausible units) apply to every field; every problem of a file is reported
at once, in one error.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from llmaccel.simulator.specs import schema
from llmaccel.errors import LlmaccelError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


class SpecError(LlmaccelError):
    """A spec file or mapping that is missing, malformed, or has bad fields.

    ``problems`` lists every problem found (one line each); the message joins them.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()):
        super().__init__(message)
        self.problems = tuple(problems) or (message,)

    @classmethod
    def many(cls, problems: list[str], prefix: str = "") -> "SpecError":
        """One error listing every problem (the message of a single problem is that problem)."""
        if len(problems) == 1:
            return cls(prefix + problems[0], problems)
        listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
        return cls(f"{prefix}{len(problems)} problems: {listed}", problems)


class _DuplicateKeys(yaml.YAMLError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser where installed
    """``yaml.SafeLoader`` that refuses duplicate keys and reads ``1e6`` as a number.

    PyYAML keeps the last of two equal keys silently, and follows YAML 1.1, where a float needs a dot
    (``1e6`` is the string "1e6"); YAML 1.2 and every other tool read it as a number.
    """

    duplicates: list[str]


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *base` then an explicit key is an override, not a duplicate
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.setdefault(key, key_node.start_mark.line + 1)
        except TypeError:
            continue  # an unhashable key: construct_mapping reports it
        if first != key_node.start_mark.line + 1:
            loader.duplicates.append(f"duplicate key '{key}' at line {key_node.start_mark.line + 1} "
                                     f"(first at line {first}); each key may appear once")
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def safe_load_strict(text: str) -> Any:
    """Parse YAML text like ``yaml.safe_load``, refusing duplicate keys (all of them listed)."""
    loader = StrictLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if loader.duplicates:
        raise _DuplicateKeys(loader.duplicates)
    return data


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level must be a mapping."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: file not found")
    text = schema.read_utf8_text(path, SpecError, "YAML")
    try:
        data = safe_load_strict(text)
    except _DuplicateKeys as exc:
        raise SpecError.many(exc.problems, f"{path}: ") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path}: malformed YAML{where}: {problem}") from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a date like 2024-02-30, deep nesting
        raise SpecError(f"{path}: malformed YAML: {str(exc) or type(exc).__name__}") from None
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


class _TypeMismatch(SpecError):
    """The value is not of the annotated type at all (as opposed to a bad item inside it)."""


def _convert(tp: Any, value: Any, field: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it in the dataclass's form.

    Raises :class:`SpecError` whose ``problems`` list every bad item found inside ``value``.
    """
    origin = typing.get_origin(tp)

    def bad(wanted: str = "") -> SpecError:
        hint = schema.quoted_hint(value, wanted)
        return _TypeMismatch(f"field '{field}' must be {_type_name(tp)}, got {value!r}{hint}")

    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad()
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, field)
            except SpecError as exc:
                errors.append(exc)
        if len(errors) == 1 and not isinstance(errors[0], _TypeMismatch):
            raise errors[0]  # the inner error names the nested field (or the rule) that is wrong
        wanted = next((w for a, w in ((int, "integer"), (float, "number"), (bool, "bool")) if a in args), "")
        raise bad(wanted)
    if tp is Any:
        problem = schema.finite_problem(field, value)
        if problem:
            raise SpecError(problem)
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad("bool")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            problem = schema.unit_problem(field, value)
            if problem:
                raise SpecError(problem)
            return value
        raise bad("integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            problem = schema.finite_problem(field, float(value)) or schema.unit_problem(field, value)
            if problem:
                raise SpecError(problem)
            return float(value)
        raise bad("number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad()
    if origin is Literal:
        if value in typing.get_args(tp) and not isinstance(value, bool):
            return value
        raise bad()
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad()
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert_all([(args[0], v, f"{field}[{i}]") for i, v in enumerate(value)]))
        if len(value) != len(args):
            raise SpecError(f"field '{field}' must be a list of {len(args)} items, got {value!r}")
        return tuple(_convert_all([(a, v, f"{field}[{i}]") for i, (a, v) in enumerate(zip(args, value))]))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad()
        ktp, vtp = typing.get_args(tp)
        items = list(value.items())
        keys = _convert_all([(ktp, k, f"{field} key") for k, _ in items])
        vals = _convert_all([(vtp, v, f"{field}.{k}") for k, v in items])
        return dict(zip(keys, vals))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad()
        return _build(tp, value, field + ".")
    raise TypeError(f"spec loader cannot handle annotation {tp!r} of field '{field}'")  # programming error


def _convert_all(items: list[tuple[Any, Any, str]]) -> list[Any]:
    """Convert every (annotation, value, field); one SpecError listing all the problems, if any."""
    out, problems = [], []
    for tp, value, field in items:
        try:
            out.append(_convert(tp, value, field))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError.many(problems)
    return out


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # evaluates string annotations: once per class, not per file


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    problems = [f"unknown field '{prefix}{k}'; allowed fields: {', '.join(fields)}"
                for k in data if k not in fields]
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"missing field '{prefix}{name}' ({_type_name(hints[name])})")
            continue
        try:
            kwargs[name] = _convert(hints[name], data[name], prefix + name)
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError.many(problems)
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
        raise SpecError.many(list(exc.problems), f"{source}: ") from None


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
