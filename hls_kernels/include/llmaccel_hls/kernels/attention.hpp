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
    ap_int<8> q_buf[CFG::HEAD_DIM];
    float acc[CFG::HEAD_DIM];
ATTN_HEADS:
    for (int h = 0; h < CFG::HEADS; h++) {
        const int kvh = h / CFG::REP;  // Llama's repeat_kv
        const float sq = s_q[h];
    ATTN_LOAD_Q:
        for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II = 1
            q_buf[d] = q8[h * D + d];
        }
        // QK: the head's K rows stream through one element per cycle (a burst of D bytes per
        // cached token); the INT32 dot closes at each row's last element.
        acc32_t dot = 0;
        int t = 0, d = 0;
    ATTN_SCORES:
        for (int i = 0; i < seq_len * D; i++) {
#pragma HLS PIPELINE II = 1
            dot += ap_int<16>(q_buf[d] * ap_int<8>(k8[(t * CFG::KV_HEADS + kvh) * D + d]));
            if (d == D - 1) {
                const float qk_scale = sq * s_k[t * CFG::KV_HEADS + kvh];
                const float raw = (float)dot.to_int() * qk_scale;
                score[t] = raw * inv_sqrt_d;
                dot = 0;
                d = 0;
                t++;
            } else {
                d++;
            }
        }
        softmax<softmax_cfg>(score, seq_len, p);
    ATTN_ACC_INIT:
        for (int e = 0; e < D; e++) {
#pragma HLS PIPELINE II = 1
            acc[e] = 0.0f;
        }
        // PV: the V rows stream the same way; acc[d] is revisited every D cycles, so the FP32
        // adder's latency is hidden for D >= its depth, in the contract's order over t.
        float w = 0.0f;
        t = 0;
        d = 0;
    ATTN_VALUES:
        for (int i = 0; i < seq_len * D; i++) {
#pragma HLS PIPELINE II = 1
            if (d == 0) w = p[t] * s_v[t * CFG::KV_HEADS + kvh];
            const float term = w * (float)v8[(t * CFG::KV_HEADS + kvh) * D + d];
            acc[d] = acc[d] + term;
            if (d == D - 1) {
                d = 0;
                t++;
            } else {
                d++;
            }
        }
    ATTN_STORE:
        for (int e = 0; e < D; e++) {
#pragma HLS PIPELINE II = 1
            out[h * D + e] = acc[e];
        }
    }
}

}  // namespace llmaccel_hls

#endif
