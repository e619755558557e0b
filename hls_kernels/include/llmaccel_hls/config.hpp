// Kernel configurations: the algorithm's parameters (formats, sizes) and the
// customization (schedule: lanes, II, partitioning) in separate structs, as an
// Allo kernel and its schedule are separate. Kernels read only these
// constants; pragmas read them too, so one kernel serves every configuration.
#ifndef LLMACCEL_HLS_CONFIG_HPP
#define LLMACCEL_HLS_CONFIG_HPP

#include "common.hpp"

namespace llmaccel_hls {

// Static description of one packed linear layer (sparse_dsp.packed_format.LayerFormat).
// N == M means dense. K_MAX / O_MAX bound the runtime sizes (buffer depths).
template <int BITS_, int N_, int M_, int GROUP_, bool SYMMETRIC_, int K_MAX_, int O_MAX_>
struct linear_format {
    static const int BITS = BITS_;
    static const int N = N_;
    static const int M = M_;
    static const int GROUP = GROUP_;
    static const bool SYMMETRIC = SYMMETRIC_;
    static const int K_MAX = K_MAX_;
    static const int O_MAX = O_MAX_;
    static const bool DENSE = (N_ == M_);
    static const int INDEX_BITS = DENSE ? 0 : log2_pow2<M_>::value;
    static const int KEPT_PER_GROUP = GROUP_ * N_ / M_;
    static const int ZERO_POINT = 1 << (BITS_ - 1);

    static_assert(BITS_ == 2 || BITS_ == 3 || BITS_ == 4 || BITS_ == 8, "BITS must be 2, 3, 4 or 8");
    static_assert(SYMMETRIC_ || BITS_ <= 4, "asymmetric codes need BITS <= 4 so that code-zero fits INT8");
    static_assert(N_ == M_ || (M_ == 4 && N_ == 2) || (M_ == 8 && N_ == 4) ||
                      (M_ == 16 && (N_ == 2 || N_ == 4 || N_ == 8)),
                  "N:M must be dense (N == M) or one of 2:4, 4:8, 2:16, 4:16, 8:16");
    static_assert(GROUP_ % M_ == 0, "M must divide GROUP");
    static_assert(K_MAX_ % GROUP_ == 0, "GROUP must divide K_MAX");
    static_assert(GROUP_ <= (1 << 17), "GROUP <= 2^17 keeps the INT32 partial sum exact");
};

// Schedule of the linear kernels: CHAIN kept values per pipelined step (DSP
// cascade length), pipeline II.
template <int CHAIN_, int II_ = 1>
struct linear_schedule {
    static const int CHAIN = CHAIN_;
    static const int II = II_;
};

// Check a (format, schedule) pair fits together.
template <class FMT, class SCHED>
struct linear_fit {
    static_assert(SCHED::CHAIN >= 1 && SCHED::CHAIN <= 8, "CHAIN must be 1..8 (DSP lane packing)");
    static_assert(FMT::KEPT_PER_GROUP % SCHED::CHAIN == 0, "CHAIN must divide the kept values per group");
    static const bool ok = true;
};

// m_axi depths (elements) of a linear layer's ports at the format's bounds: what
// Vitis cosim sizes its buffers by (`depth=` on each INTERFACE pragma).
template <class FMT, int T_MAX = 1>
struct linear_port_depths {
    static const int KEPT_MAX = FMT::K_MAX / FMT::M * FMT::N;
    static const int CODES = FMT::O_MAX * ((KEPT_MAX * FMT::BITS + 31) / 32);
    static const int INDICES = FMT::DENSE ? 1 : FMT::O_MAX * ((KEPT_MAX * FMT::INDEX_BITS + 31) / 32);
    static const int GROUPS = FMT::O_MAX * (FMT::K_MAX / FMT::GROUP);
    static const int X = T_MAX * FMT::K_MAX;
    static const int Y = T_MAX * FMT::O_MAX;
    static const int PARTIAL = T_MAX * GROUPS;
    static const int TOKENS = T_MAX;
};

// SFU configuration: vector length bound and unroll factor of element loops.
template <int N_MAX_, int UNROLL_ = 1>
struct sfu_config {
    static const int N_MAX = N_MAX_;
    static const int UNROLL = UNROLL_;
    static_assert(N_MAX_ % UNROLL_ == 0, "UNROLL must divide N_MAX");
};

// Decode attention: heads, kv heads, head_dim, cache depth; schedule: dot lanes.
template <int HEADS_, int KV_HEADS_, int HEAD_DIM_, int SEQ_MAX_, int DOT_LANES_ = 1>
struct attention_config {
    static const int HEADS = HEADS_;
    static const int KV_HEADS = KV_HEADS_;
    static const int HEAD_DIM = HEAD_DIM_;
    static const int SEQ_MAX = SEQ_MAX_;
    static const int DOT_LANES = DOT_LANES_;
    static const int REP = HEADS_ / KV_HEADS_;
    // 1/sqrt(head_dim) rounded once from double to FP32 (the reference's constant)
    static constexpr float INV_SQRT_HEAD_DIM = (float)(1.0 / constexpr_sqrt((double)HEAD_DIM_));
    static_assert(HEADS_ % KV_HEADS_ == 0, "HEADS must be a multiple of KV_HEADS (GQA)");
    static_assert(HEAD_DIM_ % 2 == 0, "HEAD_DIM must be even (RoPE)");
    static_assert(HEAD_DIM_ % DOT_LANES_ == 0, "DOT_LANES must divide HEAD_DIM");
};

}  // namespace llmaccel_hls

#endif
