// C-simulation testbench of the ISA top (what `csim_design` runs): reads the
// run's inputs from a directory, calls the top once, writes the outputs.
//   in:  words.u32 (instruction words), aux.i32 (side table, AUX_WORDS per instruction),
//        hbm.u8 (HBM image), x.f32 (residual input), cfg.bin (isa_config as laid out in memory)
//   out: logits.f32, hbm_out.u8 (the image after the run: the KV cache the STs wrote),
//        status.i32 (isa_status)
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "isa_top.cpp"

static std::vector<char> slurp(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        std::fprintf(stderr, "cannot open %s\n", path.c_str());
        std::exit(2);
    }
    std::fseek(f, 0, SEEK_END);
    const long n = std::ftell(f);
    std::fseek(f, 0, SEEK_SET);
    std::vector<char> buf(n > 0 ? n : 0);
    if (n > 0 && std::fread(buf.data(), 1, n, f) != (size_t)n) {
        std::fprintf(stderr, "short read %s\n", path.c_str());
        std::exit(2);
    }
    std::fclose(f);
    return buf;
}

static void dump(const std::string& path, const void* data, size_t n) {
    const std::string tmp = path + ".part";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f || std::fwrite(data, 1, n, f) != n) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        std::exit(2);
    }
    std::fclose(f);
    std::rename(tmp.c_str(), path.c_str());
}

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s RUN_DIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    std::vector<char> words = slurp(dir + "/words.u32"), aux = slurp(dir + "/aux.i32"), hbm = slurp(dir + "/hbm.u8"),
                      x = slurp(dir + "/x.f32"), cfgb = slurp(dir + "/cfg.bin");
    if (cfgb.size() != sizeof(isa_config)) {
        std::fprintf(stderr, "cfg.bin holds %zu bytes, isa_config is %zu\n", cfgb.size(), sizeof(isa_config));
        return 2;
    }
    isa_config cfg;
    memcpy(&cfg, cfgb.data(), sizeof cfg);
    if ((long)x.size() < 4L * cfg.x_words) {
        std::fprintf(stderr, "x.f32 holds %zu bytes, the program needs %d words\n", x.size(), cfg.x_words);
        return 2;
    }
    const int n_words = (int)(words.size() / 4);
    if ((long)aux.size() < 4L * AUX_WORDS) aux.resize(4 * AUX_WORDS);
    std::vector<float> logits(cfg.logits_words > 0 ? cfg.logits_words : 1);
    isa_status st;
    llmaccel_isa_top(reinterpret_cast<const uint32_t*>(words.data()), n_words,
                     reinterpret_cast<const int32_t*>(aux.data()), reinterpret_cast<uint8_t*>(hbm.data()),
                     (long)hbm.size(), reinterpret_cast<const float*>(x.data()), logits.data(), cfg, &st);
    dump(dir + "/logits.f32", logits.data(), 4 * logits.size());
    dump(dir + "/hbm_out.u8", hbm.data(), hbm.size());
    dump(dir + "/status.i32", &st, sizeof st);
    std::printf("status %d instr %d detail %d executed LD %d ST %d MPE %d SFU %d SYS %d\n", st.code, st.instr,
                st.detail, st.executed[0], st.executed[1], st.executed[2], st.executed[3], st.executed[4]);
    return st.code == 0 ? 0 : 1;
}
