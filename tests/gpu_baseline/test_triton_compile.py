"""The kernels compile for a GPU (sm_90) on a machine without one, and the FP32 code has no fused multiply-add."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_kernels_compile_for_sm90_without_fma():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "llmaccel.gpu_baseline.triton.compile_check", "--smoke", "--jobs", "1"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["kernels"] == 6 and out["failed"] == 0, out["failures"]
    assert out["with_fp32_fma"] == 0, out["fma_kernels"]
    assert r.returncode == 0
