"""A GPU performance model for machines without a GPU: roofline on the device preset, scaled by measurement.

Why: reports compare FPGA designs with GPUs in tokens/s and tokens/J, and
most machines that run llmaccel have no GPU. The estimate is

* bytes and FLOPs per token from :mod:`gpu_baseline.workload` (the same packed
  formats the FPGA compiler uses);
* a roofline on the device preset: time = max(bytes / HBM bandwidth,
  linear FLOPs / tensor peak + attention FLOPs / FP16 tensor peak), with the
  INT8 tensor peak for recipes with INT8 activations and the FP16 one
  otherwise (a GPU without an INT8 tensor figure falls back to FP16 and says so);
* scaled by an efficiency per phase, ``roofline time / measured time`` of this
  project's own committed measurement on that GPU
  (``gpu_baseline/measurements/``, read by :func:`load_measurements`) where one
  exists, the copy kernel's share of peak bandwidth for decode where only that
  was measured, and 1 (the datasheet roofline: an upper bound) otherwise.

Power is the measured NVML average of a decode run of the same model and
recipe on that GPU where one exists; otherwise the datasheet TDP, which is a
limit and not a draw, so tokens/J from it is a lower bound. Every estimate is
tagged ``provenance="modelled"`` and says which efficiency and power it used.

Not modelled: kernel launch and CUDA-graph overheads, L2 residency of small
models, batching; a measured efficiency absorbs them for the configuration
it measured. docs/gpu_model.md describes the model and the figures.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from llmaccel.gpu_baseline.measured import GpuMeasurement, ModelRun, load_measurements
from llmaccel.gpu_baseline.workload import GpuWorkload, gpu_workload
from llmaccel.simulator.specs.device import GpuDevice, load_device
from llmaccel.simulator.specs.model import ModelSpec, load_model_spec
from llmaccel.errors import LlmaccelError

DATASHEET = "datasheet roofline"
TDP_SOURCE = "datasheet TDP (upper bound, not measured)"
GB = 1e9          # datasheet GB and GB/s are decimal; memory_GB as 1e9 bytes also makes the fit check conservative
T = 1e12


class GpuModelError(LlmaccelError):
    """A model/recipe/device combination the GPU performance model cannot estimate."""


@dataclass(frozen=True)
class GpuEstimate:
    """A modelled GPU run: prefill + decode of one model under one recipe on one GPU preset."""

    device: str
    model: str
    recipe: str
    prefill: int
    decode: int
    ttft_s: float
    prefill_tokens_per_s: float
    decode_ms_per_token: float
    decode_tokens_per_s: float
    power_W: float
    power_source: str
    tokens_per_J: float              # decode: generated tokens per joule at power_W
    energy_J_per_token: float
    provenance: str                  # always "modelled"
    efficiency_source: str           # "measured:<file>" or "datasheet roofline"
    bytes_per_token: float           # decode, mean over the decode steps
    flops_per_token: float           # decode, mean over the decode steps
    bound: str                       # decode: "memory" | "compute"
    # ----- detail (beyond the API other packages code against) -----
    prefill_bound: str = ""
    decode_efficiency: float = 1.0   # roofline time / modelled time
    prefill_efficiency: float = 1.0
    efficiency_detail: str = ""
    peak_GBps: float = 0.0
    linear_peak_TOPS: float = 0.0
    linear_peak_source: str = ""
    roofline_decode_tokens_per_s: float = 0.0
    resident_GB: float = 0.0
    weight_GB: float = 0.0
    kv_bytes_per_token: float = 0.0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["notes"] = list(self.notes)
        return d


# --------------------------------------------------------------------------- roofline

@dataclass(frozen=True)
class _Peaks:
    GBps: float
    linear_TOPS: float
    linear_source: str
    fp16_TOPS: float


def _peaks(dev: GpuDevice, int8_activations: bool) -> tuple[_Peaks, list[str]]:
    notes: list[str] = []
    if not dev.hbm_GBps:
        raise GpuModelError(f"device '{dev.name}': hbm_GBps is {dev.hbm_GBps!r} (not found); the roofline needs it")
    fp16 = dev.fp16_tensor_TFLOPS_dense or dev.bf16_tensor_TFLOPS_dense
    if not fp16:
        raise GpuModelError(f"device '{dev.name}': neither fp16_tensor_TFLOPS_dense nor bf16_tensor_TFLOPS_dense "
                            "is known; the roofline needs a tensor peak")
    fp16_src = "fp16_tensor_TFLOPS_dense" if dev.fp16_tensor_TFLOPS_dense else "bf16_tensor_TFLOPS_dense"
    if int8_activations and dev.int8_TOPS_dense:
        lin, src = dev.int8_TOPS_dense, "int8_TOPS_dense"
    else:
        lin, src = fp16, fp16_src
        if int8_activations:
            notes.append(f"{dev.name} has no INT8 tensor-core figure: INT8-activation linears at the "
                         f"{fp16_src} peak")
    return _Peaks(dev.hbm_GBps, lin, src, fp16), notes


def _roofline_times(w: GpuWorkload, pk: _Peaks, prefill: int, decode: int) -> dict[str, Any]:
    """Seconds at 100 % of the datasheet peaks, and which roof binds."""
    ctx = w.mean_decode_context(prefill, decode)
    d_bytes = w.decode_bytes(ctx)
    d_mem = d_bytes / (pk.GBps * GB)
    d_lin = 2.0 * (w.linear_macs_per_token + w.lm_head_macs)
    d_cmp = d_lin / (pk.linear_TOPS * T) + w.attn_flops_per_ctx_token * ctx / (pk.fp16_TOPS * T)
    p_bytes = w.prefill_bytes(prefill)
    p_mem = p_bytes / (pk.GBps * GB)
    p_cmp = w.prefill_linear_flops(prefill) / (pk.linear_TOPS * T) + w.prefill_attn_flops(prefill) / (pk.fp16_TOPS * T)
    return dict(decode_s=max(d_mem, d_cmp), decode_bound="memory" if d_mem >= d_cmp else "compute",
                decode_bytes=d_bytes, decode_flops=w.decode_flops(ctx),
                prefill_s=max(p_mem, p_cmp), prefill_bound="memory" if p_mem >= p_cmp else "compute")


# --------------------------------------------------------------------------- efficiency from measurements

@dataclass(frozen=True)
class _Efficiency:
    decode: float
    prefill: float
    source: str            # "measured:<file>" or DATASHEET
    detail: str
    power_W: Optional[float]
    power_source: str


def _run_roofline_s(run: ModelRun, dev: GpuDevice) -> float:
    """Roofline time per token of a measured run (its own model, recipe and lengths)."""
    w = gpu_workload(load_model_spec(run.model), run.recipe)
    pk, _ = _peaks(dev, w.int8_activations)
    r = _roofline_times(w, pk, run.prefill, max(run.decode, 1))
    return r["decode_s"] if run.phase == "decode" else r["prefill_s"] / run.prefill


def _pick(runs: list[ModelRun], model: str, recipe: str) -> tuple[Optional[ModelRun], str]:
    """The measured run that best stands for (model, recipe): same model and recipe, else same recipe,
    else any; among equals the fastest implementation (what the GPU achieves)."""
    for match, how in (((lambda r: r.model == model and r.recipe == recipe), "same model and recipe"),
                       ((lambda r: r.recipe == recipe), "same recipe, other model"),
                       ((lambda r: True), "other model/recipe")):
        cands = [r for r in runs if match(r)]
        if cands:
            return min(cands, key=lambda r: r.ms_per_token), how
    return None, ""


def _efficiency(dev: GpuDevice, model: str, recipe: str, root: Union[str, Path, None]) -> _Efficiency:
    files = load_measurements(root, device=dev.name)
    for m in reversed(files):            # newest usable file first
        eff = _from_file(m, dev, model, recipe)
        if eff is not None:
            return eff
    return _Efficiency(1.0, 1.0, DATASHEET, f"no measurement of {dev.name} committed: datasheet peaks",
                       None, TDP_SOURCE)


def _shaped(run: ModelRun) -> bool:
    """A run the model can replay: its model is a preset (or config path) and its recipe is known."""
    try:
        gpu_workload(load_model_spec(run.model), run.recipe)
    except LlmaccelError:
        return False
    return True


def _from_file(m: GpuMeasurement, dev: GpuDevice, model: str, recipe: str) -> Optional[_Efficiency]:
    src = f"measured:{m.source_file}"
    detail: list[str] = []
    usable = [r for r in m.runs if _shaped(r)]
    if len(usable) < len(m.runs):
        skipped = sorted({f"{r.model}/{r.recipe}" for r in m.runs if r not in usable})
        detail.append(f"runs skipped (model or recipe unknown here): {', '.join(skipped)}")
    dec_run, dec_how = _pick([r for r in usable if r.phase == "decode"], model, recipe)
    pre_run, pre_how = _pick([r for r in usable if r.phase == "prefill"], model, recipe)
    if dec_run is None and pre_run is None and m.copy_bandwidth is None:
        return None
    if dec_run is not None:
        e_dec = _run_roofline_s(dec_run, dev) / (dec_run.ms_per_token * 1e-3)
        detail.append(f"decode {e_dec:.3f} of roofline from {dec_run.model}/{dec_run.recipe} ({dec_run.impl}, "
                      f"{dec_how})")
    elif m.copy_bandwidth is not None:
        e_dec = m.copy_bandwidth.share_of_peak
        detail.append(f"decode {e_dec:.3f}: copy-kernel share of peak bandwidth (no decode run)")
    else:
        e_dec = 1.0
        detail.append("decode 1.0: datasheet roofline (no decode run, no copy kernel)")
    if pre_run is not None:
        e_pre = _run_roofline_s(pre_run, dev) / (pre_run.ms_per_token * 1e-3)
        detail.append(f"prefill {e_pre:.3f} of roofline from {pre_run.model}/{pre_run.recipe} ({pre_run.impl}, "
                      f"{pre_how})")
    else:
        e_pre = 1.0
        detail.append("prefill 1.0: datasheet roofline (no prefill run)")
    for name, e in (("decode", e_dec), ("prefill", e_pre)):
        if e > 1.0 + 1e-9:
            # Faster than the datasheet roofline means the model under-counts (e.g. L2 hits at small
            # shapes) or the measurement is wrong; either way the user must see it, not a clamp.
            detail.append(f"{name} measured faster than the roofline (efficiency {e:.3f} > 1)")
    power, psrc = None, TDP_SOURCE
    exact = [r for r in usable if r.phase == "decode" and r.model == model and r.recipe == recipe
             and r.avg_power_W is not None]
    if exact:
        r = min(exact, key=lambda r: r.ms_per_token)
        power = r.avg_power_W
        psrc = f"measured:{m.source_file} (NVML board power over decode of {model}/{recipe}, {r.impl})"
    return _Efficiency(e_dec, e_pre, src, "; ".join(detail), power, psrc)


# --------------------------------------------------------------------------- the estimate

def _spec(model: Union[str, ModelSpec]) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model_spec(model)


def gpu_presets() -> list[str]:
    """Names of the GPU device presets :func:`estimate_gpu` accepts."""
    from llmaccel.simulator.specs.device import list_devices
    return [n for n in list_devices() if load_device(n).kind == "gpu"]


def _gpu(device: str) -> GpuDevice:
    dev = load_device(device)
    if not isinstance(dev, GpuDevice):
        raise GpuModelError(f"device '{device}' is an FPGA ({dev.kind}); the GPU model needs a GPU preset")
    return dev


def estimate_gpu(model: Union[str, ModelSpec], device: str, recipe: str = "fp16", prefill: int = 512,
                 decode: int = 512, measurements_root: Union[str, Path, None] = None) -> GpuEstimate:
    """Modelled prefill and decode of ``model`` under ``recipe`` on GPU preset ``device`` (batch 1).

    ``measurements_root`` defaults to ``gpu_baseline/measurements/`` (tests pass a tmp folder).
    """
    for name, v, lo in (("prefill", prefill, 1), ("decode", decode, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise GpuModelError(f"{name}={v!r} must be an integer >= {lo}")
    spec = _spec(model)
    dev = _gpu(device)
    if prefill + decode > spec.max_position_embeddings:
        raise GpuModelError(f"prefill + decode = {prefill + decode} tokens exceeds {spec.name}'s "
                            f"max_position_embeddings={spec.max_position_embeddings}")
    w = gpu_workload(spec, recipe)
    if dev.memory_GB is None:
        raise GpuModelError(f"device '{dev.name}': memory_GB is not known; cannot check that the model fits")
    need = w.resident_bytes(prefill + decode)
    if need > dev.memory_GB * GB:
        raise GpuModelError(
            f"{spec.name} ({recipe}) does not fit {dev.name}: it needs {need / GB:.1f} GB (weights "
            f"{w.resident_weight_bytes / GB:.1f} GB + KV cache {w.kv_bytes_per_token * (prefill + decode) / GB:.2f} GB "
            f"at {prefill + decode} tokens), the GPU has {dev.memory_GB:g} GB; use fewer bits or a larger GPU")
    pk, notes = _peaks(dev, w.int8_activations)
    roof = _roofline_times(w, pk, prefill, decode)
    eff = _efficiency(dev, spec.name, recipe, measurements_root)
    dec_s = roof["decode_s"] / eff.decode
    ttft = roof["prefill_s"] / eff.prefill
    power = eff.power_W if eff.power_W is not None else dev.tdp_W
    if power is None:
        raise GpuModelError(f"device '{dev.name}': tdp_W is not known and no power was measured on it")
    tok_s = 1.0 / dec_s
    return GpuEstimate(
        device=dev.name, model=spec.name, recipe=recipe, prefill=prefill, decode=decode,
        ttft_s=ttft, prefill_tokens_per_s=prefill / ttft,
        decode_ms_per_token=dec_s * 1e3, decode_tokens_per_s=tok_s,
        power_W=float(power), power_source=eff.power_source,
        tokens_per_J=tok_s / power, energy_J_per_token=power / tok_s,
        provenance="modelled", efficiency_source=eff.source,
        bytes_per_token=roof["decode_bytes"], flops_per_token=roof["decode_flops"], bound=roof["decode_bound"],
        prefill_bound=roof["prefill_bound"], decode_efficiency=eff.decode, prefill_efficiency=eff.prefill,
        efficiency_detail=eff.detail, peak_GBps=pk.GBps, linear_peak_TOPS=pk.linear_TOPS,
        linear_peak_source=pk.linear_source, roofline_decode_tokens_per_s=1.0 / roof["decode_s"],
        resident_GB=need / GB, weight_GB=w.resident_weight_bytes / GB, kv_bytes_per_token=w.kv_bytes_per_token,
        notes=tuple(notes) + w.notes,
    )
