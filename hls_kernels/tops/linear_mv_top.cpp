// Vitis kernel top: one linear layer, MV (decode) path. The configuration
// (instance_fmt, instance_sched) comes from the generated llmaccel_instance.hpp.
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/linear.hpp"

void linear_mv_top(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
                   const int8_t* xq, float s_x, int rows, int k, float* y, int32_t* partial) {
#pragma HLS INTERFACE m_axi port = codes offset = slave bundle = gmem_w
#pragma HLS INTERFACE m_axi port = indices offset = slave bundle = gmem_w
#pragma HLS INTERFACE m_axi port = scales offset = slave bundle = gmem_s
#pragma HLS INTERFACE m_axi port = zeros offset = slave bundle = gmem_s
#pragma HLS INTERFACE m_axi port = xq offset = slave bundle = gmem_a
#pragma HLS INTERFACE m_axi port = y offset = slave bundle = gmem_a
#pragma HLS INTERFACE m_axi port = partial offset = slave bundle = gmem_p
#pragma HLS INTERFACE s_axilite port = s_x
#pragma HLS INTERFACE s_axilite port = rows
#pragma HLS INTERFACE s_axilite port = k
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::linear_mv<instance_fmt, instance_sched>(codes, indices, scales, zeros, xq, s_x, rows, k, y,
                                                           partial);
}
