"""Per-instruction cycle models, from the micro-architecture.

``OpDesc`` is the compiler's annotated instruction: the ISA fields the timing
needs (opcode, unit, sizes, wait/release) plus the sizes an ISA word does not
hold (bit width, N:M, kept weights per tile). ``cycles(op, hw)`` turns it into
a duration:

* LD/ST: each transfer is one contiguous run in one pseudo channel; the
  memory system (``simulator.memory_system``) gives the beats it really
  moves (alignment to the kernel port's beats), its AXI transactions (burst
  length, 4 KB boundaries) and the bandwidth a sequential run of that
  transaction size achieves (measured efficiency, outstanding-transaction
  bound, the switch when the channel is not the core's own), plus the read
  latency (page hit for a sequential run); weight tiles go through the
  per-channel weight decoder, whose throughput depends on the bit width
  (packed bits in per cycle, INT8 weights out per cycle): the slower wins.
  The LD/ST unit pays a per-transfer setup (address phase) and every unit a
  per-instruction issue cycle (``memory_system`` dma block: estimates).
* MV/MM on the sparse DSP chains: waves of ``chain_len`` kept weights x
  ``2 * chains`` outputs (two INT8 MACs per DSP, WP486) at the chain's
  initiation interval, plus the chain's fill/drain; N:M layers feed only kept
  weights (the sparse MUX picks their activations), so the kept count sets the
  work. MV also obeys the weight-buffer read-port limit.
* MISC on the SFU: two-phase ops (reduce, then element-wise) pass the vector
  twice; one-phase ops once; each phase pays the SFU pipeline depth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from sparse_dsp.dsp_chain import ChainConfig
from sparse_dsp.unit_costs import weight_decoder_cycles

from simulator.timing_params import HwParams

# SFU functions and their number of passes over the vector (two-phase = reduce then apply).
SFU_PHASES = {"softmax": 2, "rmsnorm": 2, "layernorm": 2, "silu": 1, "mul": 1, "add": 1,
              "rope": 1, "quantize": 2, "silu_mul": 1}


@dataclass(slots=True)
class OpDesc:
    """One compiled instruction with the sizes its cycle model needs."""

    opcode: str               # LD, ST, MM, MV, MISC, SYS
    core: int
    name: str = ""
    wait: int = 0
    release: int = 0
    arrive: int = -1
    barrier: int = -1
    # LD / ST
    kind: str = ""            # weight, kv_k, kv_v, act, lm_head
    channel0: int = 0
    n_channels: int = 0
    hbm_addr: int = 0         # channel-local byte address (same in every channel of the group)
    bytes_per_channel: int = 0
    buf_addr: int = 0         # double-buffer slot of the tile (0/1)
    tensor: str = ""          # placed tensor the access belongs to (placement checks)
    asymmetric: bool = False
    # weight decode (LD of packed weights)
    bits: int = 0
    index_bits: int = 0
    kept: int = 0             # kept (non-zero) weights in the tile, all channels together
    nm: Optional[tuple] = None
    k_dense: int = 0          # dense input length of a weight row
    group_size: int = 128
    # MV / MM
    rows: int = 0
    cols: int = 0             # kept columns per row (K * N / M)
    tokens: int = 1
    macs: int = 0             # useful MACs (for accounting)
    density: float = 1.0     # fraction of score blocks computed (causal block skipping)
    fused: str = ""           # element-wise ops fused into the output path ("rope", "silu_mul+quantize", ...)
    # MISC
    func: str = ""
    elems: int = 0

    @property
    def hbm_bytes(self) -> int:
        return self.bytes_per_channel * self.n_channels


def crosses_switch(op: OpDesc, hw: HwParams) -> bool:
    """A core's masters sit on its own channels' ports; a transfer to another channel goes through the
    lateral AXI switch (PG276). The compiler's placement keeps every access on the core's own channels,
    so this is False for the compiled programs unless a placement change makes it cross."""
    cpc = hw.channels_per_core
    return not (op.core * cpc <= op.channel0 < (op.core + 1) * cpc)


def stream_cycles(op: OpDesc, hw: HwParams) -> int:
    """Cycles the op's channel is busy moving its bytes (memory system), without the decoder."""
    n = op.bytes_per_channel
    if n <= 0:
        return 0
    mem = hw.mem
    moved = mem.moved_bytes(op.hbm_addr, n)
    access = moved // mem.transactions(op.hbm_addr, n)
    return mem.occupancy_cycles(n, pattern="sequential", access_bytes=access, addr=op.hbm_addr,
                                crosses_switch=crosses_switch(op, hw))


