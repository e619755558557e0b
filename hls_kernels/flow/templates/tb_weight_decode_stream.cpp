// Testbench for weight_decode_stream_top (${name}): golden vectors from sparse_dsp.packed_format's reader.
// The packed words go in on the AXI streams exactly as an HBM reader would hand them on; every
// word must be consumed and nothing else produced (the reader follows the row padding exactly).
#include <vector>
#include "hls_stream.h"
#include "ap_int.h"
#include "golden_vectors.h"
#include "tb_common.h"

void weight_decode_stream_top(hls::stream<ap_uint<32> >& code_words, hls::stream<ap_uint<32> >& index_words,
                              const uint8_t* zeros, int rows, int k, hls::stream<ap_int<8> >& d_out,
                              hls::stream<ap_uint<16> >& column_out);

int main() {
    hls::stream<ap_uint<32> > cw("code_words"), iw("index_words");
    hls::stream<ap_int<8> > d_s("d_out");
    hls::stream<ap_uint<16> > col_s("column_out");
    for (int i = 0; i < N_CODE_WORDS; i++) cw.write(codes[i]);
    for (int i = 0; i < N_INDEX_WORDS; i++) iw.write(indices[i]);
    weight_decode_stream_top(cw, iw, HAS_ZEROS ? zeros : 0, ROWS, K, d_s, col_s);
    std::vector<int8_t> d(ROWS * KEPT);
    std::vector<int32_t> col(ROWS * KEPT);
    int bad = 0;
    for (int i = 0; i < ROWS * KEPT; i++) {
        if (d_s.empty() || col_s.empty()) {
            bad++;
            break;
        }
        d[i] = (int8_t)d_s.read().to_int();
        col[i] = (int32_t)col_s.read().to_int();
    }
    bad += tb_check_int("d", d.data(), expect_d, ROWS * KEPT);
    bad += tb_check_int("column", col.data(), expect_column, ROWS * KEPT);
    if (!cw.empty() || !iw.empty() || !d_s.empty() || !col_s.empty()) {
        std::printf("streams not drained exactly: words left or extra outputs\n");
        bad++;
    }
    return tb_finish("${name}", bad);
}
