"""The HLS headers' own guards, for users who include them without the Python layer (Vitis projects).

Oracles by hand, not from the headers:
* the DSP48E2 low lane is 18 bits signed, so a cascade stays exact while CHAIN * 128 * 127 < 2^17:
  8 * 16256 = 130048 fits, 9 * 16256 = 146304 does not. ``dsp_chain_pair<9>`` must not compile,
  ``dsp_chain_pair<8>`` must.
* ``quantize_activation`` takes 1..N_MAX elements; in C-simulation a length outside that aborts (assert),
  and inside it gives the contract's codes: x = (0.5, -1, 0.25, 0) has amax 1, s = 1/127, codes
  rint(63.5) = 64 (ties to even), -127, rint(31.75) = 32, 0.
"""
from __future__ import annotations

import signal
import subprocess

import pytest

from llmaccel.hls_kernels import build

pytestmark = pytest.mark.gxx
CHAIN_LIMIT = 8          # by hand: floor((2^17 - 1) / (128 * 127))
assert CHAIN_LIMIT * 128 * 127 < 2 ** 17 <= (CHAIN_LIMIT + 1) * 128 * 127


def _cxx(*args, cwd):
    return subprocess.run([build.find_cxx(), "-std=c++14", "-O0", f"-I{build.INCLUDE_DIR}",
                           f"-I{build.find_ap_types()}", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("chain,ok", [(CHAIN_LIMIT, True), (CHAIN_LIMIT + 1, False)])
def test_a_dsp_cascade_longer_than_the_low_lane_allows_does_not_compile(tmp_path, chain, ok):
    src = tmp_path / "chain.cpp"
    src.write_text('#include "llmaccel_hls/primitives/dsp_pair_mac.hpp"\n'
                   "using namespace llmaccel_hls;\n"
                   f"void f(const ap_int<8> s[{chain}], const ap_int<8> a[{chain}], const ap_int<8> b[{chain}],\n"
                   f"       ap_int<32>& x, ap_int<32>& y) {{ dsp_chain_pair<{chain}>(s, a, b, x, y); }}\n")
    proc = _cxx("-fsyntax-only", str(src), cwd=tmp_path)
    if ok:
        assert proc.returncode == 0, proc.stderr[-2000:]
    else:
        assert proc.returncode != 0 and "DSP chain too long" in proc.stderr


@pytest.fixture(scope="module")
def quant_exe(tmp_path_factory):
    d = tmp_path_factory.mktemp("quant")
    (d / "q.cpp").write_text(
        '#include <cstdio>\n#include <cstdlib>\n#include "llmaccel_hls/kernels/quantize.hpp"\n'
        "int main(int argc, char** argv) {\n"
        "  float x[17] = {0.5f, -1.0f, 0.25f, 0.0f};\n  int8_t q[17] = {0};\n"
        "  int n = std::atoi(argv[1]);\n"
        "  float s = llmaccel_hls::quantize_activation<llmaccel_hls::sfu_config<16> >(x, n, q);\n"
        '  std::printf("%a", s);\n  for (int i = 0; i < 4; i++) std::printf(" %d", (int)q[i]);\n'
        "  return 0;\n}\n")
    proc = _cxx(str(d / "q.cpp"), "-o", str(d / "q"), cwd=d)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return d / "q"


def test_quantize_codes_by_hand(quant_exe):
    out = subprocess.run([str(quant_exe), "4"], capture_output=True, text=True, check=True).stdout.split()
    assert float.fromhex(out[0]) == float.fromhex("0x1.0204080000000p-7") and [int(v) for v in out[1:]] == [64, -127, 32, 0]


@pytest.mark.parametrize("n", [0, 17])
def test_quantize_refuses_a_length_outside_1_to_n_max_in_csim(quant_exe, n):
    proc = subprocess.run([str(quant_exe), str(n)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGABRT and "n > 0" in proc.stderr


def test_softmax_reads_only_its_n_inputs(tmp_path):
    """softmax(x, n) is a function of x[0..n-1]: an element past the end (here 1e30, which would win any
    max and turn every probability into 0/0) must not change the result. By hand for x = (0, 0): 0.5, 0.5."""
    (tmp_path / "s.cpp").write_text(
        '#include <cstdio>\n#include "llmaccel_hls/kernels/sfu.hpp"\n'
        "int main() {\n  float x[3] = {0.0f, 0.0f, 1e30f};\n  float p[3] = {-1.0f, -1.0f, -1.0f};\n"
        "  llmaccel_hls::softmax<llmaccel_hls::sfu_config<16> >(x, 2, p);\n"
        '  std::printf("%a %a %a", p[0], p[1], p[2]);\n  return 0;\n}\n')
    proc = _cxx(str(tmp_path / "s.cpp"), "-o", str(tmp_path / "s"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = subprocess.run([str(tmp_path / "s")], capture_output=True, text=True, check=True).stdout.split()
    assert [float.fromhex(v) for v in out] == [0.5, 0.5, -1.0]
