"""Evaluate one design point in the explorer's three steps: fit check, analytical bound, cycle simulation.

``estimate_point`` runs the first two (tens of milliseconds): the resource fit
check (simulator.resources), then the analytical model (simulator.analytical),
whose times are lower bounds on the cycle simulation's. From them it derives
the *optimistic* objective vector of the point: the best tokens/s, TTFT and
tokens/J the cycle simulation could possibly report. ``simulate_point`` runs
the cycle simulation (mapping.sim_api). Both take and return plain data, so
they run the same way in this process or on a Ray worker; both are pure
functions of the point, so the results do not depend on where they ran.

Why the decode bound is not the analytical time itself: the analytical compute
term runs every decode MAC on one DSP lane, but the simulator packs the query
heads that share a KV head (GQA) onto both lanes for attention, so on
compute-bound decode with long contexts the cycle simulation can beat the
analytical time (measured: by up to 3.4% on the tiny GQA shape; never on the
MHA shape). The bound used for pruning therefore lets attention run on both
lanes: decode time x (1 - attention share of decode MACs / 2). That holds for
any lane use, since a DSP has two lanes.

Why the tokens/J bound holds: decode energy is the power model's
(simulator.power): static power x time, lines that are on every cycle (core
control, the clock tree, enabled HBM channels) x time, lines driven by a unit's
busy cycles, buffer accesses and HBM bits. With the lower-bound time, the
analytical HBM bytes (weights, scales, indices and KV read per token: the
simulator adds padding and whole bursts), buffer traffic of at least twice that
(every byte read from HBM is written into a buffer by its LD and read at least
once by its consumer) and no busy cycles at all, the power model itself gives
a lower bound on the energy, so decode tokens / that energy bounds tokens/J.
tests/reports/test_explore_bounds.py checks every bound against the cycle
simulation.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from llmaccel.reports.explore.points import Point, design_of
from llmaccel.reports.explore.spec import RESOURCE_SHARES
from llmaccel.errors import LlmaccelError


# Per-process caches of parsed presets: YAML parsing was 60% of a point's estimate (profiled).
@lru_cache(maxsize=None)
def _device(name: str):
    from llmaccel.simulator.specs.device import load_device
    return load_device(name)


def _power(design: Any, device: Any):
    from llmaccel.simulator.power import PowerModel
    return PowerModel.build(design, device)


@lru_cache(maxsize=None)
def _formats(model: str, recipe: str):
    from llmaccel.mapping.compiler import formats_from_recipe
    from llmaccel.simulator.specs.model import load_model_spec
    return formats_from_recipe(load_model_spec(model), recipe)


def _compiler(point: Point, design: Any, device: Any):
    """``mapping.sim_api.build_compiler`` without its fit check and preset loading (done and cached here)."""
    from llmaccel.mapping.compiler import Compiler
    from llmaccel.simulator.timing_params import hw_from_design
    return Compiler(_formats(point.model, point.recipe), hw_from_design(design, device), max_len=point.max_len)


def estimate_point(point: Point) -> dict[str, Any]:
    """Fit check + analytical estimate: the row of a point before (or instead of) its cycle simulation."""
    if point.invalid:
        return {"status": "invalid", "reason": point.invalid}
    if point.excluded:
        return {"status": "excluded", "reason": point.excluded}
    from llmaccel.simulator.analytical import estimate
    from llmaccel.simulator.resources import DesignFitError, fit_check, resource_usage
    from llmaccel.simulator.timing import Work

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
    spec = comp.spec
    n_tok = point.decode
    attn_macs = spec.num_layers * 2 * spec.q_dim * (n_tok * point.prefill + n_tok * (n_tok + 1) / 2)
    t_dec_low = dec["seconds"] * (1 - 0.5 * attn_macs / dec["macs"])
    # every byte read from HBM is written into an on-chip buffer by its LD and read at least once by
    # its consumer: buffer traffic >= 2 x HBM reads
    low = Work(cycles=t_dec_low * design.clock_hz, macs=dec["macs"], hbm_read_bytes=dec["bytes"],
               buffer_bytes=2 * dec["bytes"])
    e_low = _power(design, device).phase(low, t_dec_low).total_J
    row.update({
        "status": "estimated",
        "est_ttft_s": est["ttft_s"], "est_prefill_bound": est["prefill_bound"],
        "est_decode_ms_per_token": est["decode_ms_per_token"],
        "est_decode_tokens_per_s": est["decode_tokens_per_s"], "est_decode_bound": est["decode_bound"],
        "est_decode_macs": dec["macs"], "est_decode_hbm_bytes": dec["bytes"],
        "bound_decode_tokens_per_s_max": point.decode / t_dec_low,
        "bound_tokens_per_J_max": (point.decode / e_low) if e_low else None,
    })
    return row


def simulate_point(point: Point) -> dict[str, Any]:
    """The cycle simulation of a point that passed ``estimate_point``: every SimResult figure."""
    from llmaccel.mapping.sim_api import simulate_with
    design = design_of(point)
    device = _device(design.device)
    comp = _compiler(point, design, device)
    res = simulate_with(comp, point.prefill, point.decode, design_name=point.label, device_name=device.name,
                        recipe_name=point.recipe, power=_power(design, device))
    out = res.to_dict()
    out.pop("design", None)         # the point's label; the store has it already
    out["status"] = "simulated"
    return out


def optimistic(row: dict[str, Any], perplexity: Any) -> dict[str, Any]:
    """The best objective values the cycle simulation of this point could give (from its estimate row)."""
    return {"decode_tokens_per_s": row.get("bound_decode_tokens_per_s_max"), "tokens_per_J": row.get("bound_tokens_per_J_max"),
            "ttft_s": row.get("est_ttft_s"), "resource_share": row.get("resource_share"), "perplexity": perplexity}


def actual(row: dict[str, Any], perplexity: Any) -> dict[str, Any]:
    """The objective values of a simulated point."""
    return {"decode_tokens_per_s": row.get("decode_tokens_per_s"), "tokens_per_J": row.get("tokens_per_J"),
            "ttft_s": row.get("ttft_s"), "resource_share": row.get("resource_share"), "perplexity": perplexity}
