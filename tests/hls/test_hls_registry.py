"""The kernel-family registry: every family emits, builds and passes its testbench (smallest
configuration, g++ C-simulation), and nothing outside the registry lists families."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmaccel.hls_kernels.configs import FAMILIES, REGISTRY, HlsConfigError, KernelFamily, LinearKernelConfig, family_of
from llmaccel.cli import main

PKG = Path(__file__).resolve().parents[2] / "hls_kernels"


@pytest.mark.gxx
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_emits_builds_and_passes_its_testbench(family, tmp_path, capsys):
    cfg = FAMILIES[family].smallest
    out = tmp_path / "prj"
    assert main(["hls", "emit", "--kernel", cfg.name, "--out", str(out), "--json"]) == 0, capsys.readouterr()
    meta = json.loads(capsys.readouterr().out)
    assert meta["family"] == family and meta["top"] == FAMILIES[family].top
    assert main(["hls", "run", str(out), "--gxx", "--json"]) == 0, capsys.readouterr()
    result = json.loads(capsys.readouterr().out)
    assert result["passed"] and f"PASS {cfg.name}" in result["output"]


def test_kernel_list_is_the_registry(capsys):
    assert main(["hls", "emit", "--kernel", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["families"]) == set(FAMILIES)
    assert sorted(n for f in out["families"].values() for n in f["configurations"]) == sorted(REGISTRY)
    assert all(family_of(REGISTRY[n]).name == fam for fam, f in out["families"].items() for n in f["configurations"])


def test_every_testbench_and_abi_file_belongs_to_a_family():
    """A testbench template or C-simulation entry point without a family is what drifted before: an
    emit offered with no testbench. Each must be a registered family's."""
    tbs = {p.stem[len("tb_"):] for p in (PKG / "flow" / "templates").glob("tb_*.cpp")}
    abis = {p.stem[len("abi_"):] for p in (PKG / "csim_abi").glob("abi_*.cpp")}
    assert tbs == set(FAMILIES) and abis == set(FAMILIES)


def test_timing_loop_labels_exist_in_the_kernel_sources():
    """The loops a csynth report is read at (hls_kernels.flow.report) must be labels the kernels have."""
    text = "\n".join(p.read_text() for p in (PKG / "include").rglob("*.hpp"))
    for fam in FAMILIES.values():
        for label in fam.timing_loops:
            assert re.search(rf"^\s*{label}:\s*$", text, flags=re.M), (fam.name, label)
    from llmaccel.simulator.design import REPORTED_UNITS
    assert {f.sim_unit for f in FAMILIES.values() if f.sim_unit} == set(REPORTED_UNITS)


def test_registering_a_configuration_of_an_unknown_family_is_refused():
    from llmaccel.hls_kernels.configs import register
    cfg = LinearKernelConfig("mv", 4, None, 64, 64, 8)
    assert family_of(cfg).name == "linear_mv"

    class Odd:
        family, name = "nope", "odd"
    with pytest.raises(HlsConfigError, match="kernel family 'nope' is not registered"):
        register(Odd())
    with pytest.raises(HlsConfigError, match="is not a LinearKernelConfig of this family"):
        KernelFamily("nope", LinearKernelConfig, "nope_top", cfg, "x")
    with pytest.raises(HlsConfigError, match=r"lacks .*tops/nope_top.cpp"):
        KernelFamily("linear_mv", LinearKernelConfig, "nope_top", cfg, "x")
