"""cocotb bench of sdsp_wdec: beats equal the packed format's readers, handshakes equal weight_decoder.py."""
from __future__ import annotations

import random

import cocotb
import numpy as np

from llmaccel.sparse_dsp.rtl.sim import bench_spec
from llmaccel.sparse_dsp.rtl.tb.common import random_packed_layer, report_phases, run_until, start_clock_and_reset
from llmaccel.sparse_dsp.rtl.tb.stream import PortTrace, Scoreboard, StreamMonitor, StreamSink, StreamSource, signed
from llmaccel.sparse_dsp.weight_decoder import DecoderConfig, decode_beats, decoder_total_cycles, replay_decoder, stream_words


def _config(spec: dict) -> DecoderConfig:
    p = spec["parameters"]
    nm = None if int(p["M"]) == 1 else (int(p["N"]), int(p["M"]))
    return DecoderConfig(bits=int(p["BITS"]), nm=nm, k=int(p["K"]), group_size=int(p["GROUP"]),
                         chain_len=int(p["CHAIN_LEN"]), symmetric=bool(int(p["SYM"])))


def _unpack_beat(cfg: DecoderConfig, f: dict) -> tuple:
    L, ib = cfg.chain_len, max(cfg.index_bits, 1)
    w = tuple(signed(f["w"] >> (8 * j), 8) for j in range(L))
    idx = tuple((f["idx"] >> (ib * j)) & ((1 << ib) - 1) for j in range(L))
    return (w, idx, f["scale"], f["first"], f["last"], f["row_last"])


async def _phase(dut, cfg: DecoderConfig, rows: int, seed: int, gap: float, stall: float, sb: Scoreboard) -> dict:
    rng = np.random.default_rng(seed)
    layer = random_packed_layer(rng, rows, cfg.k, cfg.bits, cfg.group_size, cfg.symmetric, cfg.nm)
    exp = decode_beats(cfg, layer)
    for b in range(exp.weights.shape[0]):
        sb.expected.append((tuple(int(v) for v in exp.weights[b]), tuple(int(v) for v in exp.index[b]),
                            int(exp.scale[b]), int(exp.first[b]), int(exp.last[b]), int(exp.row_last[b])))
    codes, index, meta = stream_words(layer)
    await start_clock_and_reset(dut)
    pyr = random.Random(seed)
    sources = [StreamSource(dut.clk, dut.s_code_valid, dut.s_code_ready, {"d": dut.s_code_data},
                            gap_prob=gap, rng=random.Random(pyr.random())),
               StreamSource(dut.clk, dut.s_meta_valid, dut.s_meta_ready, {"d": dut.s_meta_data},
                            gap_prob=gap, rng=random.Random(pyr.random()))]
    sources[0].extend({"d": int(v)} for v in codes)
    sources[1].extend({"d": int(v)} for v in meta)
    if cfg.index_bits:
        isrc = StreamSource(dut.clk, dut.s_idx_valid, dut.s_idx_ready, {"d": dut.s_idx_data},
                            gap_prob=gap, rng=random.Random(pyr.random()))
        isrc.extend({"d": int(v)} for v in index)
        sources.append(isrc)
    else:
        dut.s_idx_valid.value = 0
        dut.s_idx_data.value = 0
    sink = StreamSink(dut.clk, dut.m_ready, stall_prob=stall, rng=random.Random(pyr.random()))
    trace = PortTrace(dut.clk, {n: getattr(dut, n) for n in (
        "s_code_valid", "s_code_ready", "s_idx_valid", "s_idx_ready", "s_meta_valid", "s_meta_ready",
        "m_valid", "m_ready")})
    got = []

    def on_beat(edge, f):
        got.append(edge)
        sb.check(_unpack_beat(cfg, f), f"beat {len(got) - 1}")

    mon = StreamMonitor(dut.clk, dut.m_valid, dut.m_ready,
                        {k: getattr(dut, "m_" + k) for k in ("w", "idx", "scale", "first", "last", "row_last")},
                        on_beat)
    comps = [trace, mon, sink] + sources
    for c in comps:
        c.start()
    n = exp.weights.shape[0]
    ok = await run_until(dut, lambda: len(got) >= n, limit_edges=(n + codes.size + 16) * 20)
    for c in comps:
        c.stop()
    if not ok:
        sb.mismatches += 1
        dut._log.error("timeout: %d of %d beats", len(got), n)
    t = trace.trace
    model = replay_decoder(cfg, t["s_code_valid"], t["s_idx_valid"], t["s_meta_valid"], t["m_ready"])
    for port, (v, r) in {"code": ("s_code_valid", "s_code_ready"), "index": ("s_idx_valid", "s_idx_ready"),
                         "meta": ("s_meta_valid", "s_meta_ready"), "beat": ("m_valid", "m_ready")}.items():
        sb.compare_all(trace.handshakes(v, r), model[port], f"{port} handshake edges vs cycle model")
    beats = trace.handshakes("m_valid", "m_ready")
    return {"beats": n, "edges": trace.edges, "total_cycles_seen": (beats[-1] + 1) if beats else None}


@cocotb.test()
async def decoder_matches_model(dut):
    spec = bench_spec()
    cfg = _config(spec)
    rows, seed = int(spec["rows"]), int(spec.get("seed", 0))
    sb = Scoreboard("sdsp_wdec", [], log=dut._log)
    timing = await _phase(dut, cfg, rows, seed, 0.0, 0.0, sb)
    model_total = decoder_total_cycles(cfg, rows)
    sb.expect(timing["total_cycles_seen"] == model_total,
              f"total cycles {timing['total_cycles_seen']} != model {model_total}")
    rnd = await _phase(dut, cfg, rows, seed + 11, float(spec.get("gap_prob", 0.3)),
                       float(spec.get("stall_prob", 0.3)), sb)
    report_phases(spec, "sdsp_wdec", cfg.name, sb, {"total_cycles": model_total, "row_period_cycles": None},
                  timing, rnd)
