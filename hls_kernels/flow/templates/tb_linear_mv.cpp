// Testbench for linear_mv_top (${name}): golden vectors from simulator.golden.linear.
#include <vector>
#include "golden_vectors.h"
#include "tb_common.h"

void linear_mv_top(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales, const uint8_t* zeros,
                   const int8_t* xq, float s_x, int rows, int k, float* y, int32_t* partial,
                   int write_partial);

int main() {
    std::vector<float> y(ROWS);
    std::vector<int32_t> partial(ROWS * GROUPS);
    linear_mv_top(codes, indices, scales, HAS_ZEROS ? zeros : 0, xq, tb_f32(s_x_bits[0]), ROWS, K, y.data(),
                  partial.data(), 1);
    int bad = tb_check_int("partial", partial.data(), expect_partial, ROWS * GROUPS);
    bad += tb_check_ulp("y", y.data(), expect_y_bits, ROWS, 0);
    return tb_finish("${name}", bad);
}
