"""The stable API the simulator calls: cycles from the models, resources from the committed yosys table."""
from __future__ import annotations

import pytest

from llmaccel.sparse_dsp import unit_costs
from llmaccel.sparse_dsp.dsp_chain import ChainConfig, ChainCycleModel
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.weight_decoder import DecoderConfig, _free_running


@pytest.mark.parametrize("nm", [None, "dense", "16:16", (2, 4), "2:4", "8:16"])
def test_chain_cycles_accepts_every_nm_spelling(nm):
    cyc = unit_costs.dsp_chain_cycles(8, nm, 512, 4)
    cfg = ChainConfig(8, nm)
    n, m = cfg.n, cfg.m
    beats = 4 * 512 * n // m // 8
    assert cyc == beats - 1 + cfg.latency_cycles


def test_chain_cycles_equal_stepped_model_for_a_real_layer_slice():
    t = unit_costs.dsp_chain_timing(16, (2, 16), 4096, 2, group_size=128)
    model, e, ins, outs = ChainCycleModel(ChainConfig(16, (2, 16))), 0, 0, []
    while len(outs) < 2 * 32:
        last = ins < t.beats and ins % t.beats_per_group == t.beats_per_group - 1
        a, o = model.step(ins < t.beats, last, True)
        ins += a
        if o:
            outs.append(e)
        e += 1
    assert outs[-1] == t.total_cycles             # first beat is accepted at edge 0


def test_decoder_cycles_equal_stepped_model():
    assert unit_costs.weight_decoder_cycles(3, "2:16", 1024, 5) == \
        _free_running(DecoderConfig(bits=3, nm=(2, 16), k=1024, chain_len=8), 5)[-1] + 1


def test_resources_are_measured_and_structurally_sane():
    table = unit_costs._table()
    assert table["status"] == "measured" and "yosys" in table["tool"].lower()
    chains = unit_costs.measured_configs("dsp_chain")
    assert len(chains) >= 6
    for p in chains:
        r = unit_costs.unit_resources("dsp_chain", **p)
        assert r["DSP48E2"] == p["chain_len"]       # every slice became one DSP48E2
        assert r["LUT"] > 0 and r["FF"] > 0
    for p in unit_costs.measured_configs("mv_tile"):
        r = unit_costs.unit_resources("mv_tile", **p)
        assert r["DSP48E2"] == p["n_chains"] * p["chain_len"]
    for p in unit_costs.measured_configs("weight_decoder"):
        assert unit_costs.unit_resources("weight_decoder", **p)["DSP48E2"] == 0


def test_resources_lookup_by_partial_params_and_nm_spelling():
    a = unit_costs.unit_resources("dsp_chain", chain_len=8, nm=(2, 4))
    b = unit_costs.unit_resources("dsp_chain", chain_len=8, nm="2:4")
    assert a == b and a["params"]["cascade_groups"] == 4


def test_resources_unknown_unit_and_unmeasured_config_are_errors():
    with pytest.raises(LlmaccelError, match="unit_name"):
        unit_costs.unit_resources("fpu")
    with pytest.raises(LlmaccelError, match="no yosys result"):
        unit_costs.unit_resources("dsp_chain", chain_len=22, nm="dense")
