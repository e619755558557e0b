"""Triton kernels run compiled on a CUDA GPU where one is present, else through Triton's interpreter on CPU.

The interpreter is chosen when Triton kernels are defined, so the variable is set in the
root tests/conftest.py, before any test module (here or elsewhere) imports ``gpu_baseline.triton``.
"""
from __future__ import annotations

import pytest
import torch

from triton_cases import kernel_device


@pytest.fixture
def device() -> torch.device:
    return kernel_device()
