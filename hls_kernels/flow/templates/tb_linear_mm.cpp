// Testbench for linear_mm_top (${name}): golden vectors from simulator.golden.linear.
#include <vector>
#include "golden_vectors.h"
#include "tb_common.h"

void linear_mm_top(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
                   const int8_t* xq, const float* s_x, int tokens, int rows, int k, float* y, int32_t* partial,
                   int write_partial);

int main() {
    std::vector<float> s_x(TOKENS), y(TOKENS * ROWS);
    std::vector<int32_t> partial(TOKENS * ROWS * GROUPS);
    tb_f32_array(s_x_bits, s_x.data(), TOKENS);
    linear_mm_top(codes, indices, scales, HAS_ZEROS ? zeros : 0, xq, s_x.data(), TOKENS, ROWS, K, y.data(),
                  partial.data(), 1);
    int bad = tb_check_int("partial", partial.data(), expect_partial, TOKENS * ROWS * GROUPS);
    bad += tb_check_ulp("y", y.data(), expect_y_bits, TOKENS * ROWS, 0);
    return tb_finish("${name}", bad);
}
