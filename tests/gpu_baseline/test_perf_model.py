"""The GPU performance model against first-principles arithmetic written out here, not read from the code.

Byte counts follow the packed format's definition (sparse_dsp/packed_format.py
docstring) and the numerics contract (docs/numerics.md): codes of `bits` bits per
kept weight, `log2(M)`-bit N:M indices, one FP16 scale per (row, group of 128),
LM head symmetric INT8, RMSNorm weights FP32, FP16 embeddings, INT8 K/V with one
FP32 scale per (token, kv head).
"""
import math

import pytest

from llmaccel.gpu_baseline.measured import MeasurementError
from llmaccel.gpu_baseline.perf_model import DATASHEET, TDP_SOURCE, GpuEstimate, GpuModelError, estimate_gpu
from llmaccel.gpu_baseline.workload import gpu_workload
from gpu_measurement_fixture import measurement_dict, write_json
from llmaccel.simulator.specs.model import ModelSpec

# A tiny Llama: d=256, ffn=512, 2 layers, 4 heads of 64, 2 kv heads, vocab 1000.
TINY = ModelSpec(name="tiny-test", hidden_size=256, intermediate_size=512, num_layers=2, num_heads=4,
                 num_kv_heads=2, head_dim=64, vocab_size=1000, max_position_embeddings=256,
                 rms_norm_eps=1e-5, rope_theta=10000.0)
# one layer's linears (out, in): q 256x256, k 128x256, v 128x256, o 256x256, gate/up 512x256, down 256x512
TINY_LINEAR_WEIGHTS = 2 * (256 * 256 + 128 * 256 + 128 * 256 + 256 * 256 + 2 * 512 * 256 + 256 * 512)  # 1,179,648
TINY_ROWS_K256 = 256 + 128 + 128 + 256 + 512 + 512      # rows whose in_features is 256 (2 groups of 128)
TINY_ROWS_K512 = 256                                    # down_proj rows (4 groups)
P, D = 10, 4                                            # contexts of the decode steps: 11, 12, 13, 14
MEAN_CTX = (11 + 12 + 13 + 14) / 4


@pytest.fixture(autouse=True)
def _empty_measurements(tmp_path_factory, monkeypatch):
    """Datasheet-path tests must not depend on what gpu_baseline/measurements/ holds: point the default
    folder at an empty one (tests of the measured path pass their own folder)."""
    global EMPTY
    EMPTY = tmp_path_factory.mktemp("no-measurements")
    monkeypatch.setattr("llmaccel.gpu_baseline.measured.MEASUREMENTS_DIR", EMPTY)


def tiny_w4_decode_bytes():
    codes = TINY_LINEAR_WEIGHTS * 4 / 8
    scales = 2 * (TINY_ROWS_K256 * 2 + TINY_ROWS_K512 * 4) * 2          # 2 layers x groups x FP16
    lm_head = 1000 * 256 * 1 + 1000 * 2 * 2                             # INT8 codes + FP16 scale per group
    norms = (2 * 2 + 1) * 256 * 4                                       # 2 per layer + final, FP32
    emb_row = 256 * 2
    kv_token = 2 * 2 * 2 * (64 + 4)                                     # K,V x layers x kv heads x (INT8 + FP32 scale)
    return codes + scales + lm_head + norms + emb_row + kv_token * (MEAN_CTX + 1)


def test_tiny_w4_bytes_per_token_from_first_principles():
    e = estimate_gpu(TINY, "a100-sxm-80gb", "w4-g128-rtn", prefill=P, decode=D)
    assert e.bytes_per_token == pytest.approx(tiny_w4_decode_bytes(), rel=1e-12)
    assert e.kv_bytes_per_token == 2 * 2 * 2 * (64 + 4)


def test_tiny_fp16_bytes_per_token_from_first_principles():
    want = (TINY_LINEAR_WEIGHTS * 2 + 1000 * 256 * 2 + 5 * 256 * 2 + 256 * 2
            + 2 * 2 * 128 * 2 * (MEAN_CTX + 1))                         # FP16 K,V of 2 layers x kv_dim 128
    e = estimate_gpu(TINY, "a100-sxm-80gb", "fp16", prefill=P, decode=D)
    assert e.bytes_per_token == pytest.approx(want, rel=1e-12)


def test_tiny_2to4_w4_bytes_include_indices():
    # 2:4 keeps half of K: a K=256 row holds 128 codes (64 B) + 128 2-bit indices (32 B) + 2 FP16 scales (4 B)
    per_layer = TINY_ROWS_K256 * (64 + 32 + 4) + TINY_ROWS_K512 * (128 + 64 + 8)
    w = gpu_workload(TINY, "2:4+w4")
    assert w.linear_weight_bytes == 2 * per_layer


def test_fp_weights_with_2to4_run_as_fp16_plus_indices():
    # 2:4-wanda keeps FP weights: half of them kept, each an FP16 value and a 2-bit index
    w = gpu_workload(TINY, "2:4-wanda")
    assert w.linear_weight_bytes == TINY_LINEAR_WEIGHTS / 2 * (2 + 2 / 8)
    assert w.kv_bytes_per_token == 2 * 2 * 128 * 2 and not w.int8_activations      # FP16 KV, FP16 activations
    assert any("modelled as FP16" in n for n in w.notes)


