"""How kernel outputs are compared with the goldens: bit equality and FP32 ULP distance."""
from __future__ import annotations

import numpy as np


def _ordered(a: np.ndarray) -> np.ndarray:
    """Map FP32 bit patterns onto integers whose difference counts representable floats."""
    i = np.ascontiguousarray(a, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(i < 0, np.int64(-(2**31)) - i, i)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise number of FP32 values between a and b (+0 and -0 are 0 apart; NaN never matches)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    d = np.abs(_ordered(a) - _ordered(b))
    nan = np.isnan(a) | np.isnan(b)
    return np.where(nan & ~(np.isnan(a) & np.isnan(b)), np.int64(2**62), np.where(nan, 0, d))


def bit_equal(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
