"""Per-instruction cycle models, from the micro-architecture and the instruction's fields.

``costs(ins, core, q0, hw)`` turns one decoded ``simulator.isa`` instruction into a duration,
a latency and the accounting the reports use. Everything comes from the instruction's fields
(plus the program's SYS set_position for causal attention tiles) and the design: no side
table, nothing the hardware would not have.

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
  KV rows are byte exact (``row_elems`` INT8 + an FP32 scale, or ``row_elems`` FP16 for
  kind kv_cache_fp16, from a byte offset). FP16 weight rows (``bits`` = 16) bypass the decoder.
* MV/MM on the sparse DSP chains: waves of ``chain_len`` kept weights x
  ``2 * chains`` outputs (two INT8 MACs per DSP, WP486; one FP16 MAC per unit on an
  FP16 engine, ``simulator.fp16_datapath``) at the chain's
  initiation interval, plus the chain's fill/drain; N:M layers feed only kept
  weights (the sparse MUX picks their activations): kept = k * N / M. MV also
  obeys the weight-buffer read-port limit. Attention tiles (mode qk/pv) skip
  fully masked 64 x 64 blocks (density from set_position, key0 and qgroup).
* MISC on the SFU: two-phase ops (reduce, then element-wise) pass the vector
  twice; one-phase ops once; each phase pays the SFU pipeline depth. A causal
  softmax row stops at its query's position.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from llmaccel.sparse_dsp.dsp_chain import ChainConfig
from llmaccel.sparse_dsp.unit_costs import weight_decoder_cycles

from llmaccel.simulator import isa
from llmaccel.simulator.attention_mask import block_density, causal_pairs, causal_row_elems
from llmaccel.simulator.timing_params import HwParams

# SFU functions and their number of passes over the vector (two-phase = reduce then apply).
SFU_PHASES = {"softmax": 2, "rmsnorm": 2, "layernorm": 2, "silu": 1, "gelu": 1, "relu": 1, "mul": 1, "add": 1,
              "rope": 1, "quantize": 2}
WEIGHT_KINDS = ("weight_codes", "weight_indices", "weight_meta", "norm_weights", "bias", "embedding")


@dataclass(frozen=True, slots=True)
class OpCost:
    """What one instruction costs and does (cycles in the design clock; the rest for accounting)."""

    cycles: int
    latency: int = 0
    stream: int = 0            # LD/ST: cycles of ``cycles`` that are the memory stream (the rest: decoder)
    hbm_read_bytes: int = 0
    hbm_write_bytes: int = 0
    macs: int = 0
    sfu_elems: int = 0
    decoded_weights: int = 0   # INT8 weights an LD's decoder wrote into the weight buffer
    channel: int = -1
    weight_stream: bool = False


def kept(k: int, nm: Optional[tuple[int, int]]) -> int:
    """Kept weights of a dense row of k under N:M (what the chains multiply)."""
    n, m = nm if nm else (1, 1)
    return k * n // m


def transfer(ins: isa.Instr) -> tuple[int, int]:
    """(channel-local byte address, bytes) an LD/ST moves."""
    if isinstance(ins, isa.LD):
        if ins.kind in isa.KV_KINDS:
            return ins.src_addr_lines * isa.LINE_BYTES + ins.src_byte_offset, isa.kv_bytes(ins)
        copies = ins.rows if ins.src_row_stride_lines or ins.rows == 1 else 1     # stride 0: one read, broadcast
        return ins.src_addr_lines * isa.LINE_BYTES, copies * ins.length_lines * isa.LINE_BYTES
    if ins.kind in isa.KV_KINDS:
        return ins.dst_addr_lines * isa.LINE_BYTES + ins.dst_byte_offset, isa.kv_bytes(ins)
    return ins.dst_addr_lines * isa.LINE_BYTES, ins.length_lines * isa.LINE_BYTES


def crosses_switch(channel: int, core: int, hw: HwParams) -> bool:
    """A core's masters sit on its own channels' ports; a transfer to another channel goes through the
    lateral AXI switch (PG276). The compiler's placement keeps every access on the core's own channels,
    so this is False for the compiled programs unless a placement change makes it cross."""
    cpc = hw.channels_per_core
    return not (core * cpc <= channel < (core + 1) * cpc)


def stream_cycles(addr: int, n: int, crosses: bool, hw: HwParams) -> int:
    """Cycles a channel is busy moving ``n`` bytes from ``addr`` (memory system), without the decoder."""
    if n <= 0:
        return 0
    mem = hw.mem
    moved = mem.moved_bytes(addr, n)
    access = moved // mem.transactions(addr, n)
    return mem.occupancy_cycles(n, pattern="sequential", access_bytes=access, addr=addr, crosses_switch=crosses)


@lru_cache(maxsize=256)
def _decoder_cycles(bits: int, nm, k: int, rows: int, chain_len: int, group_size: int) -> int:
    return weight_decoder_cycles(bits, nm, k, rows, chain_len=chain_len, group_size=group_size)


def decoder_cycles(ins: isa.LD, hw: HwParams) -> int:
    """Weight-decoder time of a tile: the rows an LD brings spread over the decoders of its channel
    (``decoders_per_core / channels_per_core``), each decoder the RTL-exact model."""
    decoders = max(1, hw.decoders_per_core // hw.channels_per_core)
    rows_per_dec = math.ceil(ins.rows / decoders)
    return _decoder_cycles(ins.bits, ins.nm, ins.row_elems, rows_per_dec, hw.chain_len, ins.group_size)


@lru_cache(maxsize=64)
def chain_latency(chain_len: int, nm) -> int:
    """Fill + drain of one chain pass, from the cycle-exact chain model (held equal to the RTL)."""
    return ChainConfig(chain_len, nm).latency_cycles


def mpe_beats(rows: int, cols: int, tokens: int, density: float, mv: bool, hw: HwParams) -> int:
    """Beats of ``chain_len`` kept weights, one per cycle per chain (II = 1, sparse_dsp.dsp_chain);
    the fill/drain is charged as latency, not as occupancy.

    An INT8 beat carries two token lanes sharing each weight (WP486 packing), so MM
    processes token pairs and MV (one token) leaves the second lane idle: the
    RTL's choice, charged as such. An FP16 engine (``hw.mac_dtype``) has one lane: a beat is
    one token. Rows spread over the core's chains.
    """
    if rows <= 0 or cols <= 0:
        return 0
    beats_per_row = math.ceil(cols / hw.chain_len)
    groups = math.ceil(tokens / hw.tokens_per_beat)
    beats = groups * math.ceil(rows / hw.chains_per_core) * beats_per_row
    busy = math.ceil(beats * density) * hw.chain_ii
    if mv:
        # each beat reads chain_len weights per chain (INT8: 1 byte, FP16: 2) from the weight buffer's ports
        busy = max(busy, math.ceil(rows * cols * hw.weight_bytes_per_element / hw.buf_read_bytes_per_cycle_per_core))
    return busy


def matrix_shape(ins: "isa.MM | isa.MV", q0: int) -> tuple[int, int, int, float, int]:
    """(rows, kept cols, token rows, block density, useful MACs) of an MM/MV from its fields.

    linear: n output rows of k * N / M kept weights for m tokens. qk: n keys x head_dim k for m
    query rows; pv: head_dim n outputs x k keys. Query row i of an attention tile is at position
    q0 + i // qgroup (q0: SYS set_position); a prefill tile skips fully masked blocks."""
    mm = isa.MM
    tokens = ins.m if isinstance(ins, mm) else 1
    if ins.mode == "linear":
        cols = kept(ins.k, ins.nm)
        return ins.n, cols, tokens, 1.0, tokens * ins.n * cols
    g = ins.qgroup if isinstance(ins, mm) else 1
    t = tokens // g                       # new tokens of the program
    keys, hd = (ins.n, ins.k) if ins.mode == "qk" else (ins.k, ins.n)
    k0, k1 = ins.key0, ins.key0 + keys
    dens = block_density(q0, q0 + t, k0, k1) if t > 1 else 1.0
    macs = causal_pairs(q0, q0 + t, k0, k1) * g * hd
    return ins.n, ins.k, tokens, dens, macs


