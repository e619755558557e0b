// C ABI for ctypes: calls the Vitis top unchanged.
#include "sfu_top.cpp"
extern "C" int llmaccel_sfu(int op, const float* a, const float* b, const float* c, float eps, int n, int head_dim,
                            float* y, int8_t* q) {
    return sfu_top(op, a, b, c, eps, n, head_dim, y, q);
}
