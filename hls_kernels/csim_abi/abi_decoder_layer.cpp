// C ABI for ctypes: calls the Vitis top unchanged.
#include "decoder_layer_top.cpp"
extern "C" int llmaccel_decoder_layer(const float* x_in, float* x_out, int pos, float eps, const float* norm_w,
                                      const float* rope_cs, const uint32_t* w_words, const uint16_t* w_scales,
                                      const uint8_t* w_zeros, int8_t* k_cache, float* k_scale, int8_t* v_cache,
                                      float* v_scale) {
    decoder_layer_top(x_in, x_out, pos, eps, norm_w, rope_cs, w_words, w_scales, w_zeros, k_cache, k_scale, v_cache,
                      v_scale);
    return 0;
}
