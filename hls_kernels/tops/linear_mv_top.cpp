// Vitis kernel top: one linear layer, MV (decode) path. The configuration
// (instance_fmt, instance_sched) comes from the generated llmaccel_instance.hpp.
// One m_axi bundle per port (each can sit on its own HBM pseudo channel), a
// depth on every port for cosim, and write_partial (s_axilite) switches the
// verification port instead of a null-pointer test.
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/linear.hpp"

typedef llmaccel_hls::linear_port_depths<instance_fmt> mv_depths;
static const int MV_CODES_DEPTH = mv_depths::CODES;
static const int MV_INDICES_DEPTH = mv_depths::INDICES;
static const int MV_GROUPS_DEPTH = mv_depths::GROUPS;
static const int MV_X_DEPTH = mv_depths::X;
static const int MV_Y_DEPTH = mv_depths::Y;
static const int MV_PARTIAL_DEPTH = mv_depths::PARTIAL;

void linear_mv_top(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
                   const int8_t* xq, float s_x, int rows, int k, float* y, int32_t* partial, int write_partial) {
#pragma HLS INTERFACE m_axi port = codes offset = slave bundle = gmem_codes depth = MV_CODES_DEPTH
#pragma HLS INTERFACE m_axi port = indices offset = slave bundle = gmem_indices depth = MV_INDICES_DEPTH
#pragma HLS INTERFACE m_axi port = scales offset = slave bundle = gmem_scales depth = MV_GROUPS_DEPTH
#pragma HLS INTERFACE m_axi port = zeros offset = slave bundle = gmem_zeros depth = MV_GROUPS_DEPTH
#pragma HLS INTERFACE m_axi port = xq offset = slave bundle = gmem_x depth = MV_X_DEPTH
#pragma HLS INTERFACE m_axi port = y offset = slave bundle = gmem_y depth = MV_Y_DEPTH
#pragma HLS INTERFACE m_axi port = partial offset = slave bundle = gmem_partial depth = MV_PARTIAL_DEPTH
#pragma HLS INTERFACE s_axilite port = s_x
#pragma HLS INTERFACE s_axilite port = rows
#pragma HLS INTERFACE s_axilite port = k
#pragma HLS INTERFACE s_axilite port = write_partial
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::linear_mv<instance_fmt, instance_sched>(codes, indices, scales, zeros, xq, s_x, rows, k, y,
                                                           partial, write_partial);
}
