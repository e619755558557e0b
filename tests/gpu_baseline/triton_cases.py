"""Cases shared by the Triton tests: every packed format, random packed layers, the device to run on."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from llmaccel.sparse_dsp.packed_format import SUPPORTED_BITS, SUPPORTED_NM, ASYMMETRIC_BITS, pack_linear  # noqa: E402


def kernel_device() -> torch.device:
    """CUDA where present (kernels compiled), else CPU (kernels interpreted; conftest sets TRITON_INTERPRET)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


def all_formats() -> list[tuple[int, tuple[int, int] | None, bool]]:
    """Every (bits, N:M, symmetric) the packed format allows: what the kernels must read."""
    out = []
    for bits in SUPPORTED_BITS:
        for nm in (None, *SUPPORTED_NM):
            for sym in (True, False):
                if sym or bits in ASYMMETRIC_BITS:
                    out.append((bits, nm, sym))
    return out


def format_id(f) -> str:
    bits, nm, sym = f
    return f"w{bits}{'s' if sym else 'a'}-{'dense' if nm is None else f'{nm[0]}of{nm[1]}'}"


def random_packed(rng: np.random.Generator, o: int, k: int, bits: int, g: int, nm=None, symmetric=True):
    """A packed layer with random codes, random valid N:M positions, random scales and zeros."""
    n, m = nm or (1, 1)
    codes = rng.integers(0, 1 << bits, (o, k * n // m))
    cols = None
    if nm:
        cols = np.stack([np.concatenate([np.sort(rng.choice(m, n, replace=False)) + b * m for b in range(k // m)])
                         for _ in range(o)])
    zeros = None if symmetric else rng.integers(0, 1 << bits, (o, k // g)).astype(np.uint8)
    scales = rng.uniform(1e-3, 0.1, (o, k // g)).astype(np.float16)
    return pack_linear(codes, scales, in_features=k, bits=bits, group_size=g, zeros=zeros, nm=nm, columns=cols)
