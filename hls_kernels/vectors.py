"""Random but valid inputs for the kernels: packed layers and activations.

Used by the tests (under hypothesis seeds) and by ``llmaccel hls emit`` to
write the golden vectors of a Vitis testbench; the expected outputs always
come from simulator.golden, never from the kernels.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from llmaccel.sparse_dsp.packed_format import LayerFormat, PackedLinear, pack_linear


def random_packed_linear(rng: np.random.Generator, fmt: LayerFormat, scale_range: tuple[float, float] = (1e-3, 0.1)
                         ) -> PackedLinear:
    """Uniform random codes, zeros, N:M column choices and FP16 scales for ``fmt``."""
    o, kept = fmt.out_features, fmt.kept_per_row
    codes = rng.integers(0, 1 << fmt.bits, size=(o, kept), dtype=np.int64)
    scales = rng.uniform(*scale_range, size=(o, fmt.groups_per_row)).astype(np.float16)
    zeros: Optional[np.ndarray] = None
    if not fmt.symmetric:
        zeros = rng.integers(0, 1 << fmt.bits, size=(o, fmt.groups_per_row), dtype=np.int64).astype(np.uint8)
    columns = None
    if fmt.nm is not None:
        n, m = fmt.nm
        blocks = fmt.in_features // m
        keys = rng.random((o, blocks, m))
        in_block = np.sort(np.argsort(keys, axis=2)[:, :, :n], axis=2)
        columns = (in_block + (np.arange(blocks) * m)[None, :, None]).reshape(o, kept)
    return pack_linear(codes, scales, in_features=fmt.in_features, bits=fmt.bits, group_size=fmt.group_size,
                       zeros=zeros, nm=fmt.nm, columns=columns)


def random_activation(rng: np.random.Generator, shape, spread: float = 3.0) -> np.ndarray:
    """FP32 activations with a heavy-ish tail (outlier channels are what quantization must survive)."""
    x = rng.standard_normal(shape).astype(np.float32)
    return (x * np.exp(rng.uniform(-spread, spread, size=shape[-1:])).astype(np.float32)).astype(np.float32)
