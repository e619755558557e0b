"""Run a compiled model through the timing engine: TTFT, decode latency, utilization, roofline, energy.

``simulate_compiled`` takes a ``simulator.compiled.CompiledModel`` holding (at least) the programs
:func:`timing_plan` names; ``mapping.sim_api.simulate`` is the one-call entry that compiles
exactly those first. ``SimResult`` is what the CLI prints and the demo/reports read.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from llmaccel.simulator.compiled import CompiledModel, ProgramKey
from llmaccel.simulator.power import PowerModel
from llmaccel.simulator.timing import CATEGORIES, Work, layer_timing, program_work
from llmaccel.simulator.timing_engine import UNITS
from llmaccel.errors import LlmaccelError


@dataclass
class SimResult:
    model: str
    design: str
    recipe: str
    prefill_tokens: int
    decode_tokens: int
    ttft_s: float
    prefill_s: float
    decode_s: float
    decode_ms_per_token: float
    decode_tokens_per_s: float
    prefill_tokens_per_s: float
    power_W: Optional[float]                 # decode phase (the steady state of generation)
    prefill_power_W: Optional[float]
    tokens_per_J: Optional[float]            # decode: generated tokens / decode energy
    prefill_tokens_per_J: Optional[float]
    hbm_bw_utilization: float                # decode phase: achieved / peak HBM bandwidth
    prefill_hbm_bw_utilization: float
    decode_hbm_GBps: float
    prefill_mac_utilization: float           # prefill MACs / (MM peak: both packed lanes, x time)
    decode_mac_utilization: float            # decode MACs / (MV peak: one lane per DSP, x time)
    unit_busy_decode: dict[str, float]
    unit_busy_prefill: dict[str, float]
    roofline_decode_tokens_per_s: float
    roofline_decode_bw_tokens_per_s: float
    roofline_decode_compute_tokens_per_s: float
    roofline_prefill_s: float
    decode_bytes_per_token: float            # weights + scales + indices + KV actually read per token (mean)
    weight_bytes: int
    peak_hbm_GBps: float
    peak_TOPS: float
    clock_MHz: float
    buckets_simulated: int
    energy_breakdown_decode_J: dict[str, float] = field(default_factory=dict)    # dynamic J by component (simulator.power)
    energy_breakdown_prefill_J: dict[str, float] = field(default_factory=dict)
    breakdown: dict[str, Any] = field(default_factory=dict)   # where a decode token's time and energy go
    static_power_W: Optional[float] = None   # board idle power the totals include (simulator.power)
    energy_sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _busy(work: Work, n_cores: int) -> dict[str, float]:
    if work.cycles <= 0:
        return {u: 0.0 for u in UNITS}
    return {u: work.busy.get(u, 0.0) / (n_cores * work.cycles) for u in UNITS}


def _model_work(cm: CompiledModel, phase: str, ctx: int, tokens: int) -> Work:
    """All layers of the model for one decode step (phase='decode') or one prefill chunk."""
    w = Work()
    for g, layers in enumerate(cm.layer_groups):
        prog = cm.program(phase, ctx, tokens, g)
        w.add(layer_timing(prog, cm.hw, cm.cache).total(len(layers)))
    return w


# Contexts between two simulated points of one segment are interpolated linearly (see _sampled). Between
# two contexts with the same KV-tile count a layer program differs only in KV transfer sizes and score
# lengths, whose costs grow in (small) steps; the interpolation error was measured at < 0.05 % of decode
# time on llama2-7b/flightllm-u280 (tests/simulator/test_timing_physics.py holds it under 0.2 %).
SAMPLE_STRIDE = 8


def _lerp(a: Work, b: Work, frac: float) -> Work:
    w = Work()
    w.add(a, 1.0 - frac)
    w.add(b, frac)
    return w


def _segments(points: list[int], seg_key: Any, stride: int) -> list[tuple[list[int], list[int]]]:
    """Runs of points with the same ``seg_key`` (same program structure: KV tiles, chunk size), each
    with the indices simulated: every ``stride``-th point plus the run's last."""
    segs: list[list[int]] = []
    for x in points:
        if segs and seg_key(x) == seg_key(segs[-1][-1]):
            segs[-1].append(x)
        else:
            segs.append([x])
    return [(seg, sorted(set(range(0, len(seg), max(stride, 1))) | {len(seg) - 1})) for seg in segs]