def test_decode_flops_from_first_principles():
    # 2 FLOPs per MAC of linears + LM head, attention 4 * q_dim * context per layer
    want = 2 * (TINY_LINEAR_WEIGHTS + 1000 * 256) + 2 * 4 * 256 * MEAN_CTX
    e = estimate_gpu(TINY, "h100-sxm-80gb", "w4-g128-rtn", prefill=P, decode=D)
    assert e.flops_per_token == pytest.approx(want, rel=1e-12)


def test_roofline_decode_is_bytes_over_datasheet_bandwidth():
    e = estimate_gpu(TINY, "a100-sxm-80gb", "w4-g128-rtn", prefill=P, decode=D)
    assert e.bound == "memory"
    assert e.decode_ms_per_token == pytest.approx(tiny_w4_decode_bytes() / 2039e9 * 1e3, rel=1e-12)
    assert e.efficiency_source == DATASHEET and e.provenance == "modelled"


LLAMA7B_LINEAR = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)   # 6,476,005,376 MACs per token
LLAMA7B_HEAD = 32000 * 4096


def test_llama7b_fp16_a100_decode_and_prefill_hand_roofline():
    e = estimate_gpu("llama2-7b", "a100-sxm-80gb", "fp16", prefill=512, decode=512)
    kv16 = 2 * 32 * 4096 * 2
    dec_bytes = 2 * (LLAMA7B_LINEAR + LLAMA7B_HEAD) + 2 * 65 * 4096 + 2 * 4096 + kv16 * (512 + 513 / 2 + 1)
    assert e.decode_ms_per_token == pytest.approx(dec_bytes / 2039e9 * 1e3, rel=1e-9)
    # prefill of 512 tokens is compute-bound at 312 dense FP16 TFLOPS: linears for every token, the LM head
    # for the last one, causal attention 4 * 4096 * (1 + 2 + ... + 512) per layer
    flops = 2 * (512 * LLAMA7B_LINEAR + LLAMA7B_HEAD) + 32 * 4 * 4096 * 512 * 513 / 2
    assert e.prefill_bound == "compute"
    assert e.ttft_s == pytest.approx(flops / 312e12, rel=1e-9)
    assert e.prefill_tokens_per_s == pytest.approx(512 / e.ttft_s)


def test_int8_activations_use_int8_peak_and_v100_falls_back():
    a = estimate_gpu("llama2-7b", "a100-sxm-80gb", "w4-g128-rtn")
    assert a.linear_peak_TOPS == 624 and a.linear_peak_source == "int8_TOPS_dense"
    v = estimate_gpu("llama2-7b", "v100s-pcie-32gb", "w4-g128-rtn")
    assert v.linear_peak_TOPS == 130 and any("no INT8 tensor-core figure" in n for n in v.notes)


def test_tdp_is_labelled_as_not_measured():
    e = estimate_gpu("llama2-7b", "h100-sxm-80gb", "w4-g128-rtn")
    assert e.power_W == 700 and e.power_source == TDP_SOURCE == "datasheet TDP (upper bound, not measured)"
    assert e.tokens_per_J == pytest.approx(e.decode_tokens_per_s / 700)
    assert e.energy_J_per_token == pytest.approx(1 / e.tokens_per_J)


def test_measured_efficiency_reproduces_the_measurement_and_scales_others(tmp_path):
    # fixture: A100, llama2-7b w4-g128-rtn at 512+512, decode 4.0 ms/token at 300 W, prefill 0.2 ms/token
    write_json(tmp_path, "a100-run.json", measurement_dict())
    m = estimate_gpu("llama2-7b", "a100-sxm-80gb", "w4-g128-rtn", measurements_root=tmp_path)
    # the same configuration as measured gives back the measured figures
    assert m.decode_ms_per_token == pytest.approx(4.0, rel=1e-12)
    assert m.ttft_s == pytest.approx(512 * 0.2e-3, rel=1e-12)
    assert m.efficiency_source == "measured:a100-run.json"
    assert m.power_W == 300.0 and m.power_source.startswith("measured:a100-run.json")
    assert m.tokens_per_J == pytest.approx(250 / 300)
    # another recipe: the datasheet roofline scaled by the same decode efficiency (roofline / 4 ms)
    w4_roof = estimate_gpu("llama2-7b", "a100-sxm-80gb", "w4-g128-rtn", measurements_root=EMPTY)
    fp_roof = estimate_gpu("llama2-7b", "a100-sxm-80gb", "fp16", measurements_root=EMPTY)
    fp_meas = estimate_gpu("llama2-7b", "a100-sxm-80gb", "fp16", measurements_root=tmp_path)
    eff = w4_roof.decode_ms_per_token / 4.0
    assert m.decode_efficiency == pytest.approx(eff)
    assert fp_meas.decode_ms_per_token == pytest.approx(fp_roof.decode_ms_per_token / eff, rel=1e-12)
    # no fp16 decode run measured: its power is the TDP, and says so
    assert fp_meas.power_source == TDP_SOURCE and fp_meas.power_W == 400
    # a measurement of another GPU does not touch this one
    h = estimate_gpu("llama2-7b", "h100-sxm-80gb", "w4-g128-rtn", measurements_root=tmp_path)
    assert h.efficiency_source == DATASHEET


