"""How kernels are launched here: compiled on CUDA, or through Triton's interpreter on CPU tensors.

``TRITON_INTERPRET=1`` must be set before Triton kernels are defined (before
``gpu_baseline.triton`` is imported); then every kernel runs in numpy on CPU
tensors, which is how CI checks them. Compiled launches turn FP contraction
off: the numerics contract rounds every product and every sum on its own
(docs/numerics.md), and a fused multiply-add would change the FP32 rescale's bits.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from llmaccel.gpu_baseline.triton.formats import KernelFormatError

INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"


def compile_options(num_warps: int = 4) -> dict[str, Any]:
    """Extra launch keywords: none in the interpreter, no-FMA and the warp count when compiled."""
    if INTERPRETED:
        return {}
    return {"num_warps": num_warps, "enable_fp_fusion": False}


def check_operand(t: torch.Tensor, name: str, dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    """One clear error for an operand of the wrong dtype, shape or device kind."""
    if t.dtype != dtype or tuple(t.shape) != tuple(shape):
        raise KernelFormatError(f"operand '{name}' must be {dtype}{list(shape)}, got {t.dtype}{list(t.shape)}")
    if not t.is_contiguous():
        raise KernelFormatError(f"operand '{name}' must be contiguous")
    if t.device.type == "cpu" and not INTERPRETED:
        raise KernelFormatError(f"operand '{name}' is on the CPU: compiled Triton kernels need CUDA tensors "
                                "(set TRITON_INTERPRET=1 before importing gpu_baseline.triton to run them on CPU)")
