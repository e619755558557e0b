"""yosys synthesis of the RTL against counts derived from the configuration, not from a table.

The committed resource table (sparse_dsp/rtl/unit_costs.json) was produced by this same yosys flow,
so comparing a fresh run with it only shows that the flow is deterministic. What the configuration
itself fixes, by construction of the Verilog (docs/rtl.md): one DSP48E2 per chain slice, so a chain
of L slices maps to L DSP48E2 and an MV tile of C chains to C x L; the weight decoder is shifts,
masks and a subtractor, so it maps to no DSP; none of these units holds a memory deep enough for
block RAM (BRAM36 = 0; the tile's activation buffer is distributed at these depths).
"""
from __future__ import annotations

import shutil

import pytest

from llmaccel.sparse_dsp.rtl.synth import synth_unit

pytestmark = [pytest.mark.yosys, pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")]


@pytest.mark.parametrize("chain_len,nm", [(4, (2, 4))])
def test_chain_maps_one_dsp_per_slice(tmp_path, chain_len, nm):
    r = synth_unit("dsp_chain", {"chain_len": chain_len, "nm": nm}, tmp_path)
    assert r["DSP48E2"] == chain_len
    assert r["BRAM36"] == 0
    # every slice registers at least its 8-bit weight and 8-bit activation operand
    assert r["FF"] >= chain_len * 16


def test_tile_maps_chains_times_slices(tmp_path):
    r = synth_unit("mv_tile", {"n_chains": 2, "chain_len": 4, "nm": None, "bits": 4, "k": 128, "group_size": 64},
                   tmp_path)
    assert r["DSP48E2"] == 2 * 4


def test_decoder_maps_to_no_dsp(tmp_path):
    r = synth_unit("weight_decoder", {"bits": 3, "nm": (2, 4), "chain_len": 4, "k": 64, "group_size": 32,
                                      "symmetric": False}, tmp_path)
    assert r["DSP48E2"] == 0 and r["BRAM36"] == 0
    assert r["LUT"] > 0
