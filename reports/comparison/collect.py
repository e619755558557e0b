"""Collect the figures of a comparison report, each row tagged with where it comes from.

FPGA rows are simulated: the report's FPGA part is an exploration sweep with no
knobs and no pruning (reports.explore), so its points land in the same kind of
store and are never recomputed. GPU rows come from ``gpu_baseline``: measured
figures where ``gpu_baseline.measured`` has a measurement of the same device,
model, recipe and lengths, the GPU performance model (``perf_model``) otherwise.
"""
from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmaccel.reports.explore.spec import ExploreSpec, SpecInputError, Workload, load_spec
from llmaccel.simulator.specs._yaml import load_yaml_mapping
from llmaccel.errors import LlmaccelError

METRICS = (  # (row key, label, unit, higher is better)
    ("decode_tokens_per_s", "decode throughput", "tokens/s", True),
    ("tokens_per_J", "decode energy efficiency", "tokens/J", True),
    ("ttft_s", "time to first token", "s", False),
    ("decode_ms_per_token", "decode latency", "ms/token", False),
)
GPU_MODULE_MISSING = "llmaccel.gpu_baseline.perf_model is not available in this build"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FpgaPart(_Strict):
    designs: list[str]
    recipes: list[str] = Field(default_factory=lambda: ["flightllm"])


class GpuPart(_Strict):
    devices: list[str]
    recipe: str = "fp16"


class ReportSpec(_Strict):
    name: str
    title: Optional[str] = None
    models: list[str]
    workloads: list[Workload]
    fpga: FpgaPart
    gpus: Optional[GpuPart] = None
    max_len: int = 2048

    def explore_spec(self) -> ExploreSpec:
        return load_spec({"name": self.name, "designs": self.fpga.designs, "models": self.models,
                          "recipes": self.fpga.recipes, "workloads": [w.model_dump() for w in self.workloads],
                          "max_len": self.max_len, "prune": False}, source=f"report spec '{self.name}'")


def load_report_spec(path: str | Path) -> ReportSpec:
    data = load_yaml_mapping(path)
    try:
        spec = ReportSpec(**data)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        msg = (f"unknown field; allowed: {', '.join(ReportSpec.model_fields)}" if e["type"] == "extra_forbidden"
               else e["msg"])
        raise SpecInputError(f"{path}: field '{loc}': {msg}") from None
    for fld in ("models", "workloads"):
        if not getattr(spec, fld):
            raise SpecInputError(f"{path}: field '{fld}' is empty: nothing to compare")
    if not spec.fpga.designs:
        raise SpecInputError(f"{path}: field 'fpga.designs' is empty: nothing to compare")
    if spec.gpus is not None:
        from llmaccel.simulator.specs.device import load_device
        for i, d in enumerate(spec.gpus.devices):
            try:
                dev = load_device(d)
            except LlmaccelError as exc:
                raise SpecInputError(f"{path}: field 'gpus.devices[{i}]': {exc}") from None
            if dev.kind != "gpu":
                raise SpecInputError(f"{path}: field 'gpus.devices[{i}]': '{d}' is a {dev.kind}, not a GPU")
    spec.explore_spec()     # validates designs, recipes and models the explorer's way
    return spec


@dataclasses.dataclass
class Provenance:
    llmaccel_version: str
    code_version: str          # hash of the simulator/mapping/gpu_baseline sources and presets
    commit: str
    date_utc: str
    spec_sha256: str
    gpu_model: str             # what stands behind the GPU figures

    def line(self) -> str:
        return (f"llmaccel {self.llmaccel_version}, model version (code hash) {self.code_version}, "
                f"commit {self.commit}, generated {self.date_utc}")


def _commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    if not sha:
        return "unknown (not a git checkout)"
    return sha + (" (with uncommitted changes)" if dirty else "")


@dataclasses.dataclass
class ReportData:
    spec: ReportSpec
    rows: list[dict]             # one per system x model x workload
    provenance: Provenance
    notes: list[str]
    store: str


