"""Installing llmaccel claims only ``llmaccel`` in site-packages (issue 12, package identity).

The card's folders (``simulator/``, ``mapping/``, ...) stay at the top of the repository but
install as ``llmaccel.<folder>`` (setup.py's package_dir). A built wheel is the ground truth of
what an install writes, so the test builds one (offline: no build isolation) and lists it.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CARD_FOLDERS = ("sparse_dsp", "simulator", "mapping", "hls_kernels", "host", "gpu_baseline", "reports")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
                        "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("llmaccel-*.whl")
    return zipfile.ZipFile(whl)


def test_wheel_installs_only_llmaccel(wheel):
    tops = {n.split("/", 1)[0] for n in wheel.namelist()}
    tops = {t for t in tops if not t.endswith((".dist-info", ".data"))}
    assert tops == {"llmaccel"}, tops


def test_every_card_folder_ships_under_llmaccel_with_its_data(wheel):
    names = set(wheel.namelist())
    for folder in CARD_FOLDERS:
        assert f"llmaccel/{folder}/__init__.py" in names, folder
    # package data travels with its package
    assert "llmaccel/simulator/presets/designs/flightllm-u280.yaml" in names
    assert any(n.startswith("llmaccel/hls_kernels/include/llmaccel_hls/") for n in names)
    assert any(n.startswith("llmaccel/sparse_dsp/rtl/hdl/") and n.endswith(".v") for n in names)


def test_source_imports_only_llmaccel_names():
    """No module imports a card folder by its bare name (it would load a second copy of it)."""
    import re
    bare = re.compile(rf"^\s*(from|import)\s+({'|'.join(CARD_FOLDERS)})\b", re.M)
    offenders = []
    for p in ROOT.rglob("*.py"):
        if ".git" in p.parts or "build" in p.parts:
            continue
        if bare.search(p.read_text(errors="replace")):
            offenders.append(str(p.relative_to(ROOT)))
    assert offenders == []
