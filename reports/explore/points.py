"""Design points of a sweep, and the content hash that names each one.

A point's hash covers everything its figures depend on: the resolved model
shape, the resolved recipe, the workload, the full design (every field, not its
name), the device spec, the quality checkpoint (when perplexity is asked for),
and the code version (a hash of the source and preset files of the packages
that compute the figures). Change any of them and the point is new; change
nothing and a rerun or an extended sweep finds it in the store.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Optional

from llmaccel.reports.explore.knobs import apply_knobs, resolve_knob
from llmaccel.reports.explore.spec import Constraint, ExploreSpec, knob_values
from llmaccel.simulator.design import AcceleratorDesign, load_design
from llmaccel.simulator.specs._yaml import to_dict

ROOT = Path(__file__).resolve().parents[2]
# Packages whose code or presets change a point's figures.
VERSIONED = ("sparse_dsp", "simulator", "mapping", "gpu_baseline")
VERSIONED_FILES = ("reports/explore/evaluate.py",)


@lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 (first 16 hex) of the sources and presets that compute a point's figures."""
    h = hashlib.sha256()
    files = sorted(p for pkg in VERSIONED for p in (ROOT / pkg).rglob("*")
                   if p.suffix in (".py", ".yaml", ".json") and p.is_file() and "__pycache__" not in p.parts)
    files += [ROOT / f for f in VERSIONED_FILES]
    for p in files:
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclasses.dataclass(frozen=True)
class Point:
    """One design point: what to evaluate (plain data, so it travels to Ray workers as is)."""

    hash: str
    model: str
    recipe: str
    prefill: int
    decode: int
    max_len: int
    base_design: str
    knobs: tuple[tuple[str, Any], ...]          # (dotted knob path, value), in spec order
    design: Optional[dict]                      # the full design in plain-data form; None if invalid
    invalid: Optional[str] = None               # why the knob combination is not a design
    excluded: Optional[str] = None              # the constraint it violates

    @property
    def label(self) -> str:
        kv = ",".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in self.knobs)
        return f"{self.base_design}[{kv}]" if kv else self.base_design


def _short(v: Any) -> str:
    return "/".join(map(str, v)) if isinstance(v, list) else str(v)


@lru_cache(maxsize=None)
def _model_dict(name: str) -> dict:
    from llmaccel.simulator.specs.model import load_model_spec
    return to_dict(load_model_spec(name))


@lru_cache(maxsize=None)
def _recipe_dict(name: str) -> dict:
    from llmaccel.mapping.recipe import get_recipe
    return to_dict(get_recipe(name))


@lru_cache(maxsize=None)
def _device_dict(name: str) -> dict:
    from llmaccel.simulator.specs.device import load_device
    return to_dict(load_device(name))


def point_hash(model: str, recipe: str, prefill: int, decode: int, max_len: int, design: Optional[dict],
               quality_key: Optional[str], knobs: Any = None) -> str:
    body = {
        "model": _model_dict(model), "recipe": _recipe_dict(recipe), "prefill": prefill, "decode": decode,
        "max_len": max_len, "quality": quality_key, "code": code_version(),
    }
    if design is not None:
        d = {k: v for k, v in design.items() if k not in ("name", "description", "notes")}
        body["design"] = d
        body["device"] = _device_dict(design["device"])
    else:
        body["knobs"] = knobs     # an invalid combination is named by what was asked for
    return hashlib.sha256(canonical(body).encode()).hexdigest()[:24]


def enumerate_points(spec: ExploreSpec, quality_key: Optional[str] = None) -> list[Point]:
    """Every point of the sweep, in a fixed order (spec order of models, recipes, workloads, designs, knobs)."""
    from llmaccel.simulator.specs._yaml import SpecError
    from llmaccel.errors import LlmaccelError
    constraints = [Constraint(c, f"constraints[{i}]") for i, c in enumerate(spec.constraints)]
    designs: list[tuple[str, tuple, Optional[dict], Optional[str], Optional[str]]] = []
    for base_name in spec.designs:
        base = load_design(base_name)
        names = list(spec.knobs)
        paths = [resolve_knob(n, base, f"knobs.{n}").dotted for n in names]
        values = [knob_values(n, spec.knobs[n], base) for n in names]
        for combo in itertools.product(*values):
            knobs = tuple(zip(paths, combo))
            label = base.name + ("[" + ",".join(f"{p.split('.')[-1]}={_short(v)}" for p, v in knobs) + "]"
                                 if knobs else "")
            try:
                d = apply_knobs(base, dict(knobs), label)
            except LlmaccelError as exc:   # SpecError from the design's own validation
                designs.append((base.name, knobs, None, str(exc), None))
                continue
            bad = next((c for c in constraints if not c.holds(d)), None)
            designs.append((base.name, knobs, to_dict(d), None, f"violates '{bad.text}'" if bad else None))
    points = []
    for model, recipe, wl, (bname, knobs, d, invalid, excluded) in itertools.product(
            spec.models, spec.recipes, spec.workloads, designs):
        h = point_hash(model, recipe, wl.prefill, wl.decode, spec.max_len, d, quality_key,
                       knobs=[bname, [list(k) for k in knobs]])
        points.append(Point(h, model, recipe, wl.prefill, wl.decode, spec.max_len, bname, knobs, d,
                            invalid, excluded))
    return points


def design_of(point: Point) -> AcceleratorDesign:
    from llmaccel.simulator.specs._yaml import build
    return build(AcceleratorDesign, point.design, f"design point '{point.label}'")
