// C-simulation testbench of the ISA top (what `csim_design` runs): reads a run's inputs from a
// directory, calls the top once per launch (on-chip state persists between them, as on the board),
// writes the outputs.
//   in:  words.u32 (every launched program's words), launches.i32 (ISA_LAUNCH_WORDS per launch:
//        word0, n_words, base_lines, position, tokens, load_x), regions.i32 (the host's region table),
//        hbm.u8 (HBM image), x.f32 (residual input), cfg.bin (isa_config as laid out in memory)
//   out: out.f32 (the region read back after the last launch), hbm_out.u8 (the image after the run:
//        the KV rows the STs wrote), status.i32 (isa_status of the first launch that failed, or the last)
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
    std::vector<char> words = slurp(dir + "/words.u32"), launches = slurp(dir + "/launches.i32"),
                      regions = slurp(dir + "/regions.i32"), hbm = slurp(dir + "/hbm.u8"), x = slurp(dir + "/x.f32"),
                      cfgb = slurp(dir + "/cfg.bin");
    if (cfgb.size() != sizeof(isa_config)) {
        std::fprintf(stderr, "cfg.bin holds %zu bytes, isa_config is %zu\n", cfgb.size(), sizeof(isa_config));
        return 2;
    }
    isa_config cfg;
    memcpy(&cfg, cfgb.data(), sizeof cfg);
    if ((long)regions.size() != 4L * ISA_REGION_WORDS * cfg.n_regions || (long)x.size() < 4L * cfg.x_rows * cfg.x_elems) {
        std::fprintf(stderr, "regions.i32 / x.f32 do not match cfg.bin\n");
        return 2;
    }
    const int32_t* lt = reinterpret_cast<const int32_t*>(launches.data());
    const int n_launch = (int)(launches.size() / (4 * ISA_LAUNCH_WORDS));
    const uint32_t* w = reinterpret_cast<const uint32_t*>(words.data());
    std::vector<float> out((size_t)(cfg.out_rows > 0 ? cfg.out_rows : 1) * (cfg.out_elems > 0 ? cfg.out_elems : 1));
    isa_status st = {0, -1, {0, 0, 0, 0, 0}, 0, -1};
    long executed[N_UNITS] = {0, 0, 0, 0, 0};
    for (int l = 0; l < n_launch; l++) {
        const int32_t* e = lt + (long)l * ISA_LAUNCH_WORDS;
        if ((long)e[LAUNCH_word0] + e[LAUNCH_n_words] > (long)(words.size() / 4)) {
            std::fprintf(stderr, "launch %d reaches past words.u32\n", l);
            return 2;
        }
        cfg.base_lines = e[LAUNCH_base_lines];
        cfg.position = e[LAUNCH_position];
        cfg.tokens = e[LAUNCH_tokens];
        cfg.load_x = e[LAUNCH_load_x];
        llmaccel_isa_top(w + e[LAUNCH_word0], e[LAUNCH_n_words], reinterpret_cast<const int32_t*>(regions.data()),
                         reinterpret_cast<uint8_t*>(hbm.data()), (long)hbm.size(),
                         reinterpret_cast<const float*>(x.data()), out.data(), cfg, &st);
        for (int u = 0; u < N_UNITS; u++) executed[u] += st.executed[u];
        if (st.code != 0) {
            st.launch = l;
            break;
        }
    }
    for (int u = 0; u < N_UNITS; u++) st.executed[u] = (int32_t)executed[u];
    dump(dir + "/out.f32", out.data(), 4 * out.size());
    dump(dir + "/hbm_out.u8", hbm.data(), hbm.size());
    dump(dir + "/status.i32", &st, sizeof st);
    std::printf("status %d launch %d instr %d detail %d executed LD %ld ST %ld MPE %ld SFU %ld SYS %ld\n", st.code,
                st.launch, st.instr, st.detail, executed[0], executed[1], executed[2], executed[3], executed[4]);
    return st.code == 0 ? 0 : 1;
}
