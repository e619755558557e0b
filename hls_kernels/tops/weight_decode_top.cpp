// Vitis kernel top: the weight decoder alone (packed codes -> INT8 + dense columns).
// One m_axi bundle per port, a depth on every port.
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/weight_decoder.hpp"

typedef llmaccel_hls::linear_port_depths<instance_fmt> wd_depths;
static const int WD_CODES_DEPTH = wd_depths::CODES;
static const int WD_INDICES_DEPTH = wd_depths::INDICES;
static const int WD_GROUPS_DEPTH = wd_depths::GROUPS;
static const int WD_OUT_DEPTH = instance_fmt::O_MAX * wd_depths::KEPT_MAX;

void weight_decode_top(const uint32_t* codes, const uint32_t* indices, const uint8_t* zeros, int rows, int k,
                       int8_t* d_out, int32_t* column_out) {
#pragma HLS INTERFACE m_axi port = codes offset = slave bundle = gmem_codes depth = WD_CODES_DEPTH
#pragma HLS INTERFACE m_axi port = indices offset = slave bundle = gmem_indices depth = WD_INDICES_DEPTH
#pragma HLS INTERFACE m_axi port = zeros offset = slave bundle = gmem_zeros depth = WD_GROUPS_DEPTH
#pragma HLS INTERFACE m_axi port = d_out offset = slave bundle = gmem_d depth = WD_OUT_DEPTH
#pragma HLS INTERFACE m_axi port = column_out offset = slave bundle = gmem_col depth = WD_OUT_DEPTH
#pragma HLS INTERFACE s_axilite port = rows
#pragma HLS INTERFACE s_axilite port = k
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::weight_decode<instance_fmt>(codes, indices, zeros, rows, k, d_out, column_out);
}
