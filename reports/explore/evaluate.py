"""Evaluate one design point in the explorer's three steps: fit check, analytical bound, cycle simulation.

``estimate_point`` runs the first two (tens of milliseconds): the resource fit
check (simulator.resources), then the analytical model (simulator.analytical),
whose times are lower bounds on the cycle simulation's. From them it derives
the *optimistic* objective vector of the point: the best tokens/s, TTFT and
tokens/J the cycle simulation could possibly report. ``simulate_point`` runs
the cycle simulation (mapping.sim_api). Both take and return plain data, so
they run the same way in this process or on a Ray worker; both are pure
functions of the point, so the results do not depend on where they ran.

Why the tokens/J bound holds: decode energy = static power x decode time +
dynamic energy of counted events (simulator.energy). The analytical decode time
is a lower bound on the simulated one, and the analytical MAC count and HBM
bytes (weights, scales, indices and KV read per token) are lower bounds on the
simulator's counts (it adds padding and whole bursts); the other event kinds
are counted as zero. tests/reports/test_explore_bounds.py checks all three
against the cycle simulation.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from reports.explore.points import Point, design_of
from reports.explore.spec import RESOURCE_SHARES
from sparse_dsp.errors import LlmaccelError


# Per-process caches of parsed presets: YAML parsing was 60% of a point's estimate (profiled).
@lru_cache(maxsize=None)
def _device(name: str):
    from simulator.specs.device import load_device
    return load_device(name)


@lru_cache(maxsize=None)
def _energy(name: str):
    from simulator.energy import load_energy
    return load_energy(name)


@lru_cache(maxsize=None)
def _formats(model: str, recipe: str):
    from mapping.compiler import formats_from_recipe
    from simulator.specs.model import load_model_spec
    return formats_from_recipe(load_model_spec(model), recipe)


def _compiler(point: Point, design: Any, device: Any):
    """``mapping.sim_api.build_compiler`` without its fit check and preset loading (done and cached here)."""
    from mapping.compiler import Compiler
    from simulator.timing_params import hw_from_design
    return Compiler(_formats(point.model, point.recipe), hw_from_design(design, device), max_len=point.max_len)


def estimate_point(point: Point) -> dict[str, Any]:
    """Fit check + analytical estimate: the row of a point before (or instead of) its cycle simulation."""
    if point.invalid:
        return {"status": "invalid", "reason": point.invalid}
    if point.excluded:
        return {"status": "excluded", "reason": point.excluded}
    from simulator.analytical import estimate
    from simulator.energy import phase_energy
    from simulator.resources import DesignFitError, fit_check, resource_usage
    from simulator.timing import Work

    design = design_of(point)
    device = _device(design.device)
    row: dict[str, Any] = {"device": device.name}
    try:
        fit = fit_check(design, device)
    except DesignFitError as exc:
        usage = resource_usage(design)
        row.update({f"used_{r}": usage.total(r) for r in ("LUT", "FF", "DSP", "BRAM36", "URAM")})
        return row | {"status": "nofit", "reason": str(exc)}
    util = fit.utilization
    row.update({f"used_{r}": n for r, n in fit.usage.totals.items()})
    row.update({f"share_{r}": util[r] for r in util})
    shares = [util[r] for r in RESOURCE_SHARES if util.get(r) is not None]
    row["resource_share"] = max(shares) if shares else None
    row["fit_unchecked"] = list(fit.unchecked)
    try:
        comp = _compiler(point, design, device)
        est = estimate(comp.spec, comp.hw, comp.f, point.prefill, point.decode,
                       comp.prefill_chunk(comp.prefill_bucket_of(point.prefill)))
    except LlmaccelError as exc:
        return row | {"status": "infeasible", "reason": str(exc)}
    dec = est["decode"]
    # every byte read from HBM is written into an on-chip buffer by its LD and read at least once by
    # its consumer: buffer traffic >= 2 x HBM reads
    low = Work(macs=dec["macs"], hbm_read_bytes=dec["bytes"], buffer_bytes=2 * dec["bytes"])
    e_low = phase_energy(low, dec["seconds"], _energy(device.name)).total_J
    row.update({
        "status": "estimated",
        "est_ttft_s": est["ttft_s"], "est_prefill_bound": est["prefill_bound"],
        "est_decode_ms_per_token": est["decode_ms_per_token"],
        "est_decode_tokens_per_s": est["decode_tokens_per_s"], "est_decode_bound": est["decode_bound"],
        "est_decode_macs": dec["macs"], "est_decode_hbm_bytes": dec["bytes"],
        "est_tokens_per_J_max": (point.decode / e_low) if e_low else None,
    })
    return row


def simulate_point(point: Point) -> dict[str, Any]:
    """The cycle simulation of a point that passed ``estimate_point``: every SimResult figure."""
    from simulator.api import simulate_compiled
    design = design_of(point)
    device = _device(design.device)
    comp = _compiler(point, design, device)
    res = simulate_compiled(comp, point.prefill, point.decode, design_name=point.label, device_name=device.name,
                            recipe_name=point.recipe, energy=_energy(device.name))
    out = res.to_dict()
    out.pop("design", None)         # the point's label; the store has it already
    out["status"] = "simulated"
    return out


def optimistic(row: dict[str, Any], perplexity: Any) -> dict[str, Any]:
    """The best objective values the cycle simulation of this point could give (from its estimate row)."""
    return {"decode_tokens_per_s": row.get("est_decode_tokens_per_s"), "tokens_per_J": row.get("est_tokens_per_J_max"),
            "ttft_s": row.get("est_ttft_s"), "resource_share": row.get("resource_share"), "perplexity": perplexity}


def actual(row: dict[str, Any], perplexity: Any) -> dict[str, Any]:
    """The objective values of a simulated point."""
    return {"decode_tokens_per_s": row.get("decode_tokens_per_s"), "tokens_per_J": row.get("tokens_per_J"),
            "ttft_s": row.get("ttft_s"), "resource_share": row.get("resource_share"), "perplexity": perplexity}
