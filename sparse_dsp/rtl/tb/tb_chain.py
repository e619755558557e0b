"""cocotb bench of sdsp_chain: bit-exact partial sums, cycle-exact handshakes vs dsp_chain.py."""
from __future__ import annotations

import random

import cocotb
import numpy as np

from llmaccel.sparse_dsp.dsp_chain import ChainConfig, chain_outputs, chain_timing, make_beats, replay_handshakes
from llmaccel.sparse_dsp.rtl.sim import bench_spec
from llmaccel.sparse_dsp.rtl.tb.common import (report_phases, random_activations, random_columns, random_int8_rows, run_until,
                                      start_clock_and_reset)
from llmaccel.sparse_dsp.rtl.tb.stream import (PortTrace, Scoreboard, StreamMonitor, StreamSink, StreamSource,
                                      pack_ints, signed)


def _config(spec: dict) -> ChainConfig:
    p = spec["parameters"]
    nm = None if int(p["M"]) == 1 else (int(p["N"]), int(p["M"]))
    return ChainConfig(int(p["CHAIN_LEN"]), nm, int(p["CASCADE_GROUPS"]))


async def _phase(dut, cfg: ChainConfig, spec: dict, seed: int, gap_prob: float, stall_prob: float,
                 sb: Scoreboard) -> dict:
    rng = np.random.default_rng(seed)
    rows, k, g = int(spec["rows"]), int(spec["k"]), int(spec["group_size"])
    cols = random_columns(rng, rows, k, cfg.nm)
    w = random_int8_rows(rng, rows, cols.shape[1])
    x = random_activations(rng, k)
    beats = make_beats(cfg, w, cols, x, g)
    expected = chain_outputs(cfg, beats)
    ib = max(cfg.index_bits, 1)

    await start_clock_and_reset(dut)
    src = StreamSource(dut.clk, dut.s_valid, dut.s_ready,
                       {"w": dut.s_w, "idx": dut.s_idx, "lo": dut.s_win_lo, "hi": dut.s_win_hi,
                        "first": dut.s_first, "last": dut.s_last},
                       gap_prob=gap_prob, rng=random.Random(seed))
    for b in range(beats.weights.shape[0]):
        src.append({"w": pack_ints(beats.weights[b], 8), "idx": pack_ints(beats.index[b], ib),
                    "lo": pack_ints(beats.win_lo[b], 8), "hi": pack_ints(beats.win_hi[b], 8),
                    "first": int(beats.first[b]), "last": int(beats.last[b])})
    sink = StreamSink(dut.clk, dut.m_ready, stall_prob=stall_prob, rng=random.Random(seed + 1))
    trace = PortTrace(dut.clk, {"s_valid": dut.s_valid, "s_ready": dut.s_ready, "s_last": dut.s_last,
                                "m_valid": dut.m_valid, "m_ready": dut.m_ready})
    exp_pairs = [(int(a), int(b)) for a, b in expected]
    sb.expected.extend(exp_pairs)
    got = []
    seen: list = []

    def on_out(edge, f):
        pair = (signed(f["lo"], 32), signed(f["hi"], 32))
        got.append(edge)
        seen.append(list(pair))
        sb.check(pair, f"output {len(got) - 1}")

    mon = StreamMonitor(dut.clk, dut.m_valid, dut.m_ready, {"lo": dut.m_lo, "hi": dut.m_hi}, on_out)
    for c in (trace, mon, sink, src):
        c.start()
    n_out = len(exp_pairs)
    limit = (beats.weights.shape[0] + cfg.latency_cycles) * 20 + 200
    finished = await run_until(dut, lambda: len(got) >= n_out and src.idle, limit_edges=limit)
    for c in (src, sink, mon, trace):
        c.stop()
    dut.s_valid.value = 0
    if not finished:
        sb.mismatches += 1
        dut._log.error("timeout: %d of %d outputs", len(got), n_out)

    t = trace.trace
    model_in, model_out = replay_handshakes(cfg, t["s_valid"], t["s_last"], t["m_ready"])
    dut_in = trace.handshakes("s_valid", "s_ready")
    dut_out = trace.handshakes("m_valid", "m_ready")
    sb.compare_all(dut_in, model_in, "input handshake edges vs cycle model")
    sb.compare_all(dut_out, model_out, "output handshake edges vs cycle model")
    last_in = [e for e in dut_in if t["s_last"][e]]
    lat = sorted({o - i for i, o in zip(last_in, dut_out)})
    gaps = sorted({b - a for a, b in zip(dut_in, dut_in[1:])})
    out = {"beats": int(beats.weights.shape[0]), "outputs": len(got), "edges": trace.edges, "seen": seen,
           "latency_cycles_seen": lat, "input_gaps_seen": gaps,
           "total_cycles_seen": (dut_out[-1] - dut_in[0]) if dut_out and dut_in else None}
    return out


@cocotb.test()
async def chain_matches_model(dut):
    """Timing phase (no gaps, no stalls) checks the closed-form cycle model; random phase checks
    data and handshakes under random valid gaps and back-pressure."""
    spec = bench_spec()
    cfg = _config(spec)
    sb = Scoreboard("sdsp_chain", [], log=dut._log)
    seed = int(spec.get("seed", 0))
    timing = await _phase(dut, cfg, spec, seed, 0.0, 0.0, sb)
    model = chain_timing(cfg, int(spec["k"]), int(spec["rows"]), int(spec["group_size"]))
    sb.expect(timing["latency_cycles_seen"] == [cfg.latency_cycles],
              f"latency {timing['latency_cycles_seen']} != model {cfg.latency_cycles}")
    sb.expect(timing["input_gaps_seen"] in ([1], []), f"initiation interval {timing['input_gaps_seen']} != model 1")
    sb.expect(timing["total_cycles_seen"] == model.total_cycles,
              f"total cycles {timing['total_cycles_seen']} != model {model.total_cycles}")
    rnd = await _phase(dut, cfg, spec, seed + 7, float(spec.get("gap_prob", 0.3)),
                       float(spec.get("stall_prob", 0.3)), sb)
    report_phases(spec, "sdsp_chain", cfg.name, sb,
                  {"latency_cycles": model.latency_cycles, "ii_cycles_per_beat": model.ii_cycles_per_beat,
                   "total_cycles": model.total_cycles}, timing, rnd)
