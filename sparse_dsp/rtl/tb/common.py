"""Bench plumbing shared by the unit benches: clock, reset, random layers, run-until-done."""
from __future__ import annotations

import numpy as np
from cocotb.clock import Clock
import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from llmaccel.sparse_dsp.packed_format import pack_linear, PackedLinear
from llmaccel.sparse_dsp.rtl.sim import write_report


async def start_clock_and_reset(dut, cycles: int = 3) -> None:
    if not getattr(dut, "_sdsp_clock", False):
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut._sdsp_clock = True
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0


async def run_until(dut, done, *, limit_edges: int, settle: int = 8) -> bool:
    """Clock until ``done()`` holds, then ``settle`` more edges (to catch extra outputs)."""
    for _ in range(limit_edges):
        if done():
            await ClockCycles(dut.clk, settle)
            return True
        await RisingEdge(dut.clk)
    return False


def random_columns(rng: np.random.Generator, rows: int, k: int, nm) -> np.ndarray:
    """[rows, kept] dense column of each kept weight: exactly N ascending per block of M."""
    if nm is None:
        return np.broadcast_to(np.arange(k), (rows, k)).copy()
    n, m = nm
    keep = np.argsort(rng.random((rows, k // m, m)), axis=2)[:, :, :n]
    keep = np.sort(keep, axis=2) + (np.arange(k // m) * m)[None, :, None]
    return keep.reshape(rows, -1)


def random_int8_rows(rng: np.random.Generator, rows: int, kept: int) -> np.ndarray:
    """Random decoded weights, with an all -128 row (the worst case for the packed lane) first."""
    w = rng.integers(-128, 128, (rows, kept)).astype(np.int8)
    w[0] = -128
    return w


def random_activations(rng: np.random.Generator, k: int) -> np.ndarray:
    """int8 [2, K] token lanes in [-127, 127] (the contract never produces -128); lane extremes first."""
    x = rng.integers(-127, 128, (2, k)).astype(np.int8)
    x[0, : min(k, 32)] = 127
    x[1, : min(k, 32)] = -127
    return x


def random_packed_layer(rng: np.random.Generator, rows: int, k: int, bits: int, group_size: int,
                        symmetric: bool, nm) -> PackedLinear:
    """A random packed layer, codes over the whole range (zeros too, for asymmetric)."""
    n, m = nm if nm else (1, 1)
    kept = k * n // m
    codes = rng.integers(0, 1 << bits, (rows, kept))
    codes[0, :] = (1 << bits) - 1
    scales = rng.random((rows, k // group_size)).astype(np.float16) + np.float16(0.01)
    zeros = None if symmetric else rng.integers(0, 1 << bits, (rows, k // group_size))
    cols = random_columns(rng, rows, k, nm) if nm else None
    return pack_linear(codes, scales, in_features=k, bits=bits, group_size=group_size, zeros=zeros,
                       nm=nm, columns=cols)


def report_phases(spec: dict, unit: str, config: str, sb, model: dict, timing: dict, rnd: dict) -> None:
    """Write a bench's report (the pytest side reads it) and fail the cocotb test on any mismatch.

    Every bench runs a timing phase (no gaps, no stalls: the closed-form cycle model) and a random
    phase (data and handshakes under random gaps and back-pressure); ``sb`` scored both.
    """
    write_report(spec, {"unit": unit, "config": config, "mismatches": sb.mismatches, "matched": sb.matched,
                        "missing": sb.missing, "model": model, "timing_phase": timing, "random_phase": rnd})
    assert sb.mismatches == 0 and sb.missing == 0, f"{sb.mismatches} mismatches, {sb.missing} missing"
