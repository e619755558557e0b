// Linear layers on the sparse DSP chain: MV (decode, one token) and MM
// (several tokens), dense and N:M, INT8 x INT8 -> exact INT32 per group, then
// the FP32 group rescale in the contract's order (docs/numerics.md section 3):
//   y_acc = 0; for g in order: y_acc = y_acc + float(s[o,g]) * float(acc[g]); y = y_acc * s_x
//
// Structure (what Vitis schedules at II=1): one canonical DATAFLOW region per
// layer, each stage its own function, hls::streams between them, and one
// m_axi bundle per port (tops/linear_*_top.cpp):
//
//   read codes ─┐                      ┌─ write y
//   read index ─┼─► decode ─► MAC ─────┤
//   read zeros ─┘     (lanes)   ▲      └─ write partial sums (debug port)
//   read scales ────────────────┘
//
// * Readers walk their array front to back, one word per cycle, so every
//   m_axi port bursts; a dense MV row pair is staged through one row buffer
//   (burst row o into it, burst row o+1 while emitting both).
// * The decoder pulls CHAIN fields per beat from a shift register
//   (bitstream_reader), i.e. ceil(CHAIN*BITS/32) code words per beat at most.
// * Activations sit in x_buf, partitioned cyclically by the beat's window
//   (CHAIN columns dense, WINDOW_BLOCKS * M columns N:M). Each beat copies its
//   window into a register file with one access per bank, and the decoded
//   in-block index selects from that register file: FlightLLM's sparse MUX,
//   with no data-dependent address into a banked memory.
//
// N:M: pruned weights take no MAC. Pairing: MM packs two tokens that share a
// weight into one DSP; dense MV packs two output rows that share an
// activation; N:M MV rows select different activations, so they run one MAC
// per DSP (batching tokens is how a sparse design fills the second lane).
#ifndef LLMACCEL_HLS_KERNELS_LINEAR_HPP
#define LLMACCEL_HLS_KERNELS_LINEAR_HPP

#include "hls_stream.h"
#include "../config.hpp"
#include "../primitives/bitstream.hpp"
#include "../primitives/bitstream_reader.hpp"
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

// Compile-time shape of one DSP-chain beat: CHAIN kept values, their weights
// packed 8 bits each, their in-block indices packed IB bits each, and the
// activation window the beat can address.
template <class FMT, class SCHED>
struct linear_beat {
    static const int CHAIN = SCHED::CHAIN;
    static const int IB = FMT::INDEX_BITS == 0 ? 1 : FMT::INDEX_BITS;
    // blocks of M columns that CHAIN consecutive kept values (starting at a multiple of CHAIN) can touch
    static const int WINDOW_BLOCKS = (FMT::N % CHAIN == 0) ? 1
                                     : (CHAIN % FMT::N == 0) ? CHAIN / FMT::N
                                                             : (CHAIN + FMT::N - 2) / FMT::N + 1;
    static const int WINDOW = FMT::DENSE ? CHAIN : WINDOW_BLOCKS * FMT::M;
    static const int CHUNKS = FMT::KEPT_PER_GROUP / CHAIN;
    static const int GROUPS_MAX = FMT::K_MAX / FMT::GROUP;
    static const int CODE_WORDS_MAX = (FMT::K_MAX / FMT::M * FMT::N * FMT::BITS + 31) / 32;
    typedef ap_uint<8 * CHAIN> w_t;
    typedef ap_uint<IB * CHAIN> idx_t;
};

// ---- stage 1: readers (one m_axi port each, front to back) -----------------

