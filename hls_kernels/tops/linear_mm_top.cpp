// Vitis kernel top: one linear layer, MM (several tokens) path.
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/linear.hpp"

void linear_mm_top(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
                   const int8_t* xq, const float* s_x, int tokens, int rows, int k, float* y, int32_t* partial) {
#pragma HLS INTERFACE m_axi port = codes offset = slave bundle = gmem_w
#pragma HLS INTERFACE m_axi port = indices offset = slave bundle = gmem_w
#pragma HLS INTERFACE m_axi port = scales offset = slave bundle = gmem_s
#pragma HLS INTERFACE m_axi port = zeros offset = slave bundle = gmem_s
#pragma HLS INTERFACE m_axi port = xq offset = slave bundle = gmem_a
#pragma HLS INTERFACE m_axi port = s_x offset = slave bundle = gmem_a
#pragma HLS INTERFACE m_axi port = y offset = slave bundle = gmem_a
#pragma HLS INTERFACE m_axi port = partial offset = slave bundle = gmem_p
#pragma HLS INTERFACE s_axilite port = tokens
#pragma HLS INTERFACE s_axilite port = rows
#pragma HLS INTERFACE s_axilite port = k
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::linear_mm<instance_fmt, instance_sched, INSTANCE_T_MAX>(codes, indices, scales, zeros, xq, s_x,
                                                                          tokens, rows, k, y, partial);
}
