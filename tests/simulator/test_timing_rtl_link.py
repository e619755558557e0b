"""The engine's decode path (weight-decoder LD -> MV on the chains) matches the RTL MV tile's cycle model.

``sparse_dsp.mv_tile`` is held equal to the RTL (sdsp_mv_tile.v) by cocotb; here a stream of
tiles through the timing engine must reach the tile's steady state: one decoder row period per row
and chain, within the decoder's own fill per tile (the engine charges one LD per tile, the RTL
streams rows without refilling).
"""
import dataclasses

import pytest

from llmaccel.simulator.memory_system import MemorySystem
from llmaccel.simulator import isa
from llmaccel.simulator.timing_costs import costs
from llmaccel.simulator.timing_engine import UNIT_INDEX, TimedOp, run
from llmaccel.simulator.timing_params import HwParams
from llmaccel.sparse_dsp.mv_tile import TileConfig, mv_tile_total_cycles
from llmaccel.sparse_dsp.weight_decoder import DECODER_LATENCY_CYCLES

LD, MPE = UNIT_INDEX["LD"], UNIT_INDEX["MPE"]


def _hw(n_chains: int, chain_len: int) -> HwParams:
    # HBM far faster than the decoders, so the decoder is what the tile stream waits for
    return HwParams(name="link", clock_hz=225e6, n_cores=1, chains_per_core=n_chains, chain_len=chain_len,
                    hbm_channels=1, hbm_channel_GBps=1e6, hbm_channel_bytes=1 << 30,
                    decoders_per_core=n_chains, sfu_lanes_per_core=8, weight_buf_bytes_per_core=1 << 22,
                    act_buf_bytes_per_core=1 << 20, kv_buf_bytes_per_core=1 << 20,
                    buf_read_bytes_per_cycle_per_core=1 << 16, mem=_ideal_memory())


def _ideal_memory() -> MemorySystem:
    # the tile model's inputs are never starved: a memory system with (next to) no latency and no setup
    m = MemorySystem.from_table(kernel_port_bits=512, kernel_clock_MHz=225.0, channel_peak_GBps=1e6)
    return dataclasses.replace(m, latency_page_hit_ns=1e-6, converter_latency_cycles=0, setup_cycles=0)


@pytest.mark.parametrize("bits,nm,k", [(4, None, 256), (4, (8, 16), 512), (2, (2, 16), 512), (8, None, 256),
                                       (3, None, 384)])
def test_tile_stream_reaches_the_rtl_tile_period(bits, nm, k):
    n_chains, chain_len, rows_per_chain, n_tiles = 4, 8, 24, 6
    cfg = TileConfig(n_chains=n_chains, chain_len=chain_len, nm=nm, bits=bits, k=k, symmetric=bits >= 4)
    hw = _hw(n_chains, chain_len)
    from llmaccel.sparse_dsp.packed_format import LayerFormat
    fmt = LayerFormat(n_chains * rows_per_chain, k, bits, 128, bits >= 4, nm)
    rows = n_chains * rows_per_chain
    line = -(-fmt.row_bytes // isa.LINE_BYTES)
    ld = costs(isa.LD(kind="weight_codes", bits=bits, nm=nm, asymmetric=bits < 4, group_size=128, rows=rows,
                      length_lines=line, src_row_stride_lines=line, row_elems=k), 0, 0, hw)
    mv = costs(isa.MV(n=rows, k=k, nm=nm), 0, 0, hw)
    ops = []
    for _ in range(n_tiles):
        ops.append(TimedOp(0, LD, ld.cycles, wait=1 << MPE, release=1 << MPE, latency=ld.latency, channel=0))
        ops.append(TimedOp(0, MPE, mv.cycles, wait=1 << LD, release=1 << LD, latency=mv.latency))
    s = run(ops, 1, initial_tokens={(0, MPE, LD): 2})
    mv_ends = [s.end[i] for i in range(1, len(ops), 2)]
    engine_period = (mv_ends[-1] - mv_ends[1]) / (n_tiles - 2)          # steady state, per tile
    rtl_period = mv_tile_total_cycles(cfg, 2 * rows_per_chain) - mv_tile_total_cycles(cfg, rows_per_chain)
    assert rtl_period <= engine_period <= rtl_period + DECODER_LATENCY_CYCLES
