// Vitis kernel top of the accelerator core: executes ISA programs (simulator/isa.py).
//
// One core: instruction fetch from the `instr` port, the five units with
// their wait/release token counters (llmaccel_hls/isa/dispatch.hpp), LD/ST
// against the HBM image on the `hbm` port (pseudo channel c at byte
// c * channel_bytes), the matrix engine from kernels/linear.hpp and the SFU
// from kernels/sfu.hpp (llmaccel_hls/isa/units.hpp). The host writes the
// token's embedding into the residual region (`x_in`) and reads the logits
// region (`logits`) when the program has ended.
//
// Generated headers (hls_kernels/flow/isa_top.py writes them per compiled
// model and design): llmaccel_isa_decode.hpp (field extractors from
// simulator/isa.py) and llmaccel_isa_instance.hpp (sizes, weight formats,
// side-table roles, the configuration struct).
#include "llmaccel_hls/isa/dispatch.hpp"

using namespace llmaccel_hls::isa_top;

static core_state g_core;        // the core's on-chip buffers (URAM/BRAM)
static unit_queues g_queues;     // per-unit instruction queues (FIFOs of the fetch unit)

void llmaccel_isa_top(const uint32_t* instr, int n_words, const int32_t* aux, uint8_t* hbm, long hbm_bytes,
                      const float* x_in, float* logits, isa_config cfg, isa_status* status) {
#pragma HLS INTERFACE m_axi port = instr offset = slave bundle = gmem_instr depth = ISA_MAX_WORDS
#pragma HLS INTERFACE m_axi port = aux offset = slave bundle = gmem_aux depth = ISA_MAX_AUX
#pragma HLS INTERFACE m_axi port = hbm offset = slave bundle = gmem_hbm depth = ISA_HBM_DEPTH max_widen_bitwidth = 512
#pragma HLS INTERFACE m_axi port = x_in offset = slave bundle = gmem_x depth = ISA_ACT_WORDS
#pragma HLS INTERFACE m_axi port = logits offset = slave bundle = gmem_logits depth = ISA_ACT_WORDS
#pragma HLS INTERFACE m_axi port = status offset = slave bundle = gmem_status depth = 1
#pragma HLS INTERFACE s_axilite port = n_words
#pragma HLS INTERFACE s_axilite port = hbm_bytes
#pragma HLS INTERFACE s_axilite port = cfg
#pragma HLS INTERFACE s_axilite port = return
    isa_status st;
    st.code = ISA_OK;
    st.instr = -1;
    st.detail = 0;
    for (int u = 0; u < N_UNITS; u++) st.executed[u] = 0;
    reset_state(cfg, g_core);
    if (!in_range(cfg.x_offset, cfg.x_words, ISA_ACT_WORDS) || !in_range(cfg.logits_offset, cfg.logits_words,
                                                                         ISA_ACT_WORDS)) {
        st.code = ISA_BOUNDS;
        *status = st;
        return;
    }
TOP_LOAD_X:
    for (int i = 0; i < cfg.x_words; i++) {
#pragma HLS PIPELINE II = 1
        g_core.act[cfg.x_offset + i] = x_in[i];
    }
    st.code = fetch(instr, n_words, g_queues, st);
    if (st.code == ISA_OK) st.code = run_program(instr, aux, cfg, hbm, hbm_bytes, g_queues, g_core, st);
TOP_STORE_LOGITS:
    for (int i = 0; i < cfg.logits_words; i++) {
#pragma HLS PIPELINE II = 1
        logits[i] = g_core.act[cfg.logits_offset + i];
    }
    *status = st;
}
