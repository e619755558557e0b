"""The FP16 multiply-add unit of a DFX-style matrix engine: its cost on UltraScale+ DSP48E2 and fabric.

One fact in one place: the design schema (``simulator.design``, ``matrix_engine.mac_dtype: fp16``),
the timing model (``simulator.timing_params``: pipeline depth) and the resource model
(``simulator.resources``: DSPs, LUTs, FFs per unit) all read these constants.

What the unit computes is the numerics contract's FP16 linear (docs/numerics.md section 7):
``y = fp32(sum fp16(x) * fp16(w))``. An FP16 x FP16 product is exact in FP32 (two 11-bit
significands give a 22-bit product), so a "MAC" here is an FP16 multiplier whose product is
kept exact, feeding an FP32 adder tree across the chain (one adder per MAC unit, less one per
chain), then an FP32 accumulator per chain output. A chain of ``chain_len`` units takes one beat of
``chain_len`` weights x one token per cycle (no second packed lane: WP486's packing is for INT8).

Sources and estimates (each constant says which):

* DSPs per multiplier: 1 DSP48E2 - structural: the 11 x 11-bit significand product fits the
  DSP48E2's 27 x 18 multiplier (AMD UG579; shared/anchors/hardware.yaml
  ``dsp_primitives.DSP48E2.multiplier_bits``); exponent add and normalisation are fabric. This
  agrees with Vitis HLS's FP16 multiplier core ``hmul ... max_dsp`` being a DSP implementation,
  but its DSP count was not read in a report: an ESTIMATE held to the structural argument.
* Pipeline latencies: the operator cores Vitis HLS instantiates for UltraScale+ parts, as named in
  public HLS outputs (``*_hmul_16ns_16ns_16_4_max_dsp_1``: TYPE hmul IMPL maxdsp LATENCY 3;
  ``*_fadd_32ns_32ns_32_4_full_dsp_1``: TYPE fadd IMPL fulldsp LATENCY 3). second_hand: read in
  generated project files (csynth ``.tcl``/Verilog of third-party repositories), not in AMD PG060's
  latency tables, and the clock those projects targeted was not read; a fabric FP32 adder is
  taken to reach the same depth at this design's 200 MHz (ESTIMATE).
* LUT/FF per FP32 fabric adder and per FP16 multiplier's fabric part: ESTIMATES (an FP32 adder is
  an exponent compare, a 24-bit alignment shifter, a 25-bit add and a leading-zero normaliser;
  ~350 LUT and ~400 FF at 3-4 pipeline stages is this project's count of those pieces, not a
  measurement; AMD PG060's resource tables were not available here). Replace them with a csynth
  report when one exists (``hls_reports`` in the design YAML).
* Achievable clock: the DSP48E2 fully pipelined reaches 644-775 MHz (DS923, hardware.yaml
  ``clocks.dsp48e2_fmax_MHz``, checked by ``simulator.clocks``); the dfx-u280 preset runs at DFX's
  200 MHz (an architecture fact, hardware.yaml ``dfx_4xu280.clock_MHz``).

DFX's end-to-end results are not used to set any of these (docs/simulator.md, FP16 designs).
"""
from __future__ import annotations

import math

MAC_DTYPES = ("int8", "fp16")

# --- DSP48E2 per FP16 multiplier (structural: 11x11 significand product in the 27x18 multiplier, UG579)
FP16_MUL_DSPS = 1
# --- pipeline depth in cycles (second_hand: Vitis HLS operator cores as instantiated, see the docstring)
FP16_MUL_LATENCY_CYCLES = 3     # hmul IMPL maxdsp LATENCY 3
FP32_ADD_LATENCY_CYCLES = 3     # fadd IMPL fulldsp LATENCY 3 (the fabric adder is taken to match: ESTIMATE)
# --- fabric cost (ESTIMATES, see the docstring)
FP16_MUL_FABRIC_LUT_ESTIMATE = 60     # exponent add, sign, rounding of the exact product's handoff
FP16_MUL_FABRIC_FF_ESTIMATE = 80
FP32_ADD_LUT_ESTIMATE = 350
FP32_ADD_FF_ESTIMATE = 400
FP32_ACCUMULATOR_LUT_ESTIMATE = 350   # one per chain output (the tree's sum + the running partial sum)
FP32_ACCUMULATOR_FF_ESTIMATE = 400

# Bytes of one operand element in the weight buffer, per MAC datatype.
WEIGHT_BYTES = {"int8": 1, "fp16": 2}
# Tokens sharing one weight beat: INT8 packs two (AMD WP486), FP16 has one lane.
TOKENS_PER_BEAT = {"int8": 2, "fp16": 1}


def fp16_chain_latency_cycles(chain_len: int) -> int:
    """Fill + drain of one FP16 chain pass: the multiplier, a binary FP32 adder tree over the chain's
    products (ceil(log2(chain_len)) levels), then the accumulator's add."""
    levels = max(1, math.ceil(math.log2(chain_len)))
    return FP16_MUL_LATENCY_CYCLES + (levels + 1) * FP32_ADD_LATENCY_CYCLES


def fp16_chain_resources(chain_len: int) -> dict[str, float]:
    """DSP/LUT/FF of one FP16 chain: chain_len multipliers, chain_len - 1 tree adders, one accumulator."""
    adders = chain_len - 1
    return {
        "DSP": chain_len * FP16_MUL_DSPS,
        "LUT": chain_len * FP16_MUL_FABRIC_LUT_ESTIMATE + adders * FP32_ADD_LUT_ESTIMATE
        + FP32_ACCUMULATOR_LUT_ESTIMATE,
        "FF": chain_len * FP16_MUL_FABRIC_FF_ESTIMATE + adders * FP32_ADD_FF_ESTIMATE + FP32_ACCUMULATOR_FF_ESTIMATE,
    }


FP16_CHAIN_SOURCE = ("DSP structural (one DSP48E2 per FP16 multiplier: 11x11 significands in the 27x18 multiplier, "
                     "UG579); LUT/FF estimates of the fabric FP32 adder tree and accumulator "
                     "(simulator/fp16_datapath.py; not measured, PG060 tables not read)")
