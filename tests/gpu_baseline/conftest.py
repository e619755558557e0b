"""Triton kernels run compiled on a CUDA GPU where one is present, else through Triton's interpreter on CPU.

The interpreter is chosen when Triton kernels are defined, so the variable is
set here, before any test module imports ``gpu_baseline.triton``.
"""
from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from triton_cases import kernel_device  # noqa: E402


@pytest.fixture
def device() -> torch.device:
    return kernel_device()