// `repeats` passes over rows x row_len values. PAIRED: rows go in pairs,
// row o on `a` and row o+1 on `b` element by element (a missing last b row
// reads as zeros); row o is staged in a local buffer so both reads burst.
template <class T, class ST, int ROW_MAX, bool PAIRED>
void read_rows(const T* src, int row_len, int rows, int repeats, hls::stream<ST>& a, hls::stream<ST>& b) {
    T row_buf[ROW_MAX];
READ_REPEATS:
    for (int r = 0; r < repeats; r++) {
        if (!PAIRED) {
        READ_ALL:
            for (int i = 0; i < rows * row_len; i++) {
#pragma HLS PIPELINE II = 1
                a.write(ST(src[i]));
            }
        } else {
        READ_ROW_PAIRS:
            for (int o = 0; o < rows; o += 2) {
                const bool has_b = o + 1 < rows;
            READ_ROW_A:
                for (int i = 0; i < row_len; i++) {
#pragma HLS PIPELINE II = 1
                    row_buf[i] = src[o * row_len + i];
                }
            READ_ROW_B:
                for (int i = 0; i < row_len; i++) {
#pragma HLS PIPELINE II = 1
                    a.write(ST(row_buf[i]));
                    b.write(has_b ? ST(src[(o + 1) * row_len + i]) : ST(0));
                }
            }
        }
    }
}

// ---- stage 2: decoder ------------------------------------------------------

// Decodes `repeats` passes over the layer into beats of CHAIN INT8 weights
// (lane b: the paired row of a dense MV) and, for N:M, CHAIN in-block indices.
template <class FMT, class SCHED, bool PAIRED>
void decode_beats(hls::stream<ap_uint<32> >& codes_a, hls::stream<ap_uint<32> >& codes_b,
                  hls::stream<ap_uint<32> >& index_words, hls::stream<ap_uint<8> >& zeros_a,
                  hls::stream<ap_uint<8> >& zeros_b, int rows, int k, int repeats,
                  hls::stream<typename linear_beat<FMT, SCHED>::w_t>& w_a,
                  hls::stream<typename linear_beat<FMT, SCHED>::w_t>& w_b,
                  hls::stream<typename linear_beat<FMT, SCHED>::idx_t>& idx_out) {
    typedef linear_beat<FMT, SCHED> B;
    const int groups = k / FMT::GROUP;
    const int steps = groups * B::CHUNKS;
    const int row_step = PAIRED ? 2 : 1;
    bitstream_reader<B::CHAIN * FMT::BITS> ra, rb;
    bitstream_reader<B::CHAIN * B::IB> ri;
DEC_REPEATS:
    for (int r = 0; r < repeats; r++) {
    DEC_ROWS:
        for (int o = 0; o < rows; o += row_step) {
            ra.reset();
            rb.reset();
            ri.reset();
            ap_uint<8> z_a = FMT::ZERO_POINT, z_b = FMT::ZERO_POINT;
        DEC_BEATS:
            for (int s = 0; s < steps; s++) {
#pragma HLS PIPELINE II = 1
                if (!FMT::SYMMETRIC && s % B::CHUNKS == 0) {
                    z_a = zeros_a.read();
                    if (PAIRED) z_b = zeros_b.read();
                }
                const ap_uint<B::CHAIN * FMT::BITS> ca = ra.next(codes_a);
                ap_uint<B::CHAIN * FMT::BITS> cb = 0;
                if (PAIRED) cb = rb.next(codes_b);
                typename B::w_t wa = 0, wb = 0;
            DEC_LANES:
                for (int l = 0; l < B::CHAIN; l++) {
#pragma HLS UNROLL
                    const ap_uint<FMT::BITS> ua = ca((l + 1) * FMT::BITS - 1, l * FMT::BITS);
                    wa((l + 1) * 8 - 1, l * 8) = ap_uint<8>(ap_int<8>(ap_int<10>(ua) - ap_int<10>(z_a)));
                    if (PAIRED) {
                        const ap_uint<FMT::BITS> ub = cb((l + 1) * FMT::BITS - 1, l * FMT::BITS);
                        wb((l + 1) * 8 - 1, l * 8) = ap_uint<8>(ap_int<8>(ap_int<10>(ub) - ap_int<10>(z_b)));
                    }
                }
                w_a.write(wa);
                if (PAIRED) w_b.write(wb);
                if (!FMT::DENSE) idx_out.write(ri.next(index_words));
            }
        }
    }
}

