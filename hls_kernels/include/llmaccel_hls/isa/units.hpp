// The five units of the ISA top: what one instruction of each does to the
// core's state (state.hpp) and to HBM. The dispatcher (dispatch.hpp) decides
// when an instruction may start; these functions are its whole effect, and
// every operand comes from the instruction's words (simulator/isa.py):
//
// LD   weight_codes: packed rows (burst row by row) into the weight slot its
//      dst_offset names; kv_cache: byte-exact INT8 + FP32-scale rows into a KV
//      slot; norm_weights: the parameter block (eps line, gamma) into a vector buffer
// ST   kv_cache: the new tokens' K/V vectors, quantized per head, to their rows
//      at the runtime position (position register + token index)
// MPE  MV/MM mode linear: kernels/linear.hpp (linear_mv / linear_mm) on the
//      slot's rows, activations quantized by kernels/quantize.hpp, then the
//      output path: accumulate (dst += y), fuse silu_mul (dst = silu(dst) * y),
//      fuse rope once a region's rows are complete (kernels/sfu.hpp);
//      mode qk / pv: QK^T and P.V tiles with kernels/attention.hpp's arithmetic
// SFU  MISC softmax (causal at the runtime position) and rmsnorm (kernels/sfu.hpp)
// SYS  set_position (the compiled position), barrier / nop / end (one core: tokens only)
//
// Addresses: LD/ST lines + the layer base register; which tensor an HBM range
// holds comes from the host's region table (regions[], REG_* columns).
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
static const int ELEMS_PER_LINE = LINE_BYTES / 4;

// What a launch sees besides the words: the host's tables and registers.
struct launch_ctx {
    const isa_config* cfg;
    const int32_t* regions;     // n_regions x ISA_REGION_WORDS
    uint8_t* hbm;
    long hbm_bytes;
};

inline bool in_range(long lo, long n, long size) { return lo >= 0 && n >= 0 && lo + n <= size; }

