// One Llama decoder layer on the MV (decode) path, composed from the library
// kernels in the contract's order (docs/numerics.md section 4):
//   h = rmsnorm(x, w_in); q,k,v = linear(quant(h)); rope(q), rope(k)
//   k,v -> INT8 cache at `pos` (per kv head); q -> INT8 per head
//   attn = decode_attention(0..pos); x = x + o_proj(quant(attn))
//   h = rmsnorm(x, w_post); x = x + down(quant(silu(gate(quant h)) * up(quant h)))
// Activations stay on chip between kernels (FlightLLM's always-on-chip decode).
//
// Weight memory: all seven projections' code and index words in one word
// buffer, their FP16 scales (raw bits) in one, their zeros in one, each in
// the order q, k, v, o, gate, up, down (per projection: codes of all rows,
// then indices of all rows). hls_kernels/csim.py builds the same layout.
#ifndef LLMACCEL_HLS_KERNELS_DECODER_LAYER_HPP
#define LLMACCEL_HLS_KERNELS_DECODER_LAYER_HPP

#include "../config.hpp"
#include "attention.hpp"
#include "linear.hpp"
#include "quantize.hpp"
#include "sfu.hpp"

namespace llmaccel_hls {

template <class FMT, class SCHED>
struct linear_spec {
    typedef FMT fmt;
    typedef SCHED sched;
};

// Cursor over the three weight buffers; advances past one projection at a time.
struct weight_cursor {
    const uint32_t* words;
    const uint16_t* scales;
    const uint8_t* zeros;
};

// y[O] = W x for one projection of size O x K, reading it at the cursor and advancing it.
template <class SPEC>
void layer_linear(weight_cursor& cur, const int8_t* xq, float s_x, int rows, int k, float* y) {
#pragma HLS INLINE off
    typedef typename SPEC::fmt F;
    const row_geometry<F> geo(k);
    const uint32_t* codes = cur.words;
    const uint32_t* indices = cur.words + rows * geo.code_words;
    int32_t no_partial[1];  // the layer keeps no partial sums (write_partial = 0)
    linear_mv<F, typename SPEC::sched>(codes, indices, cur.scales, cur.zeros, xq, s_x, rows, k, y, no_partial, 0);
    cur.words += rows * (geo.code_words + geo.index_words);
    cur.scales += rows * geo.groups;
    if (!F::SYMMETRIC) cur.zeros += rows * geo.groups;
}

// Gate and up read the same quantized input and are independent, but their
// weights come through one m_axi bundle (one HBM pseudo channel port, w_words
// of the top): a dataflow region over the two would only contend for it. They
// run one after the other; the overlap lives inside each projection's own
// read -> decode -> MAC -> write dataflow (linear.hpp).
template <class L>
void ffn_gate_up(weight_cursor& cur, const int8_t* hq, float s_h, float* gate, float* up) {
    layer_linear<typename L::gate_proj>(cur, hq, s_h, L::INTER, L::HIDDEN, gate);
    layer_linear<typename L::up_proj>(cur, hq, s_h, L::INTER, L::HIDDEN, up);
}

// Words, groups of one projection at its exact shape (the layer's formats bound O and K exactly).
template <class F>
struct projection_words {
    static const int KEPT = F::K_MAX / F::M * F::N;
    static const int WORDS = F::O_MAX * ((KEPT * F::BITS + 31) / 32) +
                             (F::DENSE ? 0 : F::O_MAX * ((KEPT * F::INDEX_BITS + 31) / 32));
    static const int GROUPS = F::O_MAX * (F::K_MAX / F::GROUP);
};

// m_axi depths (elements) of the layer top's ports, for cosim.
template <class L>
struct layer_port_depths {
    static const int W_WORDS = projection_words<typename L::q_proj::fmt>::WORDS + projection_words<typename L::k_proj::fmt>::WORDS + projection_words<typename L::v_proj::fmt>::WORDS + projection_words<typename L::o_proj::fmt>::WORDS + projection_words<typename L::gate_proj::fmt>::WORDS + projection_words<typename L::up_proj::fmt>::WORDS + projection_words<typename L::down_proj::fmt>::WORDS;
    static const int W_GROUPS = projection_words<typename L::q_proj::fmt>::GROUPS + projection_words<typename L::k_proj::fmt>::GROUPS + projection_words<typename L::v_proj::fmt>::GROUPS + projection_words<typename L::o_proj::fmt>::GROUPS + projection_words<typename L::gate_proj::fmt>::GROUPS + projection_words<typename L::up_proj::fmt>::GROUPS + projection_words<typename L::down_proj::fmt>::GROUPS;
    static const int KV = L::SEQ_MAX * L::KV_HEADS * L::HEAD_DIM;
    static const int KV_SCALE = L::SEQ_MAX * L::KV_HEADS;
};

// L: a layer config with HIDDEN, INTER, HEADS, KV_HEADS, HEAD_DIM, SEQ_MAX and
// linear_spec typedefs q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
// norm_w: [w_in (HIDDEN), w_post (HIDDEN)]; rope_cs: [cos (HEAD_DIM), sin (HEAD_DIM)] at pos.
template <class L>
void decoder_layer_mv(const float* x_in, float* x_out, int pos, float eps, const float* norm_w,
                      const float* rope_cs, const uint32_t* w_words, const uint16_t* w_scales,
                      const uint8_t* w_zeros, int8_t* k_cache, float* k_scale, int8_t* v_cache, float* v_scale) {
    const int H = L::HIDDEN, I = L::INTER, D = L::HEAD_DIM;
    const int QD = L::HEADS * D, KVD = L::KV_HEADS * D;
    static_assert(L::HEADS % L::KV_HEADS == 0, "HEADS must be a multiple of KV_HEADS");
#ifndef __SYNTHESIS__
    LLMACCEL_ASSERT(pos >= 0 && pos < L::SEQ_MAX);
#endif
    typedef sfu_config<(L::INTER > L::HIDDEN ? L::INTER : L::HIDDEN)> vec_cfg;
    typedef attention_config<L::HEADS, L::KV_HEADS, L::HEAD_DIM, L::SEQ_MAX> attn_cfg;

    float x[L::HIDDEN], h[L::HIDDEN];
    int8_t xq[L::INTER > L::HIDDEN ? L::INTER : L::HIDDEN];
    float q[L::HEADS * L::HEAD_DIM], k[L::KV_HEADS * L::HEAD_DIM], v[L::KV_HEADS * L::HEAD_DIM];
    int8_t q8[L::HEADS * L::HEAD_DIM];
    float s_q[L::HEADS];
    float attn[L::HEADS * L::HEAD_DIM];
    float gate[L::INTER], up[L::INTER], a[L::INTER];
    float proj[L::HIDDEN];
    weight_cursor cur = {w_words, w_scales, w_zeros};

LAYER_LOAD_X:
    for (int i = 0; i < H; i++) x[i] = x_in[i];

    // attention block
    rmsnorm<vec_cfg>(x, norm_w, eps, H, h);
    float s_h = quantize_activation<vec_cfg>(h, H, xq);
    layer_linear<typename L::q_proj>(cur, xq, s_h, QD, H, q);
    layer_linear<typename L::k_proj>(cur, xq, s_h, KVD, H, k);
    layer_linear<typename L::v_proj>(cur, xq, s_h, KVD, H, v);
    rope<vec_cfg>(q, rope_cs, rope_cs + D, L::HEADS, D, q);
    rope<vec_cfg>(k, rope_cs, rope_cs + D, L::KV_HEADS, D, k);
LAYER_KV_WRITE:
    for (int kvh = 0; kvh < L::KV_HEADS; kvh++) {
        const int at = pos * L::KV_HEADS + kvh;
        k_scale[at] = quantize_activation<vec_cfg>(k + kvh * D, D, k_cache + at * D);
        v_scale[at] = quantize_activation<vec_cfg>(v + kvh * D, D, v_cache + at * D);
    }
LAYER_Q_QUANT:
    for (int hh = 0; hh < L::HEADS; hh++) s_q[hh] = quantize_activation<vec_cfg>(q + hh * D, D, q8 + hh * D);
    decode_attention<attn_cfg>(q8, s_q, k_cache, k_scale, v_cache, v_scale, pos + 1, attn);
    float s_a = quantize_activation<vec_cfg>(attn, QD, xq);
    layer_linear<typename L::o_proj>(cur, xq, s_a, H, QD, proj);
    add<vec_cfg>(x, proj, H, x);

    // MLP block
    rmsnorm<vec_cfg>(x, norm_w + H, eps, H, h);
    s_h = quantize_activation<vec_cfg>(h, H, xq);
    ffn_gate_up<L>(cur, xq, s_h, gate, up);
    silu_mul<vec_cfg>(gate, up, I, a);
    const float s_m = quantize_activation<vec_cfg>(a, I, xq);
    layer_linear<typename L::down_proj>(cur, xq, s_m, H, I, proj);
    add<vec_cfg>(x, proj, H, x);

LAYER_STORE_X:
    for (int i = 0; i < H; i++) x_out[i] = x[i];
}

}  // namespace llmaccel_hls

#endif