// ---- stage 3: MAC ----------------------------------------------------------

// The beat's activation window: a register file filled with one access per
// x_buf bank (x_buf is partitioned cyclically by WINDOW, base is a multiple of
// M or CHAIN), then the sparse MUX selects each lane's activation from it.
template <class FMT, class SCHED>
inline void select_activations(const ap_int<8> x_buf[FMT::K_MAX], int j0,
                               const typename linear_beat<FMT, SCHED>::idx_t& idx, ap_int<8> x_sel[SCHED::CHAIN]) {
#pragma HLS INLINE
    typedef linear_beat<FMT, SCHED> B;
    const int base = FMT::DENSE ? j0 : (j0 / FMT::N) * FMT::M;
    ap_int<8> window[B::WINDOW];
#pragma HLS ARRAY_PARTITION variable = window complete
MAC_WINDOW:
    for (int i = 0; i < B::WINDOW; i++) {
#pragma HLS UNROLL
        window[i] = (base + i < FMT::K_MAX) ? x_buf[base + i] : ap_int<8>(0);
    }
MAC_SPARSE_MUX:
    for (int l = 0; l < B::CHAIN; l++) {
#pragma HLS UNROLL
        if (FMT::DENSE) {
            x_sel[l] = window[l];
        } else {
            const int block = (j0 + l) / FMT::N - j0 / FMT::N;
            const int in_block = ap_uint<B::IB>(idx((l + 1) * B::IB - 1, l * B::IB)).to_int();
            x_sel[l] = window[block * FMT::M + in_block];
        }
    }
}

template <int CHAIN>
inline void unpack_lanes(const ap_uint<8 * CHAIN>& packed, ap_int<8> lanes[CHAIN]) {
#pragma HLS INLINE
UNPACK_LANES:
    for (int l = 0; l < CHAIN; l++) {
#pragma HLS UNROLL
        lanes[l] = ap_int<8>(packed((l + 1) * 8 - 1, l * 8));
    }
}

template <class FMT>
void load_activations(const int8_t* xq, int k, ap_int<8> x_buf[FMT::K_MAX]) {
#pragma HLS INLINE
MAC_LOAD_X:
    for (int i = 0; i < k; i++) {
#pragma HLS PIPELINE II = 1
        x_buf[i] = xq[i];
    }
}