inline float load_f32(const uint8_t* p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

inline void store_f32(uint8_t* p, float f) { memcpy(p, &f, 4); }

// The region holding [addr, addr + n) of channel `ch` (-1: none): the descriptor lookup.
inline int find_region(const launch_ctx& L, int ch, long addr, long n) {
    for (int i = 0; i < L.cfg->n_regions; i++) {
        const int32_t* r = L.regions + (long)i * ISA_REGION_WORDS;
        if (ch >= r[REG_channel0] && ch < r[REG_channel0] + r[REG_n_channels] && addr >= r[REG_addr] &&
            addr < r[REG_end])
            return addr + n <= r[REG_end] ? i : -1;
    }
    return -1;
}

inline const int32_t* region(const launch_ctx& L, int i) { return L.regions + (long)i * ISA_REGION_WORDS; }

inline long hbm_at(const launch_ctx& L, int ch, long addr) { return (long)ch * L.cfg->channel_bytes + addr; }

// Element `e` of token row `t` of the vector at line `off` of buffer `buf`.
inline long vec_at(const launch_ctx& L, int buf, int off_lines, int t, int e) {
    return (long)off_lines * ELEMS_PER_LINE + (long)t * L.cfg->slab_words[buf] + e;
}

// ---------------------------------------------------------------- LD
inline int exec_ld(const uint32_t* w, const launch_ctx& L, core_state& s) {
    const isa_config& cfg = *L.cfg;
    const int kind = LD_kind(w);
    const int ch = (int)LD_channel(w);
    const long addr = ((long)LD_src_addr_lines(w) + cfg.base_lines) * LINE_BYTES + LD_src_byte_offset(w);
    if (kind == LOAD_KIND_weight_codes) {
        const int rows = (int)LD_rows(w);
        const int pitch = (int)LD_length_lines(w) * LINE_BYTES;
        const long stride = (long)LD_src_row_stride_lines(w) * LINE_BYTES;
        const int ri = find_region(L, ch, addr, (long)rows * pitch);
        if (ri < 0) return ISA_NO_REGION;
        const int32_t* r = region(L, ri);
        if (r[REG_kind] != REGION_weight || pitch != r[REG_row_bytes] || (addr - r[REG_addr]) % pitch) return ISA_BOUNDS;
        const int fmt = isa_format_id((int)LD_bits(w), (int)LD_nm(w), (int)LD_group_size(w), (int)LD_asymmetric(w));
        if (fmt < 0) return ISA_NO_FORMAT;
        // the tile's rows: the region's output rows, channel-major (core row = channel * rows_per_channel + row)
        const int first = (int)((addr - r[REG_addr]) / pitch);
        const int row0 = r[REG_row0] + (ch - r[REG_channel0]) * r[REG_rows_per_channel] + first;
        weight_slot* ws = 0;
        for (int i = 0; i < SLOTS; i++)
            if (s.wslot[i].rows > 0 && s.wslot[i].key == (int)LD_dst_offset_lines(w)) ws = &s.wslot[i];
        if (!ws)
            for (int i = 0; i < SLOTS && !ws; i++)
                if (s.wslot[i].rows == 0) ws = &s.wslot[i];
        if (!ws) return ISA_SLOT;   // both slots hold unconsumed tiles: an LD ran ahead of its tokens
        if (ws->rows == 0) {
            ws->key = (int)LD_dst_offset_lines(w);
            ws->format = fmt;
            ws->pitch = pitch;
            ws->region = ri;
        } else if (ws->format != fmt || ws->pitch != pitch || ws->region != ri) {
            return ISA_SLOT;
        }
        if (first + rows > r[REG_rows_per_channel] || ws->rows + rows > ISA_WSLOT_ROWS ||
            (long)(ws->rows + rows) * pitch > ISA_WSLOT_BYTES)
            return ISA_BOUNDS;
    LD_ROWS:
        for (int i = 0; i < rows; i++) {
            const long src = hbm_at(L, ch, addr + i * stride);
            if (!in_range(src, pitch, L.hbm_bytes)) return ISA_BOUNDS;
        LD_ROW_BURST:
            for (int b = 0; b < pitch; b++) {
#pragma HLS PIPELINE II = 1
                ws->raw[(long)ws->rows * pitch + b] = L.hbm[src + b];
            }
            ws->row_of[ws->rows] = row0 + i - r[REG_row0];   // row inside the region's slice
            ws->rows++;
        }
        return ISA_OK;
    }
    if (kind == LOAD_KIND_kv_cache) {
        const int n = (int)LD_rows(w), elems = (int)LD_row_elems(w);
        if (elems != ISA_HEAD_DIM) return ISA_BOUNDS;
        const int ri = find_region(L, ch, addr, (long)n * (elems + 4));
        if (ri < 0) return ISA_NO_REGION;
        const int32_t* r = region(L, ri);
        if (r[REG_kind] != REGION_kv) return ISA_BOUNDS;
        const long per_head = (long)r[REG_tokens_per_channel] * r[REG_row_bytes];
        const long off = addr - r[REG_addr];
        const int head = (int)(off / per_head);
        const long rest = off % per_head;
        if (rest % r[REG_row_bytes] || head >= r[REG_heads]) return ISA_BOUNDS;
        const int row0 = (int)(rest / r[REG_row_bytes]);
        kv_slot* ks = 0;
        for (int i = 0; i < SLOTS; i++)
            if (s.kvslot[i].count > 0 && s.kvslot[i].key == (int)LD_dst_offset_lines(w)) ks = &s.kvslot[i];
        if (!ks)
            for (int i = 0; i < SLOTS && !ks; i++)
                if (s.kvslot[i].count == 0) ks = &s.kvslot[i];
        if (!ks) return ISA_SLOT;
        if (ks->count == 0) {
            ks->key = (int)LD_dst_offset_lines(w);
            ks->region = ri;
            ks->head = head;
        } else if (ks->region != ri || ks->head != head) {
            return ISA_SLOT;
        }
        if (ks->count + n > ISA_KV_TILE || row0 + n > r[REG_tokens_per_channel]) return ISA_BOUNDS;
    LD_KV_ROWS:
        for (int i = 0; i < n; i++) {
            const long src = hbm_at(L, ch, addr + (long)i * r[REG_row_bytes]);
            if (!in_range(src, elems + 4, L.hbm_bytes)) return ISA_BOUNDS;
        LD_KV_BURST:
            for (int d = 0; d < ISA_HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                ks->val[ks->count][d] = (int8_t)L.hbm[src + d];
            }
            ks->scale[ks->count] = load_f32(L.hbm + src + ISA_HEAD_DIM);
            // token t of a head lives in channel t % cpc at local row t / cpc
            ks->tok[ks->count] = (row0 + i) * cfg.channels_per_core + (ch - r[REG_channel0]);
            ks->count++;
        }
        return ISA_OK;
    }
    if (kind == LOAD_KIND_norm_weights) {
        const int lines = (int)LD_length_lines(w);
        const int buf = (int)LD_dst_buffer(w);
        const long dst = (long)LD_dst_offset_lines(w) * ELEMS_PER_LINE;
        const long src = hbm_at(L, ch, addr);
        if (find_region(L, ch, addr, (long)lines * LINE_BYTES) < 0) return ISA_NO_REGION;
        if (!in_range(dst, (long)lines * ELEMS_PER_LINE, ISA_VBUF_WORDS) ||
            !in_range(src, (long)lines * LINE_BYTES, L.hbm_bytes))
            return ISA_BOUNDS;
    LD_PARAMS:
        for (long i = 0; i < (long)lines * ELEMS_PER_LINE; i++) {
#pragma HLS PIPELINE II = 1
            s.vbuf[buf][dst + i] = load_f32(L.hbm + src + 4 * i);
        }
        return ISA_OK;
    }
    return ISA_UNSUPPORTED;
}

// ---------------------------------------------------------------- ST
// The program's tokens at the compiled rows go to the runtime position: token index
// i = compiled token - set_position, runtime position = position register + i.
inline int exec_st(const uint32_t* w, const launch_ctx& L, core_state& s) {
    const isa_config& cfg = *L.cfg;
    if (ST_kind(w) != STORE_KIND_kv_cache) return ISA_UNSUPPORTED;
    const int ch = (int)ST_channel(w), n = (int)ST_rows(w), elems = (int)ST_row_elems(w);
    const long addr = ((long)ST_dst_addr_lines(w) + cfg.base_lines) * LINE_BYTES + ST_dst_byte_offset(w);
    if (elems != ISA_HEAD_DIM) return ISA_BOUNDS;
    const int ri = find_region(L, ch, addr, (long)n * (elems + 4));
    if (ri < 0) return ISA_NO_REGION;
    const int32_t* r = region(L, ri);
    if (r[REG_kind] != REGION_kv) return ISA_BOUNDS;
    const long per_head = (long)r[REG_tokens_per_channel] * r[REG_row_bytes];
    const long off = addr - r[REG_addr];
    const int head = (int)(off / per_head);
    const int row0 = (int)((off % per_head) / r[REG_row_bytes]);
    const int cpc = cfg.channels_per_core;
    const int buf = (int)ST_src_buffer(w), src_off = (int)ST_src_offset_lines(w);
ST_TOKENS:
    for (int i = 0; i < n; i++) {
        const int compiled = (row0 + i) * cpc + (ch - r[REG_channel0]);
        const int ti = compiled - s.q0;              // which of the program's tokens
        const int t = cfg.position + ti;             // the runtime position register
        if (ti < 0 || ti >= cfg.tokens || t < 0 || t >= r[REG_tokens_per_channel] * cpc) return ISA_BOUNDS;
        const long v = vec_at(L, buf, src_off, ti, 0);
        if (!in_range(v, ISA_HEAD_DIM, ISA_VBUF_WORDS)) return ISA_BOUNDS;
        int8_t q[ISA_HEAD_DIM];
        const float sc = quantize_activation<isa_head_cfg>(s.vbuf[buf] + v, ISA_HEAD_DIM, q);
        const long dst = hbm_at(L, r[REG_channel0] + t % cpc,
                                r[REG_addr] + head * per_head + (long)(t / cpc) * r[REG_row_bytes]);
        if (!in_range(dst, elems + 4, L.hbm_bytes)) return ISA_BOUNDS;
    ST_BURST:
        for (int d = 0; d < ISA_HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
            L.hbm[dst + d] = (uint8_t)q[d];
        }
        store_f32(L.hbm + dst + ISA_HEAD_DIM, sc);
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

// RoPE of a completed slice (`rows` elements from `e0` of the vector), each token at its runtime
// position, with the host's cos/sin tables in HBM.
inline int fused_rope(const launch_ctx& L, core_state& s, int buf, int off, int e0, int rows, int tokens) {
    const isa_config& cfg = *L.cfg;
    float cs[ISA_HEAD_DIM], sn[ISA_HEAD_DIM];
    for (int t = 0; t < tokens; t++) {
        const int p = cfg.position + t;
        const long c0 = cfg.rope_addr + (long)p * ISA_HEAD_DIM * 4;
        const long s0 = cfg.rope_addr + (long)cfg.max_len * ISA_HEAD_DIM * 4 + (long)p * ISA_HEAD_DIM * 4;
        if (p < 0 || p >= cfg.max_len || !in_range(s0, ISA_HEAD_DIM * 4, L.hbm_bytes)) return ISA_BOUNDS;
        for (int d = 0; d < ISA_HEAD_DIM; d++) {
            cs[d] = load_f32(L.hbm + c0 + 4 * d);
            sn[d] = load_f32(L.hbm + s0 + 4 * d);
        }
        float* v = s.vbuf[buf] + vec_at(L, buf, off, t, e0);
        rope<isa_sfu_cfg>(v, cs, sn, rows / ISA_HEAD_DIM, ISA_HEAD_DIM, v);
    }
    return ISA_OK;
}

inline int exec_linear(const uint32_t* w, bool mm, const launch_ctx& L, core_state& s) {
    const int n = (int)(mm ? MM_n(w) : MV_n(w));
    const int k = (int)(mm ? MM_k(w) : MV_k(w));
    const int tokens = mm ? (int)MM_m(w) : 1;
    const int fuse = (int)(mm ? MM_fuse(w) : MV_fuse(w));
    const bool acc = mm ? MM_accumulate(w) : MV_accumulate(w);
    const int key = (int)(mm ? MM_wt_offset_lines(w) : MV_wt_offset_lines(w));
    const int ab = (int)(mm ? MM_act_buffer(w) : MV_act_buffer(w)), ao = (int)(mm ? MM_act_offset_lines(w)
                                                                                   : MV_act_offset_lines(w));
    const int ob = (int)(mm ? MM_out_buffer(w) : MV_out_buffer(w)), oo = (int)(mm ? MM_out_offset_lines(w)
                                                                                   : MV_out_offset_lines(w));
    if (tokens > ISA_T_MAX || tokens != L.cfg->tokens || k > ISA_K_MAX) return ISA_BOUNDS;
    weight_slot* ws = 0;
    for (int i = 0; i < SLOTS; i++)
        if (s.wslot[i].rows > 0 && s.wslot[i].key == key) ws = &s.wslot[i];
    if (!ws || ws->rows != n) return ISA_SLOT;
    const int32_t* r = region(L, ws->region);
    static int8_t xq[ISA_T_MAX * ISA_K_MAX];
    static float s_x[ISA_T_MAX];
    static float y[ISA_T_MAX * ISA_WSLOT_ROWS];
    for (int t = 0; t < tokens; t++) {
        const long a = vec_at(L, ab, ao, t, 0);
        if (!in_range(a, k, ISA_VBUF_WORDS)) return ISA_BOUNDS;
        s_x[t] = quantize_activation<isa_sfu_cfg>(s.vbuf[ab] + a, k, xq + t * k);
    }
    const int rc = run_linear_format(ws->format, *ws, n, k, tokens, xq, s_x, y);
    if (rc != ISA_OK) return rc;
    // output rows land where the weight rows belong: the region's first output row + the row
MPE_WRITE_ROWS:
    for (int t = 0; t < tokens; t++)
        for (int j = 0; j < n; j++) {
            const long o = vec_at(L, ob, oo, t, r[REG_row0] + ws->row_of[j]);
            if (!in_range(o, 1, ISA_VBUF_WORDS)) return ISA_BOUNDS;
            const float v = y[t * n + j];
            float* d = &s.vbuf[ob][o];
            if (fuse == FUSE_silu_mul) {   // the destination holds the gate: dst = silu(dst) * y
                const float g = silu_scalar(*d);
                *d = g * v;
            } else {
                *d = acc ? *d + v : v;
            }
        }
    ws->rows = 0;  // the slot is consumed (its release lets LD refill it)
    ws->format = -1;
    if (fuse == FUSE_rope) {
        if (s.done_region != ws->region) {
            s.done_region = ws->region;
            s.done_rows = 0;
        }
        s.done_rows += n;
        if (s.done_rows == r[REG_rows]) {   // the region's rows of this core are complete
            s.done_region = -1;
            return fused_rope(L, s, ob, oo, r[REG_row0], r[REG_rows], tokens);
        }
        return ISA_OK;
    }
    return (fuse == FUSE_none || fuse == FUSE_quantize || fuse == FUSE_silu_mul) ? ISA_OK : ISA_UNSUPPORTED;
}

// ---------------------------------------------------------------- MPE: attention tiles
inline kv_slot* take_kv(core_state& s, int key, int keys, int key0, int* order) {
    kv_slot* ks = 0;
    for (int i = 0; i < SLOTS; i++)
        if (s.kvslot[i].count > 0 && s.kvslot[i].key == key) ks = &s.kvslot[i];
    if (!ks || ks->count != keys || keys > ISA_KV_TILE) return 0;
    for (int i = 0; i < keys; i++) order[i] = -1;
    for (int e = 0; e < ks->count; e++) {       // the tile's rows in key order (they arrive channel by channel)
        const int i = ks->tok[e] - key0;
        if (i < 0 || i >= keys || order[i] >= 0) return 0;
        order[i] = e;
    }
    return ks;
}

// scores[i][t] = (float(q8_i . k8_t) * (s_q_i * s_k_t)) * (1/sqrt(head_dim)): attention.hpp's ATTN_SCORES.
inline int exec_qk(const uint32_t* w, bool mm, const launch_ctx& L, core_state& s) {
    const int n = (int)(mm ? MM_n(w) : MV_n(w)), k = (int)(mm ? MM_k(w) : MV_k(w));
    const int rows = mm ? (int)MM_m(w) : 1, g = mm ? (int)MM_qgroup(w) : 1;
    const int key0 = (int)(mm ? MM_key0(w) : MV_key0(w));
    const int ab = (int)(mm ? MM_act_buffer(w) : MV_act_buffer(w)), ao = (int)(mm ? MM_act_offset_lines(w)
                                                                                   : MV_act_offset_lines(w));
    const int ob = (int)(mm ? MM_out_buffer(w) : MV_out_buffer(w)), oo = (int)(mm ? MM_out_offset_lines(w)
                                                                                   : MV_out_offset_lines(w));
    if (rows > ISA_QROWS || k != ISA_HEAD_DIM || key0 + n > ISA_CTX_MAX) return ISA_BOUNDS;
    static int order[ISA_KV_TILE];
    kv_slot* ks = take_kv(s, (int)(mm ? MM_wt_offset_lines(w) : MV_wt_offset_lines(w)), n, key0, order);
    if (!ks) return ISA_SLOT;
    static int8_t q8[ISA_QROWS][ISA_HEAD_DIM];
    static float s_q[ISA_QROWS];
    for (int i = 0; i < rows; i++) {    // query row i: token i / g, head i % g of the kv head's group
        const long a = vec_at(L, ab, ao, i / g, (i % g) * ISA_HEAD_DIM);
        if (!in_range(a, ISA_HEAD_DIM, ISA_VBUF_WORDS)) return ISA_BOUNDS;
        s_q[i] = quantize_activation<isa_head_cfg>(s.vbuf[ab] + a, ISA_HEAD_DIM, q8[i]);
    }
QK_KEYS:
    for (int j = 0; j < n; j++) {
        const int e = order[j];
        for (int i = 0; i < rows; i++) {
            acc32_t dot = 0;
        QK_DOT:
            for (int d = 0; d < ISA_HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                dot += ap_int<16>(ap_int<8>(q8[i][d]) * ap_int<8>(ks->val[e][d]));
            }
            const float qk_scale = s_q[i] * ks->scale[e];
            const float raw = (float)dot.to_int() * qk_scale;
            const long o = vec_at(L, ob, oo, i, key0 + j);
            if (!in_range(o, 1, ISA_VBUF_WORDS)) return ISA_BOUNDS;
            s.vbuf[ob][o] = raw * INV_SQRT_HEAD_DIM;
        }
    }
    ks->count = 0;
    return ISA_OK;
}

// out[i][d] (+)= sum over keys in order of (p[i][t] * s_v[t]) * float(v8[t][d]): attention.hpp's ATTN_VALUES.
inline int exec_pv(const uint32_t* w, bool mm, const launch_ctx& L, core_state& s) {
    const int n = (int)(mm ? MM_n(w) : MV_n(w)), keys = (int)(mm ? MM_k(w) : MV_k(w));
    const int rows = mm ? (int)MM_m(w) : 1, g = mm ? (int)MM_qgroup(w) : 1;
    const int key0 = (int)(mm ? MM_key0(w) : MV_key0(w));
    const bool acc = mm ? MM_accumulate(w) : MV_accumulate(w);
    const int ab = (int)(mm ? MM_act_buffer(w) : MV_act_buffer(w)), ao = (int)(mm ? MM_act_offset_lines(w)
                                                                                   : MV_act_offset_lines(w));
    const int ob = (int)(mm ? MM_out_buffer(w) : MV_out_buffer(w)), oo = (int)(mm ? MM_out_offset_lines(w)
                                                                                   : MV_out_offset_lines(w));
    if (rows > ISA_QROWS || n != ISA_HEAD_DIM) return ISA_BOUNDS;
    static int order[ISA_KV_TILE];
    kv_slot* ks = take_kv(s, (int)(mm ? MM_wt_offset_lines(w) : MV_wt_offset_lines(w)), keys, key0, order);
    if (!ks) return ISA_SLOT;
    static float out[ISA_QROWS][ISA_HEAD_DIM];
    for (int i = 0; i < rows; i++) {
        const long o = vec_at(L, ob, oo, i / g, (i % g) * ISA_HEAD_DIM);
        if (!in_range(o, ISA_HEAD_DIM, ISA_VBUF_WORDS)) return ISA_BOUNDS;
        for (int d = 0; d < ISA_HEAD_DIM; d++) out[i][d] = acc ? s.vbuf[ob][o + d] : 0.0f;
    }
PV_VALUES:
    for (int j = 0; j < keys; j++) {
        const int e = order[j];
        for (int i = 0; i < rows; i++) {
            const long pa = vec_at(L, ab, ao, i, key0 + j);
            if (!in_range(pa, 1, ISA_VBUF_WORDS)) return ISA_BOUNDS;
            const float wgt = s.vbuf[ab][pa] * ks->scale[e];
        PV_TERMS:
            for (int d = 0; d < ISA_HEAD_DIM; d++) {
#pragma HLS PIPELINE II = 1
                const float term = wgt * (float)ks->val[e][d];
                out[i][d] = out[i][d] + term;
            }
        }
    }
    ks->count = 0;
    for (int i = 0; i < rows; i++) {
        const long o = vec_at(L, ob, oo, i / g, (i % g) * ISA_HEAD_DIM);
        for (int d = 0; d < ISA_HEAD_DIM; d++) s.vbuf[ob][o + d] = out[i][d];
    }
    return ISA_OK;
}

inline int exec_mpe(const uint32_t* w, const launch_ctx& L, core_state& s) {
    const bool mm = HDR_opcode(w) == (uint32_t)OP_MM;
    const int mode = (int)(mm ? MM_mode(w) : MV_mode(w));
    if (mode == MATRIX_MODE_linear) return exec_linear(w, mm, L, s);
    if (mode == MATRIX_MODE_qk) return exec_qk(w, mm, L, s);
    if (mode == MATRIX_MODE_pv) return exec_pv(w, mm, L, s);
    return ISA_UNSUPPORTED;
}

// ---------------------------------------------------------------- SFU
inline int exec_sfu(const uint32_t* w, const launch_ctx& L, core_state& s) {
    const isa_config& cfg = *L.cfg;
    const int op = (int)MISC_op(w);
    const int rows = (int)MISC_rows(w), len = (int)MISC_row_len(w), row0 = (int)MISC_row0(w);
    const int sb = (int)MISC_src_buffer(w), so = (int)MISC_src_offset_lines(w);
    const int db = (int)MISC_dst_buffer(w), dof = (int)MISC_dst_offset_lines(w);
    if (op == MISC_OP_rmsnorm) {
        // the parameter block at aux: one line holding eps, then gamma
        const int pb = (int)MISC_aux_buffer(w);
        const long p0 = (long)MISC_aux_offset_lines(w) * ELEMS_PER_LINE;
        if (len > ISA_SFU_N_MAX || !in_range(p0, ELEMS_PER_LINE + len, ISA_VBUF_WORDS)) return ISA_BOUNDS;
        const float eps = s.vbuf[pb][p0];
        for (int i = 0; i < rows; i++) {
            const long a = vec_at(L, sb, so, row0 + i, 0), d = vec_at(L, db, dof, row0 + i, 0);
            if (!in_range(a, len, ISA_VBUF_WORDS) || !in_range(d, len, ISA_VBUF_WORDS)) return ISA_BOUNDS;
            rmsnorm<isa_sfu_cfg>(s.vbuf[sb] + a, s.vbuf[pb] + p0 + ELEMS_PER_LINE, eps, len, s.vbuf[db] + d);
        }
        return ISA_OK;
    }
    if (op == MISC_OP_softmax) {
        // causal: score row i (token i / qgroup) attends keys 0 .. its runtime position
        const int g = (int)MISC_qgroup(w);
        for (int i = 0; i < rows; i++) {
            const int row = row0 + i;
            int keys = cfg.position + row / g + 1;
            if (keys > len) keys = len;
            const long a = vec_at(L, sb, so, row, 0), d = vec_at(L, db, dof, row, 0);
            if (len > ISA_CTX_MAX || !in_range(a, len, ISA_VBUF_WORDS) || !in_range(d, len, ISA_VBUF_WORDS))
                return ISA_BOUNDS;
            softmax<sfu_config<ISA_CTX_MAX> >(s.vbuf[sb] + a, keys, s.vbuf[db] + d);
            for (int t = keys; t < len; t++) s.vbuf[db][d + t] = 0.0f;
        }
        return ISA_OK;
    }
    return ISA_UNSUPPORTED;
}

}  // namespace isa_top
}  // namespace llmaccel_hls

#endif
