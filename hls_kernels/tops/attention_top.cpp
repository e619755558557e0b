// Vitis kernel top: decode attention over the INT8 KV cache (cache in HBM via m_axi).
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/attention.hpp"

void attention_top(const int8_t* q8, const float* s_q, const int8_t* k8, const float* s_k, const int8_t* v8,
                   const float* s_v, int seq_len, float* out) {
#pragma HLS INTERFACE m_axi port = q8 offset = slave bundle = gmem_q
#pragma HLS INTERFACE m_axi port = s_q offset = slave bundle = gmem_q
#pragma HLS INTERFACE m_axi port = k8 offset = slave bundle = gmem_k
#pragma HLS INTERFACE m_axi port = s_k offset = slave bundle = gmem_k
#pragma HLS INTERFACE m_axi port = v8 offset = slave bundle = gmem_v
#pragma HLS INTERFACE m_axi port = s_v offset = slave bundle = gmem_v
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem_q
#pragma HLS INTERFACE s_axilite port = seq_len
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::decode_attention<instance_attn>(q8, s_q, k8, s_k, v8, s_v, seq_len, out);
}
