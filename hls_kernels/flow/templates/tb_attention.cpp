// Testbench for attention_top (${name}): golden vectors from simulator.golden.attention.
// The bound per element is the propagated exp bound Python computed (0 where exact).
#include <vector>
#include "golden_vectors.h"
#include "tb_common.h"

void attention_top(const int8_t* q8, const float* s_q, const int8_t* k8, const float* s_k, const int8_t* v8,
                   const float* s_v, int seq_len, float* out);

int main() {
    std::vector<float> s_q(HEADS), s_k(SEQ_LEN * KV_HEADS), s_v(SEQ_LEN * KV_HEADS), out(HEADS * HEAD_DIM);
    tb_f32_array(s_q_bits, s_q.data(), HEADS);
    tb_f32_array(s_k_bits, s_k.data(), SEQ_LEN * KV_HEADS);
    tb_f32_array(s_v_bits, s_v.data(), SEQ_LEN * KV_HEADS);
    attention_top(q8, s_q.data(), k8, s_k.data(), v8, s_v.data(), SEQ_LEN, out.data());
    int bad = tb_check_abs("out", out.data(), expect_out_bits, bound_out_bits, HEADS * HEAD_DIM);
    return tb_finish("${name}", bad);
}
