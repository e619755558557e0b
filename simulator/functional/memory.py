"""The HBM image: what the host wrote where when it loaded the model, and the KV cache the programs write.

An LD names a channel and a channel-local line address (plus, for the layer
programs, the layer base register the host set for the launch); this module
finds the placed region holding it (``simulator.compiled.HbmRegion``) and the
rows inside it. Weight rows of a core's slice are laid out channel-major
(core row ``r`` in channel ``r // rows_per_channel`` at local row
``r % rows_per_channel``, each row padded to 64-byte lines); KV tokens are
interleaved (token ``t`` of a head in channel ``t % cpc`` at local row
``t // cpc``); a norm parameter block (eps, gamma, beta as FP32) is spread over
the core's channels, channel ``ch`` holding its ``ch``-th share of lines.
Weight rows decode with the packed-format decoder (``PackedLinear.dense_int8``,
the Python golden of the on-chip decoder), memoised by region and rows.
"""
from __future__ import annotations

import bisect
import math
from typing import Optional

import numpy as np

from llmaccel.simulator.compiled import CompiledModel, HbmRegion
from llmaccel.simulator.functional.weights import F32, FunctionalError, ModelWeights
from llmaccel.simulator.isa import LINE_BYTES
from llmaccel.sparse_dsp.packed_format import LayerFormat, PackedLinear


