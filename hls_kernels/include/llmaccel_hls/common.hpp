// Shared types and helpers of the llmaccel HLS kernel library.
//
// Header-only; C-simulated with g++ and the open ap_types headers, synthesised
// with Vitis HLS. FP32 arithmetic follows docs/numerics.md: every product and
// sum rounds on its own, so builds use -ffp-contract=off (Vitis HLS does not
// contract unless asked).
#ifndef LLMACCEL_HLS_COMMON_HPP
#define LLMACCEL_HLS_COMMON_HPP

#include <stdint.h>
#include <cmath>
#include "ap_int.h"

#ifndef __SYNTHESIS__
#include <cassert>
#define LLMACCEL_ASSERT(cond) assert(cond)
#else
#include "hls_math.h"
#define LLMACCEL_ASSERT(cond)
#endif

namespace llmaccel_hls {

typedef ap_int<8> int8_t_hw;    // INT8 weight / activation on chip
typedef ap_int<32> acc32_t;     // exact INT32 group partial sum

// Compile-time integer log2 of a power of two (N:M index width).
template <int X>
struct log2_pow2 {
    static const int value = 1 + log2_pow2<X / 2>::value;
};
template <>
struct log2_pow2<1> {
    static const int value = 0;
};

template <int A, int B>
struct ceil_div {
    static const int value = (A + B - 1) / B;
};

// Exact IEEE binary16 -> binary32 conversion from the raw bits (subnormals,
// infinities and NaN included). Written with integer ops so that it
// synthesises to a few LUTs and C-simulates without a half type.
inline float fp16_bits_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t expo = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    uint32_t bits;
    if (expo == 0) {
        if (mant == 0) {
            bits = sign;
        } else {
            // subnormal half: normalise into a float
            int e = -1;
        FP16_NORM:
            do {
                mant <<= 1;
                e++;
            } while ((mant & 0x400u) == 0);
            mant &= 0x3FFu;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (expo == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((expo + (127 - 15)) << 23) | (mant << 13);
    }
    union {
        uint32_t u;
        float f;
    } cvt;
    cvt.u = bits;
    return cvt.f;
}

// Compile-time sqrt (Newton, fixed 64 steps) so that constants such as
// 1/sqrt(head_dim) fold at compile time in g++ and in Vitis HLS alike.
constexpr double constexpr_sqrt(double x) {
    double r = x > 1.0 ? x : 1.0;
    for (int i = 0; i < 64; i++) r = 0.5 * (r + x / r);
    return r;
}

// exp in FP32. C-simulation: libm's double exp rounded once to float, the contract's
// definition (docs/numerics.md section 4, the golden units' simulator.golden.sfu._transcendental),
// so C-sim and the golden agree bit for bit; synthesis: hls::exp, within the contract's 4 ULP.
inline float exp_f32(float x) {
#ifndef __SYNTHESIS__
    return static_cast<float>(std::exp(static_cast<double>(x)));
#else
    return hls::exp(x);
#endif
}

inline float sqrt_f32(float x) {
#ifndef __SYNTHESIS__
    return std::sqrt(x);
#else
    return hls::sqrt(x);
#endif
}

// Round half to even (the contract's rint) in the default rounding mode.
inline float rint_f32(float x) {
#ifndef __SYNTHESIS__
    return std::nearbyint(x);
#else
    return hls::rint(x);
#endif
}

}  // namespace llmaccel_hls

#endif
