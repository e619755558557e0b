"""cocotb bench of sdsp_mv_tile: packed layer + activations in, per-group partial sums out.

Outputs equal the chain model on the format's decoded weights (and so group_partial_sums);
every handshake edge equals mv_tile.TileCycleModel replayed on the DUT's own port traces.
"""
from __future__ import annotations

import random

import cocotb
import numpy as np

from llmaccel.sparse_dsp.mv_tile import TileConfig, TileCycleModel, act_entries, mv_tile_total_cycles, tile_outputs
from llmaccel.sparse_dsp.rtl.sim import bench_spec
from llmaccel.sparse_dsp.rtl.tb.common import (random_activations, random_packed_layer, report_phases, run_until,
                                      start_clock_and_reset)
from llmaccel.sparse_dsp.rtl.tb.stream import (Lane, PortTrace, Scoreboard, StreamMonitor, StreamSink, StreamSource,
                                      VectorPort, pack_ints, signed)
from llmaccel.sparse_dsp.weight_decoder import stream_words


def _config(spec: dict) -> TileConfig:
    p = spec["parameters"]
    nm = None if int(p["M"]) == 1 else (int(p["N"]), int(p["M"]))
    return TileConfig(int(p["NCH"]), int(p["CHAIN_LEN"]), nm, int(p["CASCADE_GROUPS"]), int(p["BITS"]),
                      int(p["K"]), int(p["GROUP"]), bool(int(p["SYM"])))


async def _phase(dut, cfg: TileConfig, rows_per_chain: int, seed: int, gap: float, stall: float,
                 sb: Scoreboard) -> dict:
    rng = np.random.default_rng(seed)
    nch = cfg.n_chains
    layer = random_packed_layer(rng, rows_per_chain * nch, cfg.k, cfg.bits, cfg.group_size, cfg.symmetric, cfg.nm)
    x = random_activations(rng, cfg.k)
    expected = tile_outputs(cfg, layer, x)
    sb.expected.extend(tuple(t) for t in expected)
    codes, index, meta = stream_words(layer)
    f = cfg.decoder.fmt
    rows = layer.fmt.out_features

    await start_clock_and_reset(dut)
    pyr = random.Random(seed)
    ports = {name: VectorPort(getattr(dut, name)) for name in (
        "s_code_valid", "s_code_data", "s_idx_valid", "s_idx_data", "s_meta_valid", "s_meta_data")}
    srcs = [StreamSource(dut.clk, dut.s_act_valid, dut.s_act_ready, {"d": dut.s_act_data},
                         gap_prob=gap, rng=random.Random(pyr.random()))]
    srcs[0].extend({"d": pack_ints(np.concatenate([lo, hi]), 8)} for lo, hi in act_entries(cfg, x))
    streams = {"code": (codes.reshape(rows, -1), 32), "meta": (meta.reshape(rows, -1), 24)}
    if cfg.decoder.index_bits:
        streams["idx"] = (index.reshape(rows, -1), 32)
    for c in range(nch):
        for name, (words, width) in streams.items():
            ready = Lane(getattr(dut, f"s_{name}_ready"), c, 1)
            src = StreamSource(dut.clk, ports[f"s_{name}_valid"].lane(c), ready,
                               {"d": ports[f"s_{name}_data"].lane(width * c, width)},
                               gap_prob=gap, rng=random.Random(pyr.random()))
            src.extend({"d": int(v)} for v in words[c::nch].reshape(-1))
            srcs.append(src)
    sink = StreamSink(dut.clk, dut.m_ready, stall_prob=stall, rng=random.Random(pyr.random()))
    sig = {"s_act_valid": dut.s_act_valid, "s_act_ready": dut.s_act_ready, "m_valid": dut.m_valid,
           "m_ready": dut.m_ready}
    for name in ("code", "idx", "meta"):
        for half in ("valid", "ready"):
            sig[f"s_{name}_{half}"] = getattr(dut, f"s_{name}_{half}")
    trace = PortTrace(dut.clk, sig)
    got = []
    seen: list = []

    def on_out(edge, fields):
        d = fields["d"]
        got.append(edge)
        tr = tuple((d >> (80 * c + 64)) & 0xFFFF for c in range(nch))
        sums = tuple((tr[c], signed(d >> (80 * c + 32), 32), signed(d >> (80 * c), 32)) for c in range(nch))
        seen.append([list(t) for t in sums])
        sb.check(sums, f"output {len(got) - 1}")

    mon = StreamMonitor(dut.clk, dut.m_valid, dut.m_ready, {"d": dut.m_data}, on_out)
    comps = [trace, mon, sink] + srcs
    for comp in comps:
        comp.start()
    n = len(expected)
    ok = await run_until(dut, lambda: len(got) >= n, limit_edges=(codes.size + cfg.act_entries + 64) * 20)
    for comp in comps:
        comp.stop()
    if not ok:
        sb.mismatches += 1
        dut._log.error("timeout: %d of %d outputs", len(got), n)

    t = trace.trace
    bits = lambda v, c: bool((v >> c) & 1)  # noqa: E731
    model = TileCycleModel(cfg)
    mh = {"act": [], "out": [], "code": [], "idx": [], "meta": []}
    for e in range(trace.edges):
        h = model.step(t["s_act_valid"][e], [bits(t["s_code_valid"][e], c) for c in range(nch)],
                       [bits(t["s_idx_valid"][e], c) for c in range(nch)],
                       [bits(t["s_meta_valid"][e], c) for c in range(nch)], t["m_ready"][e])
        for key, hk in (("act", "act"), ("out", "out")):
            if h[hk]:
                mh[key].append(e)
        for key, hk in (("code", "code"), ("idx", "index"), ("meta", "meta")):
            mh[key].append(sum(1 << c for c in range(nch) if h[hk][c]))
    dut_h = {"act": trace.handshakes("s_act_valid", "s_act_ready"), "out": trace.handshakes("m_valid", "m_ready")}
    for key in ("code", "idx", "meta"):
        dut_h[key] = [v & r for v, r in zip(t[f"s_{key}_valid"], t[f"s_{key}_ready"])]
    for key in mh:
        sb.compare_all(dut_h[key], mh[key], f"{key} handshakes vs cycle model")
    outs = dut_h["out"]
    return {"outputs": n, "edges": trace.edges, "seen": seen, "total_cycles_seen": (outs[-1] + 1) if outs else None,
            "rows_per_chain": rows_per_chain}


@cocotb.test()
async def tile_matches_model(dut):
    spec = bench_spec()
    cfg = _config(spec)
    rpc, seed = int(spec["rows_per_chain"]), int(spec.get("seed", 0))
    sb = Scoreboard("sdsp_mv_tile", [], log=dut._log)
    timing = await _phase(dut, cfg, rpc, seed, 0.0, 0.0, sb)
    model_total = mv_tile_total_cycles(cfg, rpc)
    sb.expect(timing["total_cycles_seen"] == model_total,
              f"total cycles {timing['total_cycles_seen']} != model {model_total}")
    rnd = await _phase(dut, cfg, rpc, seed + 13, float(spec.get("gap_prob", 0.3)),
                       float(spec.get("stall_prob", 0.3)), sb)
    report_phases(spec, "sdsp_mv_tile", cfg.name, sb, {"total_cycles": model_total}, timing, rnd)
