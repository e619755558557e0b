// Vitis kernel top: one decoder layer, MV (decode) path, for the layer
// configuration instance_layer. Weights, norms and the KV cache live in HBM
// (m_axi, one bundle per port so each can sit on its own pseudo channel, a
// depth on every port for cosim); scalars over s_axilite.
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/decoder_layer.hpp"

typedef llmaccel_hls::layer_port_depths<instance_layer> layer_depths;
static const int DL_X_DEPTH = instance_layer::HIDDEN;
static const int DL_NORM_DEPTH = 2 * instance_layer::HIDDEN;
static const int DL_ROPE_DEPTH = 2 * instance_layer::HEAD_DIM;
static const int DL_W_DEPTH = layer_depths::W_WORDS;
static const int DL_G_DEPTH = layer_depths::W_GROUPS;
static const int DL_KV_DEPTH = layer_depths::KV;
static const int DL_KVS_DEPTH = layer_depths::KV_SCALE;

void decoder_layer_top(const float* x_in, float* x_out, int pos, float eps, const float* norm_w,
                       const float* rope_cs, const uint32_t* w_words, const uint16_t* w_scales,
                       const uint8_t* w_zeros, int8_t* k_cache, float* k_scale, int8_t* v_cache, float* v_scale) {
#pragma HLS INTERFACE m_axi port = x_in offset = slave bundle = gmem_x_in depth = DL_X_DEPTH
#pragma HLS INTERFACE m_axi port = x_out offset = slave bundle = gmem_x_out depth = DL_X_DEPTH
#pragma HLS INTERFACE m_axi port = norm_w offset = slave bundle = gmem_norm depth = DL_NORM_DEPTH
#pragma HLS INTERFACE m_axi port = rope_cs offset = slave bundle = gmem_rope depth = DL_ROPE_DEPTH
#pragma HLS INTERFACE m_axi port = w_words offset = slave bundle = gmem_w depth = DL_W_DEPTH
#pragma HLS INTERFACE m_axi port = w_scales offset = slave bundle = gmem_scales depth = DL_G_DEPTH
#pragma HLS INTERFACE m_axi port = w_zeros offset = slave bundle = gmem_zeros depth = DL_G_DEPTH
#pragma HLS INTERFACE m_axi port = k_cache offset = slave bundle = gmem_k depth = DL_KV_DEPTH
#pragma HLS INTERFACE m_axi port = k_scale offset = slave bundle = gmem_k_scale depth = DL_KVS_DEPTH
#pragma HLS INTERFACE m_axi port = v_cache offset = slave bundle = gmem_v depth = DL_KV_DEPTH
#pragma HLS INTERFACE m_axi port = v_scale offset = slave bundle = gmem_v_scale depth = DL_KVS_DEPTH
#pragma HLS INTERFACE s_axilite port = pos
#pragma HLS INTERFACE s_axilite port = eps
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::decoder_layer_mv<instance_layer>(x_in, x_out, pos, eps, norm_w, rope_cs, w_words, w_scales,
                                                   w_zeros, k_cache, k_scale, v_cache, v_scale);
}