// MV MAC: rows in pairs when dense (two rows share each activation in one
// DSP), one by one for N:M. y and partial sums leave on streams in row order
// (a row pair: y_a, y_b; partials of row a on pa, of row b on pb).
template <class FMT, class SCHED>
void mv_mac(const int8_t* xq, float s_x, int rows, int k, int write_partial,
            hls::stream<typename linear_beat<FMT, SCHED>::w_t>& w_a,
            hls::stream<typename linear_beat<FMT, SCHED>::w_t>& w_b,
            hls::stream<typename linear_beat<FMT, SCHED>::idx_t>& idx_in, hls::stream<ap_uint<16> >& scales_a,
            hls::stream<ap_uint<16> >& scales_b, hls::stream<float>& y_out, hls::stream<int32_t>& pa,
            hls::stream<int32_t>& pb) {
    typedef linear_beat<FMT, SCHED> B;
    const bool PAIRED = FMT::DENSE;
    ap_int<8> x_buf[FMT::K_MAX];
#pragma HLS ARRAY_PARTITION variable = x_buf cyclic factor = B::WINDOW dim = 1
    load_activations<FMT>(xq, k, x_buf);
    const int groups = k / FMT::GROUP;
    const int steps = groups * B::CHUNKS;
MV_ROWS:
    for (int o = 0; o < rows; o += (PAIRED ? 2 : 1)) {
        const bool has_b = PAIRED && (o + 1 < rows);
        float y_a = 0.0f, y_b = 0.0f;
        acc32_t acc_a = 0, acc_b = 0;
    MV_BEATS:
        for (int s = 0; s < steps; s++) {
#pragma HLS PIPELINE II = SCHED::II
            const int g = s / B::CHUNKS, c = s % B::CHUNKS;
            const int j0 = g * FMT::KEPT_PER_GROUP + c * B::CHAIN;
            typename B::idx_t idx = 0;
            if (!FMT::DENSE) idx = idx_in.read();
            ap_int<8> wa[SCHED::CHAIN], wb[SCHED::CHAIN], x_sel[SCHED::CHAIN];
#pragma HLS ARRAY_PARTITION variable = wa complete
#pragma HLS ARRAY_PARTITION variable = wb complete
#pragma HLS ARRAY_PARTITION variable = x_sel complete
            unpack_lanes<SCHED::CHAIN>(w_a.read(), wa);
            if (PAIRED) unpack_lanes<SCHED::CHAIN>(w_b.read(), wb);
            select_activations<FMT, SCHED>(x_buf, j0, idx, x_sel);
            if (PAIRED) {
                ap_int<32> s_a, s_b;
                dsp_chain_pair<SCHED::CHAIN>(x_sel, wa, wb, s_a, s_b);
                acc_a += s_a;
                acc_b += s_b;
            } else {
                acc_a += dsp_chain_single<SCHED::CHAIN>(wa, x_sel);
            }
            if (c == B::CHUNKS - 1) {  // group done: rescale, emit the partial sums
                const ap_uint<16> sa = scales_a.read();
                const ap_uint<16> sb = PAIRED ? scales_b.read() : ap_uint<16>(0);
                if (write_partial) {
                    pa.write(acc_a.to_int());
                    if (has_b) pb.write(acc_b.to_int());
                }
                y_a = rescale_step(y_a, sa, acc_a);
                if (has_b) y_b = rescale_step(y_b, sb, acc_b);
                acc_a = 0;
                acc_b = 0;
            }
        }
        y_out.write(y_a * s_x);
        if (has_b) y_out.write(y_b * s_x);
    }
}

// MM MAC: token pairs share each decoded weight (two MACs per DSP). Outputs
// leave per token pair: token a's rows on ya/pa, token b's on yb/pb.
template <class FMT, class SCHED>
void mm_mac(const int8_t* xq, const float* s_x, int tokens, int rows, int k, int write_partial,
            hls::stream<typename linear_beat<FMT, SCHED>::w_t>& w_in,
            hls::stream<typename linear_beat<FMT, SCHED>::idx_t>& idx_in, hls::stream<ap_uint<16> >& scales_in,
            hls::stream<float>& ya, hls::stream<float>& yb, hls::stream<int32_t>& pa, hls::stream<int32_t>& pb) {
    typedef linear_beat<FMT, SCHED> B;
    ap_int<8> xa_buf[FMT::K_MAX], xb_buf[FMT::K_MAX];
#pragma HLS ARRAY_PARTITION variable = xa_buf cyclic factor = B::WINDOW dim = 1
#pragma HLS ARRAY_PARTITION variable = xb_buf cyclic factor = B::WINDOW dim = 1
    const int groups = k / FMT::GROUP;
    const int steps = groups * B::CHUNKS;
MM_TOKEN_PAIRS:
    for (int t = 0; t < tokens; t += 2) {
        const bool has_b = t + 1 < tokens;
        load_activations<FMT>(xq + t * k, k, xa_buf);
        load_activations<FMT>(xq + (has_b ? t + 1 : t) * k, k, xb_buf);
    MM_ROWS:
        for (int o = 0; o < rows; o++) {
            float y_a = 0.0f, y_b = 0.0f;
            acc32_t acc_a = 0, acc_b = 0;
        MM_BEATS:
            for (int s = 0; s < steps; s++) {
#pragma HLS PIPELINE II = SCHED::II
                const int g = s / B::CHUNKS, c = s % B::CHUNKS;
                const int j0 = g * FMT::KEPT_PER_GROUP + c * B::CHAIN;
                typename B::idx_t idx = 0;
                if (!FMT::DENSE) idx = idx_in.read();
                ap_int<8> w[SCHED::CHAIN], a[SCHED::CHAIN], b[SCHED::CHAIN];
#pragma HLS ARRAY_PARTITION variable = w complete
#pragma HLS ARRAY_PARTITION variable = a complete
#pragma HLS ARRAY_PARTITION variable = b complete
                unpack_lanes<SCHED::CHAIN>(w_in.read(), w);
                select_activations<FMT, SCHED>(xa_buf, j0, idx, a);
                select_activations<FMT, SCHED>(xb_buf, j0, idx, b);
                if (!has_b) {
                MM_ZERO_B:
                    for (int l = 0; l < SCHED::CHAIN; l++) {
#pragma HLS UNROLL
                        b[l] = 0;
                    }
                }
                ap_int<32> s_a, s_b;
                dsp_chain_pair<SCHED::CHAIN>(w, a, b, s_a, s_b);
                acc_a += s_a;
                acc_b += s_b;
                if (c == B::CHUNKS - 1) {
                    const ap_uint<16> sc = scales_in.read();
                    if (write_partial) {
                        pa.write(acc_a.to_int());
                        if (has_b) pb.write(acc_b.to_int());
                    }
                    y_a = rescale_step(y_a, sc, acc_a);
                    if (has_b) y_b = rescale_step(y_b, sc, acc_b);
                    acc_a = 0;
                    acc_b = 0;
                }
            }
            ya.write(y_a * s_x[t]);
            if (has_b) yb.write(y_b * s_x[t + 1]);
        }
    }
}

