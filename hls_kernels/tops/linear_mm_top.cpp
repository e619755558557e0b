// Vitis kernel top: one linear layer, MM (several tokens) path. One m_axi
// bundle per port, a depth on every port, write_partial instead of a
// null-pointer test (see linear_mv_top.cpp).
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/linear.hpp"

typedef llmaccel_hls::linear_port_depths<instance_fmt, INSTANCE_T_MAX> mm_depths;
static const int MM_CODES_DEPTH = mm_depths::CODES;
static const int MM_INDICES_DEPTH = mm_depths::INDICES;
static const int MM_GROUPS_DEPTH = mm_depths::GROUPS;
static const int MM_X_DEPTH = mm_depths::X;
static const int MM_TOKENS_DEPTH = mm_depths::TOKENS;
static const int MM_Y_DEPTH = mm_depths::Y;
static const int MM_PARTIAL_DEPTH = mm_depths::PARTIAL;

void linear_mm_top(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
                   const int8_t* xq, const float* s_x, int tokens, int rows, int k, float* y, int32_t* partial,
                   int write_partial) {
#pragma HLS INTERFACE m_axi port = codes offset = slave bundle = gmem_codes depth = MM_CODES_DEPTH
#pragma HLS INTERFACE m_axi port = indices offset = slave bundle = gmem_indices depth = MM_INDICES_DEPTH
#pragma HLS INTERFACE m_axi port = scales offset = slave bundle = gmem_scales depth = MM_GROUPS_DEPTH
#pragma HLS INTERFACE m_axi port = zeros offset = slave bundle = gmem_zeros depth = MM_GROUPS_DEPTH
#pragma HLS INTERFACE m_axi port = xq offset = slave bundle = gmem_x depth = MM_X_DEPTH
#pragma HLS INTERFACE m_axi port = s_x offset = slave bundle = gmem_sx depth = MM_TOKENS_DEPTH
#pragma HLS INTERFACE m_axi port = y offset = slave bundle = gmem_y depth = MM_Y_DEPTH
#pragma HLS INTERFACE m_axi port = partial offset = slave bundle = gmem_partial depth = MM_PARTIAL_DEPTH
#pragma HLS INTERFACE s_axilite port = tokens
#pragma HLS INTERFACE s_axilite port = rows
#pragma HLS INTERFACE s_axilite port = k
#pragma HLS INTERFACE s_axilite port = write_partial
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::linear_mm<instance_fmt, instance_sched, INSTANCE_T_MAX>(codes, indices, scales, zeros, xq, s_x,
                                                                           tokens, rows, k, y, partial,
                                                                           write_partial);
}
