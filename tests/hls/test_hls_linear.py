"""Weight decoder, MV and MM kernels (C-sim) against the golden INT8 linear: bit for bit.

Each configuration is compiled once (csim caches the library); hypothesis
varies the runtime shape, the packed codes/scales/zeros/indices and the
activations under one seed per example.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from llmaccel.hls_kernels.compare import bit_equal
from llmaccel.hls_kernels.configs import REGISTRY, HlsConfigError, LinearKernelConfig
from llmaccel.hls_kernels.csim import LinearKernel
from llmaccel.hls_kernels.vectors import random_activation, random_packed_linear
from llmaccel.simulator.golden.linear import group_partial_sums, quantize_activation, rescale_groups
from llmaccel.sparse_dsp.packed_format import pack_linear

pytestmark = pytest.mark.gxx

LINEAR = sorted(n for n, c in REGISTRY.items() if isinstance(c, LinearKernelConfig))
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shape(data, cfg: LinearKernelConfig) -> tuple[int, int]:
    rows = data.draw(st.integers(1, cfg.o_max), label="rows")
    k = cfg.group_size * data.draw(st.integers(1, cfg.k_max // cfg.group_size), label="groups")
    return rows, k


def _golden(layer, x):
    q, s = quantize_activation(x)
    acc = group_partial_sums(layer.dense_int8(), q, layer.fmt.group_size)
    return q, s, acc, rescale_groups(acc, layer.scales, s)


@pytest.mark.parametrize("name", [n for n in LINEAR if REGISTRY[n].kind == "mv"])
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_mv_partial_sums_and_output_bit_exact(name, data, seed):
    cfg = REGISTRY[name]
    rows, k = _shape(data, cfg)
    rng = np.random.default_rng(seed)
    layer = random_packed_linear(rng, cfg.layer_format(rows, k))
    q, s, acc, y = _golden(layer, random_activation(rng, (1, k)))
    y_hls, acc_hls = LinearKernel(cfg).mv(layer, q[0], float(s[0]))
    assert bit_equal(acc_hls, acc[0]), "INT32 group partial sums differ"
    assert bit_equal(y_hls, y[0]), "FP32 rescaled output differs"


@pytest.mark.parametrize("name", [n for n in LINEAR if REGISTRY[n].kind == "mm"])
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_mm_partial_sums_and_output_bit_exact(name, data, seed):
    cfg = REGISTRY[name]
    rows, k = _shape(data, cfg)
    tokens = data.draw(st.integers(1, cfg.t_max), label="tokens")
    rng = np.random.default_rng(seed)
    layer = random_packed_linear(rng, cfg.layer_format(rows, k))
    q, s, acc, y = _golden(layer, random_activation(rng, (tokens, k)))
    y_hls, acc_hls = LinearKernel(cfg).mm(layer, q, s)
    assert bit_equal(acc_hls, acc)
    assert bit_equal(y_hls, y)


def _assert_decodes_as_the_format(layer, d, col) -> None:
    """The decoder's INT8 weights and kept-column indices are the packed-format reader's, bit for bit."""
    assert bit_equal(d, layer.decode_int8())
    assert np.array_equal(col, layer.column_of_kept())


@pytest.mark.parametrize("name", [n for n in LINEAR if REGISTRY[n].kind in ("decode", "decode_stream")])
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_weight_decoder_matches_packed_format_reader(name, data, seed):
    """Both decoders; the AXI-stream one also consumes exactly the row-padded words (checked in the ABI)."""
    cfg = REGISTRY[name]
    rows, k = _shape(data, cfg)
    layer = random_packed_linear(np.random.default_rng(seed), cfg.layer_format(rows, k))
    kern = LinearKernel(cfg)
    d, col = (kern.decode_stream if cfg.kind == "decode_stream" else kern.decode)(layer)
    _assert_decodes_as_the_format(layer, d, col)


@pytest.mark.parametrize("bits,symmetric", [(2, False), (3, False), (3, True), (4, False), (8, True)])
def test_weight_decoder_every_bit_width(bits, symmetric):
    """3-bit codes straddle 32-bit words; asymmetric zeros make d span [-(2^b-1), 2^b-1]."""
    cfg = LinearKernelConfig("decode", bits, (4, 16), 32, 256, 8, symmetric=symmetric)
    layer = random_packed_linear(np.random.default_rng(bits), cfg.layer_format(8, 256))
    d, col = LinearKernel(cfg).decode(layer)
    _assert_decodes_as_the_format(layer, d, col)


@pytest.mark.parametrize("name", ["mv_dense_w4_g64_k256_o64_c4", "mm_dense_w8_g64_k256_o32_t8_c8",
                                  "mv_n8m16_w8_g64_k256_o64_c8"])
@pytest.mark.parametrize("sign", [1, -1])
def test_dsp_lane_packing_at_extremes(name, sign):
    """Worst case for the packed DSP lanes: d = -128 (8-bit code 0) or the largest |d|, |q| = 127 everywhere."""
    cfg = REGISTRY[name]
    rows, k = min(cfg.o_max, 6), cfg.k_max
    fmt = cfg.layer_format(rows, k)
    code = 0 if sign > 0 else (1 << cfg.bits) - 1
    codes = np.full((rows, fmt.kept_per_row), code)
    cols = None
    if fmt.nm:
        n, m = fmt.nm
        cols = np.broadcast_to(np.arange(fmt.kept_per_row) // n * m + np.arange(fmt.kept_per_row) % n,
                               (rows, fmt.kept_per_row))
    layer = pack_linear(codes, np.ones((rows, fmt.groups_per_row), np.float16), in_features=k, bits=cfg.bits,
                        group_size=cfg.group_size, nm=fmt.nm, columns=cols)
    x = np.full((2, k), -3.0, np.float32) * sign
    x[1, ::3] *= -1
    q, s, acc, y = _golden(layer, x)
    kern = LinearKernel(cfg)
    if cfg.kind == "mv":
        y_hls, acc_hls = kern.mv(layer, q[0], float(s[0]))
        y_hls, acc_hls, acc, y = y_hls[None], acc_hls[None], acc[:1], y[:1]
    else:
        y_hls, acc_hls = kern.mm(layer, q, s)
    assert np.abs(acc).max() >= fmt.kept_per_group * 127 * 7  # the lanes really carry large sums
    assert bit_equal(acc_hls, acc)
    assert bit_equal(y_hls, y)


def test_kernel_rejects_layer_of_another_format():
    cfg = REGISTRY["mv_n2m16_w4_g64_k256_o64_c4"]
    other = random_packed_linear(np.random.default_rng(0), REGISTRY["mv_dense_w4_g64_k256_o64_c4"].layer_format(4, 64))
    with pytest.raises(HlsConfigError, match="does not match kernel"):
        LinearKernel(cfg).mv(other, np.zeros(64, np.int8), 1.0)


def test_kernel_rejects_layer_beyond_its_bounds():
    cfg = REGISTRY["mv_dense_w4_g64_k256_o64_c4"]
    big = random_packed_linear(np.random.default_rng(0), LinearKernelConfig("mv", 4, None, 64, 512, 8).layer_format(8, 512))
    with pytest.raises(HlsConfigError, match="k_max=256"):
        LinearKernel(cfg).mv(big, np.zeros(512, np.int8), 1.0)


@pytest.mark.parametrize("chain", [1, 8])
def test_dsp48e2_pair_packing_exhaustive(chain):
    """Each lane over every int8 (shared, operand) pair against the other lane's edge values, and every
    extreme sign pattern through a chain of `chain` DSPs: exact (see abi_linear_mv.cpp)."""
    import ctypes

    lib = LinearKernel(REGISTRY["mv_dense_w4_g64_k256_o64_c4"]).lib
    lib.llmaccel_dsp_pair_exhaustive.restype = ctypes.c_long
    assert lib.llmaccel_dsp_pair_exhaustive(chain) == 0
