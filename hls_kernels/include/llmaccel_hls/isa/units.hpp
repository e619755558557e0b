// The five units of the ISA top: what one instruction of each does to the
// core's state (state.hpp) and to HBM. The dispatcher (dispatch.hpp) decides
// when an instruction may start; these functions are its whole effect.
//
// LD   HBM -> weight slot (packed rows, burst row by row) or KV slot (INT8 rows + FP32 scale)
// ST   activation (K/V of the new tokens) -> INT8 + scale rows in HBM (quantize_heads)
// MPE  MV/MM: linear tiles through kernels/linear.hpp (linear_mv / linear_mm on the
//      slot's rows, activations quantized by kernels/quantize.hpp), fused
//      output-path ops (RoPE, residual add, SiLU x up) through kernels/sfu.hpp once a
//      slice is complete; QK^T and P.V tiles with kernels/attention.hpp's arithmetic
// SFU  MISC: RMSNorm and the causal softmax through kernels/sfu.hpp
// SYS  barrier / nop / set_position / end (one core: a barrier orders through its tokens only)
//
// Facts the words do not carry come from the instruction's side-table entry
// aux[AUX_WORDS] (roles and operand meanings: hls_kernels/flow/isa_top_side.py).
#ifndef LLMACCEL_HLS_ISA_UNITS_HPP
#define LLMACCEL_HLS_ISA_UNITS_HPP

#include <string.h>
#include "state.hpp"
#include "llmaccel_hls/kernels/linear.hpp"
#include "llmaccel_hls/kernels/quantize.hpp"
#include "llmaccel_hls/kernels/sfu.hpp"

