"""A design that names csynth reports: the timing and resource models take the reported II, pipeline
depth and resources for those units, say so in their output, and a bad report is one clear error.

The reports are hand-written fixtures (tests/fixtures/csynth/README.md): mpe (linear_mv_top, Vitis 2023
layout: the beat loop MV_BEATS in its own module's report, II 1, depth 20; resources LUT 4100, FF 5200,
DSP 16, BRAM_18K 4, URAM 0) and sfu (sfu_top, one report, deepest loop SOFTMAX_EXP_SUM: depth 26, II 1;
LUT 16000, FF 19200, DSP 48, BRAM_18K 8, URAM 0). The expected figures below are read off those files.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from llmaccel.hls_kernels.flow.report import HlsReportError, reported_units
from llmaccel.cli import main
from llmaccel.mapping.designs import load_design
from llmaccel.simulator.design import BUNDLED_DESIGNS
from llmaccel.simulator.design import load_design as load_yaml_design
from llmaccel.simulator.specs import load_device
from llmaccel.simulator.specs._yaml import SpecError
from llmaccel.simulator.timing_params import hw_from_design

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "csynth"


def _design(tmp_path: Path, reports: Path = FIX, name: str = "u280-reported", edit=None) -> Path:
    shutil.copytree(reports, tmp_path / "reports")
    if edit:
        edit(tmp_path / "reports")
    text = (BUNDLED_DESIGNS / "flightllm-u280.yaml").read_text().replace("name: flightllm-u280", f"name: {name}")
    p = tmp_path / f"{name}.yaml"
    p.write_text(text + "hls_reports: reports\n")   # relative to the YAML's directory
    return p


def test_the_fixture_reports_become_typed_unit_records():
    units = {u.unit: u for u in reported_units(FIX)}
    mpe, sfu = units["mpe"], units["sfu"]
    assert (mpe.top, mpe.loop, mpe.ii_cycles, mpe.pipeline_depth_cycles) == ("linear_mv_top", "MV_BEATS", 1, 20)
    assert mpe.report.endswith("linear_mv_top_Pipeline_MV_BEATS_csynth.xml")   # the loop's own module
    assert mpe.resources_report.endswith("mpe/csynth.xml") and mpe.tool_version == "2023.2"
    assert dataclasses.astuple(mpe.resources) == (4100, 5200, 16, 4, 0)
    assert (sfu.top, sfu.loop, sfu.ii_cycles, sfu.pipeline_depth_cycles) == ("sfu_top", "SOFTMAX_EXP_SUM", 1, 26)
    assert dataclasses.astuple(sfu.resources) == (16000, 19200, 48, 8, 0)


def test_hw_params_take_the_reported_values_and_name_their_source(tmp_path):
    d = load_design(_design(tmp_path))
    hw = hw_from_design(d, load_device(d.device))
    base = hw_from_design(load_yaml_design("flightllm-u280"), load_device("alveo-u280"))
    assert (hw.chain_ii, hw.chain_latency_cycles, hw.sfu_pipeline_cycles, hw.sfu_ii) == (1, 20, 26, 1)
    assert (base.chain_latency_cycles, base.sfu_pipeline_cycles, base.from_reports) == (None, 16, ())
    rows = {(v.unit, v.field): v for v in hw.from_reports}
    assert rows["mpe", "chain_latency_cycles"].value == 20 and rows["mpe", "chain_latency_cycles"].model_value == 14
    assert rows["sfu", "sfu_pipeline_cycles"].model_value == 16 and rows["sfu", "sfu_pipeline_cycles"].loop \
        == "SOFTMAX_EXP_SUM"
    # all else equal: the report changes only the values it names
    assert dataclasses.replace(hw, chain_latency_cycles=None, sfu_pipeline_cycles=16, from_reports=(), name=base.name,
                               mem=base.mem) == base


def _costs(comp, prog):
    """(name, instruction, cost) of every instruction of a program, costed from its decoded words."""
    from llmaccel.mapping.compiler import program_instructions
    from llmaccel.simulator import isa
    from llmaccel.simulator.timing_costs import costs
    q0 = prog.ctx_len - prog.tokens
    return [(n, ins, costs(ins, c, q0, comp.hw)) for c, ins, n in program_instructions(prog)
            if not isinstance(ins, isa.SYS)]


def test_op_costs_change_by_exactly_the_reported_amount(tmp_path):
    from llmaccel.mapping.sim_api import build_compiler
    from llmaccel.simulator import isa
    from llmaccel.simulator.timing_costs import SFU_PHASES
    rep, _, _ = build_compiler("llama2-7b", load_design(_design(tmp_path)), "flightllm", max_len=256)
    mod, _, _ = build_compiler("llama2-7b", "flightllm-u280", "flightllm", max_len=256)
    seen = {"MV": 0, "MM": 0, "MISC": 0}
    for phase, tokens in (("decode", 1), ("prefill", 128)):
        c_rep = _costs(rep, rep.layer_program(phase, 128, tokens))
        c_mod = _costs(mod, mod.layer_program(phase, 128, tokens))
        assert [n for n, _, _ in c_rep] == [n for n, _, _ in c_mod]   # the same program
        for (n, a, ca), (_, b, cb) in zip(c_rep, c_mod):
            if isinstance(a, (isa.MV, isa.MM)):
                fused = a.fuse != "none" or (a.mode == "linear" and a.accumulate)
                # chain fill/drain: the report's 20 cycles (model 14), plus the reported SFU depth when fused
                assert ca.latency == 20 + (26 if fused else 0), n
                assert cb.latency == 14 + (16 if fused else 0), n
                assert ca.cycles == cb.cycles            # II 1 reported: occupancy unchanged
                seen[a.MNEMONIC] += 1
            elif isinstance(a, isa.MISC) and ca.sfu_elems > 0:
                assert ca.cycles - cb.cycles == SFU_PHASES.get(a.op, 1) * (26 - 16)
                seen["MISC"] += 1
            else:
                assert ca.cycles == cb.cycles and ca.latency == cb.latency
    assert all(seen.values()), seen


def test_a_reported_ii_of_two_doubles_the_prefill_chain_occupancy(tmp_path):
    from llmaccel.mapping.sim_api import build_compiler
    from llmaccel.simulator import isa

    def ii2(d: Path) -> None:
        f = d / "mpe" / "linear_mv_top_Pipeline_MV_BEATS_csynth.xml"
        f.write_text(f.read_text().replace("<PipelineII>1</PipelineII>", "<PipelineII>2</PipelineII>"))
    rep, _, _ = build_compiler("llama2-7b", load_design(_design(tmp_path, edit=ii2)), "flightllm", max_len=256)
    mod, _, _ = build_compiler("llama2-7b", "flightllm-u280", "flightllm", max_len=256)
    mm = [(ca, cb) for (_, a, ca), (_, _, cb) in zip(_costs(rep, rep.layer_program("prefill", 128, 128)),
                                                      _costs(mod, mod.layer_program("prefill", 128, 128)))
          if isinstance(a, isa.MM)]
    assert mm and all(ca.cycles == 2 * cb.cycles for ca, cb in mm)


def test_simulate_json_and_explain_list_the_reported_values(tmp_path, capsys):
    p = _design(tmp_path)
    args = ["simulate", "--design", str(p), "--prefill", "64", "--decode", "8", "--json"]
    assert main(args + ["--explain"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {(r["unit"], r["value"]): r for r in out["from_reports"]}
    assert rows["mpe", "chain_latency_cycles"]["reported"] == 20 and rows["mpe", "chain_latency_cycles"]["model"] == 14
    assert rows["mpe", "chain_latency_cycles"]["report"].endswith("linear_mv_top_Pipeline_MV_BEATS_csynth.xml")
    assert rows["mpe", "resources.dsp_chain.LUT"]["reported"] == 4100
    assert rows["sfu", "resources.sfu_lane.LUT"]["reported"] == 16000 / 16      # one SFU over its 16 lanes
    assert out["explain"]["from_reports"] == out["from_reports"]
    assert main(["simulate", "--design", "flightllm-u280", "--prefill", "64", "--decode", "8", "--json"]) == 0
    base = json.loads(capsys.readouterr().out)
    assert base["from_reports"] == [] and out["decode_ms_per_token"] > base["decode_ms_per_token"]
    assert main(["simulate", "--design", str(p), "--prefill", "64", "--decode", "8", "--explain"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"from report\s+mpe chain_latency_cycles = 20 \(model 14\) from .*MV_BEATS_csynth.xml", text)


def test_a_report_equal_to_the_model_changes_nothing(tmp_path, capsys):
    def as_model(d: Path) -> None:
        f = d / "mpe" / "linear_mv_top_Pipeline_MV_BEATS_csynth.xml"
        f.write_text(f.read_text().replace("<PipelineDepth>20</PipelineDepth>", "<PipelineDepth>14</PipelineDepth>"))
        shutil.rmtree(d / "sfu")
    p = _design(tmp_path, edit=as_model)
    runs = []
    for design in (str(p), "flightllm-u280"):
        assert main(["simulate", "--design", design, "--prefill", "64", "--decode", "8", "--json"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    for k in ("ttft_s", "decode_ms_per_token", "prefill_s", "decode_s"):
        assert runs[0][k] == runs[1][k], k


def test_resources_come_from_the_report(tmp_path):
    from llmaccel.simulator.resources import resource_usage
    d = load_design(_design(tmp_path))
    base = load_yaml_design("flightllm-u280")
    lines = {ln.unit: ln for ln in resource_usage(d).lines}
    assert lines["dsp_chain"].per_unit.LUT == 4100 and lines["dsp_chain"].per_unit.BRAM36 == 2
    assert "csynth report" in lines["dsp_chain"].per_unit.source
    assert lines["sfu_lane"].per_unit.DSP == 48 / 16
    chains = d.cores * d.chains_per_core
    model_chain = {ln.unit: ln for ln in resource_usage(base).lines}["dsp_chain"].per_unit.FF
    assert resource_usage(d).total("FF") - resource_usage(base).total("FF") == pytest.approx(
        chains * (5200 - model_chain) + d.cores * 16 * (19200 / 16 - 1000), abs=1)


def test_an_artifact_keeps_the_reported_design(tmp_path, capsys):
    """The compiled artifact stores the reports' figures, not the report paths: it runs without them."""
    from llmaccel.mapping.artifact_io import design_from_manifest
    p = _design(tmp_path)
    out = tmp_path / "art"
    assert main(["compile", "--design", str(p), "--max-len", "256", "--out", str(out), "--no-storage-report",
                 "--json"]) == 0, capsys.readouterr()
    shutil.rmtree(tmp_path / "reports")
    d = design_from_manifest(json.loads((out / "manifest.json").read_text()), out)
    assert d.hls_reports is None and d.reported_unit("mpe").pipeline_depth_cycles == 20


