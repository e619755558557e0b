"""The yosys stat parser on a real report (fixture from a yosys 0.23 run of the MV tile), no yosys needed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.rtl.synth import STANDARD_GRID, hdl_parameters, parse_stat_json, yosys_script

FIXTURE = Path(__file__).parent / "fixtures" / "yosys_stat_mv_tile_c2_l8_dense_b4_k1024.json"


def test_parse_real_stat_report():
    r = parse_stat_json(FIXTURE.read_text())
    # counted by hand from the fixture's "design" cell list
    assert r["DSP48E2"] == 16
    assert r["LUT_logic"] == 4 + 927 + 78 + 16 + 324 + 12
    assert r["LUT_memory"] == 278 + 3 * 8        # SRL16E (1 LUT each) + RAM32M16 (8 LUTs each)
    assert r["LUT"] == r["LUT_logic"] + r["LUT_memory"]
    assert r["FF"] == 2267
    assert r["BRAM36"] == 2
    assert r["CARRY"] == 274


def test_parse_takes_single_module_without_design_section():
    text = json.dumps({"modules": {"\\top": {"num_cells_by_type": {"DSP48E2": 3, "RAMB18E2": 3, "FDSE": 2}}}})
    r = parse_stat_json(text)
    assert (r["DSP48E2"], r["BRAM36"], r["FF"]) == (3, 1.5, 2)


def test_parse_rejects_ambiguous_report():
    with pytest.raises(LlmaccelError, match="design"):
        parse_stat_json(json.dumps({"modules": {"a": {}, "b": {}}}))


def test_script_targets_ultrascale_plus_with_parameters():
    s = yosys_script("sdsp_chain", {"CHAIN_LEN": 8, "N": 2}, Path("/tmp/x.json"))
    assert "synth_xilinx -family xcup" in s and "chparam -set CHAIN_LEN 8 -set N 2 sdsp_chain" in s


def test_standard_grid_is_all_legal():
    for unit, params in STANDARD_GRID:
        hdl_parameters(unit, params)
