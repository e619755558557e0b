// C ABI for ctypes: calls the Vitis top unchanged.
#include "weight_decode_top.cpp"
extern "C" int llmaccel_weight_decode(const uint32_t* codes, const uint32_t* indices, const uint8_t* zeros, int rows,
                                      int k, int8_t* d_out, int32_t* column_out) {
    weight_decode_top(codes, indices, zeros, rows, k, d_out, column_out);
    return 0;
}