namespace llmaccel_hls {
namespace isa_top {

typedef sfu_config<ISA_SFU_N_MAX> isa_sfu_cfg;
typedef sfu_config<ISA_HEAD_DIM> isa_head_cfg;
static constexpr float INV_SQRT_HEAD_DIM = (float)(1.0 / constexpr_sqrt((double)ISA_HEAD_DIM));

inline bool in_range(long lo, long n, long size) { return lo >= 0 && n >= 0 && lo + n <= size; }

inline float load_f32(const uint8_t* p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

inline void store_f32(uint8_t* p, float f) { memcpy(p, &f, 4); }

// ---------------------------------------------------------------- LD
inline int exec_ld(const uint32_t* w, const int32_t* aux, const isa_config& cfg, const uint8_t* hbm, long hbm_bytes,
                   core_state& s) {
    const int kind = LD_kind(w);
    const long base = (long)LD_channel(w) * cfg.channel_bytes + (long)LD_src_addr_lines(w) * LINE_BYTES;
    if (kind == LOAD_KIND_weight_codes && aux[0] == AUX_LD_WEIGHT) {
        const int slot = (int)LD_dst_offset_lines(w) / cfg.wslot_lines;
        if (slot >= SLOTS) return ISA_BOUNDS;
        weight_slot& ws = s.wslot[slot];
        const int fmt = isa_format_id((int)LD_bits(w), (int)LD_nm(w), (int)LD_group_size(w), (int)LD_asymmetric(w));
        if (fmt < 0) return ISA_NO_FORMAT;
        const int rows = (int)LD_rows(w);
        const int pitch = (int)LD_length_lines(w) * LINE_BYTES;
        const long stride = (long)LD_src_row_stride_lines(w) * LINE_BYTES;
        if (ws.rows == 0) {
            ws.format = fmt;
            ws.pitch = pitch;
        } else if (ws.format != fmt || ws.pitch != pitch) {
            return ISA_SLOT;
        }
        if (ws.rows + rows > ISA_WSLOT_ROWS || (long)(ws.rows + rows) * pitch > ISA_WSLOT_BYTES) return ISA_BOUNDS;
    LD_ROWS:
        for (int r = 0; r < rows; r++) {
            const long src = base + r * stride;
            if (!in_range(src, pitch, hbm_bytes)) return ISA_BOUNDS;
        LD_ROW_BURST:
            for (int b = 0; b < pitch; b++) {
#pragma HLS PIPELINE II = 1
                ws.raw[(long)ws.rows * pitch + b] = hbm[src + b];
            }
            ws.row_of[ws.rows] = aux[LD_WEIGHT_row0] + r;
            ws.rows++;
        }
        return ISA_OK;
    }
    if (kind == LOAD_KIND_kv_cache && aux[0] == AUX_LD_KV) {
        const int slot = (int)LD_dst_offset_lines(w) / cfg.kvslot_lines;
        if (slot >= SLOTS) return ISA_BOUNDS;
        kv_slot& ks = s.kvslot[slot];
        const int n = aux[LD_KV_tokens], t0 = aux[LD_KV_first_token], stride = aux[LD_KV_token_stride],
                  k0 = aux[LD_KV_tile_k0], head = aux[LD_KV_kv_head];
        if (ks.count == 0) {
            ks.k0 = k0;
            ks.head = head;
        } else if (ks.k0 != k0 || ks.head != head) {
            return ISA_SLOT;
        }
        const long src0 = base + aux[LD_KV_byte_in_line];
        if ((long)aux[LD_KV_byte_in_line] + (long)n * cfg.kv_row_bytes > (long)LD_length_lines(w) * LINE_BYTES) return ISA_BOUNDS;
    LD_KV_ROWS:
        for (int i = 0; i < n; i++) {
            const int idx = t0 + i * stride - k0;
            const long src = src0 + (long)i * cfg.kv_row_bytes;
            if (idx < 0 || idx >= ISA_KV_TILE || !in_range(src, cfg.kv_row_bytes, hbm_bytes)) return ISA_BOUNDS;
        LD_KV_BURST:
            for (int d = 0; d < ISA_HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                ks.val[idx][d] = (int8_t)hbm[src + d];
            }
            ks.scale[idx] = load_f32(hbm + src + ISA_HEAD_DIM);
            ks.valid[idx] = 1;
            ks.count++;
        }
        return ISA_OK;
    }
    return ISA_UNSUPPORTED;
}

// ---------------------------------------------------------------- ST
// The new tokens' K or V rows, quantized per head (quantize_heads = quantize_activation over
// head_dim), written at the runtime positions: token i of the program goes to position
// cfg.position + i, i.e. channel channel0 + t % cpc, row t / cpc of the head's region.
inline int exec_st(const uint32_t* w, const int32_t* aux, const isa_config& cfg, uint8_t* hbm, long hbm_bytes,
                   core_state& s) {
    if (ST_kind(w) != STORE_KIND_kv_cache || aux[0] != AUX_ST_KV) return ISA_UNSUPPORTED;
    const int src_off = aux[ST_KV_src_offset], ch0 = aux[ST_KV_channel0], head_base = aux[ST_KV_head_base],
              i0 = aux[ST_KV_first_index], n = aux[ST_KV_tokens], stride = aux[ST_KV_index_stride],
              pitch = aux[ST_KV_row_pitch];
ST_TOKENS:
    for (int i = 0; i < n; i++) {
        const int ti = i0 + i * stride;  // token index inside the program
        const int t = s.position + ti;   // runtime position
        const long off = (long)src_off + (long)ti * pitch;
        if (!in_range(off, ISA_HEAD_DIM, ISA_ACT_WORDS) || t < 0 || t >= cfg.max_len) return ISA_BOUNDS;
        int8_t q[ISA_HEAD_DIM];
        const float sc = quantize_activation<isa_head_cfg>(s.act + off, ISA_HEAD_DIM, q);
        const long dst = (long)(ch0 + t % cfg.channels_per_core) * cfg.channel_bytes + head_base +
                         (long)(t / cfg.channels_per_core) * cfg.kv_row_bytes;
        if (!in_range(dst, cfg.kv_row_bytes, hbm_bytes)) return ISA_BOUNDS;
    ST_BURST:
        for (int d = 0; d < ISA_HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
            hbm[dst + d] = (uint8_t)q[d];
        }
        store_f32(hbm + dst + ISA_HEAD_DIM, sc);
    }
    return ISA_OK;
}

// ---------------------------------------------------------------- MPE: linear tiles
// The slot's packed rows, split into the kernel's four arrays (each row: code words, index
// words, FP16 scales, zeros; host/backends/xrt_layout.weight_row_bytes), then the linear kernel.
template <class FMT, class SCHED>
int linear_tile(const weight_slot& ws, int n, int k, int tokens, const int8_t* xq, const float* s_x, float* y) {
    typedef linear_beat<FMT, SCHED> B;
    static uint32_t codes[FMT::O_MAX * B::CODE_WORDS_MAX];
    static uint32_t index[FMT::DENSE ? 1 : FMT::O_MAX * B::CODE_WORDS_MAX];
    static uint16_t scales[FMT::O_MAX * B::GROUPS_MAX];
    static uint8_t zeros[FMT::SYMMETRIC ? 1 : FMT::O_MAX * B::GROUPS_MAX];
    static int32_t partial[1];
    if (n > FMT::O_MAX || k > FMT::K_MAX || k % FMT::GROUP) return ISA_BOUNDS;
    const row_geometry<FMT> geo(k);
    const int need = 4 * (geo.code_words + geo.index_words) + 2 * geo.groups + (FMT::SYMMETRIC ? 0 : geo.groups);
    if (need > ws.pitch) return ISA_BOUNDS;
MPE_SPLIT_ROWS:
    for (int r = 0; r < n; r++) {
        const uint8_t* row = ws.raw + (long)r * ws.pitch;
        for (int i = 0; i < geo.code_words; i++) memcpy(&codes[r * geo.code_words + i], row + 4 * i, 4);
        row += 4 * geo.code_words;
        for (int i = 0; i < geo.index_words; i++) memcpy(&index[r * geo.index_words + i], row + 4 * i, 4);
        row += 4 * geo.index_words;
        for (int g = 0; g < geo.groups; g++) memcpy(&scales[r * geo.groups + g], row + 2 * g, 2);
        row += 2 * geo.groups;
        if (!FMT::SYMMETRIC)
            for (int g = 0; g < geo.groups; g++) zeros[r * geo.groups + g] = row[g];
    }
    if (tokens == 1) {
        linear_mv<FMT, SCHED>(codes, index, scales, zeros, xq, s_x[0], n, k, y, partial, 0);
    } else {
        linear_mm<FMT, SCHED, ISA_T_MAX>(codes, index, scales, zeros, xq, s_x, tokens, n, k, y, partial, 0);
    }
    return ISA_OK;
}

inline int run_linear_format(int fmt, const weight_slot& ws, int n, int k, int tokens, const int8_t* xq,
                             const float* s_x, float* y) {
#define ISA_LINEAR_CASE(ID, FMT, SCHED) \
    case ID:                            \
        return linear_tile<FMT, SCHED>(ws, n, k, tokens, xq, s_x, y);
    switch (fmt) {
        ISA_FORMAT_LIST(ISA_LINEAR_CASE)
        default:
            return ISA_NO_FORMAT;
    }
#undef ISA_LINEAR_CASE
}

// RoPE of a completed q/k slice: heads of head_dim at `off`, cos/sin of each token's position from HBM.
inline int fused_rope(const isa_config& cfg, const uint8_t* hbm, long hbm_bytes, core_state& s, int off, int width,
                      int tokens) {
    float cs[ISA_HEAD_DIM], sn[ISA_HEAD_DIM];
    for (int t = 0; t < tokens; t++) {
        const int p = s.position + t;
        const long c0 = cfg.rope_addr + (long)p * ISA_HEAD_DIM * 4;
        const long s0 = cfg.rope_addr + (long)cfg.max_len * ISA_HEAD_DIM * 4 + (long)p * ISA_HEAD_DIM * 4;
        if (p < 0 || p >= cfg.max_len || !in_range(s0, ISA_HEAD_DIM * 4, hbm_bytes)) return ISA_BOUNDS;
        for (int d = 0; d < ISA_HEAD_DIM; d++) {
            cs[d] = load_f32(hbm + c0 + 4 * d);
            sn[d] = load_f32(hbm + s0 + 4 * d);
        }
        float* v = s.act + off + (long)t * width;
        rope<isa_sfu_cfg>(v, cs, sn, width / ISA_HEAD_DIM, ISA_HEAD_DIM, v);
    }
    return ISA_OK;
}

inline int exec_linear(const uint32_t* w, bool mm, const int32_t* aux, const isa_config& cfg, const uint8_t* hbm,
                       long hbm_bytes, core_state& s) {
    const int slot = aux[MPE_LINEAR_slot];  // side table: the words' wt_offset_lines does not name the slot yet
    const int n = (int)(mm ? MM_n(w) : MV_n(w));
    const int k = (int)(mm ? MM_k(w) : MV_k(w));
    const int tokens = mm ? (int)MM_m(w) : 1;
    const int fuse = (int)(mm ? MM_fuse(w) : MV_fuse(w));
    const int in_off = aux[MPE_LINEAR_in_offset], out_off = aux[MPE_LINEAR_out_offset],
              slice = aux[MPE_LINEAR_slice_rows], op_off = aux[MPE_LINEAR_operand_offset],
              dst_off = aux[MPE_LINEAR_dst_offset], width = aux[MPE_LINEAR_width];
    if (slot >= SLOTS || tokens > ISA_T_MAX) return ISA_BOUNDS;
    weight_slot& ws = s.wslot[slot];
    if (ws.rows != n || ws.format < 0) return ISA_SLOT;
    if (!in_range(in_off, (long)tokens * k, ISA_ACT_WORDS) || !in_range(out_off, (long)tokens * width, ISA_ACT_WORDS))
        return ISA_BOUNDS;
    static int8_t xq[ISA_T_MAX * ISA_K_MAX];
    static float s_x[ISA_T_MAX];
    static float y[ISA_T_MAX * ISA_WSLOT_ROWS];
    if (k > ISA_K_MAX) return ISA_BOUNDS;
    for (int t = 0; t < tokens; t++) s_x[t] = quantize_activation<isa_sfu_cfg>(s.act + in_off + t * k, k, xq + t * k);
    const int rc = run_linear_format(ws.format, ws, n, k, tokens, xq, s_x, y);
    if (rc != ISA_OK) return rc;
MPE_WRITE_ROWS:
    for (int t = 0; t < tokens; t++)
        for (int j = 0; j < n; j++) {
            const int row = ws.row_of[j];
            if (row < 0 || row >= width) return ISA_BOUNDS;
            s.act[out_off + t * width + row] = y[t * n + j];
        }
    ws.rows = 0;  // the slot is consumed (its release lets LD refill it)
    ws.format = -1;
    s.lin_done += n;
    if (s.lin_done < slice) return ISA_OK;
    s.lin_done = 0;
    // the slice is complete: the fused output-path op
    if (fuse == FUSE_rope) return fused_rope(cfg, hbm, hbm_bytes, s, out_off, width, tokens);
    if (fuse == FUSE_add) {  // residual: dst += out
        if (!in_range(dst_off, (long)tokens * width, ISA_ACT_WORDS)) return ISA_BOUNDS;
        for (int t = 0; t < tokens; t++)
            add<isa_sfu_cfg>(s.act + dst_off + t * width, s.act + out_off + t * width, width,
                             s.act + dst_off + t * width);
        return ISA_OK;
    }
    if (fuse == FUSE_silu_mul) {  // dst = silu(operand) * out
        if (!in_range(dst_off, (long)tokens * width, ISA_ACT_WORDS) ||
            !in_range(op_off, (long)tokens * width, ISA_ACT_WORDS))
            return ISA_BOUNDS;
        for (int t = 0; t < tokens; t++)
            silu_mul<isa_sfu_cfg>(s.act + op_off + t * width, s.act + out_off + t * width, width,
                                  s.act + dst_off + t * width);
        return ISA_OK;
    }
    // quantize (K/V for the store: ST quantizes) and none leave the output as it is
    return (fuse == FUSE_none || fuse == FUSE_quantize) ? ISA_OK : ISA_UNSUPPORTED;
}

// ---------------------------------------------------------------- MPE: attention tiles
// Query rows of one kv head: row i = token (i / G) x query head (i % G), quantized per head.
inline void quantize_queries(const core_state& s, int q_off, int q_pitch, int rows, int8_t q8[][ISA_HEAD_DIM],
                             float* s_q) {
    for (int i = 0; i < rows; i++) {
        const int t = i / ISA_GQA, j = i % ISA_GQA;
        s_q[i] = quantize_activation<isa_head_cfg>(s.act + q_off + t * q_pitch + j * ISA_HEAD_DIM, ISA_HEAD_DIM,
                                                   q8[i]);
    }
}

// scores[i][t] = (float(q8_i . k8_t) * (s_q_i * s_k_t)) * (1/sqrt(head_dim)): attention.hpp's ATTN_SCORES.
inline int exec_qk(const uint32_t* w, bool mm, const int32_t* aux, const isa_config& cfg, core_state& s) {
    const int slot = aux[MPE_QK_slot];
    const int n = (int)(mm ? MM_n(w) : MV_n(w));
    const int rows = mm ? (int)MM_m(w) : 1;
    if (slot >= SLOTS || rows > ISA_QROWS) return ISA_BOUNDS;
    kv_slot& ks = s.kvslot[slot];
    if (ks.count != n || ks.head != aux[MPE_QK_kv_head]) return ISA_SLOT;
    static int8_t q8[ISA_QROWS][ISA_HEAD_DIM];
    static float s_q[ISA_QROWS];
    quantize_queries(s, aux[MPE_QK_q_offset], aux[MPE_QK_q_pitch], rows, q8, s_q);
    if (s.score_head != aux[MPE_QK_kv_head]) {
        s.score_head = aux[MPE_QK_kv_head];
        s.softmax_row = 0;
    }
QK_KEYS:
    for (int idx = 0; idx < ISA_KV_TILE; idx++) {
        if (!ks.valid[idx]) continue;
        const int t = ks.k0 + idx;
        if (t >= ISA_CTX_MAX) return ISA_BOUNDS;
        for (int i = 0; i < rows; i++) {
            acc32_t dot = 0;
        QK_DOT:
            for (int d = 0; d < ISA_HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                dot += ap_int<16>(ap_int<8>(q8[i][d]) * ap_int<8>(ks.val[idx][d]));
            }
            const float qk_scale = s_q[i] * ks.scale[idx];
            const float raw = (float)dot.to_int() * qk_scale;
            s.scores[i][t] = raw * INV_SQRT_HEAD_DIM;
        }
        ks.valid[idx] = 0;
    }
    ks.count = 0;
    return ISA_OK;
}

// acc[i][d] += (p[i][t] * s_v[t]) * float(v8[t][d]) in token order: attention.hpp's ATTN_VALUES.
inline int exec_pv(const uint32_t* w, bool mm, const int32_t* aux, const isa_config& cfg, core_state& s) {
    const int slot = aux[MPE_PV_slot];
    const int n = (int)(mm ? MM_k(w) : MV_k(w));
    const int rows = mm ? (int)MM_m(w) : 1;
    if (slot >= SLOTS || rows > ISA_QROWS) return ISA_BOUNDS;
    kv_slot& ks = s.kvslot[slot];
    if (ks.count != n || ks.head != aux[MPE_PV_kv_head] || s.score_head != aux[MPE_PV_kv_head]) return ISA_SLOT;
PV_VALUES:
    for (int idx = 0; idx < ISA_KV_TILE; idx++) {
        if (!ks.valid[idx]) continue;
        const int t = ks.k0 + idx;
        for (int i = 0; i < rows; i++) {
            const float wgt = s.probs[i][t] * ks.scale[idx];
        PV_TERMS:
            for (int d = 0; d < ISA_HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                const float term = wgt * (float)ks.val[idx][d];
                s.attn_acc[i][d] = s.attn_acc[i][d] + term;
            }
        }
        ks.valid[idx] = 0;
    }
    ks.count = 0;
    const int out_off = aux[MPE_PV_out_offset], pitch = aux[MPE_PV_out_pitch];
    for (int i = 0; i < rows; i++) {
        const int t = i / ISA_GQA, j = i % ISA_GQA;
        const long o = (long)out_off + (long)t * pitch + j * ISA_HEAD_DIM;
        if (!in_range(o, ISA_HEAD_DIM, ISA_ACT_WORDS)) return ISA_BOUNDS;
        for (int d = 0; d < ISA_HEAD_DIM; d++) s.act[o + d] = s.attn_acc[i][d];
    }
    return ISA_OK;
}

inline int exec_mpe(const uint32_t* w, const int32_t* aux, const isa_config& cfg, const uint8_t* hbm, long hbm_bytes,
                    core_state& s) {
    const bool mm = HDR_opcode(w) == (uint32_t)OP_MM;
    if (aux[0] == AUX_MPE_LINEAR) return exec_linear(w, mm, aux, cfg, hbm, hbm_bytes, s);
    if (aux[0] == AUX_MPE_QK) return exec_qk(w, mm, aux, cfg, s);
    if (aux[0] == AUX_MPE_PV) return exec_pv(w, mm, aux, cfg, s);
    return ISA_UNSUPPORTED;
}

// ---------------------------------------------------------------- SFU
inline int exec_sfu(const uint32_t* w, const int32_t* aux, const isa_config& cfg, const uint8_t* hbm, long hbm_bytes,
                    core_state& s) {
    const int op = (int)MISC_op(w);
    const int rows = (int)MISC_rows(w), len = (int)MISC_row_len(w);
    if (op == MISC_OP_rmsnorm && aux[0] == AUX_SFU_NORM) {
        static float gamma[ISA_SFU_N_MAX];
        if (len > ISA_SFU_N_MAX || !in_range(aux[SFU_NORM_gamma_addr], (long)len * 4, hbm_bytes)) return ISA_BOUNDS;
        for (int i = 0; i < len; i++) gamma[i] = load_f32(hbm + aux[SFU_NORM_gamma_addr] + 4 * i);
        const int r0 = aux[SFU_NORM_first_row];  // first row of this MISC (a long op is split into <= 63-row pieces)
        for (int r = 0; r < rows; r++) {
            const long src = (long)aux[SFU_NORM_src_offset] + (long)(r0 + r) * len,
                       dst = (long)aux[SFU_NORM_dst_offset] + (long)(r0 + r) * len;
            if (!in_range(src, len, ISA_ACT_WORDS) || !in_range(dst, len, ISA_ACT_WORDS)) return ISA_BOUNDS;
            rmsnorm<isa_sfu_cfg>(s.act + src, gamma, cfg.eps, len, s.act + dst);
        }
        return ISA_OK;
    }
    if (op == MISC_OP_softmax && aux[0] == AUX_SFU_SOFTMAX) {
        // causal: query row i (token i / G) attends keys 0 .. its position
        if (s.score_head != aux[SFU_SOFTMAX_kv_head] || len > ISA_CTX_MAX) return ISA_SLOT;
        for (int r = 0; r < rows; r++) {
            const int i = s.softmax_row + r;
            if (i >= ISA_QROWS) return ISA_BOUNDS;
            const int keys = s.position + i / ISA_GQA + 1;
            if (keys > len) return ISA_BOUNDS;
            softmax<sfu_config<ISA_CTX_MAX> >(s.scores[i], keys, s.probs[i]);
            for (int t = keys; t < len; t++) s.probs[i][t] = 0.0f;
            for (int d = 0; d < ISA_HEAD_DIM; d++) s.attn_acc[i][d] = 0.0f;
        }
        s.softmax_row += rows;
        return ISA_OK;
    }
    return ISA_UNSUPPORTED;
}

}  // namespace isa_top
}  // namespace llmaccel_hls

#endif
