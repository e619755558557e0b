"""Where each XRT buffer object goes: pure code, checked against the compiler's placement without hardware.

The kernel has one AXI master per HBM pseudo channel (``m_axi`` port ``i`` wired
to bank ``HBM[i]`` in the xclbin's connectivity), so the host allocates ONE
buffer object per bank it uses, with that port's memory group, and writes each
placed tensor at its channel-local address inside it. This keeps the compiler's
promise that no access crosses a channel: the kernel's port ``i`` only ever
addresses bank ``i``.

Per bank: every placement region that covers the channel (weights, KV cache,
embeddings) at ``[addr, addr + bytes_per_channel)``; then, in the first
channel of each core, the core's instruction stream and its logits slice,
after the last region, on 4 KB boundaries (AXI bursts must not cross one,
as in ``mapping.placement``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmaccel.host.errors import SessionError

REGION_ALIGN = 4096      # mapping.placement.REGION_ALIGN (ARM IHI0022 A3.4.1: 4 KB burst boundary)


@dataclass(frozen=True)
class Placed:
    name: str
    kind: str            # weights | kv | embedding | instructions | logits
    offset: int          # byte offset inside the bank's buffer object (= channel-local address)
    size: int


@dataclass
class BankBuffer:
    bank: int                             # HBM pseudo channel = kernel argument index of its m_axi port
    size: int = 0
    contents: list[Placed] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return f"HBM[{self.bank}]"


def _kind(tensor: str) -> str:
    if ".kv_" in tensor:
        return "kv"
    if tensor.startswith("embed"):
        return "embedding"
    if ".norm" in tensor or tensor.startswith("norm"):
        return "norms"
    return "weights"


def _align(n: int) -> int:
    return (n + REGION_ALIGN - 1) // REGION_ALIGN * REGION_ALIGN


def buffer_layout(placement: dict, instruction_bytes_per_core: dict[int, int],
                  logits_bytes_per_core: dict[int, int]) -> dict[int, BankBuffer]:
    """Bank -> its buffer object's plan, from ``placement`` (``HbmPlacement.to_dict()``)."""
    n_ch, ch_bytes, n_cores = placement["n_channels"], placement["channel_bytes"], placement["n_cores"]
    cpc = n_ch // n_cores
    banks: dict[int, BankBuffer] = {}
    for r in placement["regions"]:
        for ch in range(r["channel0"], r["channel0"] + r["n_channels"]):
            b = banks.setdefault(ch, BankBuffer(ch))
            b.contents.append(Placed(r["tensor"], _kind(r["tensor"]), r["addr"], r["bytes_per_channel"]))
            b.size = max(b.size, r["addr"] + r["bytes_per_channel"])
    for core in range(n_cores):
        ch = core * cpc
        b = banks.setdefault(ch, BankBuffer(ch))
        for kind, nbytes in (("instructions", instruction_bytes_per_core.get(core, 0)),
                             ("logits", logits_bytes_per_core.get(core, 0))):
            if nbytes <= 0:
                continue
            off = _align(b.size)
            b.contents.append(Placed(f"{kind}.c{core}", kind, off, nbytes))
            b.size = off + nbytes
    for b in banks.values():
        if b.size > ch_bytes:
            raise SessionError(f"bank {b.tag} needs {b.size} bytes, a pseudo channel holds {ch_bytes}: the "
                               "instructions and logits do not fit next to the placed tensors (lower max_len)")
        b.contents.sort(key=lambda p: p.offset)
    return dict(sorted(banks.items()))


def layout_for_artifact(artifact: Any) -> dict[int, BankBuffer]:
    """The layout of a loaded artifact: its placement, its instruction words per core, its logits slices."""
    model = artifact.model
    instr = {}
    for words in (artifact.programs or {}).values():
        for core, w in words.items():
            instr[core] = instr.get(core, 0) + 4 * len(w)
    logits = {c: 4 * rows for c, rows in enumerate(model.slices.vocab_rows)}
    return buffer_layout(model.placement_dict(), instr, logits)


def weight_row_bytes(packed: Any, rows: Any, row_bytes: int) -> bytes:
    """Packed weight rows as they sit in HBM: per row its code words, index words, FP16 scales and
    (asymmetric) zeros, little-endian, zero-padded to ``row_bytes`` (whole 64-byte lines)."""
    import numpy as np
    out = bytearray()
    for r in rows:
        b = (packed.codes[r].astype("<u4").tobytes() + packed.indices[r].astype("<u4").tobytes()
             + packed.scales[r].astype("<f2").tobytes())
        if packed.zeros is not None:
            b += packed.zeros[r].astype(np.uint8).tobytes()
        if len(b) > row_bytes:
            raise SessionError(f"a packed row of {len(b)} bytes does not fit its {row_bytes}-byte HBM row")
        out += b + bytes(row_bytes - len(b))
    return bytes(out)


def weight_bank_images(model: Any, weights: Any) -> dict[int, bytearray]:
    """Bank -> the bytes the host writes into that bank's buffer object for the weights, at the
    placed addresses (``model``: a ``simulator.compiled.CompiledModel``; ``weights``: its
    ``simulator.functional.ModelWeights``), with the row layout the functional engine reads:
    core row ``r`` of a tensor in channel ``channel0 + r // rows_per_channel`` at local row
    ``r % rows_per_channel``."""
    images: dict[int, bytearray] = {}
    for t in model.regions:
        if t.kind != "weight":
            continue
        packed = weights.linears[t.key]
        for k in range(t.n_channels):
            lo, hi = k * t.rows_per_channel, min((k + 1) * t.rows_per_channel, t.rows)
            if hi <= lo:
                continue
            data = weight_row_bytes(packed, range(t.row0 + lo, t.row0 + hi), t.row_bytes)
            if t.addr + len(data) > t.end:
                raise SessionError(f"tensor '{t.tensor}' rows overflow its placed region in channel {t.channel0 + k}")
            img = images.setdefault(t.channel0 + k, bytearray())
            if len(img) < t.addr + len(data):
                img.extend(bytes(t.addr + len(data) - len(img)))
            img[t.addr:t.addr + len(data)] = data
    return images
