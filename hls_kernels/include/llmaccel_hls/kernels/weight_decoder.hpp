// Weight decoder: packed 2/3/4/8-bit codes (+ N:M in-block indices, uint8
// zeros) -> INT8 d = code - zero and the dense column of each kept value.
// The FP16 group scale is not applied here: the contract applies it to the
// group's INT32 partial sum (docs/numerics.md sections 1 and 3).
#ifndef LLMACCEL_HLS_KERNELS_WEIGHT_DECODER_HPP
#define LLMACCEL_HLS_KERNELS_WEIGHT_DECODER_HPP

#include "../config.hpp"
#include "../primitives/bitstream.hpp"

namespace llmaccel_hls {

// Per-row stream geometry for a runtime K.
template <class FMT>
struct row_geometry {
    int kept;
    int code_words;
    int index_words;
    int groups;
    explicit row_geometry(int k) {
        kept = k / FMT::M * FMT::N;
        code_words = stream_words<FMT::BITS>(kept);
        index_words = FMT::DENSE ? 0 : stream_words<FMT::INDEX_BITS>(kept);
        groups = k / FMT::GROUP;
    }
};

// Decode kept value j of one row: INT8 weight and its dense column.
template <class FMT>
inline void decode_kept(const uint32_t* code_row, int code_words, const uint32_t* index_row, int index_words,
                        ap_uint<8> zero, int j, ap_int<8>& d, int& column) {
#pragma HLS INLINE
    ap_uint<FMT::BITS> code = unpack_field<FMT::BITS>(code_row, code_words, j);
    d = ap_int<8>(ap_int<10>(code) - ap_int<10>(zero));
    if (FMT::DENSE) {
        column = j;
    } else {
        ap_uint<FMT::INDEX_BITS == 0 ? 1 : FMT::INDEX_BITS> idx =
            unpack_field<FMT::INDEX_BITS == 0 ? 1 : FMT::INDEX_BITS>(index_row, index_words, j);
        column = (j / FMT::N) * FMT::M + int(idx);
    }
}

// Zero point of group `at` (= row * groups + group); symmetric layers carry no zeros array.
inline ap_uint<8> group_zero(bool symmetric, int zero_point, const uint8_t* zeros, int at) {
#pragma HLS INLINE
    return symmetric ? ap_uint<8>(zero_point) : ap_uint<8>(zeros[at]);
}

// Decode a whole layer: d [rows][kept] INT8, column [rows][kept].
template <class FMT>
void weight_decode(const uint32_t* codes, const uint32_t* indices, const uint8_t* zeros, int rows, int k,
                   int8_t* d_out, int32_t* column_out) {
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(k > 0 && k <= FMT::K_MAX && k % FMT::GROUP == 0);
    LLMACCEL_ASSERT(rows > 0 && rows <= FMT::O_MAX);
    LLMACCEL_ASSERT(FMT::SYMMETRIC || zeros != 0);
#endif
    const row_geometry<FMT> geo(k);
DECODE_ROWS:
    for (int o = 0; o < rows; o++) {
    DECODE_KEPT:
        for (int j = 0; j < geo.kept; j++) {
#pragma HLS PIPELINE II = 1
            const int g = j / FMT::KEPT_PER_GROUP;
            ap_int<8> d;
            int col;
            decode_kept<FMT>(codes + o * geo.code_words, geo.code_words, indices + o * geo.index_words,
                             geo.index_words, group_zero(FMT::SYMMETRIC, FMT::ZERO_POINT, zeros, o * geo.groups + g),
                             j, d, col);
            d_out[o * geo.kept + j] = (int8_t)d.to_int();
            column_out[o * geo.kept + j] = col;
        }
    }
}

}  // namespace llmaccel_hls

#endif
