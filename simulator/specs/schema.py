"""Field rules every spec obeys, whatever its fields: strict types, finite numbers, plausible units.

The spec loader (:mod:`simulator.specs._yaml`) applies these to every numeric
field of every design, device, model and recipe as it converts it, so a new
field (``hbm_clock_MHz``, ``imem_bytes``) is covered by naming it with its unit
and nothing else. Rules here are about *form*: a value that cannot be right in
any design (a clock in Hz where MHz is asked, ``.inf``, ``"100"`` for 100).
Whether a well-formed value fits a design (clock under the part's fmax) is the
business of the dataclass's own ``__post_init__`` and of the fit checks.

Why our own loader rather than pydantic: the specs are frozen stdlib
dataclasses used across package boundaries (``sparse_dsp`` and ``simulator``
do not depend on pydantic), the messages name the file and the dotted field
path in the project's words (``hbm.total_GBps``), and YAML is read with a
loader that refuses duplicate keys, which pydantic never sees. What pydantic
would add (strict types, ``allow_inf_nan=False``, all errors at once) the loader
does here; :mod:`tests.simulator.test_spec_schema` checks each rule.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from llmaccel import strict_json


@dataclass(frozen=True)
class UnitRule:
    """Plausible magnitudes of a field whose name ends in ``_<unit>``, and what a misplaced one looks like."""

    unit: str
    low: float            # smallest plausible non-zero magnitude
    high: float           # largest plausible magnitude
    too_big_hint: str     # what a value above ``high`` most likely is
    too_small_hint: str   # what a non-zero value below ``low`` most likely is
    factor: float         # too_big values are this many times the intended unit (for the suggested value)


# Ranges cover every part in shared/anchors/hardware.yaml with two orders of magnitude to spare
# (FPGA kernels 100-800 MHz, GPU boost clocks ~2 GHz; HBM 0.46-3.35 TB/s; boards 75-700 W);
# a value outside them is a unit slip, not a design.
UNIT_RULES: dict[str, UnitRule] = {
    "MHz": UnitRule("MHz", 1.0, 10_000.0, "Hz", "GHz", 1e6),
    "GHz": UnitRule("GHz", 0.001, 10.0, "MHz or Hz", "a fraction of a GHz (write MHz)", 1e3),
    "GBps": UnitRule("GB/s", 0.001, 100_000.0, "bytes/s or MB/s", "TB/s", 1e9),
    "GB": UnitRule("GB", 0.001, 100_000.0, "bytes or MB", "TB", 2 ** 30),
    "W": UnitRule("W", 0.001, 10_000.0, "mW", "kW", 1e3),
}

_UNIT_SUFFIX = re.compile(r"_(MHz|GHz|GBps|GB|W)$")
_NUMBER_TEXT = re.compile(r"^\s*[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?\.?(inf|nan)\s*$", re.I)
_BOOL_TEXT = {"true", "false", "yes", "no", "on", "off", "y", "n"}


def leaf_name(field: str) -> str:
    """``hbm.total_GBps`` -> ``total_GBps``; ``buffers[2].size_bytes`` -> ``size_bytes``."""
    return re.sub(r"\[\d+\]$", "", field).rsplit(".", 1)[-1]


def unit_problem(field: str, value: float) -> Optional[str]:
    """Why ``value`` cannot be in the unit the field's name asks for, or None."""
    m = _UNIT_SUFFIX.search(leaf_name(field))
    if m is None or value == 0:
        return None
    rule = UNIT_RULES[m.group(1)]
    mag = abs(value)
    if mag > rule.high:
        guess = value / rule.factor
        suggestion = f"; if it is in {rule.too_big_hint.split(' or ')[0]}, write {guess:g}" \
            if rule.low <= abs(guess) <= rule.high else ""
        return (f"field '{field}' = {value:g} is not a plausible value in {rule.unit} "
                f"(allowed {rule.low:g} to {rule.high:g} {rule.unit}); it looks like a value in "
                f"{rule.too_big_hint}{suggestion}")
    if mag < rule.low:
        return (f"field '{field}' = {value:g} is not a plausible value in {rule.unit} "
                f"(allowed {rule.low:g} to {rule.high:g} {rule.unit}); it looks like a value in {rule.too_small_hint}")
    return None


def finite_problem(field: str, value: Any) -> Optional[str]:
    """A float that is inf or NaN anywhere in ``value`` (a free-form block such as ``rope_scaling``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"field '{field}' must be a finite number, got {value!r}"
    if isinstance(value, dict):
        for k, v in value.items():
            p = finite_problem(f"{field}.{k}", v)
            if p:
                return p
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            p = finite_problem(f"{field}[{i}]", v)
            if p:
                return p
    return None


def quoted_hint(value: Any, wanted: str) -> str:
    """A hint for a string that stands for a number or a boolean: YAML reads quoted text as text."""
    if isinstance(value, str):
        if wanted in ("number", "integer") and _NUMBER_TEXT.match(value):
            return " (a quoted string; write the number without quotes)"
        if wanted == "bool" and value.strip().lower() in _BOOL_TEXT:
            return " (a quoted string; write true or false without quotes)"
    if wanted == "integer" and isinstance(value, float) and math.isfinite(value):
        return " (a fraction; this field counts whole units)"
    return ""


def loads_strict_json(text: str | bytes, source: str = "JSON text") -> Any:
    """``json.loads`` that refuses duplicate keys and NaN/Infinity: :func:`llmaccel.strict_json.loads`."""
    return strict_json.loads(text, source)


def read_utf8_text(path: Path, error: type[Exception], kind: str) -> str:
    """The text of a ``kind`` (JSON, YAML) spec file; unreadable or not UTF-8 is one ``error`` naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); a {kind} file must be UTF-8") from None
    except OSError as exc:
        raise error(f"{path}: cannot read file ({exc.strerror or exc})") from None


def read_strict_json(path: Path, error: type[Exception]) -> Any:
    """Read a JSON file strictly; every failure is one ``error`` naming the file (and the field or line);
    the top level must be an object."""
    return strict_json.read(path, error, expect_object=True)
