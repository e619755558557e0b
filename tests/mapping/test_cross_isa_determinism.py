"""The compressed artifact has the same bytes under every CPU vector instruction set torch can use.

Each capability runs in its own interpreter (ATEN_CPU_CAPABILITY is read once, when torch loads) and
compresses the bundled model with recipes that exercise every calibration-dependent step: the
calibration forward pass (attention, softmax, RoPE, RMSNorm, SiLU), GPTQ (Hessian, Cholesky,
error propagation), Wanda input norms and the mixed-precision sensitivities and allocation.
The shards are compared by SHA-256, the manifest field by field (timings excepted: wall-clock
figures are the one thing that may differ between runs). The artifact only changes where an ULP-level
difference flips a decision (a rint, a sort, an allocation), so the float64 calibration quantities
themselves (every layer's output, Hessian, Wanda norms and GPTQ factor) are compared bit for bit too:
they show any ISA-dependent step, flipped decision or not. A capability this CPU lacks is skipped:
torch would run its kernels anyway and die of an illegal instruction.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CAPABILITIES = ("default", "avx2", "avx512")  # torch's x86 ATEN_CPU_CAPABILITY values, weakest first

# flightllm covers every calibration-dependent step: GPTQ in attention and MLP (symmetric 4/8-bit
# and, where the allocator picks 2/3 bits, asymmetric codes), 8:16 Wanda in the MLP, mixed
# precision (sensitivity + allocation). 512 calibration tokens (two sequences of 256, so the
# sequence loop and the cross-sequence Hessian sums are exercised) keep a run to seconds.
WORKER = r"""
import dataclasses, hashlib, json, sys
from pathlib import Path
import torch
want, out = sys.argv[1], Path(sys.argv[2])
got = torch.backends.cpu.get_cpu_capability().lower()
assert got == want, (got, want)
from llmaccel.assets import bundled_model_dir, calibration_text_path
from llmaccel.mapping.compress import compress_checkpoint
from llmaccel.mapping.recipe import NAMED_RECIPES
text = calibration_text_path().read_text()
result = {"capability": got, "artifacts": {}}
for name in ("flightllm",):
    recipe = dataclasses.replace(NAMED_RECIPES[name], calibration_tokens=512)
    dest = out / name.replace(":", "_")
    compress_checkpoint(bundled_model_dir(), recipe, dest, calibration=text)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(dest.iterdir()) if p.name != "manifest.json"}
    manifest = json.loads((dest / "manifest.json").read_text())
    result["artifacts"][name] = {"files": files, "manifest": manifest}
# the calibration quantities themselves, layer by layer on the original weights
from llmaccel.mapping import llama_math as lm, portable_math as pm
from llmaccel.mapping.calibration import LINEAR_PATHS, LayerCapture, calibration_tokens, layer_forward
from llmaccel.mapping.checkpoint import SafetensorsCheckpoint
ck = SafetensorsCheckpoint(bundled_model_dir())
shape = lm.shape_from_config(ck.config)
x = torch.from_numpy(ck.get("model.embed_tokens.weight"))[calibration_tokens(str(bundled_model_dir()), text, 512, 256)]
digest = lambda t: hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()
probes = {}
for i in range(shape.num_layers):
    w = {leaf: torch.from_numpy(ck.get(f"model.layers.{i}.{p}.weight")) for leaf, p in LINEAR_PATHS.items()}
    for norm in ("input_layernorm", "post_attention_layernorm"):
        w[norm] = torch.from_numpy(ck.get(f"model.layers.{i}.{norm}.weight"))
    cap = LayerCapture()
    x = layer_forward(x, w, shape, capture=cap)
    probes[f"layer{i}.out"] = digest(x)
    for leaf, st in cap.stats().items():
        probes[f"layer{i}.{leaf}.hessian"], probes[f"layer{i}.{leaf}.norm"] = digest(st.hessian), digest(st.col_norm)
    probes[f"layer{i}.gptq_factor"] = digest(pm.upper_cholesky_of_inverse(cap.stats()["down_proj"].hessian.double()
                                                                          + torch.eye(shape.intermediate_size)))
result["probes"] = probes
print(json.dumps(result))
"""

TIMING_KEYS = ("compress_seconds",)


def _without_timings(manifest: dict) -> dict:
    """The manifest minus wall-clock figures (wherever the writer keeps them)."""
    m = {k: v for k, v in manifest.items() if k != "timings"}
    if isinstance(m.get("stats"), dict):
        m["stats"] = {k: v for k, v in m["stats"].items() if k not in TIMING_KEYS}
    return m


def _native_capability() -> str:
    """The best capability torch picks on this CPU when nothing is forced."""
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    proc = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    return proc.stdout.strip().lower()


def _start(capability: str, out: Path) -> subprocess.Popen:
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", WORKER, capability, str(out)], env=env, cwd=out,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    native = _native_capability()
    supported = CAPABILITIES[:CAPABILITIES.index(native) + 1] if native in CAPABILITIES else ("default",)
    procs = {cap: _start(cap, tmp_path_factory.mktemp(f"isa_{cap}")) for cap in supported}  # side by side
    out = {}
    for cap, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{cap}: {stderr[-3000:]}"
        out[cap] = json.loads(stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("capability", [c for c in CAPABILITIES if c != "default"])
def test_artifact_bytes_match_default_isa(runs, capability):
    if capability not in runs:
        pytest.skip(f"this CPU lacks {capability} (torch's best capability here is "
                    f"'{max(runs, key=CAPABILITIES.index)}')")
    base, run = runs["default"], runs[capability]
    for name, art in base["artifacts"].items():
        other = run["artifacts"][name]
        differing = {f: (h, other["files"].get(f)) for f, h in art["files"].items() if other["files"].get(f) != h}
        assert set(other["files"]) == set(art["files"])
        assert not differing, f"{name}: shards differ between default and {capability}: {differing}"
        assert _without_timings(other["manifest"]) == _without_timings(art["manifest"]), name
    differing = sorted(k for k, h in base["probes"].items() if run["probes"].get(k) != h)
    assert not differing, f"calibration quantities differ between default and {capability}: {differing}"
