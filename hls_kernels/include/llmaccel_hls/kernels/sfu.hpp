// Special function unit ops in FP32 (docs/numerics.md section 4). Reductions
// run sequentially in index order from 0.0f (a pipelined accumulator's
// order), each operation rounds on its own, and only exp is not exact
// against the golden (libm / hls::exp vs numpy: 4 ULP bound).
#ifndef LLMACCEL_HLS_KERNELS_SFU_HPP
#define LLMACCEL_HLS_KERNELS_SFU_HPP

#include "../config.hpp"

namespace llmaccel_hls {

template <class CFG>
inline void check_len(int n) {
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(n > 0 && n <= CFG::N_MAX);
#endif
}

// Two-phase softmax: phase 1 the max, phase 2 exp(x - max) and their sum; then p = e / sum.
template <class CFG>
void softmax(const float* x, int n, float* p) {
    check_len<CFG>(n);
    float e_buf[CFG::N_MAX];
    float m = x[0];
SOFTMAX_MAX:
    for (int i = 1; i < n; i++) {
#pragma HLS PIPELINE II = 1
        m = x[i] > m ? x[i] : m;
    }
    float total = 0.0f;
SOFTMAX_EXP_SUM:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        const float d = x[i] - m;
        const float e = exp_f32(d);
        e_buf[i] = e;
        total = total + e;
    }
SOFTMAX_NORM:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::UNROLL
        p[i] = e_buf[i] / total;
    }
}

// rmsnorm: x * (1 / sqrt(sum(x^2)/n + eps)) * w.
template <class CFG>
void rmsnorm(const float* x, const float* w, float eps, int n, float* y) {
    check_len<CFG>(n);
    float ss = 0.0f;
RMSNORM_SUMSQ:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        const float sq = x[i] * x[i];
        ss = ss + sq;
    }
    const float ms = ss / (float)n;
    const float den = sqrt_f32(ms + eps);
    const float inv = 1.0f / den;
RMSNORM_SCALE:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::UNROLL
        const float t = x[i] * inv;
        y[i] = t * w[i];
    }
}

// layernorm: (x - mean) * (1 / sqrt(var + eps)) * w + b, mean/var by sequential sums / n.
template <class CFG>
void layernorm(const float* x, const float* w, const float* b, float eps, int n, float* y) {
    check_len<CFG>(n);
    float s = 0.0f;
LAYERNORM_SUM:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        s = s + x[i];
    }
    const float mean = s / (float)n;
    float ss = 0.0f;
LAYERNORM_SUMSQ:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        const float c = x[i] - mean;
        const float sq = c * c;
        ss = ss + sq;
    }
    const float var = ss / (float)n;
    const float inv = 1.0f / sqrt_f32(var + eps);
LAYERNORM_SCALE:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::UNROLL
        const float c = x[i] - mean;
        const float t = c * inv;
        const float u = t * w[i];
        y[i] = u + b[i];
    }
}

inline float silu_scalar(float z) {
#pragma HLS INLINE
    const float e = exp_f32(-z);
    const float den = 1.0f + e;
    return z / den;
}

template <class CFG>
void silu(const float* z, int n, float* y) {
    check_len<CFG>(n);
SILU_ELEMS:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::UNROLL
        y[i] = silu_scalar(z[i]);
    }
}

// silu(gate) * up, the fused SwiGLU the FFN uses.
template <class CFG>
void silu_mul(const float* gate, const float* up, int n, float* y) {
    check_len<CFG>(n);
SILU_MUL_ELEMS:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::UNROLL
        const float s = silu_scalar(gate[i]);
        y[i] = s * up[i];
    }
}

template <class CFG>
void add(const float* a, const float* b, int n, float* y) {
    check_len<CFG>(n);
ADD_ELEMS:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::UNROLL
        y[i] = a[i] + b[i];
    }
}

template <class CFG>
void mul(const float* a, const float* b, int n, float* y) {
    check_len<CFG>(n);
MUL_ELEMS:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::UNROLL
        y[i] = a[i] * b[i];
    }
}

// RoPE, HF rotate-half convention, on `heads` vectors of head_dim (in place
// allowed: each output pair reads both halves before writing). cos/sin are
// the host-computed tables for this position, [head_dim].
template <class CFG>
void rope(const float* x, const float* cos_t, const float* sin_t, int heads, int head_dim, float* y) {
    check_len<CFG>(heads * head_dim);
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(head_dim % 2 == 0);
#endif
    const int half = head_dim / 2;
ROPE_HEADS:
    for (int h = 0; h < heads; h++) {
    ROPE_PAIRS:
        for (int i = 0; i < half; i++) {
#pragma HLS PIPELINE II = 1
            const float x1 = x[h * head_dim + i];
            const float x2 = x[h * head_dim + i + half];
            const float a1 = x1 * cos_t[i];
            const float b1 = (-x2) * sin_t[i];
            const float a2 = x2 * cos_t[i + half];
            const float b2 = x1 * sin_t[i + half];
            y[h * head_dim + i] = a1 + b1;
            y[h * head_dim + i + half] = a2 + b2;
        }
    }
}

}  // namespace llmaccel_hls

#endif
