// Linear layers on the sparse DSP chain: MV (decode, one token) and MM
// (several tokens), dense and N:M, INT8 x INT8 -> exact INT32 per group, then
// the FP32 group rescale in the contract's order (docs/numerics.md section 3):
//   y_acc = 0; for g in order: y_acc = y_acc + float(s[o,g]) * float(acc[g]); y = y_acc * s_x
//
// N:M: the decoded in-block index drives the activation select (the sparse
// MUX), so pruned weights take no MAC. Pairing: MM packs two tokens that share
// a weight into one DSP; dense MV packs two output rows that share an
// activation; N:M MV rows select different activations, so they run one MAC
// per DSP (batching tokens is how a sparse design fills the second lane).
#ifndef LLMACCEL_HLS_KERNELS_LINEAR_HPP
#define LLMACCEL_HLS_KERNELS_LINEAR_HPP

#include "../config.hpp"
#include "../primitives/bitstream.hpp"
#include "../primitives/dsp_pair_mac.hpp"
#include "weight_decoder.hpp"

namespace llmaccel_hls {

// One step of the FP32 rescale unit: two roundings, no FMA.
inline float rescale_step(float y_acc, uint16_t scale_fp16_bits, acc32_t acc) {
#pragma HLS INLINE
    const float s = fp16_bits_to_float(scale_fp16_bits);
    const float a = (float)acc.to_int();
    const float t = s * a;
    return y_acc + t;
}

template <class FMT>
inline void check_linear_args(int rows, int k) {
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(k > 0 && k <= FMT::K_MAX && k % FMT::GROUP == 0);
    LLMACCEL_ASSERT(rows > 0 && rows <= FMT::O_MAX);
#endif
}

// Matrix-vector: y[rows] = W[rows, k] x[k]; partial (optional) gets acc[rows][groups].
template <class FMT, class SCHED>
void linear_mv(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
               const int8_t* xq, float s_x, int rows, int k, float* y, int32_t* partial) {
    static_assert(linear_fit<FMT, SCHED>::ok, "format and schedule do not fit");
    const int CHAIN = SCHED::CHAIN;
    check_linear_args<FMT>(rows, k);
    const row_geometry<FMT> geo(k);
    const int chunks = FMT::KEPT_PER_GROUP / CHAIN;

    ap_int<8> x_buf[FMT::K_MAX];
#pragma HLS ARRAY_PARTITION variable = x_buf cyclic factor = FMT::M dim = 1
MV_LOAD_X:
    for (int i = 0; i < k; i++) {
#pragma HLS PIPELINE II = 1
        x_buf[i] = xq[i];
    }

    // Rows run in pairs when the pair can share the activation (dense), one by one otherwise.
    const int ROWS_PER_STEP = FMT::DENSE ? 2 : 1;
MV_ROWS:
    for (int o = 0; o < rows; o += ROWS_PER_STEP) {
        const bool has_b = FMT::DENSE && (o + 1 < rows);
        float y_a = 0.0f, y_b = 0.0f;
    MV_GROUPS:
        for (int g = 0; g < geo.groups; g++) {
            acc32_t acc_a = 0, acc_b = 0;
            const ap_uint<8> z_a = group_zero(FMT::SYMMETRIC, FMT::ZERO_POINT, zeros, o * geo.groups + g);
            const ap_uint<8> z_b =
                has_b ? group_zero(FMT::SYMMETRIC, FMT::ZERO_POINT, zeros, (o + 1) * geo.groups + g) : ap_uint<8>(0);
        MV_CHAIN_STEPS:
            for (int c = 0; c < chunks; c++) {
#pragma HLS PIPELINE II = SCHED::II
                ap_int<8> w_a[SCHED::CHAIN], w_b[SCHED::CHAIN], x_sel[SCHED::CHAIN];
#pragma HLS ARRAY_PARTITION variable = w_a complete
#pragma HLS ARRAY_PARTITION variable = w_b complete
#pragma HLS ARRAY_PARTITION variable = x_sel complete
            MV_DECODE_LANES:
                for (int l = 0; l < CHAIN; l++) {
#pragma HLS UNROLL
                    const int j = g * FMT::KEPT_PER_GROUP + c * CHAIN + l;
                    int col;
                    decode_kept<FMT>(codes + o * geo.code_words, geo.code_words, indices + o * geo.index_words,
                                     geo.index_words, z_a, j, w_a[l], col);
                    x_sel[l] = x_buf[col];  // sparse MUX: the index picks the activation
                    if (has_b) {
                        int col_b;
                        decode_kept<FMT>(codes + (o + 1) * geo.code_words, geo.code_words, indices, 0, z_b, j,
                                         w_b[l], col_b);
                    } else {
                        w_b[l] = 0;
                    }
                }
                if (FMT::DENSE) {
                    ap_int<32> s_a, s_b;
                    dsp_chain_pair<SCHED::CHAIN>(x_sel, w_a, w_b, s_a, s_b);
                    acc_a += s_a;
                    acc_b += s_b;
                } else {
                    acc_a += dsp_chain_single<SCHED::CHAIN>(w_a, x_sel);
                }
            }
            if (partial) {
                partial[o * geo.groups + g] = acc_a.to_int();
                if (has_b) partial[(o + 1) * geo.groups + g] = acc_b.to_int();
            }
            y_a = rescale_step(y_a, scales[o * geo.groups + g], acc_a);
            if (has_b) y_b = rescale_step(y_b, scales[(o + 1) * geo.groups + g], acc_b);
        }
        y[o] = y_a * s_x;
        if (has_b) y[o + 1] = y_b * s_x;
    }
}

// Matrix-matrix: y[t][rows] = W x[t] for `tokens` tokens; tokens run in
// pairs sharing each decoded weight (two MACs per DSP), dense or N:M.
template <class FMT, class SCHED, int T_MAX>
void linear_mm(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
               const int8_t* xq, const float* s_x, int tokens, int rows, int k, float* y, int32_t* partial) {
    static_assert(linear_fit<FMT, SCHED>::ok, "format and schedule do not fit");
    const int CHAIN = SCHED::CHAIN;
    check_linear_args<FMT>(rows, k);
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(tokens > 0 && tokens <= T_MAX);
#endif
    const row_geometry<FMT> geo(k);
    const int chunks = FMT::KEPT_PER_GROUP / CHAIN;

MM_TOKEN_PAIRS:
    for (int t = 0; t < tokens; t += 2) {
        const bool has_b = (t + 1 < tokens);
        const int8_t* x_a = xq + t * k;
        const int8_t* x_b = xq + (has_b ? t + 1 : t) * k;
    MM_ROWS:
        for (int o = 0; o < rows; o++) {
            float y_a = 0.0f, y_b = 0.0f;
        MM_GROUPS:
            for (int g = 0; g < geo.groups; g++) {
                acc32_t acc_a = 0, acc_b = 0;
                const ap_uint<8> z = group_zero(FMT::SYMMETRIC, FMT::ZERO_POINT, zeros, o * geo.groups + g);
            MM_CHAIN_STEPS:
                for (int c = 0; c < chunks; c++) {
#pragma HLS PIPELINE II = SCHED::II
                    ap_int<8> w[SCHED::CHAIN], a[SCHED::CHAIN], b[SCHED::CHAIN];
#pragma HLS ARRAY_PARTITION variable = w complete
#pragma HLS ARRAY_PARTITION variable = a complete
#pragma HLS ARRAY_PARTITION variable = b complete
                MM_DECODE_LANES:
                    for (int l = 0; l < CHAIN; l++) {
#pragma HLS UNROLL
                        const int j = g * FMT::KEPT_PER_GROUP + c * CHAIN + l;
                        int col;
                        decode_kept<FMT>(codes + o * geo.code_words, geo.code_words, indices + o * geo.index_words,
                                         geo.index_words, z, j, w[l], col);
                        a[l] = x_a[col];
                        b[l] = has_b ? ap_int<8>(x_b[col]) : ap_int<8>(0);
                    }
                    ap_int<32> s_a, s_b;
                    dsp_chain_pair<SCHED::CHAIN>(w, a, b, s_a, s_b);
                    acc_a += s_a;
                    acc_b += s_b;
                }
                if (partial) {
                    partial[(t * rows + o) * geo.groups + g] = acc_a.to_int();
                    if (has_b) partial[((t + 1) * rows + o) * geo.groups + g] = acc_b.to_int();
                }
                y_a = rescale_step(y_a, scales[o * geo.groups + g], acc_a);
                if (has_b) y_b = rescale_step(y_b, scales[o * geo.groups + g], acc_b);
            }
            y[t * rows + o] = y_a * s_x[t];
            if (has_b) y[(t + 1) * rows + o] = y_b * s_x[t + 1];
        }
    }
}

}  // namespace llmaccel_hls

#endif
