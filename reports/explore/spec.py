"""The exploration spec: what to sweep (models, recipes, workloads, design knobs), validated once.

A knob value is a scalar (fixed), a list (each item is one value; for a list-typed
field such as ``supported_nm`` each item is itself a list) or an inclusive range
``{start, stop, step}`` (numeric fields only). Constraints are expressions over the
design's fields and derived properties (``matrix_dsps <= 4096``,
``clock_MHz * hbm_port_bits / 8 >= 14000``), evaluated by a small whitelist
evaluator: a spec is data, never code.
"""
from __future__ import annotations

import ast
import operator
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmaccel.reports.explore.knobs import KnobError, check_value, resolve_knob
from llmaccel.simulator.design import AcceleratorDesign, load_design
from llmaccel.simulator.specs._yaml import load_yaml_mapping
from llmaccel.errors import LlmaccelError

# objective -> +1 (higher is better) or -1 (lower is better)
OBJECTIVES: dict[str, int] = {
    "decode_tokens_per_s": +1,
    "tokens_per_J": +1,
    "ttft_s": -1,
    "resource_share": -1,      # max over LUT, DSP, URAM, BRAM36 of used / available
    "perplexity": -1,          # the recipe's held-out perplexity on the spec's quality checkpoint
}
RESOURCE_SHARES = ("LUT", "DSP", "URAM", "BRAM36")


