"""Bad input to the HLS library: one clear error each, naming the field and what is allowed."""
from __future__ import annotations

import builtins

import pytest

from llmaccel.hls_kernels import build
from llmaccel.hls_kernels.build import HlsToolError
from llmaccel.hls_kernels.configs import (AttentionKernelConfig, DecoderLayerConfig, HlsConfigError, LinearKernelConfig,
                                 ProjectionFormat, SfuKernelConfig, uniform_layer)


@pytest.mark.parametrize("kwargs,match", [
    (dict(bits=5), r"bits=5 is not supported; allowed: \[2, 3, 4, 8\]"),
    (dict(bits=8, symmetric=False), "asymmetric quantization needs bits"),
    (dict(nm=(3, 16)), "N:M pattern 3:16 is not supported"),
    (dict(nm=(2, 16), group_size=8, k_max=64), "M=16 must divide group_size=8"),
    (dict(group_size=48), "group_size=48 must be positive and divide in_features=256"),
    (dict(chain=3), r"chain=3 must divide the kept values per group \(group_size\*N/M = 8\)"),
    (dict(chain=9, nm=None), "chain=9 must be in 1..8"),
    (dict(kind="conv"), "kind='conv' is not a linear kernel"),
])
def test_linear_config_rejects_misfit_parameters(kwargs, match):
    base = dict(kind="mv", bits=4, nm=(2, 16), group_size=64, k_max=256, o_max=64)
    base.update(kwargs)
    with pytest.raises(HlsConfigError, match=match):
        LinearKernelConfig(**base)


def test_other_configs_reject_misfit_parameters():
    with pytest.raises(HlsConfigError, match="unroll=3 must be >= 1 and divide n_max=64"):
        SfuKernelConfig(64, 3)
    with pytest.raises(HlsConfigError, match="heads=6 must be a multiple of kv_heads=4"):
        AttentionKernelConfig(6, 4, 32, 16)
    with pytest.raises(HlsConfigError, match="dot_lanes=3 must divide head_dim=32"):
        AttentionKernelConfig(8, 4, 32, 16, dot_lanes=3)
    with pytest.raises(HlsConfigError, match="head_dim=31 must be even"):
        AttentionKernelConfig(8, 4, 31, 16)
    with pytest.raises(HlsConfigError, match="q_proj: .*group_size=100 must be positive and divide in_features=256"):
        uniform_layer(fmt=ProjectionFormat(4, 100))
    with pytest.raises(HlsConfigError, match="projections must be given in the order"):
        DecoderLayerConfig(256, 768, 8, 4, 32, 64, (("q_proj", ProjectionFormat(4, 64)),))


def test_missing_compiler_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("CXX", "g++-that-does-not-exist")
    with pytest.raises(HlsToolError, match="install g\\+\\+"):
        build.build(LinearKernelConfig("mv", 4, None, 64, 64, 8))


def test_missing_ap_types_headers_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("XILINX_HLS", raising=False)
    real_import = builtins.__import__

    def no_hls4ml(name, *a, **k):
        if name == "hls4ml":
            raise ImportError("hls4ml hidden by the test")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_hls4ml)
    with pytest.raises(HlsToolError, match="ap_types headers not found: install hls4ml"):
        build.find_ap_types()


def test_xilinx_hls_include_is_preferred(monkeypatch, tmp_path):
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "ap_int.h").write_text("// stand-in path only; never compiled\n")
    monkeypatch.setenv("XILINX_HLS", str(tmp_path))
    assert build.find_ap_types() == tmp_path / "include"


@pytest.mark.gxx
def test_static_asserts_guard_vitis_users_too(tmp_path):
    """The C++ side refuses a misfit instance at compile time (for users who bypass Python)."""
    import subprocess

    src = tmp_path / "bad.cpp"
    src.write_text('#include "llmaccel_hls/config.hpp"\n'
                   "typedef llmaccel_hls::linear_format<5, 2, 16, 64, true, 256, 64> f;\n"
                   "int main() { return f::BITS; }\n")
    proc = subprocess.run([build.find_cxx(), "-std=c++14", f"-I{build.INCLUDE_DIR}", f"-I{build.find_ap_types()}",
                           "-fsyntax-only", str(src)], capture_output=True, text=True)
    assert proc.returncode != 0 and "BITS must be 2, 3, 4 or 8" in proc.stderr


def test_build_cache_is_content_addressed(tmp_path, monkeypatch):
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path))
    cfg_a = LinearKernelConfig("mv", 4, None, 64, 64, 8)
    cfg_b = LinearKernelConfig("mv", 4, None, 64, 128, 8)
    cxx, ap = build.find_cxx(), build.find_ap_types()
    assert build.build_key(cfg_a, cxx, ap) == build.build_key(cfg_a, cxx, ap)
    assert build.build_key(cfg_a, cxx, ap) != build.build_key(cfg_b, cxx, ap)
    assert build.cache_dir() == tmp_path


def test_layer_config_needs_packed_projections_of_the_configured_format():
    import numpy as np

    from llmaccel.hls_kernels.configs import PROJECTIONS, layer_config_from_packed
    from llmaccel.hls_kernels.csim import layer_weight_buffers
    from llmaccel.hls_kernels.vectors import random_packed_linear

    cfg = uniform_layer()
    rng = np.random.default_rng(0)
    layers = {p: random_packed_linear(rng, cfg.linear_config(p).layer_format(*cfg.shape(p))) for p in PROJECTIONS}
    assert layer_config_from_packed(layers, 8, 4, 32, 64) == cfg
    with pytest.raises(HlsConfigError, match="o_proj is not a packed"):
        layer_config_from_packed({**layers, "o_proj": np.zeros((256, 256), np.float32)}, 8, 4, 32, 64)
    with pytest.raises(HlsConfigError, match="lack projections \\['down_proj'\\]"):
        layer_config_from_packed({p: layers[p] for p in PROJECTIONS[:-1]}, 8, 4, 32, 64)
    other = LinearKernelConfig("mv", 8, None, 64, 256, 256).layer_format(256, 256)
    with pytest.raises(HlsConfigError, match="q_proj: packed layer .* does not match"):
        layer_weight_buffers(cfg, {**layers, "q_proj": random_packed_linear(rng, other)})
