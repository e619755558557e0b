"""The packed low-bit, N:M-sparse weight format: the one definition of its bit layout.

Every reader of compressed weights (the Python decoder here, the simulator's
functional engine, the HLS weight decoder, the RTL decoder) follows this file.
The packer in ``mapping`` writes it through :func:`pack_linear`.

Layout of one linear layer with ``O`` output rows and ``K`` input columns
(``W`` is ``O x K``, ``y = W @ x``):

* N:M sparsity (optional) along ``K``: each block of ``M`` consecutive columns
  keeps exactly ``N`` entries. A row therefore stores ``kept = K*N/M`` values,
  block by block, ascending column inside a block. Dense layers have
  ``nm = None`` and ``kept = K``.
* Codes: unsigned ``bits``-wide integers, one per kept value, packed into a
  little-endian bit stream per row (value ``j`` occupies bits
  ``[j*bits, (j+1)*bits)``, LSB first), padded with zero bits to a whole number
  of 32-bit words. 3-bit codes straddle word boundaries on purpose: no bit is
  wasted, and the decoders read a bit stream.
* Indices (N:M only): the in-block column position of each kept value,
  ``log2(M)`` bits each, packed the same way in their own per-row stream.
* Groups: the quantization group ``g`` covers dense columns
  ``[g*G, (g+1)*G)``; because ``G % M == 0`` it holds exactly ``G*N/M`` kept
  values, the ones at kept positions ``[g*G*N/M, (g+1)*G*N/M)``.
* Scales: one FP16 per (row, group). Zeros: one uint8 per (row, group) for
  asymmetric quantization; symmetric layers carry no zeros array and use the
  implicit zero ``2**(bits-1)``.
* Decoding to the accelerator's INT8 weight: ``d = code - zero``. Symmetric
  codes give ``d`` in ``[-2**(bits-1), 2**(bits-1)-1]``; asymmetric codes (2,
  3 or 4 bits only) give ``d`` in ``[-(2**bits-1), 2**bits-1]``. Both fit INT8.
  The real weight is ``scale * d`` (see docs/numerics.md).

Rows are the unit of HBM placement: a row's code words, index words, scales
and zeros are what a channel holds for that output neuron (``row_bytes``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from llmaccel.errors import LlmaccelError

FORMAT_VERSION = 1
SUPPORTED_BITS: tuple[int, ...] = (2, 3, 4, 8)
ASYMMETRIC_BITS: tuple[int, ...] = (2, 3, 4)
SUPPORTED_NM: tuple[tuple[int, int], ...] = ((2, 4), (4, 8), (2, 16), (4, 16), (8, 16))
WORD_BITS = 32


class PackedFormatError(LlmaccelError):
    """A packed-format parameter or array that the format does not allow."""


@dataclass(frozen=True)
class LayerFormat:
    """The static description of one packed linear layer (no arrays)."""

    out_features: int
    in_features: int
    bits: int
    group_size: int
    symmetric: bool = True
    nm: Optional[tuple[int, int]] = None

    def __post_init__(self) -> None:
        validate_format(self.out_features, self.in_features, self.bits, self.group_size,
                        self.symmetric, self.nm)

    @property
    def kept_per_row(self) -> int:
        n, m = self.nm if self.nm else (1, 1)
        return self.in_features * n // m

    @property
    def kept_per_group(self) -> int:
        n, m = self.nm if self.nm else (1, 1)
        return self.group_size * n // m

    @property
    def groups_per_row(self) -> int:
        return self.in_features // self.group_size

    @property
    def index_bits(self) -> int:
        return 0 if self.nm is None else int(self.nm[1]).bit_length() - 1

    @property
    def code_words_per_row(self) -> int:
        return _words(self.kept_per_row * self.bits)

    @property
    def index_words_per_row(self) -> int:
        return _words(self.kept_per_row * self.index_bits)

    @property
    def zero_point(self) -> int:
        """The implicit zero of symmetric codes."""
        return 1 << (self.bits - 1)

    @property
    def row_bytes(self) -> int:
        """Bytes one output row occupies in HBM: codes, indices, FP16 scales, zeros."""
        zeros = 0 if self.symmetric else self.groups_per_row
        return 4 * (self.code_words_per_row + self.index_words_per_row) + 2 * self.groups_per_row + zeros

    @property
    def total_bytes(self) -> int:
        return self.row_bytes * self.out_features

    @property
    def avg_bits_per_weight(self) -> float:
        """Storage bits per dense weight, metadata (indices, scales, zeros) included."""
        return 8.0 * self.total_bytes / (self.out_features * self.in_features)


def _words(nbits: int) -> int:
    return (nbits + WORD_BITS - 1) // WORD_BITS


def validate_format(out_features: int, in_features: int, bits: int, group_size: int,
                    symmetric: bool, nm: Optional[tuple[int, int]]) -> None:
    """Raise one PackedFormatError naming the bad field and what is allowed."""
    if out_features <= 0 or in_features <= 0:
        raise PackedFormatError(f"out_features/in_features must be positive, got {out_features}x{in_features}")
    if bits not in SUPPORTED_BITS:
        raise PackedFormatError(f"bits={bits} is not supported; allowed: {list(SUPPORTED_BITS)}")
    if not symmetric and bits not in ASYMMETRIC_BITS:
        raise PackedFormatError(
            f"asymmetric quantization needs bits in {list(ASYMMETRIC_BITS)} so that code-zero fits INT8; "
            f"got bits={bits} (use symmetric)")
    if group_size <= 0 or in_features % group_size != 0:
        raise PackedFormatError(
            f"group_size={group_size} must be positive and divide in_features={in_features}")
    if nm is not None:
        nm = tuple(nm)
        if nm not in SUPPORTED_NM:
            raise PackedFormatError(f"N:M pattern {nm[0]}:{nm[1]} is not supported; allowed: "
                                    + ", ".join(f"{n}:{m}" for n, m in SUPPORTED_NM) + " or dense")
        if in_features % nm[1] != 0:
            raise PackedFormatError(f"N:M pattern {nm[0]}:{nm[1]}: M={nm[1]} must divide in_features={in_features}")
        if group_size % nm[1] != 0:
            raise PackedFormatError(f"N:M pattern {nm[0]}:{nm[1]}: M={nm[1]} must divide group_size={group_size}")


# --------------------------------------------------------------------------- bit streams

def pack_bitstream(values: np.ndarray, width: int) -> np.ndarray:
    """Pack unsigned ``values`` [rows, n] of ``width`` bits into uint32 words [rows, words]."""
    values = np.asarray(values)
    rows, n = values.shape
    nwords = _words(n * width)
    if width == 0 or n == 0:
        return np.zeros((rows, nwords), dtype=np.uint32)
    if values.size and (values.min() < 0 or values.max() >= (1 << width)):
        raise PackedFormatError(f"values do not fit in {width} bits: range [{values.min()}, {values.max()}]")
    if WORD_BITS % width == 0:
        return _pack_aligned(values, width, nwords)
    out = np.empty((rows, nwords), dtype=np.uint32)
    shifts = np.arange(width, dtype=np.uint8)
    chunk = max(1, (1 << 24) // max(1, n * width))  # bound the temporary bit array to ~16 MB
    for r0 in range(0, rows, chunk):
        v = values[r0:r0 + chunk].astype(np.uint8 if width <= 8 else np.uint32)
        bits = ((v[..., None] >> shifts) & 1).astype(np.uint8).reshape(v.shape[0], n * width)
        pad = nwords * WORD_BITS - n * width
        if pad:
            bits = np.concatenate([bits, np.zeros((bits.shape[0], pad), np.uint8)], axis=1)
        packed = np.packbits(bits, axis=1, bitorder="little")
        out[r0:r0 + chunk] = packed.view("<u4").reshape(bits.shape[0], nwords)
    return out


def unpack_bitstream(words: np.ndarray, width: int, n: int) -> np.ndarray:
    """Inverse of :func:`pack_bitstream`: uint32 words [rows, words] -> uint8/uint32 [rows, n]."""
    words = np.ascontiguousarray(words, dtype="<u4")
    rows = words.shape[0]
    if width == 0 or n == 0:
        return np.zeros((rows, n), dtype=np.uint8)
    if words.shape[1] != _words(n * width):
        raise PackedFormatError(f"bit stream has {words.shape[1]} words per row, expected {_words(n * width)} "
                                f"for {n} values of {width} bits")
    if WORD_BITS % width == 0:
        per = WORD_BITS // width
        shifts = (np.arange(per, dtype=np.uint32) * width)
        vals = (words[:, :, None] >> shifts) & np.uint32((1 << width) - 1)
        return vals.reshape(rows, nwords_of(words) * per)[:, :n].astype(np.uint8 if width <= 8 else np.uint32)
    out = np.empty((rows, n), dtype=np.uint8 if width <= 8 else np.uint32)
    weights = (1 << np.arange(width)).astype(np.uint32)
    chunk = max(1, (1 << 24) // max(1, n * width))
    for r0 in range(0, rows, chunk):
        w = words[r0:r0 + chunk]
        bits = np.unpackbits(w.view(np.uint8).reshape(w.shape[0], -1), axis=1, bitorder="little")
        bits = bits[:, : n * width].reshape(w.shape[0], n, width).astype(np.uint32)
        out[r0:r0 + chunk] = (bits * weights).sum(axis=2)
    return out


def nwords_of(words: np.ndarray) -> int:
    return words.shape[1]


def _pack_aligned(values: np.ndarray, width: int, nwords: int) -> np.ndarray:
    """Fast path for widths that divide 32 (1, 2, 4, 8, 16): same layout, shifts instead of bit arrays."""
    rows, n = values.shape
    per = WORD_BITS // width
    out = np.empty((rows, nwords), dtype=np.uint32)
    shifts = (np.arange(per, dtype=np.uint32) * width)
    chunk = max(1, (1 << 22) // max(1, n))
    for r0 in range(0, rows, chunk):
        v = values[r0:r0 + chunk].astype(np.uint32)
        pad = nwords * per - n
        if pad:
            v = np.concatenate([v, np.zeros((v.shape[0], pad), np.uint32)], axis=1)
        v = v.reshape(v.shape[0], nwords, per) << shifts
        out[r0:r0 + chunk] = np.bitwise_or.reduce(v, axis=2)
    return out


# --------------------------------------------------------------------------- packed layer

@dataclass
class PackedLinear:
    """One packed linear layer: its format plus the four arrays the format defines."""

    fmt: LayerFormat
    codes: np.ndarray            # uint32 [O, code_words_per_row]
    indices: np.ndarray          # uint32 [O, index_words_per_row] (0 columns when dense)
    scales: np.ndarray           # float16 [O, groups_per_row]
    zeros: Optional[np.ndarray]  # uint8 [O, groups_per_row], None when symmetric

    def __post_init__(self) -> None:
        f = self.fmt
        expect = {
            "codes": (self.codes, (f.out_features, f.code_words_per_row), np.uint32),
            "indices": (self.indices, (f.out_features, f.index_words_per_row), np.uint32),
            "scales": (self.scales, (f.out_features, f.groups_per_row), np.float16),
        }
        if not f.symmetric:
            expect["zeros"] = (self.zeros, (f.out_features, f.groups_per_row), np.uint8)
        elif self.zeros is not None:
            raise PackedFormatError("zeros must be None for a symmetric layer")
        for name, (arr, shape, dtype) in expect.items():
            if arr is None or tuple(arr.shape) != shape or arr.dtype != dtype:
                got = None if arr is None else (tuple(arr.shape), str(arr.dtype))
                raise PackedFormatError(f"packed array '{name}' must be {np.dtype(dtype).name}{list(shape)}, got {got}")

    # -- readers (the Python decoder) ------------------------------------------------
    def unpack_codes(self) -> np.ndarray:
        """uint8 [O, kept]: the raw codes."""
        return unpack_bitstream(self.codes, self.fmt.bits, self.fmt.kept_per_row).astype(np.uint8)

    def unpack_indices(self) -> np.ndarray:
        """uint8 [O, kept]: in-block column of each kept value (dense: column mod 1 = 0)."""
        f = self.fmt
        if f.nm is None:
            return np.zeros((f.out_features, f.kept_per_row), np.uint8)
        return unpack_bitstream(self.indices, f.index_bits, f.kept_per_row).astype(np.uint8)

    def column_of_kept(self) -> np.ndarray:
        """int64 [O, kept]: dense input column of each kept value."""
        f = self.fmt
        if f.nm is None:
            return np.broadcast_to(np.arange(f.in_features), (f.out_features, f.in_features)).copy()
        n, m = f.nm
        block = np.arange(f.kept_per_row) // n
        return block[None, :] * m + self.unpack_indices().astype(np.int64)

    def zero_per_group(self) -> np.ndarray:
        """uint8 [O, groups]: the zero point of every group (implicit for symmetric)."""
        f = self.fmt
        if f.symmetric:
            return np.full((f.out_features, f.groups_per_row), f.zero_point, np.uint8)
        return self.zeros

    def decode_int8(self) -> np.ndarray:
        """int8 [O, kept]: the on-chip decoded weights ``code - zero``."""
        f = self.fmt
        zeros = np.repeat(self.zero_per_group().astype(np.int16), f.kept_per_group, axis=1)
        return (self.unpack_codes().astype(np.int16) - zeros).astype(np.int8)

    def dense_int8(self) -> np.ndarray:
        """int8 [O, K]: decoded weights scattered to their dense columns (pruned = 0)."""
        f = self.fmt
        out = np.zeros((f.out_features, f.in_features), np.int8)
        np.put_along_axis(out, self.column_of_kept(), self.decode_int8(), axis=1)
        return out

    def dense_float(self) -> np.ndarray:
        """float32 [O, K]: ``scale * (code - zero)``, the real weight the codes stand for."""
        f = self.fmt
        scales = np.repeat(self.scales.astype(np.float32), f.group_size, axis=1)
        return self.dense_int8().astype(np.float32) * scales

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"codes": self.codes, "indices": self.indices, "scales": self.scales}
        if self.zeros is not None:
            out["zeros"] = self.zeros
        return out


def pack_linear(codes: np.ndarray, scales: np.ndarray, *, in_features: int, bits: int, group_size: int,
                zeros: Optional[np.ndarray] = None, nm: Optional[tuple[int, int]] = None,
                columns: Optional[np.ndarray] = None) -> PackedLinear:
    """Pack per-kept-value codes into the hardware format.

    ``codes`` is [O, kept] unsigned; ``columns`` (N:M only) is [O, kept] with the
    dense column of each kept value, ascending, exactly N per block of M.
    """
    codes = np.asarray(codes)
    out_features = codes.shape[0]
    fmt = LayerFormat(out_features, in_features, bits, group_size, zeros is None, tuple(nm) if nm else None)
    if codes.shape != (out_features, fmt.kept_per_row):
        raise PackedFormatError(f"codes must be [{out_features}, {fmt.kept_per_row}], got {list(codes.shape)}")
    if fmt.nm is None:
        index_words = np.zeros((out_features, 0), np.uint32)
    else:
        if columns is None:
            raise PackedFormatError("columns are required for an N:M layer")
        n, m = fmt.nm
        columns = np.asarray(columns, dtype=np.int64)
        block = columns // m
        expected_block = np.arange(fmt.kept_per_row) // n
        if columns.shape != codes.shape or not np.array_equal(block, np.broadcast_to(expected_block, block.shape)):
            raise PackedFormatError(f"columns must hold exactly {n} ascending columns in every block of {m}")
        in_block = columns % m
        if n > 1 and np.any(np.diff(in_block.reshape(out_features, -1, n), axis=2) <= 0):
            raise PackedFormatError("columns must be strictly ascending inside each block")
        index_words = pack_bitstream(in_block.astype(np.uint8), fmt.index_bits)
    return PackedLinear(
        fmt=fmt,
        codes=pack_bitstream(codes, bits),
        indices=index_words,
        scales=np.asarray(scales, dtype=np.float16),
        zeros=None if zeros is None else np.asarray(zeros, dtype=np.uint8),
    )
