// Vitis kernel top: decode attention over the INT8 KV cache (cache in HBM via m_axi).
// One m_axi bundle per port, a depth on every port.
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/attention.hpp"

static const int AT_Q_DEPTH = instance_attn::HEADS * instance_attn::HEAD_DIM;
static const int AT_SQ_DEPTH = instance_attn::HEADS;
static const int AT_KV_DEPTH = instance_attn::SEQ_MAX * instance_attn::KV_HEADS * instance_attn::HEAD_DIM;
static const int AT_SKV_DEPTH = instance_attn::SEQ_MAX * instance_attn::KV_HEADS;

void attention_top(const int8_t* q8, const float* s_q, const int8_t* k8, const float* s_k, const int8_t* v8,
                   const float* s_v, int seq_len, float* out) {
#pragma HLS INTERFACE m_axi port = q8 offset = slave bundle = gmem_q depth = AT_Q_DEPTH
#pragma HLS INTERFACE m_axi port = s_q offset = slave bundle = gmem_sq depth = AT_SQ_DEPTH
#pragma HLS INTERFACE m_axi port = k8 offset = slave bundle = gmem_k depth = AT_KV_DEPTH
#pragma HLS INTERFACE m_axi port = s_k offset = slave bundle = gmem_sk depth = AT_SKV_DEPTH
#pragma HLS INTERFACE m_axi port = v8 offset = slave bundle = gmem_v depth = AT_KV_DEPTH
#pragma HLS INTERFACE m_axi port = s_v offset = slave bundle = gmem_sv depth = AT_SKV_DEPTH
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem_out depth = AT_Q_DEPTH
#pragma HLS INTERFACE s_axilite port = seq_len
#pragma HLS INTERFACE s_axilite port = return
    llmaccel_hls::decode_attention<instance_attn>(q8, s_q, k8, s_k, v8, s_v, seq_len, out);
}
