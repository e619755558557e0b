"""Parse a Vitis/Vivado HLS csynth.xml into plain data; turn it into simulator unit overrides.

Pure functions: a file in, a dict out, tested on real reports of three tool
generations. The parser never invents a number: ``undef`` becomes None, and a
field the report does not have is listed under ``missing`` rather than given a
value (a zero latency or DSP count would be a claim the tool never made).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Optional, Union

from sparse_dsp.errors import LlmaccelError

Number = Union[int, float, None]
RESOURCE_ALIASES = {"DSP48E": "DSP"}  # Vivado HLS <= 2019 names DSP48E what later tools call DSP
KNOWN_RESOURCES = ("BRAM_18K", "DSP", "FF", "LUT", "URAM")
LOOP_FIELDS = {"TripCount": "trip_count", "Latency": "latency_cycles", "IterationLatency": "iteration_latency",
               "PipelineII": "pipeline_ii", "PipelineDepth": "pipeline_depth"}
LOOP_META = {"AbsoluteTimeLatency", "Slack", "Name", "PipelineType", "InstanceList"}


class HlsReportError(LlmaccelError):
    """A csynth.xml that cannot be read as an HLS synthesis report."""


def _number(text: Optional[str], where: str) -> Number:
    t = (text or "").strip()
    if t == "" or t.lower() == "undef":
        return None
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        raise HlsReportError(f"{where}: expected a number or 'undef', got {t!r}") from None


def _value(el: ET.Element, where: str) -> Union[Number, dict]:
    """A plain number, or a {min, max} range as some tool versions write latencies and trip counts."""
    rng = el.find("range")
    if rng is not None:
        return {"min": _number(rng.findtext("min"), where + "/range/min"),
                "max": _number(rng.findtext("max"), where + "/range/max")}
    return _number(el.text, where)


def _fields(parent: Optional[ET.Element], names: dict[str, str], where: str, out: dict, missing: list) -> None:
    for tag, key in names.items():
        el = None if parent is None else parent.find(tag)
        if el is None:
            missing.append(f"{where}.{key}")
        else:
            out[key] = _value(el, f"{where}/{tag}")


def _loops(parent: ET.Element, prefix: str, where: str, seen: Optional[dict[str, int]] = None
           ) -> list[dict[str, Any]]:
    """Loops depth-first; a path the report repeats (inlined copies of one loop) gets '#2', '#3', ..."""
    seen = {} if seen is None else seen
    loops = []
    for child in parent:
        # a loop is an element named after the loop holding its own fields; everything else is a field
        if child.tag in LOOP_FIELDS or child.tag in LOOP_META or child.tag == "unit" or len(child) == 0:
            continue
        path = f"{prefix}/{child.tag}" if prefix else child.tag
        seen[path] = seen.get(path, 0) + 1
        if seen[path] > 1:
            path = f"{path}#{seen[path]}"
        entry: dict[str, Any] = {"name": child.tag, "path": path}
        missing: list[str] = []
        for tag, key in LOOP_FIELDS.items():
            el = child.find(tag)
            if el is None:
                missing.append(key)
            else:
                entry[key] = _value(el, f"{where}/{path}/{tag}")
        entry["missing"] = missing
        loops.append(entry)
        loops.extend(_loops(child, path, where, seen))
    return loops


def _resources(el: Optional[ET.Element], where: str) -> Optional[dict[str, Number]]:
    if el is None:
        return None
    out: dict[str, Number] = {}
    for child in el:
        out[RESOURCE_ALIASES.get(child.tag, child.tag)] = _number(child.text, f"{where}/{child.tag}")
    return out


def parse_csynth(path: Union[str, Path]) -> dict[str, Any]:
    """Parse one csynth.xml (file, or a directory searched for ``csynth.xml``)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.rglob("csynth.xml"))
        if not found:
            raise HlsReportError(f"no csynth.xml under {path} (run 'llmaccel hls run' with the csynth step first)")
        path = found[0]
    if not path.is_file():
        raise HlsReportError(f"report {path} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise HlsReportError(f"{path}: not well-formed XML ({exc})") from None
    where = str(path)
    if root.tag != "profile":
        raise HlsReportError(f"{path}: root element is <{root.tag}>, a csynth.xml report has <profile>")
    perf, area = root.find("PerformanceEstimates"), root.find("AreaEstimates")
    if perf is None and area is None:
        raise HlsReportError(f"{path}: neither PerformanceEstimates nor AreaEstimates found; not a csynth report")

    missing: list[str] = []
    out: dict[str, Any] = {"report": str(path)}
    version = root.findtext("ReportVersion/Version")
    if version is None:
        missing.append("tool_version")
    else:
        out["tool_version"] = version.strip()
    ua = root.find("UserAssignments")
    for tag, key in (("Part", "part"), ("TopModelName", "top"), ("ProductFamily", "product_family")):
        text = None if ua is None else ua.findtext(tag)
        if text is None:
            missing.append(key)
        else:
            out[key] = text.strip()
    clock: dict[str, Number] = {}
    _fields(ua, {"TargetClockPeriod": "target_ns", "ClockUncertainty": "uncertainty_ns"}, "clock", clock, missing)
    est = None if perf is None else perf.find("SummaryOfTimingAnalysis")
    _fields(est, {"EstimatedClockPeriod": "estimated_ns"}, "clock", clock, missing)
    out["clock"] = clock

    overall = None if perf is None else perf.find("SummaryOfOverallLatency")
    latency: dict[str, Number] = {}
    _fields(overall, {"Best-caseLatency": "best", "Average-caseLatency": "average", "Worst-caseLatency": "worst"},
            "latency_cycles", latency, missing)
    out["latency_cycles"] = latency
    interval: dict[str, Number] = {}
    _fields(overall, {"Interval-min": "min", "Interval-max": "max"}, "interval_cycles", interval, missing)
    out["interval_cycles"] = interval

    loop_root = None if perf is None else perf.find("SummaryOfLoopLatency")
    if loop_root is None:
        out["loops"] = None  # the report has no loop table: unknown, not "no loops"
        missing.append("loops")
    else:
        out["loops"] = _loops(loop_root, "", where + "/SummaryOfLoopLatency")

    used = _resources(None if area is None else area.find("Resources"), where + "/Resources")
    avail = _resources(None if area is None else area.find("AvailableResources"), where + "/AvailableResources")
    for key, res in (("resources_used", used), ("resources_available", avail)):
        if res is None:
            missing.append(key)
            continue
        out[key] = res
        missing.extend(f"{key}.{r}" for r in KNOWN_RESOURCES if r not in res)
    out["missing"] = missing
    return out


def unit_overrides(report: dict[str, Any], unit: str) -> dict[str, Any]:
    """Per-unit latency/resource overrides for the simulator's timing model, from a parsed report.

    Plain data: ``{"units": {unit: {...}}}``. Unknown values stay None and are
    named in ``missing``, so the timing model keeps its own estimate for them
    instead of taking a zero.
    """
    lat = report.get("latency_cycles", {})
    interval = report.get("interval_cycles", {})
    clock = report.get("clock", {})
    est = clock.get("estimated_ns")
    entry = {
        "latency_cycles": lat.get("worst"),
        "latency_cycles_best": lat.get("best"),
        "interval_cycles": interval.get("max"),
        "estimated_clock_ns": est,
        "fmax_MHz": None if not est else round(1000.0 / est, 3),
        "resources": dict(report.get("resources_used") or {}),
        "loops": {lp["path"]: {k: lp[k] for k in ("trip_count", "latency_cycles", "pipeline_ii") if k in lp}
                  for lp in report.get("loops") or []},
        "source": f"csynth.xml {report.get('report')} ({report.get('tool_version', 'unknown tool version')}, "
                  f"part {report.get('part', 'unknown')})",
    }
    entry["missing"] = [k for k in ("latency_cycles", "interval_cycles", "estimated_clock_ns") if entry[k] is None]
    return {"units": {unit: entry}}
