// C ABI for ctypes: calls the Vitis top unchanged (interface pragmas are ignored by g++).
#include "linear_mv_top.cpp"
extern "C" int llmaccel_linear_mv(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales,
                                  const uint8_t* zeros, const int8_t* xq, float s_x, int rows, int k, float* y,
                                  int32_t* partial) {
    linear_mv_top(codes, indices, scales, zeros, xq, s_x, rows, k, y, partial);
    return 0;
}
