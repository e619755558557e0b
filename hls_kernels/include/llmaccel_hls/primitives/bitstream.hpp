// Bit-stream unpack: the reader side of sparse_dsp/packed_format.py.
//
// A row's values are a little-endian bit stream over 32-bit words: value j
// occupies bits [j*W, (j+1)*W), LSB first, and may straddle a word boundary
// (3-bit codes do). The reader concatenates the two words a value can touch,
// which is one 64-bit shifter in hardware.
#ifndef LLMACCEL_HLS_PRIMITIVES_BITSTREAM_HPP
#define LLMACCEL_HLS_PRIMITIVES_BITSTREAM_HPP

#include "../common.hpp"

namespace llmaccel_hls {

// Number of 32-bit words a row of n values of W bits occupies.
template <int W>
inline int stream_words(int n) {
    return (n * W + 31) / 32;
}

// Value j (W bits) of the bit stream `words` holding `n_words` words.
template <int W>
inline ap_uint<W> unpack_field(const uint32_t* words, int n_words, int j) {
#pragma HLS INLINE
    static_assert(W >= 1 && W <= 32, "bit-stream field width must be 1..32");
    const int pos = j * W;
    const int word = pos >> 5;
    const int off = pos & 31;
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(word < n_words);
#endif
    ap_uint<64> pair = words[word];
    if (off + W > 32) {
        ap_uint<64> hi = words[word + 1];
        pair |= hi << 32;
    }
    return ap_uint<W>(pair >> off);
}

}  // namespace llmaccel_hls

#endif
