#!/usr/bin/env bash
# One set-up for a fresh machine: Debian tools the tests need, the pinned CPU
# torch where none is installed, then llmaccel itself (editable) with its extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in iverilog yosys verilator; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
# Headless Chromium and its WebDriver, for the real-browser test of the HTML reports.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]} and no apt-get; RTL and browser tests will be skipped" >&2
  fi
fi

PY=${PYTHON:-python3}
if ! $PY -c "import torch" >/dev/null 2>&1; then
  # The pinned CPU build; an unpinned torch would pull several GB of CUDA wheels.
  $PY -m pip install -q torch==2.13.0
fi
if ! $PY -c "import triton" >/dev/null 2>&1; then
  # Verified with torch 2.13.0 (CPU): the interpreter (TRITON_INTERPRET=1) runs the kernels on CPU
  # tensors. A CUDA torch ships its own matching triton, which is then left alone.
  $PY -m pip install -q triton==3.9.0
fi
$PY -m pip install -q -e ".[test,hls,rtl,gpu,explore,report]"
