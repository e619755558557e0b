"""Bit and cycle model of the MV tile engine (``rtl/hdl/sdsp_mv_tile.v``); no cocotb here.

The tile runs ``n_chains`` weight decoders and DSP chains in lockstep over one shared
activation buffer: the buffer is loaded with the activation vector (two token lanes, one
entry per chain beat), then every beat fires when all decoders hold one; a fetch register
holds the weights and the buffer's window for the chains. Chain ``c`` computes rows
``c, c + n_chains, ...``; each output transfer carries every chain's two INT32 partial sums
and the group's FP16 scale. The cycle model composes the decoder and chain models with the
join/fetch logic, edge by edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from llmaccel.sparse_dsp.dsp_chain import (ChainConfig, ChainConfigError, ChainCycleModel, chain_outputs, make_beats,
                                  _nm_tuple)
from llmaccel.sparse_dsp.packed_format import PackedLinear
from llmaccel.sparse_dsp.weight_decoder import DecoderConfig, DecoderCycleModel, decoder_row_period

MAX_CHAINS = 16  # the tile's output bus is 80 bits per chain; larger tiles are several tiles


@dataclass(frozen=True)
class TileConfig:
    n_chains: int = 2
    chain_len: int = 8
    nm: Optional[tuple[int, int]] = None
    cascade_groups: Optional[int] = None
    bits: int = 4
    k: int = 256
    group_size: int = 128
    symmetric: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "nm", _nm_tuple(self.nm))
        if not 1 <= int(self.n_chains) <= MAX_CHAINS:
            raise ChainConfigError(f"n_chains={self.n_chains} is not supported; allowed: 1..{MAX_CHAINS}")
        ch = ChainConfig(self.chain_len, self.nm, self.cascade_groups)
        object.__setattr__(self, "cascade_groups", ch.cascade_groups)
        self.decoder  # validates bits / k / group_size against the chain
        if self.k % ch.window:
            raise ChainConfigError(f"k={self.k} must be a multiple of the chain window {ch.window}")

    @property
    def chain(self) -> ChainConfig:
        return ChainConfig(self.chain_len, self.nm, self.cascade_groups)

    @property
    def decoder(self) -> DecoderConfig:
        return DecoderConfig(bits=self.bits, nm=self.nm, k=self.k, group_size=self.group_size,
                             chain_len=self.chain_len, symmetric=self.symmetric)

    @property
    def act_entries(self) -> int:
        return self.k // self.chain.window

    @property
    def name(self) -> str:
        nm = "dense" if self.nm is None else f"n{self.nm[0]}m{self.nm[1]}"
        return (f"mv_c{self.n_chains}_l{self.chain_len}_{nm}_b{self.bits}_k{self.k}_g{self.group_size}"
                f"_{'sym' if self.symmetric else 'asym'}")


def act_entries(cfg: TileConfig, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The activation stream: per entry (window_lo, window_hi) int8 arrays."""
    w = cfg.chain.window
    return [(x[0, e * w:(e + 1) * w], x[1, e * w:(e + 1) * w]) for e in range(cfg.act_entries)]


def tile_outputs(cfg: TileConfig, layer: PackedLinear, x: np.ndarray) -> list[list[tuple[int, int, int]]]:
    """Per output transfer, per chain: (scale_fp16_bits, hi, lo)."""
    o = layer.fmt.out_features
    if o % cfg.n_chains:
        raise ChainConfigError(f"rows={o} must be a multiple of n_chains={cfg.n_chains}")
    w, cols = layer.decode_int8(), layer.column_of_kept()
    scales = layer.scales.view(np.uint16)
    per_chain = []
    for c in range(cfg.n_chains):
        rows = np.arange(c, o, cfg.n_chains)
        out = chain_outputs(cfg.chain, make_beats(cfg.chain, w[rows], cols[rows], x, cfg.group_size))
        sc = scales[rows].reshape(-1)
        per_chain.append([(int(sc[i]), int(out[i, 1]), int(out[i, 0])) for i in range(out.shape[0])])
    return [list(t) for t in zip(*per_chain)]


class TileCycleModel:
    """Edge-by-edge model of the tile's handshakes (mirrors sdsp_mv_tile.v)."""

    def __init__(self, cfg: TileConfig) -> None:
        self.cfg = cfg
        self.decs = [DecoderCycleModel(cfg.decoder) for _ in range(cfg.n_chains)]
        self.chain = ChainCycleModel(cfg.chain)
        self.wptr = 0
        self.loaded = False
        self.f_valid = False
        self.f_last = False

    def step(self, act_valid: bool, code_valid: Sequence[bool], idx_valid: Sequence[bool],
             meta_valid: Sequence[bool], m_ready: bool) -> dict:
        ch_ready = not (self.chain.out_valid and not m_ready)
        fire = all(d.m_valid for d in self.decs) and self.loaded and (not self.f_valid or ch_ready)
        last_now = self.decs[0].m_last
        takes = [d.step(cv, iv, mv, fire) for d, cv, iv, mv in zip(self.decs, code_valid, idx_valid, meta_valid)]
        _, out_take = self.chain.step(self.f_valid, self.f_last, m_ready)
        act_take = bool(act_valid) and not self.loaded
        if act_take:
            self.wptr += 1
            self.loaded = self.wptr == self.cfg.act_entries
        if fire:
            self.f_valid, self.f_last = True, last_now
        elif ch_ready:
            self.f_valid = False
        return {"act": act_take, "code": [t[0] for t in takes], "index": [t[1] for t in takes],
                "meta": [t[2] for t in takes], "out": out_take}


def _free_running(cfg: TileConfig, rows_per_chain: int) -> list[int]:
    f = cfg.decoder.fmt
    left_act = cfg.act_entries
    left = [[f.code_words_per_row * rows_per_chain, f.index_words_per_row * rows_per_chain,
             f.groups_per_row * rows_per_chain] for _ in range(cfg.n_chains)]
    model = TileCycleModel(cfg)
    outs, total, e = [], f.groups_per_row * rows_per_chain, 0
    while len(outs) < total:
        h = model.step(left_act > 0, [lf[0] > 0 for lf in left], [lf[1] > 0 for lf in left],
                       [lf[2] > 0 for lf in left], True)
        left_act -= h["act"]
        for c, lf in enumerate(left):
            lf[0] -= h["code"][c]
            lf[1] -= h["index"][c]
            lf[2] -= h["meta"][c]
        if h["out"]:
            outs.append(e)
        e += 1
        if e > 64 * (total + 8) * (f.code_words_per_row + cfg.act_entries + 1):  # pragma: no cover
            raise RuntimeError("tile cycle model made no progress")
    return outs


def mv_tile_total_cycles(cfg: TileConfig, rows_per_chain: int) -> int:
    """Edges from the first input offered to the last output taken (inputs never starved).

    Fill (activation load, decoder and chain latency) measured on the model for the first
    rows, then one decoder row period per further row (tests hold it equal to the full model).
    """
    if rows_per_chain <= 0:
        raise ChainConfigError(f"rows_per_chain={rows_per_chain} must be positive")
    warm = min(rows_per_chain, 3)
    return _free_running(cfg, warm)[-1] + 1 + (rows_per_chain - warm) * decoder_row_period(cfg.decoder)
