"""Model families: one typed architecture description per family, and the registry that picks one.

``family_of(config)`` names the family of a Hugging Face ``config.json`` (refusing an unsupported
``model_type`` with the list we support); ``get(name).describe(spec)`` gives its
:class:`Architecture`. Adding a family = one module here defining ``FAMILY`` (found by listing
this package), plus its tiny checkpoint builder entry and its tests (tests/families/).
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from llmaccel.simulator.families.base import (ACTIVATIONS, Architecture, Family, FamilyError, LearnedPositions, Norm,
                                     Projection)
from llmaccel.simulator.families.rope import ROPE_TYPES, Rope, read_rope

_NOT_FAMILIES = ("base", "rope")     # the package's shared modules


def _load() -> dict[str, Family]:
    """Every module of this package that defines ``FAMILY``, in name order (deterministic)."""
    out = {}
    for m in sorted(i.name for i in pkgutil.iter_modules(__path__) if i.name not in _NOT_FAMILIES):
        fam: Family = importlib.import_module(f"llmaccel.simulator.families.{m}").FAMILY
        if fam.name in out:
            raise RuntimeError(f"two family modules define family {fam.name!r}")
        out[fam.name] = fam
    return out


FAMILIES: dict[str, Family] = _load()
MODEL_TYPES: dict[str, Family] = {t: f for f in FAMILIES.values() for t in f.model_types}


def supported_model_types() -> list[str]:
    return sorted(MODEL_TYPES)


def get(name: str) -> Family:
    """The registered family called ``name``; refuses another name, listing ours."""
    if name not in FAMILIES:
        raise FamilyError(f"family={name!r} is not supported; allowed: {sorted(FAMILIES)}")
    return FAMILIES[name]


def family_of(cfg: dict[str, Any], where: str = "config.json") -> Family:
    """The family of a Hugging Face config dict, by its ``model_type`` (and ``architectures`` if given)."""
    if not isinstance(cfg, dict):
        raise FamilyError(f"{where}: a config.json must hold a JSON object, got {type(cfg).__name__}")
    mt = cfg.get("model_type")
    if mt not in MODEL_TYPES:
        raise FamilyError(f"{where}: model_type={mt!r} is not supported; supported model_type: "
                          f"{supported_model_types()}")
    fam = MODEL_TYPES[mt]
    archs = cfg.get("architectures")
    if archs is not None:
        if not isinstance(archs, list) or not archs or any(a not in fam.architectures for a in archs):
            raise FamilyError(f"{where}: architectures={archs!r} is not supported for model_type={mt!r}; "
                              f"allowed architectures: {list(fam.architectures)}")
    return fam


def architecture_of(spec: Any) -> Architecture:
    """The Architecture of a ModelSpec (its family's description, resolved for its config)."""
    return get(spec.family).describe(spec)


__all__ = ["ACTIVATIONS", "Architecture", "FAMILIES", "Family", "FamilyError", "LearnedPositions", "MODEL_TYPES",
           "Norm", "Projection", "ROPE_TYPES", "Rope", "architecture_of", "family_of", "get", "read_rope",
           "supported_model_types"]
