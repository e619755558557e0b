"""The small, stable API the simulator's timing and resource models call for RTL-backed units.

Cycle figures come from the bit- and cycle-exact Python models (``dsp_chain``,
``weight_decoder``), which the cocotb tests hold equal to the RTL cycle for cycle.
Resource figures come from the committed yosys results (``sparse_dsp/rtl/resources.json``,
written by ``sparse_dsp/rtl/synth.py``); a unit/parameter set that was not synthesized is an
error, never an estimate.

    dsp_chain_cycles(chain_len, nm, k, rows, *, group_size=128, cascade_groups=None) -> int
    dsp_chain_timing(chain_len, nm, k, rows, *, group_size=128, cascade_groups=None) -> ChainTiming
    weight_decoder_cycles(bits, nm, k, rows, *, chain_len=8, group_size=128) -> int
    unit_resources(unit_name, **params) -> {"DSP48E2", "LUT", "FF", "BRAM36", "status", "params"}
    measured_configs(unit_name) -> list[dict]
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources as _res
from typing import Optional

from llmaccel.sparse_dsp.dsp_chain import ChainConfig, ChainTiming, chain_timing
from llmaccel.errors import LlmaccelError

UNITS = ("dsp_chain", "weight_decoder", "mv_tile")
RESOURCE_KEYS = ("DSP48E2", "LUT", "FF", "BRAM36")


def dsp_chain_timing(chain_len: int, nm, k: int, rows: int, *, group_size: int = 128,
                     cascade_groups: Optional[int] = None) -> ChainTiming:
    """Latency, II and total cycles of one chain computing ``rows`` output rows x 2 tokens.

    ``nm`` is None/"dense", a (N, M) tuple or "N:M". ``k`` is the dense input length.
    """
    return chain_timing(ChainConfig(chain_len, nm, cascade_groups), k, rows, group_size)


def dsp_chain_cycles(chain_len: int, nm, k: int, rows: int, *, group_size: int = 128,
                     cascade_groups: Optional[int] = None) -> int:
    """Cycles from the first beat accepted to the last partial sums taken (no stalls)."""
    return dsp_chain_timing(chain_len, nm, k, rows, group_size=group_size,
                            cascade_groups=cascade_groups).total_cycles


def weight_decoder_cycles(bits: int, nm, k: int, rows: int, *, chain_len: int = 8,
                          group_size: int = 128) -> int:
    """Cycles the weight decoder needs to emit ``rows`` rows of beats (inputs never starved)."""
    from llmaccel.sparse_dsp.weight_decoder import DecoderConfig, decoder_total_cycles
    return decoder_total_cycles(DecoderConfig(bits=bits, nm=nm, k=k, group_size=group_size,
                                              chain_len=chain_len), rows)


@lru_cache(maxsize=1)
def _table() -> dict:
    text = _res.files("llmaccel.sparse_dsp.rtl").joinpath("resources.json").read_text()
    return json.loads(text)


def _norm(params: dict) -> dict:
    out = {}
    for key, val in params.items():
        if key == "nm":
            val = "dense" if val is None or val == "dense" or (not isinstance(val, str) and val[0] == val[1]) \
                else (val if isinstance(val, str) else f"{val[0]}:{val[1]}")
        out[key] = val
    return out


def measured_configs(unit_name: str) -> list[dict]:
    if unit_name not in UNITS:
        raise LlmaccelError(f"unit_name='{unit_name}' is not an RTL unit; allowed: {list(UNITS)}")
    return [dict(e["params"]) for e in _table()["units"].get(unit_name, [])]


def unit_resources(unit_name: str, **params) -> dict:
    """DSP48E2 / LUT / FF / BRAM36 of one synthesized unit configuration (yosys, xcup).

    Params must name a configuration that ``synth.py`` measured (``measured_configs``); the
    keys a configuration needs are those listed there. Counts are per unit instance: the
    simulator scales them by its unit counts.
    """
    if unit_name not in UNITS:
        raise LlmaccelError(f"unit_name='{unit_name}' is not an RTL unit; allowed: {list(UNITS)}")
    table = _table()
    want = _norm(params)
    entries = table["units"].get(unit_name, [])
    hits = [e for e in entries if all(e["params"].get(k) == v for k, v in want.items())]
    if unit_name in ("dsp_chain", "mv_tile") and "cascade_groups" not in want and len(hits) > 1:
        # unspecified cascade: the chain's default (longest legal segment)
        hits = [e for e in hits if e["params"]["cascade_groups"] ==
                ChainConfig(e["params"]["chain_len"], e["params"]["nm"]).cascade_groups]
    if len(hits) == 1:
        e = hits[0]
        out = {k: e[k] for k in RESOURCE_KEYS}
        out.update(status=table["status"], params=dict(e["params"]))
        return out
    if table["status"] == "pending yosys":
        return {"DSP48E2": None, "LUT": None, "FF": None, "BRAM36": None, "status": "pending yosys",
                "params": want}
    if len(hits) > 1:
        raise LlmaccelError(f"{unit_name} with {want} matches {len(hits)} measured configurations; name more "
                            "parameters: " + "; ".join(str(e["params"]) for e in hits))
    raise LlmaccelError(
        f"no yosys result for {unit_name} with {want}; measured configurations: "
        + "; ".join(str(e["params"]) for e in entries))
