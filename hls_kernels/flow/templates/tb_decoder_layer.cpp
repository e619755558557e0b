// Testbench for decoder_layer_top (${name}): STEPS decode steps against
// simulator.golden.decoder_layer; KV cache codes bit-exact, hidden state within
// the contract's 1e-3-of-max bound (an exp ULP may flip one rint downstream).
#include <vector>
#include "golden_vectors.h"
#include "tb_common.h"

void decoder_layer_top(const float* x_in, float* x_out, int pos, float eps, const float* norm_w,
                       const float* rope_cs, const uint32_t* w_words, const uint16_t* w_scales,
                       const uint8_t* w_zeros, int8_t* k_cache, float* k_scale, int8_t* v_cache, float* v_scale);

int main() {
    std::vector<float> norm_w(2 * HIDDEN), x(HIDDEN), out(HIDDEN), rope_cs(2 * HEAD_DIM);
    std::vector<int8_t> k_cache(SEQ_MAX * KV_HEADS * HEAD_DIM), v_cache(SEQ_MAX * KV_HEADS * HEAD_DIM);
    std::vector<float> k_scale(SEQ_MAX * KV_HEADS), v_scale(SEQ_MAX * KV_HEADS);
    tb_f32_array(norm_w_bits, norm_w.data(), 2 * HIDDEN);
    const float eps = tb_f32(eps_bits[0]);
    int bad = 0;
    for (int pos = 0; pos < STEPS; pos++) {
        tb_f32_array(x_bits + pos * HIDDEN, x.data(), HIDDEN);
        tb_f32_array(rope_cs_bits + pos * 2 * HEAD_DIM, rope_cs.data(), 2 * HEAD_DIM);
        decoder_layer_top(x.data(), out.data(), pos, eps, norm_w.data(), rope_cs.data(), w_words, w_scales,
                          w_zeros, k_cache.data(), k_scale.data(), v_cache.data(), v_scale.data());
        bad += tb_check_abs("x_out", out.data(), expect_out_bits + pos * HIDDEN, bound_out_bits + pos * HIDDEN,
                            HIDDEN);
    }
    bad += tb_check_int("k_cache", k_cache.data(), expect_k_cache, STEPS * KV_HEADS * HEAD_DIM);
    bad += tb_check_int("v_cache", v_cache.data(), expect_v_cache, STEPS * KV_HEADS * HEAD_DIM);
    return tb_finish("${name}", bad);
}
