// Testbench for weight_decode_top (${name}): golden vectors from sparse_dsp.packed_format's reader.
#include <vector>
#include "golden_vectors.h"
#include "tb_common.h"

void weight_decode_top(const uint32_t* codes, const uint32_t* indices, const uint8_t* zeros, int rows, int k,
                       int8_t* d_out, int32_t* column_out);

int main() {
    std::vector<int8_t> d(ROWS * KEPT);
    std::vector<int32_t> col(ROWS * KEPT);
    weight_decode_top(codes, indices, HAS_ZEROS ? zeros : 0, ROWS, K, d.data(), col.data());
    int bad = tb_check_int("d", d.data(), expect_d, ROWS * KEPT);
    bad += tb_check_int("column", col.data(), expect_column, ROWS * KEPT);
    return tb_finish("${name}", bad);
}
