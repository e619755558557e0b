// Vitis kernel top: streaming weight decoder with AXI4-Stream ports (axis)
// for the packed words in and the decoded weights/columns out.
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/weight_decoder_stream.hpp"

static const int SD_ZEROS_DEPTH = llmaccel_hls::linear_port_depths<instance_fmt>::GROUPS;

void weight_decode_stream_top(hls::stream<ap_uint<32> >& code_words, hls::stream<ap_uint<32> >& index_words,
                              const uint8_t* zeros, int rows, int k, hls::stream<ap_int<8> >& d_out,
                              hls::stream<ap_uint<16> >& column_out) {
#pragma HLS INTERFACE axis port = code_words
#pragma HLS INTERFACE axis port = index_words
#pragma HLS INTERFACE axis port = d_out
#pragma HLS INTERFACE axis port = column_out
#pragma HLS INTERFACE m_axi port = zeros offset = slave bundle = gmem_zeros depth = SD_ZEROS_DEPTH
#pragma HLS INTERFACE s_axilite port = rows
#pragma HLS INTERFACE s_axilite port = k
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::weight_decode_stream<instance_fmt>(code_words, index_words, zeros, rows, k, d_out, column_out);
}
