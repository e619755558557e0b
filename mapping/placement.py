"""HBM placement: every tensor lives in the channels of the core that reads it, never across them.

A core owns ``channels_per_core`` consecutive pseudo channels. A tensor is
placed *in lockstep* over its core's channels: the same channel-local byte
range ``[addr, addr + bytes_per_channel)`` in each of them, each channel
holding its own share (whole weight rows, or whole KV tokens). One LD then
reads the same local range from all channels of the core in parallel, and no
access crosses a channel boundary, which is what lets each channel's AXI port
stream at full rate without the HBM switch (FlightLLM section 3.3; AMD
UG1393 warns that crossing the switch costs bandwidth and latency).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from llmaccel.errors import LlmaccelError

# Regions start on 4 KB boundaries: an AXI burst must not cross one (ARM IHI0022 A3.4.1),
# so an aligned start keeps every tile read a whole number of full transactions.
REGION_ALIGN = 4096


class PlacementError(LlmaccelError):
    """A tensor that does not fit its channels, or an access outside its region."""


@dataclass(frozen=True)
class Region:
    tensor: str
    core: int
    channel0: int
    n_channels: int
    addr: int                 # channel-local start, identical in every channel of the group
    bytes_per_channel: int

    @property
    def end(self) -> int:
        return self.addr + self.bytes_per_channel


@dataclass
class HbmPlacement:
    n_channels: int
    channel_bytes: int
    n_cores: int
    regions: list[Region] = field(default_factory=list)
    _cursor: list[int] = field(default_factory=list)
    _by_name: dict[str, Region] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._cursor = [0] * self.n_channels

    @property
    def channels_per_core(self) -> int:
        return self.n_channels // self.n_cores

    def allocate(self, tensor: str, core: int, bytes_per_channel: int) -> Region:
        cpc = self.channels_per_core
        ch0 = core * cpc
        addr = max(self._cursor[ch0:ch0 + cpc])
        addr = (addr + REGION_ALIGN - 1) // REGION_ALIGN * REGION_ALIGN
        end = addr + bytes_per_channel
        if end > self.channel_bytes:
            used = sum(self._cursor)
            raise PlacementError(
                f"HBM capacity exceeded placing '{tensor}': core {core}'s channels {ch0}..{ch0 + cpc - 1} need "
                f"{end} bytes each, a pseudo channel holds {self.channel_bytes}; "
                f"{used / 2**30:.2f} GiB already placed of {self.n_channels * self.channel_bytes / 2**30:.2f} GiB. "
                "The model's weights + KV cache exceed the device's HBM: use fewer bits, more sparsity, "
                "a shorter max length, or a device with more HBM")
        for c in range(ch0, ch0 + cpc):
            self._cursor[c] = end
        r = Region(tensor, core, ch0, cpc, addr, bytes_per_channel)
        if tensor in self._by_name:
            raise PlacementError(f"tensor '{tensor}' placed twice")
        self.regions.append(r)
        self._by_name[tensor] = r
        return r

    def region(self, tensor: str) -> Region:
        return self._by_name[tensor]

    @property
    def bytes_used(self) -> int:
        return sum(r.bytes_per_channel * r.n_channels for r in self.regions)

    def check_access(self, tensor: str, channel0: int, n_channels: int, addr: int, nbytes: int) -> None:
        """Raise unless the access lies inside ``tensor``'s region, in that region's channels only."""
        r = self._by_name.get(tensor)
        if r is None:
            raise PlacementError(f"access to unplaced tensor '{tensor}'")
        if channel0 != r.channel0 or n_channels != r.n_channels:
            raise PlacementError(f"access to '{tensor}' uses channels {channel0}..{channel0 + n_channels - 1}, "
                                 f"its region is channels {r.channel0}..{r.channel0 + r.n_channels - 1}")
        if addr < r.addr or addr + nbytes > r.end or nbytes < 0:
            raise PlacementError(f"access to '{tensor}' [{addr}, {addr + nbytes}) leaves its region "
                                 f"[{r.addr}, {r.end}) in each channel")
        if addr + nbytes > self.channel_bytes:
            raise PlacementError(f"access to '{tensor}' crosses the end of a {self.channel_bytes}-byte channel")

    def to_dict(self) -> dict:
        return {"n_channels": self.n_channels, "channel_bytes": self.channel_bytes, "n_cores": self.n_cores,
                "regions": [r.__dict__ for r in self.regions]}