def ld_st_cycles(op: OpDesc, hw: HwParams) -> int:
    t_hbm = stream_cycles(op, hw)
    if t_hbm == 0:
        return 0
    t_dec = 0
    if op.opcode == "LD" and op.bits:
        t_dec = decoder_cycles(op, hw)
    return max(t_hbm, t_dec)


def latency(op: OpDesc, hw: HwParams) -> int:
    """Cycles between an op leaving its unit and its result being usable.

    LD: the HBM read latency. MV/MM: the chain's fill/drain (the chain accepts the
    next job's beats while this one drains, II = 1) plus the fused element-wise
    op's pipeline depth when one is fused into the output path.
    """
    if op.opcode == "LD":
        return hw.hbm_latency_cycles
    if op.opcode in ("MV", "MM") and op.rows > 0:
        chain = chain_latency(hw.chain_len, op.nm) if hw.chain_latency_cycles is None else hw.chain_latency_cycles
        return chain + (hw.sfu_pipeline_cycles if op.fused else 0)
    return 0


@lru_cache(maxsize=256)
def _decoder_cycles(bits: int, nm, k: int, rows: int, chain_len: int, group_size: int) -> int:
    return weight_decoder_cycles(bits, nm, k, rows, chain_len=chain_len, group_size=group_size)


def decoder_cycles(op: OpDesc, hw: HwParams) -> int:
    """Weight-decoder time of a tile: the rows an LD brings spread over the decoders of the channels it
    reads (``decoders_per_core / channels_per_core`` per channel), each decoder the RTL-exact model."""
    decoders = max(1, hw.decoders_per_core * max(op.n_channels, 1) // hw.channels_per_core)
    rows_per_dec = math.ceil(op.rows / decoders)
    return _decoder_cycles(op.bits, op.nm, op.k_dense, rows_per_dec, hw.chain_len, op.group_size)


@lru_cache(maxsize=64)
def chain_latency(chain_len: int, nm) -> int:
    """Fill + drain of one chain pass, from the cycle-exact chain model (held equal to the RTL)."""
    return ChainConfig(chain_len, nm).latency_cycles


def mpe_cycles(op: OpDesc, hw: HwParams) -> int:
    """Beats of ``chain_len`` kept weights, one per cycle per chain (II = 1, sparse_dsp.dsp_chain);
    the fill/drain is charged as latency (``latency``), not as occupancy.

    A beat carries two token lanes sharing each weight (WP486 packing), so MM
    processes token pairs and MV (one token) leaves the second lane idle: the
    RTL's choice, charged as such. Rows spread over the core's chains.
    """
    if op.rows <= 0 or op.cols <= 0:
        return 0
    beats_per_row = math.ceil(op.cols / hw.chain_len)
    pairs = math.ceil(op.tokens / 2)
    beats = pairs * math.ceil(op.rows / hw.chains_per_core) * beats_per_row
    busy = math.ceil(beats * op.density) * hw.chain_ii
    if op.opcode == "MV":
        # each beat reads chain_len INT8 weights per chain from the weight buffer's ports
        port = math.ceil(op.rows * op.cols / hw.buf_read_bytes_per_cycle_per_core)
        busy = max(busy, port)
    return busy


def sfu_cycles(op: OpDesc, hw: HwParams) -> int:
    phases = SFU_PHASES.get(op.func.split("+")[0], 1)
    if op.elems <= 0:
        return 0
    return phases * (math.ceil(op.elems / hw.sfu_lanes_per_core) * hw.sfu_ii + hw.sfu_pipeline_cycles)


def cycles(op: OpDesc, hw: HwParams) -> int:
    if op.opcode in ("LD", "ST"):
        return ld_st_cycles(op, hw)
    if op.opcode in ("MV", "MM"):
        return mpe_cycles(op, hw)
    if op.opcode == "MISC":
        return sfu_cycles(op, hw)
    return 0  # SYS: synchronisation only; its latency is the engine's sync_cycles
