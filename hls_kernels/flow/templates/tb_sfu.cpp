// Testbench for sfu_top (${name}): golden vectors from simulator.golden.sfu.
// Exact ops compare bits; exp-based ops hold the contract's 4 ULP bound.
#include <vector>
#include "golden_vectors.h"
#include "tb_common.h"

int sfu_top(int op, const float* a, const float* b, const float* c, float eps, int n, int head_dim, float* y,
            int8_t* q);

int main() {
    std::vector<float> x(N), w(N), b(N), cs(HEAD_DIM), sn(HEAD_DIM), y(N);
    std::vector<int8_t> q(N);
    tb_f32_array(x_bits, x.data(), N);
    tb_f32_array(w_bits, w.data(), N);
    tb_f32_array(b_bits, b.data(), N);
    tb_f32_array(cos_bits, cs.data(), HEAD_DIM);
    tb_f32_array(sin_bits, sn.data(), HEAD_DIM);
    const float eps = tb_f32(eps_bits[0]);
    int bad = 0;
    sfu_top(0, x.data(), 0, 0, 0.0f, N, 1, y.data(), q.data());
    bad += tb_check_ulp("softmax", y.data(), expect_softmax_bits, N, 4);
    sfu_top(1, x.data(), w.data(), 0, eps, N, 1, y.data(), q.data());
    bad += tb_check_ulp("rmsnorm", y.data(), expect_rmsnorm_bits, N, 0);
    sfu_top(2, x.data(), w.data(), b.data(), eps, N, 1, y.data(), q.data());
    bad += tb_check_ulp("layernorm", y.data(), expect_layernorm_bits, N, 0);
    sfu_top(3, x.data(), 0, 0, 0.0f, N, 1, y.data(), q.data());
    bad += tb_check_ulp("silu", y.data(), expect_silu_bits, N, 4);
    sfu_top(7, x.data(), cs.data(), sn.data(), 0.0f, N, HEAD_DIM, y.data(), q.data());
    bad += tb_check_ulp("rope", y.data(), expect_rope_bits, N, 0);
    sfu_top(8, x.data(), 0, 0, 0.0f, N, 1, y.data(), q.data());
    bad += tb_check_int("quantize", q.data(), expect_q, N);
    bad += tb_check_ulp("quantize_scale", y.data(), expect_q_scale_bits, 1, 0);
    return tb_finish("${name}", bad);
}