class SpecInputError(LlmaccelError):
    """An exploration or report spec with a bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Workload(_Strict):
    prefill: int = Field(gt=0, description="prompt tokens")
    decode: int = Field(gt=0, description="generated tokens")


class Range(_Strict):
    start: Union[int, float]
    stop: Union[int, float]
    step: Union[int, float]


class Quality(_Strict):
    checkpoint: str = "bundled"          # "bundled" (the trained tiny Llama) or a local checkpoint directory
    eval_text: Optional[str] = None      # held-out text file; default the bundled held-out text
    eval_tokens: Optional[int] = Field(default=2048, gt=1)
    window: int = Field(default=256, gt=1)


class ExploreSpec(_Strict):
    name: str
    designs: list[str] = Field(default_factory=lambda: ["flightllm-u280"])
    models: list[str] = Field(default_factory=lambda: ["llama2-7b"])
    recipes: list[str] = Field(default_factory=lambda: ["flightllm"])
    workloads: list[Workload] = Field(default_factory=lambda: [Workload(prefill=512, decode=128)])
    knobs: dict[str, Any] = Field(default_factory=dict)
    constraints: list[str] = Field(default_factory=list)
    objectives: Optional[list[str]] = None
    quality: Optional[Quality] = None
    max_len: int = Field(default=2048, gt=1)
    prune: bool = True
    batch_size: int = Field(default=16, gt=0, description="points simulated per pruning round")

    # ---- resolved views (computed once by load_spec) -------------------------------------------
    def objective_names(self) -> list[str]:
        if self.objectives is not None:
            return list(self.objectives)
        return [o for o in OBJECTIVES if o != "perplexity" or self.quality is not None]


def _pydantic_error(exc: ValidationError, source: str) -> SpecInputError:
    e = exc.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        allowed = ", ".join(ExploreSpec.model_fields)
        msg = f"unknown field; allowed fields: {allowed}"
    return SpecInputError(f"{source}: field '{loc}': {msg} (got {e.get('input')!r})")


def knob_values(name: str, raw: Any, base: AcceleratorDesign) -> list[Any]:
    """The values one knob sweeps, type-checked against the design field it names."""
    field = f"knobs.{name}"
    knob = resolve_knob(name, base, field)
    if isinstance(raw, dict):
        try:
            r = Range(**raw)
        except ValidationError as exc:
            e = exc.errors()[0]
            where = str(e["loc"][0]) if e["loc"] else "?"
            msg = "unknown field" if e["type"] == "extra_forbidden" else "must be a number"
            raise KnobError(f"{field}: a range is {{start, stop, step}} numbers; field '{where}' {msg} "
                            f"(got {raw!r})") from None
        if not knob.numeric:
            raise KnobError(f"{field}: a range {{start, stop, step}} needs a numeric knob; '{knob.dotted}' is "
                            f"{getattr(knob.type, '__name__', knob.type)}; give a list of values instead")
        if any(isinstance(v, bool) for v in (raw["start"], raw["stop"], raw["step"])):
            raise KnobError(f"{field}: range bounds must be numbers, got {raw!r}")
        from llmaccel.reports.explore.knobs import _base
        if _base(knob.type) is int and not all(isinstance(v, int) for v in (r.start, r.stop, r.step)):
            raise KnobError(f"{field}: knob '{knob.dotted}' is an integer; range start/stop/step must be "
                            f"integers, got {raw!r}")
        if r.step <= 0 or r.stop < r.start:
            raise KnobError(f"{field}: range needs step > 0 and stop >= start, got {raw!r}")
        n = int((r.stop - r.start) / r.step + 1e-9) + 1
        vals = [r.start + i * r.step for i in range(n)]
        if _base(knob.type) is float:
            vals = [round(float(v), 9) for v in vals]
    elif isinstance(raw, list):
        # a list of lists is a list of values of a list-typed field; a flat list for a list-typed
        # field is ONE value only if it is a list of scalars and the field is a tuple
        vals = raw
    else:
        vals = [raw]
    if not vals:
        raise KnobError(f"{field}: empty list; a knob needs at least one value (an empty sweep)")
    return [check_value(knob, v, f"{field}[{i}]") for i, v in enumerate(vals)]


# ---- constraints: a whitelist expression evaluator ------------------------------------------------
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_CMPS = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
         ast.Eq: operator.eq, ast.NotEq: operator.ne}


class Constraint:
    """One constraint expression, parsed once; ``holds(design)`` evaluates it on a design."""

    def __init__(self, text: str, field: str):
        self.text, self.field = text, field
        try:
            self.tree = ast.parse(text, mode="eval").body
        except SyntaxError as exc:
            raise SpecInputError(f"{field}: '{text}' is not an expression ({exc.msg})") from None
        self._check(self.tree)

    def _check(self, node: ast.AST) -> None:
        ok = (ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Attribute,
              ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd, ast.Load, *_BINOPS, *_CMPS)
        for n in ast.walk(node):
            if not isinstance(n, ok):
                raise SpecInputError(f"{self.field}: '{self.text}': {type(n).__name__} is not allowed; "
                                     f"allowed: numbers, design fields, + - * / // % **, comparisons, and/or/not")
            if isinstance(n, ast.Constant) and not isinstance(n.value, (int, float)):
                raise SpecInputError(f"{self.field}: '{self.text}': only numeric constants are allowed")
            if isinstance(n, (ast.Name, ast.Attribute)) and (getattr(n, "id", "") or getattr(n, "attr", "")).startswith("_"):
                raise SpecInputError(f"{self.field}: '{self.text}': names starting with '_' are not allowed")

    def _eval(self, node: ast.AST, design: AcceleratorDesign) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self._lookup(design, node.id)
        if isinstance(node, ast.Attribute):
            return self._lookup(self._eval(node.value, design), node.attr)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, design)
            return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
        if isinstance(node, ast.BinOp):
            return _BINOPS[type(node.op)](self._eval(node.left, design), self._eval(node.right, design))
        if isinstance(node, ast.BoolOp):
            vals = [self._eval(v, design) for v in node.values]
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, design)
            for op, comp in zip(node.ops, node.comparators):
                right = self._eval(comp, design)
                if not _CMPS[type(op)](left, right):
                    return False
                left = right
            return True
        raise AssertionError(node)  # _check admitted only the node types above

    def _lookup(self, obj: Any, name: str) -> Any:
        for part in (obj, getattr(obj, "matrix_engine", None), getattr(obj, "sfu", None),
                     getattr(obj, "weight_decoder", None)):
            if part is not None and hasattr(part, name):
                v = getattr(part, name)
                if callable(v):
                    break
                return v
        raise SpecInputError(f"{self.field}: '{self.text}': '{name}' is not a design field or property")

    def holds(self, design: AcceleratorDesign) -> bool:
        return bool(self._eval(self.tree, design))


def load_spec(path_or_data: str | Path | dict, source: Optional[str] = None) -> ExploreSpec:
    """Read and validate an exploration spec (a YAML path or its mapping)."""
    if isinstance(path_or_data, dict):
        data, src = path_or_data, source or "spec"
    else:
        data, src = load_yaml_mapping(path_or_data), str(path_or_data)
    try:
        spec = ExploreSpec(**data)
    except ValidationError as exc:
        raise _pydantic_error(exc, src) from None
    for fld in ("designs", "models", "recipes", "workloads"):
        if not getattr(spec, fld):
            raise SpecInputError(f"{src}: field '{fld}' is empty: nothing to sweep (an empty sweep)")
    try:
        bases = [load_design(d) for d in spec.designs]
        for name, raw in spec.knobs.items():
            for b in bases:
                knob_values(name, raw, b)
        for i, c in enumerate(spec.constraints):
            con = Constraint(c, f"constraints[{i}]")
            con.holds(bases[0])    # every name resolves
        bad = [o for o in spec.objective_names() if o not in OBJECTIVES]
        if bad:
            raise SpecInputError(f"field 'objectives': unknown objective '{bad[0]}'; allowed: {', '.join(OBJECTIVES)}")
        if len(spec.objective_names()) < 1:
            raise SpecInputError("field 'objectives': at least one objective is needed")
        if "perplexity" in spec.objective_names() and spec.quality is None:
            raise SpecInputError("field 'objectives': 'perplexity' needs a 'quality' section naming a checkpoint")
        from llmaccel.mapping.recipe import get_recipe
        from llmaccel.simulator.specs.model import load_model_spec
        for i, r in enumerate(spec.recipes):
            try:
                get_recipe(r)
            except LlmaccelError as exc:
                raise SpecInputError(f"field 'recipes[{i}]': {exc}") from None
        for i, m in enumerate(spec.models):
            try:
                load_model_spec(m)
            except LlmaccelError as exc:
                raise SpecInputError(f"field 'models[{i}]': {exc}") from None
    except LlmaccelError as exc:
        if str(exc).startswith(src):
            raise
        raise type(exc)(f"{src}: {exc}") from None
    return spec