def costs(ins: isa.Instr, core: int, q0: int, hw: HwParams) -> OpCost:
    """Cycles, latency and accounting of one instruction on ``core`` (q0: the program's set_position)."""
    if isinstance(ins, (isa.LD, isa.ST)):
        addr, n = transfer(ins)
        crosses = crosses_switch(ins.channel, core, hw)
        t_hbm = stream_cycles(addr, n, crosses, hw)
        t = t_hbm
        dec = 0
        if isinstance(ins, isa.LD) and ins.bits in isa.PACKED_BITS and t_hbm:   # 16 (FP16 rows): no decoder
            t = max(t_hbm, decoder_cycles(ins, hw))
            dec = ins.rows * kept(ins.row_elems, ins.nm)
        ld = isinstance(ins, isa.LD)
        return OpCost(t, hw.hbm_latency_cycles if ld else 0, t_hbm, n if ld else 0, 0 if ld else n,
                      decoded_weights=dec, channel=ins.channel, weight_stream=ins.kind in WEIGHT_KINDS)
    if isinstance(ins, (isa.MM, isa.MV)):
        rows, cols, tokens, dens, macs = matrix_shape(ins, q0)
        fused = ins.fuse != "none" or (ins.mode == "linear" and ins.accumulate)
        chain = chain_latency(hw.chain_len, ins.nm) if hw.chain_latency_cycles is None else hw.chain_latency_cycles
        # (an FP16 engine always has chain_latency_cycles: its multiply + adder-tree depth, timing_params)
        lat = chain + (hw.sfu_pipeline_cycles if fused else 0)
        return OpCost(mpe_beats(rows, cols, tokens, dens, isinstance(ins, isa.MV), hw), lat, macs=macs)
    if isinstance(ins, isa.MISC):
        elems = (causal_row_elems(q0, ins.row0, ins.rows, ins.qgroup) if ins.op == "softmax"
                 else ins.rows * ins.row_len)
        phases = SFU_PHASES.get(ins.op, 1)
        cyc = phases * (math.ceil(elems / hw.sfu_lanes_per_core) * hw.sfu_ii + hw.sfu_pipeline_cycles) if elems > 0 else 0
        return OpCost(cyc, sfu_elems=elems)
    return OpCost(0)   # SYS: synchronisation only; a barrier's latency is the engine's sync_cycles
