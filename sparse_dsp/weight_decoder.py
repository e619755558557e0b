"""Bit and cycle model of the mixed-precision weight decoder (no cocotb here).

The decoder reads one packed layer (``sparse_dsp/packed_format.py``) row by row from three
streams and emits chain beats of ``chain_len`` INT8 weights ``code - zero`` plus their
in-block N:M column index:

* ``code`` stream: the row's code words (uint32, LSB first, the row padded to a whole word),
* ``index`` stream (N:M only): the row's index words, same packing,
* ``meta`` stream: one ``{zero[7:0], scale_fp16[15:0]}`` per (row, group); the zero of a
  symmetric layer is the implicit ``2**(bits-1)`` and the meta zero field is ignored.

Each bit stream lands in a shift buffer (``buffer_bits`` wide); a beat fires when the buffers
hold its bits, the group's meta is present and the output register is free; after a row's last
beat the row's pad bits are dropped with it. The RTL (``rtl/hdl/weight_decoder.v``) implements
the same register transfers; :class:`DecoderCycleModel` is their clock-by-clock model, which
the cocotb tests replay on the DUT's own port traces.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from llmaccel.sparse_dsp.dsp_chain import ChainConfig, ChainConfigError, _nm_tuple
from llmaccel.sparse_dsp.packed_format import (SUPPORTED_BITS, WORD_BITS, LayerFormat, PackedLinear)

# Latency from the last needed input word taken to the beat being taken by a ready consumer:
# one edge into the shift buffer, one edge into the output register (derived in the RTL).
DECODER_LATENCY_CYCLES = 2


@dataclass(frozen=True)
class DecoderConfig:
    """Static decoder parameters: one packed layer shape feeding one chain."""

    bits: int = 4
    nm: Optional[tuple[int, int]] = None
    k: int = 256
    group_size: int = 128
    chain_len: int = 8
    symmetric: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "nm", _nm_tuple(self.nm))
        if self.bits not in SUPPORTED_BITS:
            raise ChainConfigError(f"bits={self.bits} is not supported by the decoder; allowed: {list(SUPPORTED_BITS)}")
        # Both validations raise one clear error each (LayerFormat for the format, ChainConfig for the chain).
        LayerFormat(1, self.k, self.bits, self.group_size, self.symmetric, self.nm)
        ChainConfig(self.chain_len, self.nm).beats_per_group(self.group_size)

    @property
    def fmt(self) -> LayerFormat:
        return LayerFormat(1, self.k, self.bits, self.group_size, self.symmetric, self.nm)

    @property
    def index_bits(self) -> int:
        return self.fmt.index_bits

    @property
    def need_code_bits(self) -> int:
        return self.bits * self.chain_len

    @property
    def need_index_bits(self) -> int:
        return self.index_bits * self.chain_len

    @property
    def pad_code_bits(self) -> int:
        f = self.fmt
        return f.code_words_per_row * WORD_BITS - f.kept_per_row * self.bits

    @property
    def pad_index_bits(self) -> int:
        f = self.fmt
        return f.index_words_per_row * WORD_BITS - f.kept_per_row * self.index_bits

    @staticmethod
    def _buffer_for(need: int) -> int:
        # room for one beat rounded up to words plus two words in flight, so a word can be
        # taken in every cycle while a beat drains.
        return WORD_BITS * (-(-need // WORD_BITS) + 2)

    @property
    def code_buffer_bits(self) -> int:
        return self._buffer_for(self.need_code_bits)

    @property
    def index_buffer_bits(self) -> int:
        return self._buffer_for(max(self.need_index_bits, 1))

    @property
    def beats_per_group(self) -> int:
        return self.fmt.kept_per_group // self.chain_len

    @property
    def groups_per_row(self) -> int:
        return self.fmt.groups_per_row

    @property
    def beats_per_row(self) -> int:
        return self.beats_per_group * self.groups_per_row

    @property
    def name(self) -> str:
        nm = "dense" if self.nm is None else f"n{self.nm[0]}m{self.nm[1]}"
        sym = "sym" if self.symmetric else "asym"
        return f"wdec_b{self.bits}_{nm}_l{self.chain_len}_k{self.k}_g{self.group_size}_{sym}"


# --------------------------------------------------------------------------- bit model

@dataclass
class DecodedBeats:
    weights: np.ndarray   # int8 [B, L]
    index: np.ndarray     # uint8 [B, L]
    scale: np.ndarray     # uint16 [B] fp16 bits of the beat's group scale
    first: np.ndarray     # bool [B]
    last: np.ndarray      # bool [B]
    row_last: np.ndarray  # bool [B]


def decode_beats(cfg: DecoderConfig, layer: PackedLinear) -> DecodedBeats:
    """What the decoder emits for a whole layer, by the packed format's own readers."""
    f = layer.fmt
    if (f.in_features, f.bits, f.group_size, f.symmetric, f.nm) != \
            (cfg.k, cfg.bits, cfg.group_size, cfg.symmetric, cfg.nm):
        raise ChainConfigError(f"layer format {f} does not match decoder configuration {cfg.name}")
    L = cfg.chain_len
    w = layer.decode_int8().reshape(-1, L)
    idx = (layer.column_of_kept() % (cfg.nm[1] if cfg.nm else 1)).astype(np.uint8).reshape(-1, L)
    bpg, gpr = cfg.beats_per_group, cfg.groups_per_row
    scale = np.repeat(layer.scales.view(np.uint16), bpg, axis=1).reshape(-1)
    pos = np.arange(w.shape[0])
    return DecodedBeats(w, idx, scale, pos % bpg == 0, pos % bpg == bpg - 1,
                        pos % (bpg * gpr) == bpg * gpr - 1)


