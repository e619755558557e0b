"""Accelerator design specs and the resource model / fit check."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from llmaccel.simulator.design import AcceleratorDesign, list_designs, load_design
from llmaccel.simulator.resources import (DesignFitError, UnitCost, bram36_per_bank, buffer_cost, fit_check,
                                 resource_usage, unit_costs, uram_per_bank)
from llmaccel.simulator.specs import load_device
from llmaccel.simulator.specs._yaml import PRESETS_DIR, SpecError

HW = Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "hardware.yaml"  # ../shared of the repository


def _preset_yaml(name: str) -> dict:
    return yaml.safe_load((PRESETS_DIR / "designs" / f"{name}.yaml").read_text())


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_design_presets_load_and_target_known_devices():
    assert {"flightllm-u280", "flightllm-u55c", "flightllm-vhk158"} <= set(list_designs())
    for name in list_designs():
        d = load_design(name)
        assert isinstance(d, AcceleratorDesign) and d.name == name
        load_device(d.device)  # the target device preset exists


def test_flightllm_u280_architecture_facts():
    """The facts the preset takes from hardware.yaml, checked against the anchor file itself."""
    anchors = yaml.safe_load(HW.read_text())      # a missing anchor file fails the test
    d = load_design("flightllm-u280")
    f = anchors["published_accelerator_architectures"]["flightllm_u280"]
    assert d.clock_MHz == f["clock_MHz"]
    assert d.matrix_engine.dsps_per_group == 2 and d.matrix_engine.int8_macs_per_dsp == 2
    assert set(d.matrix_engine.nm_patterns) == {None, (2, 16), (4, 16), (8, 16)}
    assert d.sfu.precision == "fp16"
    # Derived quantities follow from the unit counts.
    assert d.chain_len == 2 * d.matrix_engine.groups_per_chain
    assert d.matrix_dsps == d.cores * d.chains_per_core * d.chain_len
    assert d.decoders_per_core == d.weight_decoder.decoders_per_channel * d.hbm_channels // d.cores
    assert d.peak_int8_macs_per_s == pytest.approx(d.matrix_dsps * 2 * 225e6)


def test_flightllm_u280_fits_u280():
    d, dev = load_design("flightllm-u280"), load_device("alveo-u280")
    report = fit_check(d, dev)
    used = report.usage.totals
    # Available counts come from the user region where known (UG1120 via hardware.yaml).
    assert report.available["DSP"][0] == 8304 and "user region" in report.available["DSP"][2]
    for r, frac in report.utilization.items():
        assert frac is not None and 0 < frac <= 1, r
    costs = unit_costs(d)
    assert used["DSP"] == d.matrix_dsps + d.cores * d.sfu.lanes * costs["sfu_lane"].DSP
    assert any("clock_MHz" in u for u in report.unchecked)  # DSP48E2 Fmax not found: said, not assumed


def test_measured_chain_costs_are_used_when_present():
    """Once sparse_dsp/rtl/resources.json holds yosys results for this chain length, they replace the
    estimate; with them a FlightLLM-sized array (96 chains of 16 per core, 6144 DSPs) is LUT-bound."""
    from llmaccel.sparse_dsp.unit_costs import measured_configs

    d = load_design("flightllm-u280")
    chain = unit_costs(d)["dsp_chain"]
    measured = [c for c in measured_configs("dsp_chain") if c.get("chain_len") == d.chain_len]
    if not measured:
        assert chain.source.startswith("estimate")
        return
    assert chain.source.startswith("yosys-measured") and chain.DSP == d.chain_len
    big = dataclasses.replace(d, matrix_engine=dataclasses.replace(d.matrix_engine, chains_per_core=96))
    if resource_usage(big).total("LUT") > 1304000:
        with pytest.raises(DesignFitError, match=r"LUT: design needs \d+, device has 1304000 \(full device"):
            fit_check(big, load_device("alveo-u280"))


def test_usage_scales_with_unit_counts():
    d = load_design("flightllm-u280")
    base = resource_usage(d).totals
    me2 = dataclasses.replace(d.matrix_engine, chains_per_core=d.chains_per_core * 2)
    doubled = resource_usage(dataclasses.replace(d, matrix_engine=me2)).totals
    chain = unit_costs(d)["dsp_chain"]
    added = d.cores * d.chains_per_core
    assert doubled["DSP"] - base["DSP"] == added * chain.DSP == added * d.chain_len
    assert doubled["LUT"] - base["LUT"] == math.ceil(added * chain.LUT)


def test_oversized_design_rejected_naming_dsp(tmp_path):
    data = _preset_yaml("flightllm-u280")
    data["matrix_engine"]["chains_per_core"] = 160  # 4 x 160 x 16 = 10240 DSPs > 8304
    data["name"] = "too-big"
    d = load_design(_write(tmp_path, "big.yaml", data))
    with pytest.raises(DesignFitError, match=r"DSP: design needs \d+, device has 8304 \(user region"):
        fit_check(d, load_device("alveo-u280"))


def test_oversized_buffers_rejected_naming_uram(tmp_path):
    data = _preset_yaml("flightllm-u280")
    data["buffers"][2]["size_bytes"] = 4 * 1024 * 1024  # activation: 4 MiB x 4 cores in URAM
    d = load_design(_write(tmp_path, "uram.yaml", data))
    with pytest.raises(DesignFitError, match=r"URAM: design needs \d+, device has 960") as exc:
        fit_check(d, load_device("alveo-u280"))
    assert "DSP" not in str(exc.value)


def test_hbm_channels_and_gpu_device_rejected(tmp_path):
    data = _preset_yaml("flightllm-u280")
    data["hbm_channels"] = 64
    d = load_design(_write(tmp_path, "ch.yaml", data))
    with pytest.raises(DesignFitError, match=r"hbm_channels: design uses 64, device has 32"):
        fit_check(d, load_device("alveo-u280"))
    with pytest.raises(DesignFitError, match=r"is a gpu; a design needs an FPGA"):
        fit_check(load_design("flightllm-u280"), load_device("a100-sxm-80gb"))
    with pytest.raises(DesignFitError, match=r"has no HBM"):
        fit_check(load_design("flightllm-u280"), load_device("versal-vck5000"))


def test_unknown_device_counts_are_reported_unchecked():
    report = fit_check(load_design("flightllm-vhk158"), load_device("versal-vhk158"))
    text = " ".join(report.unchecked)
    for r in ("LUT", "DSP", "BRAM36", "URAM", "hbm_channels"):
        assert r in text
    assert report.utilization["DSP"] is None


def test_memory_primitive_geometry():
    # URAM288 is 4096 x 72; RAMB36 best aspect ratio.
    assert uram_per_bank(72, 4096) == 1 and uram_per_bank(73, 4096) == 2 and uram_per_bank(72, 4097) == 2
    assert bram36_per_bank(72, 512) == 1 and bram36_per_bank(36, 1024) == 1 and bram36_per_bank(1, 32768) == 1
    assert bram36_per_bank(64, 2048) == 4    # 4 x (2048 x 18)
    assert bram36_per_bank(512, 4096) == 57  # ceil(512/9) x 1
    d = load_design("flightllm-u280")
    w = d.buffer("weight")
    assert buffer_cost(w).URAM == w.banks * 2 * 1  # 128 bits -> 2 URAM wide, 2048 deep -> 1 deep


def test_swapped_unit_cost_table_is_used():
    d = load_design("flightllm-u280")
    table = {"dsp_chain": UnitCost(DSP=100, LUT=1, FF=1, source="test table")}
    used = resource_usage(d, table).totals
    assert used["DSP"] == d.cores * d.chains_per_core * 100 + resource_usage(d).totals["DSP"] - d.matrix_dsps
    with pytest.raises(DesignFitError, match="DSP"):
        fit_check(d, load_device("alveo-u280"), table)


def test_every_unit_cost_names_its_source():
    for name, cost in unit_costs(load_design("flightllm-u280")).items():
        assert cost.source and (cost.source.startswith(("estimate", "guess", "yosys", "derived"))), name


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.update(clock_MHz="fast"), r"field 'clock_MHz' must be a number"),
    (lambda d: d.update(turbo=True), r"unknown field 'turbo'"),
    (lambda d: d.pop("sfu"), r"missing field 'sfu'"),
    (lambda d: d["matrix_engine"].update(groups_per_chain=13),
     r"'matrix_engine'.*chain_len=26 is not supported; allowed: even lengths 2..24"),
    (lambda d: d["matrix_engine"].update(supported_nm=["3:16"]), r"nm=3:16 is not supported"),
    (lambda d: d["matrix_engine"].update(dsps_per_group=3), r"dsps_per_group=3 is not supported; allowed: 2"),
    (lambda d: d.update(hbm_channels=30), r"hbm_channels=30 must be a multiple of cores=4"),
    (lambda d: d["buffers"][0].update(memory="SRAM"), r"field 'buffers\[0\].memory' must be one of 'URAM', 'BRAM'"),
    (lambda d: d["buffers"][2].update(size_bytes=1000), r"buffer 'activation': size_bytes=1000 is not a whole"),
    (lambda d: d["buffers"][2].update(size_bytes=8 << 20, width_bits=512),
     r"buffer 'activation': size_bytes=8388608 exceeds what the ISA addresses"),
    (lambda d: d["buffers"][3].update(name="weight"), r"buffer name 'weight' is used twice"),
    (lambda d: d["sfu"].update(ops=["softmax", "swish"]), r"sfu op 'swish' is not supported"),
    (lambda d: d["weight_decoder"].update(supported_bits=[5]), r"weight decoder bits=5 is not supported"),
    (lambda d: d["weight_decoder"].update(in_bits_per_cycle=64), r"in_bits_per_cycle=64 is not supported; allowed: 32"),
])
def test_bad_design_yaml_one_error(tmp_path, mutate, match):
    data = _preset_yaml("flightllm-u280")
    mutate(data)
    with pytest.raises(SpecError, match=rf"bad\.yaml: .*{match}"):
        load_design(_write(tmp_path, "bad.yaml", data))


def test_unknown_design_and_malformed_yaml(tmp_path):
    with pytest.raises(SpecError, match=r"unknown design preset 'nope'; available: .*flightllm-u280"):
        load_design("nope")
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nbuffers: [\n")
    with pytest.raises(SpecError, match=r"broken\.yaml: malformed YAML"):
        load_design(p)
