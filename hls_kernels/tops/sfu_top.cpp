// Vitis kernel top: the special function unit. One instance serves every
// op; `op` (s_axilite) selects it, as an SFU opcode would. One m_axi bundle
// per port, a depth on every port.
#include "llmaccel_instance.hpp"
#include "llmaccel_hls/kernels/quantize.hpp"
#include "llmaccel_hls/kernels/sfu.hpp"

enum sfu_op {
    SFU_SOFTMAX = 0,
    SFU_RMSNORM = 1,
    SFU_LAYERNORM = 2,
    SFU_SILU = 3,
    SFU_SILU_MUL = 4,
    SFU_ADD = 5,
    SFU_MUL = 6,
    SFU_ROPE = 7,
    SFU_QUANTIZE = 8
};

// a, b, c: operands (x; w or cos or second operand; bias or sin). For ROPE n = heads * head_dim.
// SFU_QUANTIZE writes codes to q and the scale to y[0].
static const int SFU_DEPTH = instance_sfu::N_MAX;

int sfu_top(int op, const float* a, const float* b, const float* c, float eps, int n, int head_dim, float* y,
            int8_t* q) {
#pragma HLS INTERFACE m_axi port = a offset = slave bundle = gmem_a depth = SFU_DEPTH
#pragma HLS INTERFACE m_axi port = b offset = slave bundle = gmem_b depth = SFU_DEPTH
#pragma HLS INTERFACE m_axi port = c offset = slave bundle = gmem_c depth = SFU_DEPTH
#pragma HLS INTERFACE m_axi port = y offset = slave bundle = gmem_y depth = SFU_DEPTH
#pragma HLS INTERFACE m_axi port = q offset = slave bundle = gmem_q depth = SFU_DEPTH
#pragma HLS INTERFACE s_axilite port = op
#pragma HLS INTERFACE s_axilite port = eps
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = head_dim
#pragma HLS INTERFACE s_axilite port = return
    switch (op) {
        case SFU_SOFTMAX: llmaccel_hls::softmax<instance_sfu>(a, n, y); return 0;
        case SFU_RMSNORM: llmaccel_hls::rmsnorm<instance_sfu>(a, b, eps, n, y); return 0;
        case SFU_LAYERNORM: llmaccel_hls::layernorm<instance_sfu>(a, b, c, eps, n, y); return 0;
        case SFU_SILU: llmaccel_hls::silu<instance_sfu>(a, n, y); return 0;
        case SFU_SILU_MUL: llmaccel_hls::silu_mul<instance_sfu>(a, b, n, y); return 0;
        case SFU_ADD: llmaccel_hls::add<instance_sfu>(a, b, n, y); return 0;
        case SFU_MUL: llmaccel_hls::mul<instance_sfu>(a, b, n, y); return 0;
        case SFU_ROPE: llmaccel_hls::rope<instance_sfu>(a, b, c, n / head_dim, head_dim, y); return 0;
        case SFU_QUANTIZE: y[0] = llmaccel_hls::quantize_activation<instance_sfu>(a, n, q); return 0;
        default: return 1;
    }
}
