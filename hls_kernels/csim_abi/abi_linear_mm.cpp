// C ABI for ctypes: calls the Vitis top unchanged.
#include "linear_mm_top.cpp"
extern "C" int llmaccel_linear_mm(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales,
                                  const uint8_t* zeros, const int8_t* xq, const float* s_x, int tokens, int rows,
                                  int k, float* y, int32_t* partial) {
    linear_mm_top(codes, indices, scales, zeros, xq, s_x, tokens, rows, k, y, partial, 1);
    return 0;
}