// ---- stage 4: writers (front to back) ---------------------------------------

// `n` values from `a` to dst[0..n).
template <class T>
void write_seq(hls::stream<T>& a, int n, T* dst) {
WRITE_SEQ:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        dst[i] = a.read();
    }
}

// Row (or token) pairs: `len` values of a, then `len` of b (when present), `pairs` times, in order.
template <class T>
void write_pairs(hls::stream<T>& a, hls::stream<T>& b, int count, int len, int enabled, T* dst) {
    if (!enabled) return;
WRITE_PAIRS:
    for (int o = 0; o < count; o += 2) {
    WRITE_PAIR_A:
        for (int i = 0; i < len; i++) {
#pragma HLS PIPELINE II = 1
            dst[o * len + i] = a.read();
        }
        if (o + 1 < count) {
        WRITE_PAIR_B:
            for (int i = 0; i < len; i++) {
#pragma HLS PIPELINE II = 1
                dst[(o + 1) * len + i] = b.read();
            }
        }
    }
}

// ---- the layers --------------------------------------------------------------

// Matrix-vector: y[rows] = W[rows, k] x[k]; with write_partial, partial gets acc[rows][groups].
template <class FMT, class SCHED>
void linear_mv(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
               const int8_t* xq, float s_x, int rows, int k, float* y, int32_t* partial, int write_partial) {
    static_assert(linear_fit<FMT, SCHED>::ok, "format and schedule do not fit");
    typedef linear_beat<FMT, SCHED> B;
    const bool PAIRED = FMT::DENSE;
    check_linear_args<FMT>(rows, k);
    const row_geometry<FMT> geo(k);
    hls::stream<ap_uint<32> > codes_a("codes_a"), codes_b("codes_b"), index_words("index_words"),
        unused_index("unused_index");
    hls::stream<ap_uint<8> > zeros_a("zeros_a"), zeros_b("zeros_b");
    hls::stream<ap_uint<16> > scales_a("scales_a"), scales_b("scales_b");
    hls::stream<typename B::w_t> w_a("w_a"), w_b("w_b");
    hls::stream<typename B::idx_t> idx("idx");
    hls::stream<float> y_s("y");
    hls::stream<int32_t> pa("partial_a"), pb("partial_b");
#pragma HLS STREAM variable = pb depth = B::GROUPS_MAX
#pragma HLS DATAFLOW
    read_rows<uint32_t, ap_uint<32>, B::CODE_WORDS_MAX, PAIRED>(codes, geo.code_words, rows, 1, codes_a, codes_b);
    if (!FMT::DENSE) read_rows<uint32_t, ap_uint<32>, 1, false>(indices, geo.index_words, rows, 1, index_words,
                                                               unused_index);
    if (!FMT::SYMMETRIC) read_rows<uint8_t, ap_uint<8>, B::GROUPS_MAX, PAIRED>(zeros, geo.groups, rows, 1, zeros_a,
                                                                             zeros_b);
    read_rows<uint16_t, ap_uint<16>, B::GROUPS_MAX, PAIRED>(scales, geo.groups, rows, 1, scales_a, scales_b);
    decode_beats<FMT, SCHED, PAIRED>(codes_a, codes_b, index_words, zeros_a, zeros_b, rows, k, 1, w_a, w_b, idx);
    mv_mac<FMT, SCHED>(xq, s_x, rows, k, write_partial, w_a, w_b, idx, scales_a, scales_b, y_s, pa, pb);
    write_seq<float>(y_s, rows, y);
    write_pairs<int32_t>(pa, PAIRED ? pb : pa, PAIRED ? rows : 1, PAIRED ? geo.groups : rows * geo.groups,
                         write_partial, partial);
}

