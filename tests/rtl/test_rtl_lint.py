"""Verilator --lint-only -Wall (as Verilog-2005) is clean on every RTL unit across parameter sets."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from llmaccel.sparse_dsp.rtl.sim import sources

pytestmark = [pytest.mark.verilator,
              pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not installed")]

CASES = [
    ("sdsp_chain", {"CHAIN_LEN": 8, "N": 1, "M": 1, "CASCADE_GROUPS": 4}),
    ("sdsp_chain", {"CHAIN_LEN": 24, "N": 8, "M": 16, "CASCADE_GROUPS": 4}),
    ("sdsp_chain", {"CHAIN_LEN": 12, "N": 4, "M": 8, "CASCADE_GROUPS": 2}),
    ("sdsp_chain", {"CHAIN_LEN": 2, "N": 2, "M": 4, "CASCADE_GROUPS": 1}),
    ("sdsp_wdec", {"BITS": 3, "N": 2, "M": 16, "CHAIN_LEN": 8, "K": 4096, "GROUP": 128, "SYM": 0}),
    ("sdsp_wdec", {"BITS": 8, "N": 1, "M": 1, "CHAIN_LEN": 2, "K": 32, "GROUP": 16, "SYM": 1}),
    ("sdsp_wdec", {"BITS": 2, "N": 4, "M": 8, "CHAIN_LEN": 16, "K": 1024, "GROUP": 128, "SYM": 1}),
    ("sdsp_mv_tile", {"NCH": 4, "CHAIN_LEN": 8, "N": 2, "M": 16, "CASCADE_GROUPS": 4, "BITS": 4, "K": 4096,
                      "GROUP": 128, "SYM": 1}),
    ("sdsp_mv_tile", {"NCH": 1, "CHAIN_LEN": 2, "N": 1, "M": 1, "CASCADE_GROUPS": 1, "BITS": 8, "K": 32,
                      "GROUP": 16, "SYM": 1}),
]


@pytest.mark.parametrize("top,params", CASES, ids=lambda v: str(v))
def test_verilator_lint_clean(top, params):
    cmd = ["verilator", "--lint-only", "-Wall", "--default-language", "1364-2005", "--top-module", top]
    cmd += [f"-G{k}={v}" for k, v in params.items()]
    cmd += [str(p) for p in sources(top)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0 and "%Warning" not in proc.stderr and "%Error" not in proc.stderr, proc.stderr


def test_lint_catches_a_width_mismatch(tmp_path):
    """The lint run is real: a truncating assignment is reported."""
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire [7:0] a, output wire [3:0] y);\n  assign y = a;\nendmodule\n")
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "WIDTH" in proc.stderr
