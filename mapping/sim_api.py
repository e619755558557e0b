"""One call from names to a timing result: load presets, compile, simulate.

Lives in ``mapping`` (not ``simulator``) because it compiles, and imports
go sparse_dsp <- simulator <- mapping. The demo and reports call this.
"""
from __future__ import annotations

from typing import Any

from llmaccel.mapping.compiler import DEFAULT_MAX_LEN, Compiler, ModelFormats, formats_from_compressed, formats_from_recipe
from llmaccel.mapping.recipe import Recipe
from llmaccel.simulator.api import SimResult, simulate_compiled, timing_plan
from llmaccel.simulator.compiled import CompiledModel
from llmaccel.mapping.designs import load_design   # preset search path + the HLS reports a design names
from llmaccel.simulator.design import AcceleratorDesign
from llmaccel.simulator.power import PowerModel
from llmaccel.simulator.resources import fit_check
from llmaccel.simulator.specs.device import load_device
from llmaccel.simulator.specs.model import ModelSpec, load_model_spec
from llmaccel.simulator.timing_params import hw_from_design


def build_compiler(model: str | ModelSpec | Any, design: str | AcceleratorDesign, recipe: str | Recipe | None = None,
                   max_len: int = DEFAULT_MAX_LEN, fuse: bool = True,
                   check_fit: bool = True) -> tuple[Compiler, AcceleratorDesign, Any]:
    """``model``: a preset name / config path / ModelSpec (with ``recipe``), or a CompressedModel.

    ``check_fit=False`` skips the resource fit check: only for measuring the simulator itself
    (benchmarks), never for reporting a design's figures.
    """
    d = load_design(design) if isinstance(design, str) else design
    dev = load_device(d.device)
    if check_fit:
        fit_check(d, dev)     # a design that does not fit its device is rejected before anything else
    if hasattr(model, "linears") and hasattr(model, "config"):
        formats: ModelFormats = formats_from_compressed(model)
    else:
        spec = load_model_spec(model) if isinstance(model, str) else model
        formats = formats_from_recipe(spec, recipe if recipe is not None else "flightllm")
    comp = Compiler(formats, hw_from_design(d, dev), max_len=max_len, fuse=fuse)
    return comp, d, dev


def compile_for_timing(comp: Compiler, prefill: int, decode: int, sample_stride: int = 0) -> CompiledModel:
    """The CompiledModel holding exactly the programs the timing engine runs for this request
    (core 0 only where every core's slice is the same)."""
    keys = timing_plan(prefill, decode, max_len=comp.max_len, decode_bucket=comp.decode_bucket,
                       prefill_bucket=comp.prefill_bucket, chunk_of=comp.prefill_chunk, kv_tile=comp.kv_tile,
                       n_groups=len(comp.groups), sample_stride=sample_stride)
    return comp.compile_model(keys, core0_only=True)


def simulate_with(comp: Compiler, prefill: int, decode: int, sample_stride: int = 0, **kw: Any) -> SimResult:
    """Compile what the request needs, then time it (``simulator.api.simulate_compiled``)."""
    cm = compile_for_timing(comp, prefill, decode, sample_stride)
    if sample_stride:
        kw["sample_stride"] = sample_stride
    return simulate_compiled(cm, prefill, decode, **kw)


def simulate(model: str | ModelSpec | Any, design: str | AcceleratorDesign, recipe: str | Recipe | None = "flightllm",
             prefill: int = 512, decode: int = 512, max_len: int = DEFAULT_MAX_LEN,
             fuse: bool = True, check_fit: bool = True) -> SimResult:
    comp, d, dev = build_compiler(model, design, recipe, max_len=max_len, fuse=fuse, check_fit=check_fit)
    rname = recipe if isinstance(recipe, str) else getattr(recipe, "name", comp.f.source)
    return simulate_with(comp, prefill, decode, design_name=d.name, device_name=dev.name, recipe_name=rname,
                         power=PowerModel.build(d, dev))
