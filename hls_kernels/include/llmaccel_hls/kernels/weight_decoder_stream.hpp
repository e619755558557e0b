// Streaming weight decoder: code words (and N:M index words) arrive on AXI
// streams row by row, decoded INT8 weights and their dense columns leave on
// streams, one per cycle (II=1) - the form that sits between an HBM reader
// and the DSP chain in a dataflow design. Same numerics as weight_decoder.hpp.
#ifndef LLMACCEL_HLS_KERNELS_WEIGHT_DECODER_STREAM_HPP
#define LLMACCEL_HLS_KERNELS_WEIGHT_DECODER_STREAM_HPP

#include "hls_stream.h"
#include "../config.hpp"
#include "../primitives/bitstream_reader.hpp"

namespace llmaccel_hls {

template <class FMT>
void weight_decode_stream(hls::stream<ap_uint<32> >& code_words, hls::stream<ap_uint<32> >& index_words,
                          const uint8_t* zeros, int rows, int k, hls::stream<ap_int<8> >& d_out,
                          hls::stream<ap_uint<16> >& column_out) {
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(k > 0 && k <= FMT::K_MAX && k % FMT::GROUP == 0);
    LLMACCEL_ASSERT(rows > 0 && rows <= FMT::O_MAX);
    LLMACCEL_ASSERT(FMT::K_MAX <= 65536);
#endif
    const int kept = k / FMT::M * FMT::N;
    const int groups = k / FMT::GROUP;
    bitstream_reader<FMT::BITS> codes;
    bitstream_reader<FMT::INDEX_BITS == 0 ? 1 : FMT::INDEX_BITS> idx;
SDEC_ROWS:
    for (int o = 0; o < rows; o++) {
        codes.reset();
        idx.reset();
    SDEC_KEPT:
        for (int j = 0; j < kept; j++) {
#pragma HLS PIPELINE II = 1
            const int g = j / FMT::KEPT_PER_GROUP;
            const ap_uint<8> z = FMT::SYMMETRIC ? ap_uint<8>(FMT::ZERO_POINT) : ap_uint<8>(zeros[o * groups + g]);
            const ap_uint<FMT::BITS> u = codes.next(code_words);
            d_out.write(ap_int<8>(ap_int<10>(u) - ap_int<10>(z)));
            int col = j;
            if (!FMT::DENSE) col = (j / FMT::N) * FMT::M + int(idx.next(index_words));
            column_out.write(ap_uint<16>(col));
        }
    }
}

}  // namespace llmaccel_hls

#endif
