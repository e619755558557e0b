// Decode attention over an INT8 KV cache with per-(token, kv head) FP32
// scales, grouped-query (docs/numerics.md section 4). One query token
// attends cache positions 0..seq_len-1:
//   score_t = (float(q8 . k8_t) * (s_q * s_k[t])) * (1/sqrt(head_dim))    INT32 dot, FP32 after
//   p = softmax(score)                                                    two-phase
//   out = sum over t in order of (p_t * s_v[t]) * float(v8_t)             FP32
#ifndef LLMACCEL_HLS_KERNELS_ATTENTION_HPP
#define LLMACCEL_HLS_KERNELS_ATTENTION_HPP

#include "../config.hpp"
#include "sfu.hpp"

namespace llmaccel_hls {

// Cache layout: k8/v8 [SEQ_MAX][KV_HEADS][HEAD_DIM] int8, s_k/s_v [SEQ_MAX][KV_HEADS] float.
template <class CFG>
void decode_attention(const int8_t* q8, const float* s_q, const int8_t* k8, const float* s_k, const int8_t* v8,
                      const float* s_v, int seq_len, float* out) {
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(seq_len > 0 && seq_len <= CFG::SEQ_MAX);
#endif
    typedef sfu_config<CFG::SEQ_MAX> softmax_cfg;
    const int D = CFG::HEAD_DIM;
    const float inv_sqrt_d = CFG::INV_SQRT_HEAD_DIM;  // compile-time constant
    float score[CFG::SEQ_MAX];
    float p[CFG::SEQ_MAX];
ATTN_HEADS:
    for (int h = 0; h < CFG::HEADS; h++) {
        const int kvh = h / CFG::REP;  // Llama's repeat_kv
        const float sq = s_q[h];
    ATTN_SCORES:
        for (int t = 0; t < seq_len; t++) {
#pragma HLS PIPELINE II = 1
            const int8_t* kr = k8 + (t * CFG::KV_HEADS + kvh) * D;
            acc32_t dot = 0;
        ATTN_QK_DOT:
            for (int d = 0; d < D; d++) {
#pragma HLS UNROLL factor = CFG::DOT_LANES
                dot += ap_int<16>(ap_int<8>(q8[h * D + d]) * ap_int<8>(kr[d]));
            }
            const float qk_scale = sq * s_k[t * CFG::KV_HEADS + kvh];
            const float raw = (float)dot.to_int() * qk_scale;
            score[t] = raw * inv_sqrt_d;
        }
        softmax<softmax_cfg>(score, seq_len, p);
        float acc[CFG::HEAD_DIM];
#pragma HLS ARRAY_PARTITION variable = acc cyclic factor = CFG::DOT_LANES
    ATTN_ACC_INIT:
        for (int d = 0; d < D; d++) acc[d] = 0.0f;
    ATTN_VALUES:
        for (int t = 0; t < seq_len; t++) {
            const float w = p[t] * s_v[t * CFG::KV_HEADS + kvh];
            const int8_t* vr = v8 + (t * CFG::KV_HEADS + kvh) * D;
        ATTN_PV:
            for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::DOT_LANES
                const float term = w * (float)vr[d];
                acc[d] = acc[d] + term;
            }
        }
    ATTN_STORE:
        for (int d = 0; d < D; d++) out[h * D + d] = acc[d];
    }
}

}  // namespace llmaccel_hls

#endif