class HbmImage:
    def __init__(self, cm: CompiledModel, weights: ModelWeights):
        self.cm, self.w = cm, weights
        self.cpc = cm.hw.channels_per_core
        self.head_dim = cm.spec.head_dim
        self._by_channel: dict[int, list[HbmRegion]] = {}
        for r in cm.regions:
            for ch in range(r.channel0, r.channel0 + r.n_channels):
                self._by_channel.setdefault(ch, []).append(r)
        for lst in self._by_channel.values():
            lst.sort(key=lambda r: r.addr)
        self._starts = {ch: [r.addr for r in lst] for ch, lst in self._by_channel.items()}
        for r in cm.regions:
            if r.kind == "weight" and r.key not in weights.linears:
                raise FunctionalError(f"placed tensor '{r.tensor}' has no weights '{r.key}' in the model")
        self._decoded: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._blocks: dict[str, np.ndarray] = {}
        self.kv: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.reset_kv()

    def reset_kv(self) -> None:
        """Zero the KV cache regions (a new sequence)."""
        self.kv = {r.tensor: (np.zeros((r.heads, r.tokens_per_channel * self.cpc, self.head_dim), np.int8),
                              np.zeros((r.heads, r.tokens_per_channel * self.cpc), F32))
                   for r in self.cm.regions if r.kind == "kv"}

    # ---------------------------------------------------------------- addressing
    def find(self, channel: int, addr: int, nbytes: int, what: str) -> tuple[HbmRegion, int]:
        """The region holding [addr, addr + nbytes) of ``channel``, and the channel's index inside it."""
        i = bisect.bisect_right(self._starts.get(channel, ()), addr) - 1
        r = self._by_channel[channel][i] if i >= 0 else None
        if r is None or addr >= r.end:
            raise FunctionalError(f"{what}: HBM channel {channel} address {addr} is in no placed tensor")
        if addr + nbytes > r.end:
            raise FunctionalError(f"{what}: access [{addr}, {addr + nbytes}) leaves tensor '{r.tensor}' "
                                  f"[{r.addr}, {r.end}) in channel {channel}")
        return r, channel - r.channel0

    def weight_rows(self, r: HbmRegion, ch: int, addr: int, length_lines: int, rows: int, what: str) -> np.ndarray:
        """Core rows an LD of ``rows`` rows of ``length_lines`` lines at ``addr`` reads from region ``r``."""
        off = addr - r.addr
        if length_lines * LINE_BYTES != r.row_bytes or off % r.row_bytes:
            raise FunctionalError(f"{what}: reads {length_lines} lines per row at byte {off} of '{r.tensor}', whose "
                                  f"rows are {r.row_bytes} bytes")
        first = off // r.row_bytes
        out = ch * r.rows_per_channel + first + np.arange(rows)
        if first + rows > r.rows_per_channel or out[-1] >= r.rows:
            raise FunctionalError(f"{what}: rows {int(out[0])}.. beyond the {r.rows} rows of '{r.tensor}'")
        return out

    def decode_rows(self, r: HbmRegion, rows: np.ndarray) -> tuple[PackedLinear, np.ndarray, np.ndarray]:
        """(packed layer, INT8 dense rows, FP16 scales) of core rows ``rows`` of weight region ``r``."""
        p = self.w.linears[r.key]
        key = (r.tensor, int(rows[0]), len(rows))
        hit = self._decoded.get(key)
        if hit is None:
            g = r.row0 + rows
            f = p.fmt
            sub = PackedLinear(LayerFormat(len(g), f.in_features, f.bits, f.group_size, f.symmetric, f.nm),
                               p.codes[g], p.indices[g], p.scales[g], None if p.zeros is None else p.zeros[g])
            hit = self._decoded[key] = (sub.dense_int8(), sub.scales)
        return p, hit[0], hit[1]

    def kv_tokens(self, r: HbmRegion, ch: int, byte_addr: int, rows: int, what: str) -> tuple[int, np.ndarray]:
        """(head, token positions) of ``rows`` KV rows from byte ``byte_addr`` of one channel of region ``r``."""
        off = byte_addr - r.addr
        per_head = r.tokens_per_channel * r.row_bytes
        head, rest = divmod(off, per_head)
        if rest % r.row_bytes or head >= r.heads:
            raise FunctionalError(f"{what}: byte {byte_addr} is not a KV row of '{r.tensor}'")
        r0 = rest // r.row_bytes
        if r0 + rows > r.tokens_per_channel:
            raise FunctionalError(f"{what}: KV rows beyond the head's {r.tokens_per_channel} rows per channel")
        return head, (r0 + np.arange(rows)) * self.cpc + ch

    def block_bytes(self, r: HbmRegion) -> np.ndarray:
        """The bytes the host wrote in a norm region (all channels' shares, in order)."""
        hit = self._blocks.get(r.tensor)
        if hit is None:
            gamma = self.w.norms.get(r.key)
            if gamma is None:
                raise FunctionalError(f"placed norm '{r.tensor}' has no weights '{r.key}' in the model")
            beta = self.w.norms.get(r.key + ".bias")
            line = np.zeros(LINE_BYTES // 4, F32)
            line[0] = F32(self.cm.spec.rms_norm_eps)
            parts = [line] + [_pad_line(v) for v in ([gamma] + ([beta] if beta is not None else []))]
            hit = np.concatenate(parts).view(np.uint8)
            self._blocks[r.tensor] = hit
        return hit

    def bias(self, r: HbmRegion) -> np.ndarray:
        """The FP32 bias rows the host wrote in a bias region (the core's output rows)."""
        b = self.w.norms.get(r.key)
        if b is None:
            raise FunctionalError(f"placed bias '{r.tensor}' has no tensor '{r.key}' in the model")
        b = np.asarray(b, F32).ravel()
        if r.row0 + r.rows > b.size:
            raise FunctionalError(f"bias '{r.key}' has {b.size} elements, the placement reads {r.row0 + r.rows}")
        return b[r.row0:r.row0 + r.rows]

    def norm_share(self, r: HbmRegion, ch: int, addr: int, lines: int, what: str) -> np.ndarray:
        """The bytes of channel ``ch``'s share of a norm block an LD of ``lines`` lines at ``addr`` reads."""
        per = r.bytes_per_channel
        start = ch * per + (addr - r.addr)
        data = self.block_bytes(r)
        if addr - r.addr + lines * LINE_BYTES > per:
            raise FunctionalError(f"{what}: reads past channel {ch}'s share of '{r.tensor}'")
        out = np.zeros(lines * LINE_BYTES, np.uint8)
        chunk = data[start:start + lines * LINE_BYTES]
        out[:len(chunk)] = chunk
        return out


def _pad_line(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, F32).ravel()
    n = math.ceil(v.size * 4 / LINE_BYTES) * LINE_BYTES // 4
    out = np.zeros(n, F32)
    out[:v.size] = v
    return out


__all__ = ["HbmImage", "Optional"]
