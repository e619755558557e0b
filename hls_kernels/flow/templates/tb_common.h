// Comparison helpers shared by every llmaccel testbench: golden data comes
// from Python (simulator.golden); this side compares and counts mismatches.
#ifndef LLMACCEL_TB_COMMON_H
#define LLMACCEL_TB_COMMON_H
#include <stdint.h>
#include <cmath>
#include <cstdio>
#include <cstring>

static inline float tb_f32(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

static inline void tb_f32_array(const uint32_t* bits, float* out, int n) {
    for (int i = 0; i < n; i++) out[i] = tb_f32(bits[i]);
}

static inline int64_t tb_ordered(float f) {
    int32_t i;
    std::memcpy(&i, &f, 4);
    return i < 0 ? (int64_t)(-2147483647 - 1) - i : (int64_t)i;
}

// Mismatches of float outputs: bit-exact when max_ulp == 0.
static inline int tb_check_ulp(const char* what, const float* got, const uint32_t* want_bits, int n, int max_ulp) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int64_t d = tb_ordered(got[i]) - tb_ordered(tb_f32(want_bits[i]));
        if (d < 0) d = -d;
        if (d > max_ulp) {
            if (bad < 5) std::printf("  %s[%d]: got %.9g want %.9g (%lld ulp)\n", what, i, got[i],
                                     tb_f32(want_bits[i]), (long long)d);
            bad++;
        }
    }
    return bad;
}

// Mismatches where |got - want| may not exceed a per-element absolute bound.
static inline int tb_check_abs(const char* what, const float* got, const uint32_t* want_bits,
                               const uint32_t* bound_bits, int n) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        float want = tb_f32(want_bits[i]);
        if (!(std::fabs(got[i] - want) <= tb_f32(bound_bits[i]))) {
            if (bad < 5) std::printf("  %s[%d]: got %.9g want %.9g\n", what, i, got[i], want);
            bad++;
        }
    }
    return bad;
}

template <typename T>
static inline int tb_check_int(const char* what, const T* got, const T* want, int n) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            if (bad < 5) std::printf("  %s[%d]: got %lld want %lld\n", what, i, (long long)got[i], (long long)want[i]);
            bad++;
        }
    }
    return bad;
}

static inline int tb_finish(const char* name, int bad) {
    if (bad) {
        std::printf("FAIL %s: %d mismatches\n", name, bad);
        return 1;
    }
    std::printf("PASS %s\n", name);
    return 0;
}
#endif