// Matrix-matrix: y[t][rows] = W x[t] for `tokens` tokens; tokens run in
// pairs sharing each decoded weight (two MACs per DSP), dense or N:M. The
// weights stream once per token pair.
template <class FMT, class SCHED, int T_MAX>
void linear_mm(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
               const int8_t* xq, const float* s_x, int tokens, int rows, int k, float* y, int32_t* partial,
               int write_partial) {
    static_assert(linear_fit<FMT, SCHED>::ok, "format and schedule do not fit");
    typedef linear_beat<FMT, SCHED> B;
    check_linear_args<FMT>(rows, k);
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(tokens > 0 && tokens <= T_MAX);
#endif
    const row_geometry<FMT> geo(k);
    const int pairs = (tokens + 1) / 2;
    hls::stream<ap_uint<32> > codes_s("codes"), unused_words("unused_words"), index_words("index_words"),
        unused_index("unused_index");
    hls::stream<ap_uint<8> > zeros_s("zeros"), unused_zeros("unused_zeros");
    hls::stream<ap_uint<16> > scales_s("scales"), unused_scales("unused_scales");
    hls::stream<typename B::w_t> w_s("w"), unused_w("unused_w");
    hls::stream<typename B::idx_t> idx("idx");
    hls::stream<float> ya("y_a"), yb("y_b");
    hls::stream<int32_t> pa("partial_a"), pb("partial_b");
#pragma HLS STREAM variable = yb depth = FMT::O_MAX
#pragma HLS STREAM variable = pb depth = FMT::O_MAX * B::GROUPS_MAX
#pragma HLS DATAFLOW
    read_rows<uint32_t, ap_uint<32>, 1, false>(codes, geo.code_words, rows, pairs, codes_s, unused_words);
    if (!FMT::DENSE) read_rows<uint32_t, ap_uint<32>, 1, false>(indices, geo.index_words, rows, pairs, index_words,
                                                               unused_index);
    if (!FMT::SYMMETRIC) read_rows<uint8_t, ap_uint<8>, 1, false>(zeros, geo.groups, rows, pairs, zeros_s,
                                                                unused_zeros);
    read_rows<uint16_t, ap_uint<16>, 1, false>(scales, geo.groups, rows, pairs, scales_s, unused_scales);
    decode_beats<FMT, SCHED, false>(codes_s, unused_words, index_words, zeros_s, unused_zeros, rows, k, pairs, w_s,
                                    unused_w, idx);
    mm_mac<FMT, SCHED>(xq, s_x, tokens, rows, k, write_partial, w_s, idx, scales_s, ya, yb, pa, pb);
    write_pairs<float>(ya, yb, tokens, rows, 1, y);
    write_pairs<int32_t>(pa, pb, tokens, rows * geo.groups, write_partial, partial);
}

}  // namespace llmaccel_hls

#endif
