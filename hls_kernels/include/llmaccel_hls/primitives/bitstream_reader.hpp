// Streaming bit-stream reader: pulls 32-bit words from an hls::stream as the
// values need them (a 64-bit shift register), the way a decoder fed straight
// from an HBM burst reads the packed format. Rows are padded to whole words
// (sparse_dsp/packed_format.py), so a reader is reset at each row start.
#ifndef LLMACCEL_HLS_PRIMITIVES_BITSTREAM_READER_HPP
#define LLMACCEL_HLS_PRIMITIVES_BITSTREAM_READER_HPP

#include "hls_stream.h"
#include "../common.hpp"

namespace llmaccel_hls {

// W bits per call (W <= 64: a whole beat of CHAIN fields for the linear
// kernels), pulling at most ceil(W/32) words per call, and only as needed.
template <int W>
struct bitstream_reader {
    static_assert(W >= 1 && W <= 64, "field width must be 1..64");
    ap_uint<W + 32> buf;
    int nbits;

    bitstream_reader() : buf(0), nbits(0) {}

    void reset() {
        buf = 0;
        nbits = 0;
    }

    ap_uint<W> next(hls::stream<ap_uint<32> >& words) {
#pragma HLS INLINE
    BITSTREAM_FILL:
        for (int i = 0; i < (W + 31) / 32; i++) {
#pragma HLS UNROLL
            if (nbits < W) {
                ap_uint<W + 32> w = words.read();
                buf |= w << nbits;
                nbits += 32;
            }
        }
        ap_uint<W> v = buf(W - 1, 0);
        buf >>= W;
        nbits -= W;
        return v;
    }
};

}  // namespace llmaccel_hls

#endif
