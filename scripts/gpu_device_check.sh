#!/usr/bin/env bash
# One prepared GPU device check (under 8 minutes) for a session that is lent a CUDA GPU.
#
#   LLMACCEL_COMMIT=$(git rev-parse --short=12 HEAD) bash scripts/gpu_device_check.sh
#   (LLMACCEL_COMMIT only where the tree is a copy without .git, as on a lent device machine)
#
# 1. the GPU tests, compiled (tests/gpu_baseline: the Triton kernels over every packed
#    format, the gpu backend's tokens, CUDA graphs, the FP16 transformers baseline);
# 2. benchmarks/gpu_kernels.py: W4 g128 decode GEMV at 4096x4096 and 11008x4096 against the
#    copy bandwidth, the Llama2-7B-shaped W4 decode against its roofline (INT8 and FP16 activations);
# 3. llmaccel gpu-bench: the 7B-shaped run with the dense FP16 transformers baseline and the
#    bundled model's greedy tokens against the reference.
# Measurement files (with the GPU's identity) go to gpu_baseline/measurements/ and, when the
# device tool's $OUT is set, are copied there too so they come back; commit them from there.
# Each step has its own time limit; a failed step is reported and the next one still runs.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
MEAS=gpu_baseline/measurements
LOGS=${OUT:-/tmp}/gpu_device_check
mkdir -p "$MEAS" "$LOGS"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
t0=$SECONDS

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_device_check: no CUDA GPU visible to torch; nothing measured" >&2
  exit 2
fi
missing=$($PY - <<'PYEOF'
import importlib
need = ["triton", "pynvml", "pydantic", "transformers", "safetensors", "pytest", "hypothesis"]
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
PYEOF
)
if [ -n "$missing" ]; then
  echo "gpu_device_check: missing Python packages: $missing (bash scripts/setup.sh installs them)" >&2
  exit 2
fi
if ! $PY -c "from gpu_baseline.bench import measured_commit; print('commit', measured_commit())"; then
  echo "gpu_device_check: give LLMACCEL_COMMIT=<hash> (the tree here has no .git)" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv | tee "$LOGS/nvidia-smi.txt"
preset=$($PY -c "
import torch; from gpu_baseline.measured import preset_for_gpu_name
print(preset_for_gpu_name(torch.cuda.get_device_name(0)) or '')")
[ -z "$preset" ] && echo "gpu_device_check: no device preset for $(if ! $PY -c "from gpu_baseline.bench import measured_commit; print('commit', measured_commit())"; then
  echo "gpu_device_check: give LLMACCEL_COMMIT=<hash> (the tree here has no .git)" >&2
  exit 2
fi
nvidia-smi --query-gpu=name --format=csv,noheader); pass DEVICE_PRESET=" >&2
preset=${DEVICE_PRESET:-$preset}
preset_arg=(); [ -n "$preset" ] && preset_arg=(--device-preset "$preset")
tag="$stamp-${preset:-gpu}"

status=()
step() {  # name, limit_s, command...
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s, at $((SECONDS - t0))s)" >&2
  timeout "$limit" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err"
  local rc=$?
  tail -n 5 "$LOGS/$name.out" >&2
  status+=("\"$name\": $rc")
  echo "== $name: rc=$rc after $((SECONDS - t0))s" >&2
}

xdist=(); $PY -c "import xdist" 2>/dev/null && xdist=(-n 8)
step gpu_tests 200 $PY -m pytest -q "${xdist[@]}" -p no:cacheprovider tests/gpu_baseline -rs
step gpu_kernels 150 $PY benchmarks/gpu_kernels.py --out "$MEAS/$tag-kernels.json" "${preset_arg[@]}"
step gpu_bench 110 $PY -m llmaccel.cli gpu-bench --json --activations int8 --repeats 3 \
  --out "$MEAS/$tag-gpu-bench.json" "${preset_arg[@]}"

if [ -n "${OUT:-}" ]; then
  cp "$MEAS/$tag"-*.json "$OUT/" 2>/dev/null || true
fi
summary=$(IFS=,; echo "{\"check\": \"gpu_device_check\", \"stamp\": \"$stamp\", \"device_preset\": \"$preset\", \"seconds\": $((SECONDS - t0)), ${status[*]}}")
echo "$summary" | tee "$LOGS/summary.json"
