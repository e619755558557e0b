// C ABI for ctypes: calls the Vitis top unchanged (interface pragmas are ignored by g++).
#include "linear_mv_top.cpp"
extern "C" int llmaccel_linear_mv(const uint32_t* codes, const uint32_t* indices, const uint16_t* scales,
                                  const uint8_t* zeros, const int8_t* xq, float s_x, int rows, int k, float* y,
                                  int32_t* partial) {
    linear_mv_top(codes, indices, scales, zeros, xq, s_x, rows, k, y, partial, 1);
    return 0;
}

// Check of the DSP48E2 packing primitive: each lane exhaustively over every
// (shared, operand) int8 pair while the other lane takes the values where
// borrow and sign interact (-128, -127, -1, 0, 1, 126, 127); then chains of
// `chain` DSPs at every sign pattern of the extreme operands
// (|activation| <= 127, weight in [-128, 127]). Returns the number of
// mismatches against plain integer products.
extern "C" long llmaccel_dsp_pair_exhaustive(int chain) {
    long bad = 0;
    const int edge[7] = {-128, -127, -1, 0, 1, 126, 127};
    for (int s = -128; s <= 127; s++)
        for (int v = -128; v <= 127; v++)
            for (int e = 0; e < 7; e++) {
                const int pairs[2][2] = {{v, edge[e]}, {edge[e], v}};
                for (int k = 0; k < 2; k++) {
                    const int a = pairs[k][0], b = pairs[k][1];
                    llmaccel_hls::dsp_p_t p = llmaccel_hls::dsp48e2_pair_mac(0, s, a, b);
                    ap_int<32> sa, sb;
                    llmaccel_hls::dsp48e2_extract(p, sa, sb);
                    if (sa != a * s || sb != b * s) bad++;
                }
            }
    const int extremes_w[2] = {-128, 127};
    const int extremes_x[2] = {-127, 127};
    // DSP i takes the sign triple of pattern slot i % 4: every pattern of up
    // to four DSPs, and for longer chains the repeated ones (all-same-sign included).
    const int slots = chain < 4 ? chain : 4;
    for (long pattern = 0; pattern < (1L << (3 * slots)) && chain <= 8; pattern++) {
        ap_int<8> sh[8], xa[8], xb[8];
        long ref_a = 0, ref_b = 0;
        for (int i = 0; i < chain; i++) {
            const int slot = i % 4;
            sh[i] = extremes_w[(pattern >> (3 * slot)) & 1];
            xa[i] = extremes_x[(pattern >> (3 * slot + 1)) & 1];
            xb[i] = extremes_x[(pattern >> (3 * slot + 2)) & 1];
            ref_a += (long)sh[i] * xa[i];
            ref_b += (long)sh[i] * xb[i];
        }
        llmaccel_hls::dsp_p_t p = 0;
        for (int i = 0; i < chain; i++) p = llmaccel_hls::dsp48e2_pair_mac(p, sh[i], xa[i], xb[i]);
        ap_int<32> sa, sb;
        llmaccel_hls::dsp48e2_extract(p, sa, sb);
        if (sa != ref_a || sb != ref_b) bad++;
    }
    return bad;
}
