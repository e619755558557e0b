// Per-vector symmetric INT8 activation quantization (docs/numerics.md section 2):
//   amax = max|x|; s = amax / 127 (FP32 division; 1 when amax == 0);
//   q = clamp(rint(x / s), -127, 127)
// Division, not a reciprocal multiply: it is what every implementation can
// reproduce exactly. -128 is never produced.
#ifndef LLMACCEL_HLS_KERNELS_QUANTIZE_HPP
#define LLMACCEL_HLS_KERNELS_QUANTIZE_HPP

#include "../config.hpp"

namespace llmaccel_hls {

static const int ACT_QMAX = 127;

template <class CFG>
float quantize_activation(const float* x, int n, int8_t* q) {
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(n > 0 && n <= CFG::N_MAX);
#endif
    float amax = 0.0f;
QUANT_AMAX:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        const float a = std::fabs(x[i]);
        amax = a > amax ? a : amax;
    }
    const float s = (amax == 0.0f) ? 1.0f : amax / (float)ACT_QMAX;
QUANT_CODES:
    for (int i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS UNROLL factor = CFG::UNROLL
        float r = rint_f32(x[i] / s);
        r = r > (float)ACT_QMAX ? (float)ACT_QMAX : (r < -(float)ACT_QMAX ? -(float)ACT_QMAX : r);
        q[i] = (int8_t)r;
    }
    return s;
}

}  // namespace llmaccel_hls

#endif
