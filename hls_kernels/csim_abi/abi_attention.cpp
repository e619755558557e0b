// C ABI for ctypes: calls the Vitis top unchanged.
#include "attention_top.cpp"
extern "C" int llmaccel_attention(const int8_t* q8, const float* s_q, const int8_t* k8, const float* s_k,
                                  const int8_t* v8, const float* s_v, int seq_len, float* out) {
    attention_top(q8, s_q, k8, s_k, v8, s_v, seq_len, out);
    return 0;
}
