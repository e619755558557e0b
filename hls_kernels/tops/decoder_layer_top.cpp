// Vitis kernel top: one decoder layer, MV (decode) path, for the layer
// configuration instance_layer. Weights, norms and the KV cache live in HBM
// (m_axi, one bundle per kind so they can sit on separate pseudo channels);
// scalars over s_axilite.
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/decoder_layer.hpp"

void decoder_layer_top(const float* x_in, float* x_out, int pos, float eps, const float* norm_w,
                       const float* rope_cs, const uint32_t* w_words, const uint16_t* w_scales,
                       const uint8_t* w_zeros, int8_t* k_cache, float* k_scale, int8_t* v_cache, float* v_scale) {
#pragma HLS INTERFACE m_axi port = x_in offset = slave bundle = gmem_x
#pragma HLS INTERFACE m_axi port = x_out offset = slave bundle = gmem_x
#pragma HLS INTERFACE m_axi port = norm_w offset = slave bundle = gmem_x
#pragma HLS INTERFACE m_axi port = rope_cs offset = slave bundle = gmem_x
#pragma HLS INTERFACE m_axi port = w_words offset = slave bundle = gmem_w
#pragma HLS INTERFACE m_axi port = w_scales offset = slave bundle = gmem_s
#pragma HLS INTERFACE m_axi port = w_zeros offset = slave bundle = gmem_s
#pragma HLS INTERFACE m_axi port = k_cache offset = slave bundle = gmem_k
#pragma HLS INTERFACE m_axi port = k_scale offset = slave bundle = gmem_k
#pragma HLS INTERFACE m_axi port = v_cache offset = slave bundle = gmem_v
#pragma HLS INTERFACE m_axi port = v_scale offset = slave bundle = gmem_v
#pragma HLS INTERFACE s_axilite port = pos
#pragma HLS INTERFACE s_axilite port = eps
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::decoder_layer_mv<instance_layer>(x_in, x_out, pos, eps, norm_w, rope_cs, w_words, w_scales,
                                                   w_zeros, k_cache, k_scale, v_cache, v_scale);
}
