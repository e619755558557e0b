"""Every from_pretrained call in the project's code reads local files as data (a static check of the sources).

The loaders that users' paths reach (mapping.checkpoint.load_local_tokenizer) are tested with hostile
inputs in test_inputs_are_data.py; this keeps a new call elsewhere from forgetting the two flags.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("sparse_dsp", "simulator", "mapping", "gpu_baseline", "host", "reports", "hls_kernels", "llmaccel",
            "scripts", "benchmarks")


def _calls():
    for pkg in PACKAGES:
        for f in sorted((REPO / pkg).rglob("*.py")):
            tree = ast.parse(f.read_text(encoding="utf-8"), str(f))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                        and node.func.attr == "from_pretrained":
                    yield f.relative_to(REPO), node


def _flag(node: ast.Call, name: str):
    kw = next((k for k in node.keywords if k.arg == name), None)
    return None if kw is None or not isinstance(kw.value, ast.Constant) else kw.value.value


def test_every_from_pretrained_is_local_and_trusts_no_code():
    found = list(_calls())
    assert found, "the scan found no from_pretrained call at all: it is not looking in the right place"
    bad = [f"{f}:{n.lineno}" for f, n in found
           if _flag(n, "local_files_only") is not True or _flag(n, "trust_remote_code") is not False]
    assert not bad, f"from_pretrained without local_files_only=True, trust_remote_code=False: {bad}"


def test_nothing_imports_auto_config():
    hits = [f"{f}" for pkg in PACKAGES for f in (REPO / pkg).rglob("*.py")
            if "AutoConfig" in f.read_text(encoding="utf-8")]
    assert not hits, f"config.json is read as JSON data (mapping.checkpoint), not through AutoConfig: {hits}"
