"""Which packed formats the Triton kernels read, and a packed layer moved to a torch device.

The kernels read ``sparse_dsp.packed_format`` arrays as they are (no repacking):
code and index bit streams as 32-bit words, FP16 scales, uint8 zeros. Every
format parameter becomes a compile-time constant of the kernel, so each layer
of a mixed-precision model gets its own specialisation.

What the kernels need beyond the format itself: Triton tiles have power-of-two
sizes, so the group size must be a power of two, and ``tl.dot`` needs tile
sides of at least 16 (32 for INT8 operands on tensor cores), so the group must
hold at least 32 dense columns. Anything else is one :class:`KernelFormatError`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import SUPPORTED_BITS, SUPPORTED_NM, LayerFormat, PackedLinear

KERNEL_GROUP_SIZES: tuple[int, ...] = (32, 64, 128, 256, 512)


class KernelFormatError(LlmaccelError):
    """A packed format (or an operand) the Triton kernels do not support."""


@dataclass(frozen=True)
class KernelFormat:
    """The compile-time constants one kernel specialisation is built for."""

    bits: int
    group_size: int
    symmetric: bool
    n: int            # kept per block (n == m: dense)
    m: int
    index_bits: int

    @classmethod
    def of(cls, fmt: LayerFormat) -> "KernelFormat":
        check_kernel_format(fmt)
        n, m = fmt.nm if fmt.nm else (1, 1)
        return cls(fmt.bits, fmt.group_size, fmt.symmetric, n, m, fmt.index_bits)

    @property
    def kept_per_group(self) -> int:
        return self.group_size * self.n // self.m

    @property
    def name(self) -> str:
        sp = "dense" if self.n == self.m else f"{self.n}of{self.m}"
        return f"w{self.bits}{'s' if self.symmetric else 'a'}_g{self.group_size}_{sp}"


def check_kernel_format(fmt: LayerFormat) -> None:
    """Raise one KernelFormatError naming the field and what the kernels allow."""
    if fmt.bits not in SUPPORTED_BITS:
        raise KernelFormatError(f"bits={fmt.bits} is not supported by the Triton kernels; allowed: {list(SUPPORTED_BITS)}")
    if fmt.group_size not in KERNEL_GROUP_SIZES:
        raise KernelFormatError(
            f"group_size={fmt.group_size} is not supported by the Triton kernels (tiles are powers of two, "
            f"tl.dot needs >= 32 columns); allowed: {list(KERNEL_GROUP_SIZES)}")
    if fmt.nm is not None and tuple(fmt.nm) not in SUPPORTED_NM:
        raise KernelFormatError(f"N:M pattern {fmt.nm} is not supported by the Triton kernels; allowed: "
                                + ", ".join(f"{n}:{m}" for n, m in SUPPORTED_NM) + " or dense")


def _words_as_int32(words: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint32 bit-stream words as int32 (same bits): the kernels bitcast them back to uint32."""
    arr = np.ascontiguousarray(words, dtype="<u4").view(np.int32)
    if arr.shape[1] == 0:
        arr = np.zeros((arr.shape[0], 1), np.int32)   # a valid pointer for dense layers; never read
    return torch.from_numpy(arr.copy()).to(device)


@dataclass
class DevicePackedLinear:
    """A packed linear layer's arrays on a torch device, plus its kernel format and its FP32 bias (if any:
    the kernels add it after the rescale)."""

    fmt: LayerFormat
    kfmt: KernelFormat
    codes: torch.Tensor             # int32 [O, code_words]   (uint32 bits)
    indices: torch.Tensor           # int32 [O, index_words]  (>= 1 column)
    scales: torch.Tensor            # float16 [O, groups]
    zeros: Optional[torch.Tensor]   # uint8 [O, groups] or None (symmetric)
    bias: Optional[torch.Tensor] = None   # float32 [O] or None

    def __post_init__(self) -> None:
        if self.bias is not None and (self.bias.dtype != torch.float32 or tuple(self.bias.shape) != (self.out_features,)):
            raise KernelFormatError(f"bias must be float32[{self.out_features}], got {self.bias.dtype}"
                                    f"{list(self.bias.shape)}")

    @classmethod
    def from_packed(cls, p: PackedLinear, device: torch.device | str,
                    bias: Optional[np.ndarray] = None) -> "DevicePackedLinear":
        device = torch.device(device)
        kf = KernelFormat.of(p.fmt)
        zeros = None if p.zeros is None else torch.from_numpy(np.ascontiguousarray(p.zeros)).to(device)
        b = None if bias is None else torch.from_numpy(np.ascontiguousarray(bias, np.float32)).to(device)
        return cls(p.fmt, kf, _words_as_int32(p.codes, device), _words_as_int32(p.indices, device),
                   torch.from_numpy(np.ascontiguousarray(p.scales)).to(device), zeros, b)

    @property
    def out_features(self) -> int:
        return self.fmt.out_features

    @property
    def in_features(self) -> int:
        return self.fmt.in_features

    @property
    def nbytes(self) -> int:
        """Bytes the kernels stream per use of the layer (its packed size in HBM)."""
        return self.fmt.total_bytes


def _stack_key(layer: DevicePackedLinear) -> tuple:
    f = layer.fmt
    return f.in_features, f.bits, f.group_size, f.symmetric, f.nm, layer.bias is not None


def concat_rows(layers: list[DevicePackedLinear]) -> DevicePackedLinear:
    """Layers of one format stacked by output rows: still the packed format (rows are independent),
    so q/k/v (and gate/up) run as one GEMV launch over more rows. Biases stack with their rows; layers
    with and without a bias do not stack (adding a zero bias would turn a -0.0 output into +0.0)."""
    f0 = layers[0].fmt
    if not same_format(layers):
        raise KernelFormatError("concat_rows needs layers of one format (in_features, bits, group, symmetric, N:M, "
                                "all or none biased)")
    fmt = LayerFormat(sum(layer.out_features for layer in layers), f0.in_features, f0.bits, f0.group_size,
                      f0.symmetric, f0.nm)
    cat = lambda name: torch.cat([getattr(layer, name) for layer in layers], dim=0)
    return DevicePackedLinear(fmt, layers[0].kfmt, cat("codes"), cat("indices"), cat("scales"),
                              None if f0.symmetric else cat("zeros"),
                              None if layers[0].bias is None else cat("bias"))


def same_format(layers: list[DevicePackedLinear]) -> bool:
    return len({_stack_key(layer) for layer in layers}) == 1
