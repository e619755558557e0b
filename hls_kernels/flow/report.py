"""Parse a Vitis/Vivado HLS csynth.xml into plain data; turn it into the simulator's reported units.

Pure functions: a file in, a dict out, tested on real reports of three tool
generations. The parser never invents a number: ``undef`` becomes None, and a
field the report does not have is listed under ``missing`` rather than given a
value (a zero latency or DSP count would be a claim the tool never made).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Optional, Union

from llmaccel.errors import LlmaccelError

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


# ----- reports -> the simulator's unit figures ------------------------------------------------------
# Which report stands for which simulator unit, and which of its loops the timing model reads, is the
# kernel-family registry's (hls_kernels.configs.FAMILIES: sim_unit, timing_loops): a linear_mv_top
# report is one sparse DSP chain ("mpe"), an sfu_top report one core's SFU ("sfu").
REPORT_RESOURCES = ("LUT", "FF", "DSP", "BRAM_18K", "URAM")


def report_files(path: Union[str, Path]) -> list[Path]:
    """A csynth.xml file as given, or every ``csynth.xml`` / ``*_csynth.xml`` under a directory (Vitis
    writes one per module: the top's, and one per sub-function and pipelined loop)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.xml") if p.name == "csynth.xml" or p.name.endswith("_csynth.xml"))
        if not found:
            raise HlsReportError(f"hls_reports: no csynth.xml under {path} (run 'llmaccel hls run' with the csynth "
                                 "step, then name its solution's syn/report directory)")
        return found
    raise HlsReportError(f"hls_reports: {path} does not exist (a csynth.xml or a directory of them)")


def _sha256(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _count(value: Any, where: str) -> int:
    """A reported figure the simulator takes: a whole number (a {min, max} range: its max)."""
    if isinstance(value, dict):
        value = value.get("max")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise HlsReportError(f"{where} is {value!r}; the simulator needs a whole number of cycles there "
                             "(the report leaves it undefined: synthesise with fixed loop bounds)")
    return value


def _allowed_tops() -> str:
    from llmaccel.hls_kernels.configs import FAMILIES
    return ", ".join(f"{f.top} ({f.sim_unit})" for f in FAMILIES.values() if f.sim_unit)


def reported_units(path: Union[str, Path]) -> tuple:
    """The ``simulator.design.ReportedUnit`` records of the reports at ``path``: for each unit, the II and
    pipeline depth of its timing loops (the worst over them) and the resources of its top.

    A report of a top the simulator has no unit for, a report without a timing loop, a loop without
    II or depth, a resource the report does not give, or two reports of one top: each one clear error.
    """
    from llmaccel.hls_kernels.configs import family_by_top
    from llmaccel.simulator.design import ReportedResources, ReportedUnit

    files = report_files(path)
    parsed = [parse_csynth(f) for f in files]
    tops: dict[str, dict[str, Any]] = {}
    for rep in parsed:
        fam = family_by_top(rep.get("top", ""))
        if fam is None or fam.sim_unit is None:
            continue
        if fam.top in tops:
            raise HlsReportError(f"hls_reports: two reports of {fam.top}: {tops[fam.top]['report']} and "
                                 f"{rep['report']}; name one")
        tops[fam.top] = rep
    if not tops:
        seen = sorted({str(r.get("top")) for r in parsed})
        raise HlsReportError(f"hls_reports {path}: unknown unit: the reports are of {', '.join(seen)}; the simulator "
                             f"takes reports of {_allowed_tops()}")
    units = []
    for top, rep in tops.items():
        fam = family_by_top(top)
        # the timing loops: in the top's report, or (Vitis 2023+: a pipelined loop is its own module) in a
        # sub-module report of the same directory
        loops = [(r, lp) for r in parsed for lp in (r.get("loops") or []) if lp["name"] in fam.timing_loops]
        if not loops:
            names = sorted({lp["name"] for r in parsed for lp in (r.get("loops") or [])})
            raise HlsReportError(f"{rep['report']}: {top} report holds none of the loops {list(fam.timing_loops)} "
                                 f"whose II and pipeline depth the simulator takes (loops found: "
                                 f"{', '.join(names) or 'none'})")
        timed = []
        for r, lp in loops:
            where = f"{r['report']}: loop {lp['path']}"
            timed.append((_count(lp.get("pipeline_ii"), f"{where} PipelineII"),
                          _count(lp.get("pipeline_depth"), f"{where} PipelineDepth"), r, lp))
        ii = max(t[0] for t in timed)
        depth, _, deep_rep, deep_loop = max(((t[1], t[0], t[2], t[3]) for t in timed), key=lambda t: (t[0], t[1]))
        used = rep.get("resources_used")
        if used is None:
            raise HlsReportError(f"{rep['report']}: missing field resources_used (AreaEstimates/Resources)")
        lacking = [k for k in REPORT_RESOURCES if k not in used]
        if lacking:
            raise HlsReportError(f"{rep['report']}: missing field resources_used.{lacking[0]}; the simulator needs "
                                 f"{', '.join(REPORT_RESOURCES)}")
        res = ReportedResources(**{k: _count(used[k], f"{rep['report']}: resources_used.{k}")
                                   for k in REPORT_RESOURCES})
        units.append(ReportedUnit(unit=fam.sim_unit, report=str(deep_rep["report"]),
                                  report_sha256=_sha256(Path(deep_rep["report"])), top=top, loop=deep_loop["name"],
                                  ii_cycles=ii, pipeline_depth_cycles=depth, resources=res,
                                  resources_report=str(rep["report"]),
                                  tool_version=str(rep.get("tool_version", "unknown"))))
    return tuple(sorted(units, key=lambda u: u.unit))
