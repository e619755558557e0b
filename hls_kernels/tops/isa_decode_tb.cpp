// Check of the generated decoder (llmaccel_isa_decode.hpp) against simulator/isa.py:
// reads a word stream, prints one line per instruction with the opcode, wait,
// release and every field's code in LAYOUT order, or "error <word> <what>" at
// the first word that is not a valid instruction start. The field lists per
// opcode come from the generated ISA_FIELDS_<MNEMONIC> macro lists.
#include <cstdio>
#include <vector>
#include "llmaccel_isa_decode.hpp"
#include "llmaccel_isa_fields.hpp"

using namespace llmaccel_isa;

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    FILE* f = std::fopen(argv[1], "rb");
    if (!f) return 2;
    std::vector<uint32_t> w;
    uint32_t x;
    while (std::fread(&x, 4, 1, f) == 1) w.push_back(x);
    std::fclose(f);
    size_t pos = 0;
    while (pos < w.size()) {
        const uint32_t* p = &w[pos];
        const int op = (int)HDR_opcode(p);
        const int len = WORDS_OF[op];
        if (len == 0) { std::printf("error %zu opcode\n", pos); return 0; }
        if (pos + len > w.size()) { std::printf("error %zu truncated\n", pos); return 0; }
        for (int j = 0; j < len; j++)
            if (reserved_bits(op, j, p[j])) { std::printf("error %zu reserved\n", pos); return 0; }
        std::printf("%d %u %u", op, HDR_wait(p), HDR_release(p));
        switch (op) {
#define ISA_PRINT_FIELD(M, F) std::printf(" %u", M##_##F(p));
#define ISA_PRINT_CASE(M) case OP_##M: ISA_FIELDS_##M(ISA_PRINT_FIELD) break;
            ISA_MNEMONICS(ISA_PRINT_CASE)
            default: break;
        }
        std::printf("\n");
        pos += len;
    }
    return 0;
}
