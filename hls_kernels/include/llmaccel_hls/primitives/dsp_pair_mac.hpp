// Two INT8 MACs in one DSP48E2: the packing pattern HLS maps onto one DSP.
//
// The DSP48E2 multiplies a 27-bit A by an 18-bit B into a 48-bit P and can
// add the P of its neighbour (cascade). Two INT8 operands a, b that share the
// multiplier `s` are packed as A = (a << 18) + b, so P = a*s*2^18 + b*s:
// both products in one multiply. The low product is the signed low 18 bits;
// the high product is P >> 18 plus one when the low product is negative (the
// borrow it took). Chaining DSPs adds packed products before extraction;
// the low lane stays exact while |sum of low products| < 2^17, which bounds
// the chain length (FlightLLM's overflow-adjust unit exists for longer
// chains; here the reduction node extracts after each chain instead).
#ifndef LLMACCEL_HLS_PRIMITIVES_DSP_PAIR_MAC_HPP
#define LLMACCEL_HLS_PRIMITIVES_DSP_PAIR_MAC_HPP

#include "../common.hpp"

namespace llmaccel_hls {

static const int DSP_LANE_SHIFT = 18;       // offset of the high product in P
// One operand of every product is an activation, which the contract keeps in
// [-127, 127] (never -128), so |product| <= 128*127.
static const int INT8_PRODUCT_MAX = 128 * 127;
// Longest cascade whose low lane cannot overflow: CHAIN * 16256 < 2^17 -> 8.
static const int DSP_MAX_CHAIN = ((1 << (DSP_LANE_SHIFT - 1)) - 1) / INT8_PRODUCT_MAX;

typedef ap_int<27> dsp_a_t;
typedef ap_int<18> dsp_b_t;
typedef ap_int<48> dsp_p_t;

// One DSP: P_out = P_in + ((a << 18) + b) * s.
inline dsp_p_t dsp48e2_pair_mac(dsp_p_t p_in, ap_int<8> shared, ap_int<8> a, ap_int<8> b) {
#pragma HLS INLINE
    dsp_a_t packed = (dsp_a_t(a) << DSP_LANE_SHIFT) + dsp_a_t(b);
    dsp_p_t prod = packed * dsp_b_t(shared);
    return p_in + prod;
}

// Split an accumulated P into (sum of a*s, sum of b*s).
inline void dsp48e2_extract(dsp_p_t p, ap_int<32>& sum_a, ap_int<32>& sum_b) {
#pragma HLS INLINE
    ap_int<DSP_LANE_SHIFT> lo = p(DSP_LANE_SHIFT - 1, 0);
    ap_int<48 - DSP_LANE_SHIFT> hi = p >> DSP_LANE_SHIFT;
    sum_b = lo;
    sum_a = ap_int<32>(hi) + (lo < 0 ? 1 : 0);
}

// A cascade of CHAIN DSPs over operand triples, then extraction: the
// sparse DSP chain's "group of DSPs" before its reduction node.
template <int CHAIN>
inline void dsp_chain_pair(const ap_int<8> shared[CHAIN], const ap_int<8> a[CHAIN], const ap_int<8> b[CHAIN],
                           ap_int<32>& sum_a, ap_int<32>& sum_b) {
#pragma HLS INLINE
    static_assert(CHAIN >= 1 && CHAIN <= DSP_MAX_CHAIN, "DSP chain too long for exact lane packing");
    dsp_p_t p = 0;
DSP_CASCADE:
    for (int i = 0; i < CHAIN; i++) {
#pragma HLS UNROLL
        p = dsp48e2_pair_mac(p, shared[i], a[i], b[i]);
    }
    dsp48e2_extract(p, sum_a, sum_b);
}

// Single-product cascade (one MAC per DSP) for operands that share nothing.
template <int CHAIN>
inline ap_int<32> dsp_chain_single(const ap_int<8> w[CHAIN], const ap_int<8> x[CHAIN]) {
#pragma HLS INLINE
    ap_int<32> acc = 0;
DSP_CASCADE_SINGLE:
    for (int i = 0; i < CHAIN; i++) {
#pragma HLS UNROLL
        acc += ap_int<16>(w[i] * x[i]);
    }
    return acc;
}

}  // namespace llmaccel_hls

#endif
