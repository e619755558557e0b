// Vitis kernel top: the weight decoder alone (packed codes -> INT8 + dense columns).
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/weight_decoder.hpp"

void weight_decode_top(const uint32_t* codes, const uint32_t* indices, const uint8_t* zeros, int rows, int k,
                       int8_t* d_out, int32_t* column_out) {
#pragma HLS INTERFACE m_axi port = codes offset = slave bundle = gmem_w
#pragma HLS INTERFACE m_axi port = indices offset = slave bundle = gmem_w
#pragma HLS INTERFACE m_axi port = zeros offset = slave bundle = gmem_s
#pragma HLS INTERFACE m_axi port = d_out offset = slave bundle = gmem_o
#pragma HLS INTERFACE m_axi port = column_out offset = slave bundle = gmem_o
#pragma HLS INTERFACE s_axilite port = rows
#pragma HLS INTERFACE s_axilite port = k
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::weight_decode<instance_fmt>(codes, indices, zeros, rows, k, d_out, column_out);
}