def test_copy_kernel_only_measurement_scales_decode(tmp_path):
    write_json(tmp_path, "copy.json", measurement_dict(runs=[], kernels=[]))
    e = estimate_gpu("llama2-7b", "a100-sxm-80gb", "fp16", measurements_root=tmp_path)
    roof = estimate_gpu("llama2-7b", "a100-sxm-80gb", "fp16", measurements_root=EMPTY)
    assert e.decode_efficiency == pytest.approx(0.7847)
    assert e.decode_tokens_per_s == pytest.approx(roof.decode_tokens_per_s * 0.7847, rel=1e-12)
    assert e.prefill_efficiency == 1.0 and "copy-kernel" in e.efficiency_detail


def test_runs_the_model_cannot_replay_are_skipped_and_said(tmp_path):
    d = measurement_dict()
    d["runs"][0] = dict(d["runs"][0], model="my-private-7b")     # not a preset: its shapes are unknown here
    write_json(tmp_path, "m.json", d)
    e = estimate_gpu("llama2-7b", "a100-sxm-80gb", "w4-g128-rtn", measurements_root=tmp_path)
    assert "runs skipped (model or recipe unknown here): my-private-7b/w4-g128-rtn" in e.efficiency_detail
    assert e.decode_efficiency == pytest.approx(0.7847)       # falls back to the copy kernel
    assert e.power_source == TDP_SOURCE                       # the skipped run's power is not used


def test_bad_measurement_file_is_one_clear_error(tmp_path):
    d = measurement_dict()
    d["runs"][0]["ms_per_token"] = -1
    write_json(tmp_path, "bad.json", d)
    with pytest.raises(MeasurementError, match=r"bad\.json: field 'runs\.0\.ms_per_token'"):
        estimate_gpu("llama2-7b", "a100-sxm-80gb", "w4-g128-rtn", measurements_root=tmp_path)


LLAMA2_70B = ModelSpec(name="llama2-70b-shape", hidden_size=8192, intermediate_size=28672, num_layers=80,
                       num_heads=64, num_kv_heads=8, head_dim=128, vocab_size=32000,
                       max_position_embeddings=4096, rms_norm_eps=1e-5, rope_theta=10000.0)


def test_model_that_does_not_fit_names_sizes():
    with pytest.raises(GpuModelError, match=r"does not fit h100-sxm-80gb: it needs 13\d\.\d GB .*the GPU has 80 GB"):
        estimate_gpu(LLAMA2_70B, "h100-sxm-80gb", "fp16")
    # at 4.125 bits per weight (4 + 16/128) the same model fits
    e = estimate_gpu(LLAMA2_70B, "h100-sxm-80gb", "w4-g128-rtn")
    assert 30 < e.resident_GB < 40


@pytest.mark.parametrize("kwargs, match", [
    (dict(device="alveo-u280"), "is an FPGA"),
    (dict(device="h100-sxm-80gb", recipe="w5"), "unknown recipe 'w5'"),
    (dict(device="h100-sxm-80gb", prefill=0), "prefill=0 must be an integer >= 1"),
    (dict(device="h100-sxm-80gb", prefill=4000, decode=200), "exceeds llama2-7b's max_position_embeddings=4096"),
    (dict(device="b200"), "unknown device preset 'b200'"),
])
def test_bad_input_one_error(kwargs, match):
    from llmaccel.errors import LlmaccelError
    with pytest.raises(LlmaccelError, match=match):
        estimate_gpu("llama2-7b", **kwargs)


def test_estimate_api_shape():
    e = estimate_gpu("llama2-7b", "h200-sxm-141gb")
    assert isinstance(e, GpuEstimate) and e.recipe == "fp16" and (e.prefill, e.decode) == (512, 512)
    d = e.to_dict()
    for k in ("device", "model", "recipe", "prefill", "decode", "ttft_s", "prefill_tokens_per_s",
              "decode_ms_per_token", "decode_tokens_per_s", "power_W", "power_source", "tokens_per_J",
              "energy_J_per_token", "provenance", "efficiency_source", "bytes_per_token", "flops_per_token", "bound"):
        assert k in d
    assert all(math.isfinite(d[k]) for k in ("ttft_s", "decode_ms_per_token", "tokens_per_J"))
    # the H200 has the H100's compute and 4.8/3.35 of its bandwidth: memory-bound decode scales with it
    h100 = estimate_gpu("llama2-7b", "h100-sxm-80gb")
    assert e.decode_tokens_per_s / h100.decode_tokens_per_s == pytest.approx(4800 / 3350, rel=1e-12)