@pytest.mark.parametrize("edit,match", [
    (lambda d: _sub(d / "mpe" / "csynth.xml", "<URAM>0</URAM>", ""), r"missing field resources_used.URAM"),
    (lambda d: _sub(d / "mpe" / "linear_mv_top_Pipeline_MV_BEATS_csynth.xml", "<PipelineDepth>20</PipelineDepth>",
                    ""), r"loop MV_BEATS PipelineDepth is None"),
    (lambda d: _sub(d / "mpe" / "linear_mv_top_Pipeline_MV_BEATS_csynth.xml", "MV_BEATS>", "OTHER>"),
     r"holds none of the loops \['MV_BEATS'\]"),
    (lambda d: (shutil.rmtree(d / "sfu"), _sub(d / "mpe" / "csynth.xml", "<TopModelName>linear_mv_top<",
                                                "<TopModelName>my_kernel<")), r"unknown unit: the reports are of"),
    (lambda d: shutil.copy(d / "sfu" / "csynth.xml", d / "sfu2_csynth.xml"), r"two reports of sfu_top"),
    (lambda d: _sub(d / "sfu" / "csynth.xml", "<LUT>16000</LUT>", "<LUT>lots</LUT>"), r"expected a number"),
])
def test_a_bad_report_is_one_clear_error(tmp_path, capsys, edit, match):
    p = _design(tmp_path, edit=edit)
    with pytest.raises((HlsReportError, SpecError), match=match):
        load_design(p)
    assert main(["simulate", "--design", str(p), "--prefill", "16", "--decode", "2", "--json"]) == 2
    err = json.loads(capsys.readouterr().out)
    assert err["kind"] == "input" and re.search(match, err["error"])


def _sub(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_unread_reports_are_refused_not_ignored(tmp_path):
    d = load_yaml_design(_design(tmp_path))        # read as YAML only: hls_reports named, not read
    with pytest.raises(SpecError, match="names hls_reports 'reports' that were not read"):
        hw_from_design(d, load_device(d.device))
    from llmaccel.simulator.resources import resource_usage
    with pytest.raises(SpecError, match="that were not read"):
        resource_usage(d)
