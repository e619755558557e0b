// Vitis kernel top of the accelerator core: executes ISA programs (simulator/isa.py).
//
// One core: instruction fetch from the `instr` port, the five units with
// their wait/release token counters (llmaccel_hls/isa/dispatch.hpp), LD/ST
// against the HBM image on the `hbm` port (pseudo channel c at byte
// c * channel_bytes), the matrix engine from kernels/linear.hpp and the SFU
// from kernels/sfu.hpp (llmaccel_hls/isa/units.hpp). The host writes the
// region table once (`regions`), per launch the layer base and position
// registers (cfg) and, for the first layer, the token's embedding (`x_in`);
// it reads the logits (or a prefill chunk's residual) from `out`.
//
// Generated headers (hls_kernels/flow/isa_top.py writes them per compiled
// model and design): llmaccel_isa_decode.hpp (field extractors from
// simulator/isa.py) and llmaccel_isa_instance.hpp (sizes, weight formats,
// the region, launch and configuration structs).
#include "llmaccel_hls/isa/dispatch.hpp"

using namespace llmaccel_hls::isa_top;

static core_state g_core;        // the core's on-chip buffers (URAM/BRAM); they persist between launches
static unit_queues g_queues;     // per-unit instruction queues (FIFOs of the fetch unit)

// One launch: the program's words, the host's region table, the HBM image; cfg holds the
// launch's registers (layer base, position, tokens) and, with load_x, the residual is written
// first. The out region is read back into `out` when the program has ended.
void llmaccel_isa_top(const uint32_t* instr, int n_words, const int32_t* regions, uint8_t* hbm, long hbm_bytes,
                      const float* x_in, float* out, isa_config cfg, isa_status* status) {
#pragma HLS INTERFACE m_axi port = instr offset = slave bundle = gmem_instr depth = ISA_MAX_WORDS
#pragma HLS INTERFACE m_axi port = regions offset = slave bundle = gmem_regions depth = ISA_MAX_REGIONS
#pragma HLS INTERFACE m_axi port = hbm offset = slave bundle = gmem_hbm depth = ISA_HBM_DEPTH max_widen_bitwidth = 512
#pragma HLS INTERFACE m_axi port = x_in offset = slave bundle = gmem_x depth = ISA_VBUF_WORDS
#pragma HLS INTERFACE m_axi port = out offset = slave bundle = gmem_out depth = ISA_VBUF_WORDS
#pragma HLS INTERFACE m_axi port = status offset = slave bundle = gmem_status depth = 1
#pragma HLS INTERFACE s_axilite port = n_words
#pragma HLS INTERFACE s_axilite port = hbm_bytes
#pragma HLS INTERFACE s_axilite port = cfg
#pragma HLS INTERFACE s_axilite port = return
    isa_status st;
    st.code = ISA_OK;
    st.instr = -1;
    st.detail = 0;
    st.launch = -1;
    for (int u = 0; u < N_UNITS; u++) st.executed[u] = 0;
    reset_state(cfg, g_core);
    const launch_ctx L = {&cfg, regions, hbm, hbm_bytes};
    if (cfg.load_x) {
    TOP_LOAD_X:
        for (int t = 0; t < cfg.x_rows; t++)
        TOP_LOAD_X_ELEMS:
            for (int i = 0; i < cfg.x_elems; i++) {
#pragma HLS PIPELINE II = 1
                const long a = vec_at(L, cfg.x_buffer, cfg.x_offset_lines, t, i);
                if (!in_range(a, 1, ISA_VBUF_WORDS)) st.code = ISA_BOUNDS;
                else g_core.vbuf[cfg.x_buffer][a] = x_in[t * cfg.x_elems + i];
            }
    }
    if (st.code == ISA_OK) st.code = fetch(instr, n_words, g_queues, st);
    if (st.code == ISA_OK) st.code = run_program(instr, L, g_queues, g_core, st);
TOP_STORE_OUT:
    for (int t = 0; t < cfg.out_rows; t++)
    TOP_STORE_OUT_ELEMS:
        for (int i = 0; i < cfg.out_elems; i++) {
#pragma HLS PIPELINE II = 1
            const long a = vec_at(L, cfg.out_buffer, cfg.out_offset_lines, t, i);
            out[t * cfg.out_elems + i] = in_range(a, 1, ISA_VBUF_WORDS) ? g_core.vbuf[cfg.out_buffer][a] : 0.0f;
        }
    *status = st;
}
