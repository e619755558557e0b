// C ABI for ctypes: fills the input streams from arrays, calls the Vitis top, drains the outputs.
#include "weight_decode_stream_top.cpp"
extern "C" int llmaccel_weight_decode_stream(const uint32_t* codes, int n_code_words, const uint32_t* indices,
                                             int n_index_words, const uint8_t* zeros, int rows, int k,
                                             int8_t* d_out, int32_t* column_out, int n_out) {
    hls::stream<ap_uint<32> > cw, iw;
    hls::stream<ap_int<8> > d;
    hls::stream<ap_uint<16> > col;
    for (int i = 0; i < n_code_words; i++) cw.write(codes[i]);
    for (int i = 0; i < n_index_words; i++) iw.write(indices[i]);
    weight_decode_stream_top(cw, iw, zeros, rows, k, d, col);
    for (int i = 0; i < n_out; i++) {
        d_out[i] = (int8_t)d.read().to_int();
        column_out[i] = (int32_t)col.read().to_int();
    }
    // every word consumed, nothing left over: the reader followed the row padding exactly
    return (cw.empty() && iw.empty() && d.empty() && col.empty()) ? 0 : 1;
}