def stream_words(layer: PackedLinear) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three input streams of a layer: code words, index words, meta words (zero<<16|scale)."""
    codes = layer.codes.reshape(-1).astype(np.uint32)
    index = layer.indices.reshape(-1).astype(np.uint32)
    zeros = layer.zero_per_group().astype(np.uint32) if not layer.fmt.symmetric \
        else np.zeros(layer.scales.shape, np.uint32)
    meta = (zeros << 16) | layer.scales.view(np.uint16).astype(np.uint32)
    return codes, index, meta.reshape(-1)


def decode_stream_bits(cfg: DecoderConfig, codes: np.ndarray, index: np.ndarray, meta: np.ndarray,
                       rows: int) -> DecodedBeats:
    """Decode from the raw streams by walking the bits the way the shift buffers do.

    An independent reader of the format (bit offsets, pad drops, zero subtraction): tests
    hold it equal to ``decode_beats`` (the format's own readers) and to the RTL.
    """
    L, b, ib = cfg.chain_len, cfg.bits, cfg.index_bits
    f = cfg.fmt
    cbits = np.unpackbits(np.asarray(codes, "<u4").view(np.uint8), bitorder="little")
    ibits = np.unpackbits(np.asarray(index, "<u4").view(np.uint8), bitorder="little")
    weights, idx, scale, first, last, rlast = [], [], [], [], [], []
    cpos = ipos = mpos = 0
    for _ in range(rows):
        for g in range(cfg.groups_per_row):
            mw = int(meta[mpos]); mpos += 1
            zero = (mw >> 16) & 0xFF if not cfg.symmetric else 1 << (b - 1)
            for j in range(cfg.beats_per_group):
                codes_j = [int(sum(int(cbits[cpos + t * b + q]) << q for q in range(b))) for t in range(L)]
                cpos += L * b
                idx_j = [int(sum(int(ibits[ipos + t * ib + q]) << q for q in range(ib))) for t in range(L)]
                ipos += L * ib
                weights.append([c - zero for c in codes_j]); idx.append(idx_j)
                scale.append(mw & 0xFFFF); first.append(j == 0); last.append(j == cfg.beats_per_group - 1)
                rlast.append(j == cfg.beats_per_group - 1 and g == cfg.groups_per_row - 1)
        cpos += cfg.pad_code_bits
        ipos += cfg.pad_index_bits
    assert cpos == f.code_words_per_row * WORD_BITS * rows
    return DecodedBeats(np.array(weights, np.int8).reshape(-1, L), np.array(idx, np.uint8).reshape(-1, L),
                        np.array(scale, np.uint16), np.array(first), np.array(last), np.array(rlast))


# --------------------------------------------------------------------------- cycle model

class DecoderCycleModel:
    """Clock-by-clock model of the decoder's four handshakes (mirrors weight_decoder.v)."""

    def __init__(self, cfg: DecoderConfig) -> None:
        self.cfg = cfg
        self.ccnt = 0
        self.icnt = 0
        self.meta_valid = False
        self.m_valid = False
        self.bcnt = 0
        self.gcnt = 0
        self.m_last = False  # group-last flag of the beat in the output register

    def step(self, code_valid: bool, idx_valid: bool, meta_valid: bool, m_ready: bool):
        """One clock edge; returns (code taken, index taken, meta taken, beat taken)."""
        c = self.cfg
        dense = c.index_bits == 0
        glast = self.bcnt == c.beats_per_group - 1
        rlast = glast and self.gcnt == c.groups_per_row - 1
        have = (self.ccnt >= c.need_code_bits and (dense or self.icnt >= c.need_index_bits)
                and self.meta_valid)
        fire = have and (not self.m_valid or m_ready)
        code_ready = self.ccnt <= c.code_buffer_bits - WORD_BITS
        idx_ready = (not dense) and self.icnt <= c.index_buffer_bits - WORD_BITS
        meta_ready = (not self.meta_valid) or (fire and glast)
        code_take = bool(code_valid) and code_ready
        idx_take = bool(idx_valid) and idx_ready
        meta_take = bool(meta_valid) and meta_ready
        out_take = self.m_valid and bool(m_ready)
        if fire:
            self.ccnt -= c.need_code_bits + (c.pad_code_bits if rlast else 0)
            self.icnt -= c.need_index_bits + (c.pad_index_bits if rlast else 0)
            self.bcnt = 0 if glast else self.bcnt + 1
            if glast:
                self.gcnt = 0 if rlast else self.gcnt + 1
        self.ccnt += WORD_BITS if code_take else 0
        self.icnt += WORD_BITS if idx_take else 0
        if meta_take:
            self.meta_valid = True
        elif fire and glast:
            self.meta_valid = False
        if fire:
            self.m_valid = True
            self.m_last = glast
        elif m_ready:
            self.m_valid = False
        return code_take, idx_take, meta_take, out_take


def replay_decoder(cfg: DecoderConfig, code_valid: Sequence[bool], idx_valid: Sequence[bool],
                   meta_valid: Sequence[bool], m_ready: Sequence[bool]) -> dict[str, list[int]]:
    """Handshake edges of every port, given the valid/ready traces the DUT saw."""
    model = DecoderCycleModel(cfg)
    out = {"code": [], "index": [], "meta": [], "beat": []}
    for e, args in enumerate(zip(code_valid, idx_valid, meta_valid, m_ready)):
        for key, hit in zip(out, model.step(*args)):
            if hit:
                out[key].append(e)
    return out


def _free_running(cfg: DecoderConfig, rows: int) -> list[int]:
    """Beat-taken edges when every input is always valid (until its words run out) and ready is high."""
    f = cfg.fmt
    left = {"code": f.code_words_per_row * rows, "index": f.index_words_per_row * rows,
            "meta": f.groups_per_row * rows}
    model = DecoderCycleModel(cfg)
    beats, total, e = [], cfg.beats_per_row * rows, 0
    while len(beats) < total:
        ct, it, mt, ot = model.step(left["code"] > 0, left["index"] > 0, left["meta"] > 0, True)
        left["code"] -= ct
        left["index"] -= it
        left["meta"] -= mt
        if ot:
            beats.append(e)
        e += 1
        if e > 64 * (total + 8) * (f.code_words_per_row + 1):  # pragma: no cover - model bug guard
            raise RuntimeError("decoder cycle model made no progress")
    return beats


def decoder_row_period(cfg: DecoderConfig) -> int:
    """Steady-state cycles per row: the busier of the output beats and the input words."""
    f = cfg.fmt
    return max(cfg.beats_per_row, f.code_words_per_row, f.index_words_per_row)


def decoder_total_cycles(cfg: DecoderConfig, rows: int) -> int:
    """Edges from the first input word offered to the last beat taken, for ``rows`` rows.

    Closed form from the cycle model: a fill part measured on the first rows, then one
    steady-state period per further row (tests hold this equal to the full cycle model).
    """
    if rows <= 0:
        raise ChainConfigError(f"rows={rows} must be positive")
    warm = min(rows, 3)
    first_rows = _free_running(cfg, warm)[-1] + 1
    return first_rows + (rows - warm) * decoder_row_period(cfg)
