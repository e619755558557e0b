"""Triton linears read the packed format: bit-exact with the numpy golden on the INT8 path, bounded on FP16.

Every format the packed format allows (bits x N:M x symmetric) goes through
every linear kernel: the decode GEMV (one program and split-K), the prefill
GEMM, and their FP16-activation (weight-only) variants.
"""
import numpy as np
import pytest
import torch

from triton_cases import all_formats, format_id, random_packed
from llmaccel.gpu_baseline.reference import Linear, quantize_per_row
from llmaccel.gpu_baseline.triton.formats import DevicePackedLinear, KernelFormatError
from llmaccel.gpu_baseline.triton.linear import GemvConfig, fp16_error_bound, fp16_linear, int8_linear
from llmaccel.simulator.golden.linear import group_partial_sums, quantize_activation, rescale_groups
from llmaccel.sparse_dsp.packed_format import pack_linear

O, K, G = 24, 64, 32     # two groups, a partial row block: small enough for the interpreter


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def _acts(rng, t, k):
    x = (rng.standard_normal((t, k)) * rng.uniform(0.1, 5, k)).astype(np.float32)
    if t > 2:
        x[1] = 0.0    # an all-zero token takes the scale-1 branch
    return x


@pytest.mark.parametrize("fmt", all_formats(), ids=format_id)
def test_every_format_through_every_linear_kernel(fmt, device):
    bits, nm, sym = fmt
    rng = np.random.default_rng(bits * 100 + (nm[1] if nm else 0) * 3 + sym)
    p = random_packed(rng, O, K, bits, G, nm, sym)
    layer = DevicePackedLinear.from_packed(p, device)
    w_float = torch.from_numpy(p.dense_float())
    ref_int8, ref_fp32 = Linear(p, True, torch.device("cpu")), Linear(p, False, torch.device("cpu"))
    for t in (1, 3):
        x = _acts(rng, t, K)
        q, s_x = quantize_activation(x)
        gold_acc = group_partial_sums(p.dense_int8(), q, G)
        gold_y = rescale_groups(gold_acc, p.scales, s_x)
        assert np.array_equal(_bits(gold_y), _bits(ref_int8(torch.from_numpy(x)).numpy()))
        qd, sd = torch.from_numpy(q).to(device), torch.from_numpy(s_x).to(device)
        for split, gpi in (((1, 1), (2, 1), (1, 4)) if t == 1 else ((None, 1),)):   # gpi 4 > 2 groups: masked
            y, acc = int8_linear(layer, qd, sd, gemv=GemvConfig(block_o=16, split_k=split, groups_per_iter=gpi),
                                 block_o=16, partials=True)
            assert np.array_equal(acc.cpu().numpy(), gold_acc), f"INT32 partial sums differ (T={t}, split={split})"
            assert np.array_equal(_bits(y.cpu().numpy()), _bits(gold_y)), f"outputs differ (T={t}, split={split})"
        xt = torch.from_numpy(x)
        y16 = fp16_linear(layer, xt.half().to(device), block_o=16,
                          gemv=GemvConfig(block_o=16, split_k=2 if t == 1 else None, groups_per_iter=2)).cpu()
        err = (y16 - ref_fp32(xt)).abs()
        assert bool((err <= fp16_error_bound(xt, w_float)).all()), f"FP16 path beyond its bound (T={t})"


@pytest.mark.parametrize("bits,nm,sym", [(4, None, True), (3, (2, 16), False)])
def test_gemm_over_several_token_and_row_blocks(bits, nm, sym, device):
    """T=37 spans three 16-token blocks, O=72 five 16-row blocks (the last partial), G=128 a wide group."""
    rng = np.random.default_rng(7)
    p = random_packed(rng, 72, 256, bits, 128, nm, sym)
    layer = DevicePackedLinear.from_packed(p, device)
    x = torch.from_numpy(_acts(rng, 37, 256))
    qf, s_x = quantize_per_row(x)
    y = int8_linear(layer, qf.to(torch.int8).to(device), s_x.to(device), block_o=16).cpu()
    assert torch.equal(y, Linear(p, True, torch.device("cpu"))(x))


def test_three_bit_codes_straddling_words_decode_exactly(device):
    """11 codes of 3 bits per group boundary: values 10 and 21 straddle words 0/1 and 1/2."""
    rng = np.random.default_rng(3)
    p = random_packed(rng, 16, 64, 3, 32)
    assert p.codes.shape[1] == 6    # 64 * 3 bits = 192 bits = 6 words, no padding
    layer = DevicePackedLinear.from_packed(p, device)
    for col in (0, 10, 21, 42, 63):                 # a unit vector picks one column, straddling ones included
        q = np.zeros((1, 64), np.int8)
        q[0, col] = 1
        _, acc = int8_linear(layer, torch.from_numpy(q).to(device), torch.ones(1, device=device), partials=True)
        assert np.array_equal(acc.cpu().numpy()[0, :, col // 32], p.dense_int8()[:, col].astype(np.int32))


def test_unsupported_group_size_is_one_clear_error():
    rng = np.random.default_rng(0)
    p = pack_linear(rng.integers(0, 16, (4, 192)), np.ones((4, 2), np.float16), in_features=192, bits=4,
                    group_size=96)
    with pytest.raises(KernelFormatError, match=r"group_size=96 .*allowed: \[32, 64, 128, 256, 512\]"):
        DevicePackedLinear.from_packed(p, "cpu")


def test_wrong_operand_dtype_is_one_clear_error(device):
    p = random_packed(np.random.default_rng(0), 16, 64, 4, 32)
    layer = DevicePackedLinear.from_packed(p, device)
    with pytest.raises(KernelFormatError, match=r"operand 'q' must be torch.int8\[1, 64\]"):
        int8_linear(layer, torch.zeros((1, 64), dtype=torch.float32, device=device), torch.ones(1, device=device))
    with pytest.raises(KernelFormatError, match=r"split_k=5 is invalid; allowed: 1..2"):
        int8_linear(layer, torch.zeros((1, 64), dtype=torch.int8, device=device), torch.ones(1, device=device),
                    gemv=GemvConfig(split_k=5))


def test_stacked_rows_give_the_same_bits_as_separate_layers(device):
    """q/k/v (and gate/up) run as one GEMV over stacked rows: the same outputs, bit for bit."""
    from llmaccel.gpu_baseline.triton.formats import concat_rows
    rng = np.random.default_rng(11)
    parts = [DevicePackedLinear.from_packed(random_packed(rng, o, K, 3, G, (2, 4), False), device) for o in (16, 8, 8)]
    q, s_x = quantize_activation(_acts(rng, 1, K))
    qd, sd = torch.from_numpy(q).to(device), torch.from_numpy(s_x).to(device)
    whole = int8_linear(concat_rows(parts), qd, sd, gemv=GemvConfig(block_o=16))
    sep = torch.cat([int8_linear(p, qd, sd, gemv=GemvConfig(block_o=16)) for p in parts], dim=1)
    assert torch.equal(whole, sep)
    other = DevicePackedLinear.from_packed(random_packed(rng, 8, K, 4, G), device)
    with pytest.raises(KernelFormatError, match="needs layers of one format"):
        concat_rows([parts[0], other])
