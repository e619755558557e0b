// Instruction fetch, the per-unit queues and the wait/release token counters.
//
// Fetch walks the word stream once, checks each instruction (opcode, length,
// reserved bits) with the decoder generated from simulator/isa.py, and appends
// it to the queue of its unit: each unit then sees its own instructions in
// program order. Between every ordered pair of units (P, C) a counter holds
// the tokens P has released to C (simulator/isa.py): an instruction starts
// only when every unit named in its wait field has a token for it (taking
// one each) and, when it completes, gives one to every unit named in its
// release field.
//
// The units are concurrent in hardware; here one instruction completes at a
// time, picked among the queue heads whose tokens are all there, oldest in
// program order first (policy 0) or youngest first (policy 1, which runs an
// instruction as early as its tokens allow and so exposes an ordering the
// tokens do not enforce). When no head can start and a queue is not empty,
// the program is deadlocked: a token it waits for is never released.
#ifndef LLMACCEL_HLS_ISA_DISPATCH_HPP
#define LLMACCEL_HLS_ISA_DISPATCH_HPP

#include "units.hpp"

namespace llmaccel_hls {
namespace isa_top {

struct unit_queues {
    int32_t start[N_UNITS][ISA_MAX_INSTR];   // word offset of each queued instruction
    int32_t index[N_UNITS][ISA_MAX_INSTR];   // its index in program order (for status)
    int32_t size[N_UNITS];
    int32_t head[N_UNITS];
};

inline int fetch(const uint32_t* words, int n_words, unit_queues& q, isa_status& st) {
    for (int u = 0; u < N_UNITS; u++) q.size[u] = q.head[u] = 0;
    int pos = 0, n = 0;
FETCH:
    while (pos < n_words) {
        const int op = (int)HDR_opcode(words + pos);
        const int len = WORDS_OF[op];
        st.instr = n;
        if (len == 0) return ISA_BAD_OPCODE;
        if (pos + len > n_words) return ISA_TRUNCATED;
        for (int j = 0; j < len; j++)
            if (reserved_bits(op, j, words[pos + j])) return ISA_RESERVED_BITS;
        const int u = UNIT_OF[op];
        if (q.size[u] >= ISA_MAX_INSTR) return ISA_TOO_MANY;
        q.start[u][q.size[u]] = pos;
        q.index[u][q.size[u]] = n;
        q.size[u]++;
        pos += len;
        n++;
    }
    st.instr = -1;
    return ISA_OK;
}

inline bool can_start(const uint32_t* w, const core_state& s, int u) {
    const uint32_t wait = HDR_wait(w);
    for (int p = 0; p < N_UNITS; p++)
        if (((wait >> p) & 1) && s.tokens[p][u] <= 0) return false;
    return true;
}

inline int execute(int u, const uint32_t* w, const launch_ctx& L, core_state& s) {
    switch (u) {
        case UNIT_LD:
            return exec_ld(w, L, s);
        case UNIT_ST:
            return exec_st(w, L, s);
        case UNIT_MPE:
            return exec_mpe(w, L, s);
        case UNIT_SFU:
            return exec_sfu(w, L, s);
        default: {  // SYS
            const int op = (int)SYS_op(w);
            if (op == SYS_OP_set_position) s.q0 = (int)SYS_imm(w);
            return ISA_OK;  // nop / barrier (one core) / end: their tokens are their whole effect
        }
    }
}

// A launch starts with its initial tokens and empty tile slots; the vector buffers keep what the
// previous launch left (the residual between layer launches, as on the board).
inline void reset_state(const isa_config& cfg, core_state& s) {
    for (int p = 0; p < N_UNITS; p++)
        for (int c = 0; c < N_UNITS; c++) s.tokens[p][c] = cfg.init_tokens[p][c];
    for (int i = 0; i < SLOTS; i++) {
        s.wslot[i].rows = 0;
        s.wslot[i].format = -1;
        s.kvslot[i].count = 0;
    }
    s.q0 = 0;
    s.done_region = -1;
    s.done_rows = 0;
}

// Run a fetched program to its end (every queue drained) or to its first error.
inline int run_program(const uint32_t* words, const launch_ctx& L, unit_queues& q, core_state& s, isa_status& st) {
    const isa_config& cfg = *L.cfg;
    for (int u = 0; u < N_UNITS; u++) st.executed[u] = 0;
ISSUE:
    for (;;) {
        int pick = -1, pick_index = 0;
        bool pending = false;
        for (int u = 0; u < N_UNITS; u++) {
            if (q.head[u] >= q.size[u]) continue;
            pending = true;
            const uint32_t* w = words + q.start[u][q.head[u]];
            if (!can_start(w, s, u)) continue;
            const int idx = q.index[u][q.head[u]];
            if (pick < 0 || (cfg.policy == 0 ? idx < pick_index : idx > pick_index)) {
                pick = u;
                pick_index = idx;
            }
        }
        if (!pending) break;
        if (pick < 0) {  // deadlock: report the oldest waiting instruction
            st.instr = 1 << 30;
            for (int u = 0; u < N_UNITS; u++)
                if (q.head[u] < q.size[u] && q.index[u][q.head[u]] < st.instr) {
                    st.instr = q.index[u][q.head[u]];
                    st.detail = u;
                }
            return ISA_DEADLOCK;
        }
        const uint32_t* w = words + q.start[pick][q.head[pick]];
        const uint32_t wait = HDR_wait(w), release = HDR_release(w);
        for (int p = 0; p < N_UNITS; p++)
            if ((wait >> p) & 1) s.tokens[p][pick]--;
        const int rc = execute(pick, w, L, s);
        if (rc != ISA_OK) {
            st.instr = pick_index;
            st.detail = pick;
            return rc;
        }
        for (int c = 0; c < N_UNITS; c++)
            if ((release >> c) & 1) s.tokens[pick][c]++;
        st.executed[pick]++;
        q.head[pick]++;
    }
    st.instr = -1;
    return ISA_OK;
}

}  // namespace isa_top
}  // namespace llmaccel_hls

#endif
