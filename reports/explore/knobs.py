"""Design knobs: every field of ``AcceleratorDesign`` (nested specs included) by its dotted path.

A knob in an exploration spec names a design field, either by its full dotted
path (``matrix_engine.chains_per_core``, ``buffers.weight.size_bytes``) or by
its leaf name where that is unique (``chains_per_core``, ``clock_MHz``). The
list is read from the dataclass annotations, so a field the simulator gains
later is a knob as soon as it exists; there is no second list to keep in step.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

from llmaccel.simulator.design import AcceleratorDesign
from llmaccel.simulator.specs._yaml import build, to_dict
from llmaccel.errors import LlmaccelError

# Fields that label a design rather than shape it, and measured inputs (csynth reports and what was
# read from them: a sweep varies the architecture, the reports describe one build of it): not knobs.
NOT_KNOBS = {"name", "description", "notes", "hls_reports", "reported"}


class KnobError(LlmaccelError):
    """An exploration spec names a knob that is not a design field, or gives it a value of the wrong type."""


@dataclasses.dataclass(frozen=True)
class Knob:
    path: tuple[str, ...]     # e.g. ("matrix_engine", "chains_per_core") or ("buffers", "weight", "size_bytes")
    type: Any                 # the field's annotation

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def numeric(self) -> bool:
        return _base(self.type) in (int, float)


def _base(tp: Any) -> Any:
    """``Optional[X]`` -> X."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _walk(cls: type, prefix: tuple[str, ...], design_part: Any, out: list[Knob]) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.name in NOT_KNOBS:
            continue
        tp = hints[f.name]
        base = _base(tp)
        path = prefix + (f.name,)
        if dataclasses.is_dataclass(base):
            _walk(base, path, getattr(design_part, f.name), out)
        elif typing.get_origin(base) is tuple and typing.get_args(base) and \
                dataclasses.is_dataclass(typing.get_args(base)[0]):
            # a tuple of named specs (buffers): one knob group per named element of the base design
            elem = typing.get_args(base)[0]
            for item in getattr(design_part, f.name):
                _walk(elem, path + (item.name,), item, out)
        else:
            out.append(Knob(path, tp))


def design_knobs(design: AcceleratorDesign) -> dict[str, Knob]:
    """Every knob of ``design`` under its dotted path and, where unique, its leaf name."""
    knobs: list[Knob] = []
    _walk(AcceleratorDesign, (), design, knobs)
    out = {k.dotted: k for k in knobs}
    leaves: dict[str, list[Knob]] = {}
    for k in knobs:
        leaves.setdefault(k.path[-1], []).append(k)
    for leaf, ks in leaves.items():
        if len(ks) == 1 and leaf not in out:
            out[leaf] = ks[0]
    return out


def resolve_knob(name: str, design: AcceleratorDesign, field: str) -> Knob:
    knobs = design_knobs(design)
    if name not in knobs:
        raise KnobError(f"{field}: unknown knob '{name}'; allowed knobs (design fields of '{design.name}'): "
                        f"{', '.join(sorted(knobs))}")
    return knobs[name]


def check_value(knob: Knob, value: Any, field: str) -> Any:
    """Check one knob value against the field's type; return it in plain-data (YAML) form."""
    tp = _base(knob.type)
    origin = typing.get_origin(tp)
    want = None
    if tp is bool:
        ok = isinstance(value, bool)
        want = "true or false"
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        want = "an integer"
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        want = "a number"
    elif tp is str:
        ok = isinstance(value, str)
        want = "a string"
    elif origin is Literal:
        ok = value in typing.get_args(tp) and not isinstance(value, bool)
        want = "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    elif origin is tuple:
        ok = isinstance(value, (list, tuple))
        want = "a list"
        if ok:
            return [check_value(Knob(knob.path, typing.get_args(tp)[0]), v, f"{field}[{i}]")
                    for i, v in enumerate(value)]
    else:
        ok, want = True, ""
    if value is None and _base(knob.type) is not knob.type:
        return None
    if not ok:
        raise KnobError(f"{field}: knob '{knob.dotted}' must be {want}, got {value!r}")
    return float(value) if tp is float else value


def apply_knobs(base: AcceleratorDesign, values: dict[str, Any], name: str) -> AcceleratorDesign:
    """A new design: ``base`` with each knob (dotted path -> value) set; validated like a design YAML.

    A combination the design rejects (e.g. hbm_channels not a multiple of cores) raises the design's own
    :class:`SpecError`, which the explorer records as an invalid point.
    """
    data = to_dict(base)
    data["name"] = name
    for dotted, value in values.items():
        path = dotted.split(".")
        if path[0] == "buffers":
            target = next(b for b in data["buffers"] if b["name"] == path[1])
            target[path[2]] = value
            continue
        cur = data
        for part in path[:-1]:
            cur = cur[part]
        cur[path[-1]] = value
    return build(AcceleratorDesign, data, f"design point '{name}'")