def _measured_row(measurements: list, dev: str, model: str, recipe: str, wl: Workload) -> Optional[dict]:
    """Measured figures of the newest gpu-bench run of this device, model, recipe and lengths, if any."""
    for m in reversed(measurements):                    # newest first
        if m.gpu.device_preset != dev:
            continue
        runs = [r for r in m.runs if r.model == model and r.recipe == recipe and r.prefill == wl.prefill
                and r.decode == wl.decode]
        dec = next((r for r in runs if r.phase == "decode"), None)
        pre = next((r for r in runs if r.phase == "prefill"), None)
        if dec is None:
            continue
        where = f"measured: {Path(m.source_file or '?').name}, {m.date.date()}, commit {m.commit}"
        row = {"decode_tokens_per_s": dec.tokens_per_s, "decode_ms_per_token": dec.ms_per_token,
               "tokens_per_J": dec.tokens_per_J, "power_W": dec.avg_power_W, "source": "measured", "detail": where}
        if pre is not None:
            row["ttft_s"] = pre.ms_per_token * pre.prefill / 1e3
        return row
    return None


def _gpu_rows(spec: ReportSpec, notes: list[str]) -> list[dict]:
    """GPU rows: measured where a measurement matches, the GPU performance model otherwise.

    A measured row without a prefill run (or without NVML energy) takes those figures from the model
    and says so in ``source_<figure>``, so every figure carries its own source."""
    if spec.gpus is None:
        return []
    try:
        from llmaccel.gpu_baseline.perf_model import estimate_gpu
    except ImportError:
        notes.append(f"GPU comparison missing: {GPU_MODULE_MISSING}; the GPU rows are absent.")
        return []
    try:
        from llmaccel.gpu_baseline.measured import load_measurements
        measured = load_measurements()
    except ImportError:
        measured = []
        notes.append("llmaccel.gpu_baseline.measured is not available in this build: GPU rows are modelled only.")
    if not measured:
        notes.append("No GPU measurements in gpu_baseline/measurements: every GPU figure is modelled "
                     "(gpu_baseline.perf_model).")
    rows = []
    for model in spec.models:
        for wl in spec.workloads:
            for dev in spec.gpus.devices:
                est = estimate_gpu(model, dev, recipe=spec.gpus.recipe, prefill=wl.prefill, decode=wl.decode)
                modelled = est.to_dict()
                m = _measured_row(measured, dev, model, spec.gpus.recipe, wl)
                row = dict(modelled)
                srcs = {k: "modelled" for k, *_ in METRICS}
                if m is not None:
                    for k, *_ in METRICS:
                        if m.get(k) is not None:
                            row[k] = m[k]
                            srcs[k] = "measured"
                    row["detail"] = m["detail"]
                else:
                    row["detail"] = f"modelled: {modelled.get('efficiency_source', '')}"
                row |= {f"source_{k}": v for k, v in srcs.items()}
                row["source"] = "/".join(sorted(set(srcs.values())))
                rows.append(row | {"system": dev, "kind": "GPU", "model": model, "recipe": spec.gpus.recipe,
                                   "prefill": wl.prefill, "decode": wl.decode})
    return rows


def collect(spec: ReportSpec, store: str | Path, workers: Optional[int] = 1, progress: bool = False,
            spec_text: bytes = b"") -> ReportData:
    from llmaccel import __version__
    from llmaccel.reports.explore import explore
    from llmaccel.reports.explore.points import code_version
    notes: list[str] = []
    res = explore(spec.explore_spec(), store, workers=workers, progress=progress)
    rows = []
    for r in res.rows:
        if r["status"] != "simulated":
            raise LlmaccelError(f"design '{r['label']}' with recipe '{r['recipe']}' could not be simulated "
                                f"({r['status']}): {r.get('reason', '')}")
        rows.append(r | {"system": r["label"], "kind": "FPGA", "source": "simulated"})
        if r.get("tokens_per_J") is None and r.get("notes"):
            notes.append(f"{r['label']}: " + "; ".join(r["notes"]))
    rows += _gpu_rows(spec, notes)
    gpu_model = ("llmaccel.gpu_baseline.perf_model (roofline x efficiency, see docs/gpu_model.md)"
                 if spec.gpus is not None and not any(GPU_MODULE_MISSING in n for n in notes) else "none")
    prov = Provenance(__version__, code_version(), _commit(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      hashlib.sha256(spec_text).hexdigest()[:16], gpu_model)
    return ReportData(spec, rows, prov, sorted(set(notes)), str(store))