def _sampled(points: list[int], seg_key: Any, work_of: Any, stride: int) -> dict[int, Work]:
    """Work at every point (contexts, ascending), simulating only the points ``_segments`` picks;
    the points between are linear interpolations of their simulated neighbours."""
    out: dict[int, Work] = {}
    for seg, idx in _segments(points, seg_key, stride):
        for i in idx:
            out[seg[i]] = work_of(seg[i])
        for a, b in zip(idx, idx[1:]):
            for j in range(a + 1, b):
                out[seg[j]] = _lerp(out[seg[a]], out[seg[b]], (seg[j] - seg[a]) / (seg[b] - seg[a]))
    return out


def _plan(prefill: int, decode: int, max_len: int, decode_bucket: int, prefill_bucket: int, chunk_of: Any,
          kv_tile: int) -> tuple[int, int, dict[int, int], dict[int, int]]:
    """(prefill bucket, chunk, chunk end -> tokens, decode bucket -> steps in it)."""
    if prefill < 1:
        raise LlmaccelError(f"prefill={prefill} must be >= 1 (a prompt has at least one token)")
    if decode < 0:
        raise LlmaccelError(f"decode={decode} must be >= 0")
    if prefill + decode > max_len:
        raise LlmaccelError(f"prefill + decode = {prefill + decode} tokens is beyond the compiled maximum "
                            f"max_len={max_len}; allowed: prefill + decode <= {max_len}")
    pb = -(-prefill // prefill_bucket) * prefill_bucket
    chunk = chunk_of(pb)
    ends = {min(q0 + chunk, pb): min(chunk, pb - q0) for q0 in range(0, pb, chunk)}   # chunk end -> its tokens
    steps: dict[int, int] = {}
    for i in range(decode):
        b = -(-(prefill + i + 1) // decode_bucket) * decode_bucket
        steps[b] = steps.get(b, 0) + 1
    return pb, chunk, ends, steps


def timing_plan(prefill: int, decode: int, *, max_len: int, decode_bucket: int, prefill_bucket: int, chunk_of: Any,
                kv_tile: int, n_groups: int, sample_stride: int = 0) -> list[ProgramKey]:
    """The programs :func:`simulate_compiled` runs for this request (what the compiler must provide)."""
    stride = sample_stride or SAMPLE_STRIDE
    _, _, ends, steps = _plan(prefill, decode, max_len, decode_bucket, prefill_bucket, chunk_of, kv_tile)
    kv_tile = kv_tile or 1
    keys: list[ProgramKey] = [("head", 0, 1, -1)]
    for seg, idx in _segments(sorted(ends), lambda e: (ends[e], -(-e // kv_tile)), stride):
        keys += [("prefill", seg[i], ends[seg[i]], g) for i in idx for g in range(n_groups)]
    for seg, idx in _segments(sorted(steps), lambda b: -(-b // kv_tile), stride):
        keys += [("decode", seg[i], 1, g) for i in idx for g in range(n_groups)]
    return keys


def simulate_compiled(comp: CompiledModel, prefill: int, decode: int, *, design_name: str = "",
                      device_name: str = "", recipe_name: str = "", power: Optional[PowerModel] = None,
                      sample_stride: int = SAMPLE_STRIDE) -> SimResult:
    """``power`` (``PowerModel.build(design, device)``) gives power and tokens/J; without it they are None.
    ``sample_stride`` = 1 simulates every decode bucket and prefill chunk (no interpolation).
    ``comp`` must hold the programs :func:`timing_plan` names for the same arguments."""
    pb, chunk, ends, steps_per_bucket = _plan(prefill, decode, comp.max_len, comp.decode_bucket,
                                              comp.prefill_bucket, comp.prefill_chunk, comp.kv_tile)
    hw, spec = comp.hw, comp.spec
    f = hw.clock_hz
    head = program_work(comp.program("head"), hw, comp.cache)

    # ---- prefill: the prompt's bucket, chunk by chunk, all layers, then the LM head on the last token
    pre = Work()
    kv_tile = comp.kv_tile or 1
    pre_work = _sampled(sorted(ends), lambda e: (ends[e], -(-e // kv_tile)),
                        lambda e: _model_work(comp, "prefill", e, ends[e]), sample_stride)
    for e in sorted(ends):
        pre.add(pre_work[e])
    pre.add(head)
    prefill_s = pre.cycles / f

    # ---- decode: one simulation per 16-token bucket, times the steps that fall in it
    dec = Work()
    dec_work = _sampled(sorted(steps_per_bucket), lambda b: -(-b // kv_tile),
                        lambda b: _model_work(comp, "decode", b, 1), sample_stride)
    for b, n in sorted(steps_per_bucket.items()):
        step = Work()
        step.add(dec_work[b])
        step.add(head)
        dec.add(step, n)
    decode_s = dec.cycles / f

    # ---- roofline for the same work: bytes each token must read at its true context length
    w_bytes = comp.weight_bytes
    kv_row = spec.head_dim + 4
    peak_bw = hw.hbm_peak_Bps
    peak_macs = hw.peak_macs_per_s
    # decode runs MV on one token: one of the two packed lanes of every DSP does useful work
    peak_mv_macs = hw.n_cores * hw.dsp_per_core * f
    t_bw = t_cmp = bytes_sum = 0.0
    linear_macs = comp.linear_macs
    for i in range(decode):
        L = prefill + i + 1
        kv_bytes = 2 * spec.num_layers * spec.num_kv_heads * L * kv_row
        by = w_bytes + kv_bytes
        macs = linear_macs + 2 * spec.num_layers * spec.num_heads * L * spec.head_dim
        bytes_sum += by
        t_bw += by / peak_bw
        t_cmp += macs / peak_mv_macs
    roof_bw = decode / t_bw if decode else 0.0
    roof_cmp = decode / t_cmp if decode else 0.0
    roof = decode / max(t_bw, t_cmp) if decode else 0.0
    pre_macs = pre.macs
    roof_prefill_s = max(pre_macs / peak_macs, (w_bytes + pre.hbm_write_bytes) / peak_bw)

    notes = []
    if power is None:
        notes.append("power_W/tokens_per_J not reported: no power model given (PowerModel.build(design, device))")
    elif power.unavailable_reason:
        notes.append(f"power_W/tokens_per_J not reported: {power.unavailable_reason}")
    e_dec = power.phase(dec, decode_s) if power else None
    e_pre = power.phase(pre, prefill_s) if power else None
    dec_bw = (dec.hbm_read_bytes + dec.hbm_write_bytes) / decode_s if decode_s else 0.0
    pre_bw = (pre.hbm_read_bytes + pre.hbm_write_bytes) / prefill_s if prefill_s else 0.0
    breakdown = decode_breakdown(dec, decode, f, e_dec)
    return SimResult(
        model=spec.name, design=design_name, recipe=recipe_name,
        prefill_tokens=prefill, decode_tokens=decode,
        ttft_s=prefill_s, prefill_s=prefill_s, decode_s=decode_s,
        decode_ms_per_token=1e3 * decode_s / decode if decode else 0.0,
        decode_tokens_per_s=decode / decode_s if decode_s else 0.0,
        prefill_tokens_per_s=prefill / prefill_s,
        power_W=e_dec.power_W if e_dec else None, prefill_power_W=e_pre.power_W if e_pre else None,
        tokens_per_J=(decode / e_dec.total_J) if (decode and e_dec and e_dec.total_J) else None,
        prefill_tokens_per_J=(prefill / e_pre.total_J) if (e_pre and e_pre.total_J) else None,
        hbm_bw_utilization=dec_bw / peak_bw, prefill_hbm_bw_utilization=pre_bw / peak_bw,
        decode_hbm_GBps=dec_bw / 1e9,
        prefill_mac_utilization=pre_macs / (peak_macs * prefill_s),
        decode_mac_utilization=dec.macs / (hw.n_cores * hw.dsp_per_core * f * decode_s) if decode_s else 0.0,
        unit_busy_decode=_busy(dec, hw.n_cores), unit_busy_prefill=_busy(pre, hw.n_cores),
        roofline_decode_tokens_per_s=roof, roofline_decode_bw_tokens_per_s=roof_bw,
        roofline_decode_compute_tokens_per_s=roof_cmp, roofline_prefill_s=roof_prefill_s,
        decode_bytes_per_token=bytes_sum / decode if decode else 0.0,
        weight_bytes=w_bytes, peak_hbm_GBps=peak_bw / 1e9, peak_TOPS=2 * peak_macs / 1e12,
        clock_MHz=f / 1e6, buckets_simulated=len(steps_per_bucket) + math.ceil(pb / chunk),
        energy_breakdown_decode_J=e_dec.dynamic_breakdown_J if e_dec else {},
        energy_breakdown_prefill_J=e_pre.dynamic_breakdown_J if e_pre else {},
        breakdown=breakdown, static_power_W=power.static_W if power else None,
        energy_sources=power.sources if power else {}, notes=notes)


# dynamic-energy components of simulator.power that belong to one kind of activity; every other
# component (and static power) is spread over the categories by their share of the time
_ENERGY_OWNER = {"dsp": ("compute",), "sfu": ("sfu",),
                 "hbm_traffic": ("weight_stream", "decoder_stall", "kv_reads", "lm_head")}


def decode_breakdown(dec: Work, decode: int, clock_hz: float, e_dec: Any) -> dict[str, Any]:
    """Per decode token: ms and mJ in each of ``simulator.timing.CATEGORIES``.

    Time is exposed time (``timing.time_breakdown``): the categories add up to the token's time.
    Energy: static power and time-proportional components follow each category's time; DSP energy
    goes to compute, SFU energy to sfu, HBM traffic energy to the memory categories by their time.
    """
    if not decode or dec.cycles <= 0:
        return {}
    cyc = {c: dec.time.get(c, 0.0) for c in CATEGORIES}
    total = sum(cyc.values()) or 1.0
    ms = {c: 1e3 * v / clock_hz / decode for c, v in cyc.items()}
    out: dict[str, Any] = {"decode_ms_per_token": ms,
                           "decode_fraction": {c: v / total for c, v in cyc.items()},
                           "attribution": "each cycle to the first active of: " + ", ".join(CATEGORIES[:-2])
                                          + "; lm_head = the LM head program; idle = nothing active"}
    if e_dec is None or e_dec.total_J is None:
        return out
    mj = {c: 0.0 for c in CATEGORIES}
    spread = (e_dec.static_J or 0.0)
    for comp, joules in e_dec.dynamic_breakdown_J.items():
        owners = [c for c in _ENERGY_OWNER.get(comp, ()) if cyc[c] > 0]
        if not owners:
            spread += joules
            continue
        t_own = sum(cyc[c] for c in owners)
        for c in owners:
            mj[c] += 1e3 * joules * cyc[c] / t_own / decode
    for c in CATEGORIES:
        mj[c] += 1e3 * spread * cyc[c] / total / decode
    out["decode_mJ_per_token"] = mj
    return out
