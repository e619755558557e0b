"""The Triton activation quantizer: codes and scales bit-exact with the golden, ties rounded to even."""
import numpy as np
import pytest
import torch

from llmaccel.gpu_baseline.triton.quantize import quantize_rows
from llmaccel.simulator.golden.linear import quantize_activation


def test_codes_and_scales_are_bit_exact_with_the_golden(device):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((6, 1500)) * rng.uniform(0.01, 20, (6, 1))).astype(np.float32)   # 2 chunks
    x[2] = 0.0                                     # amax == 0 takes scale 1
    # row 3: amax 127 gives scale 1, so these are the quotients: ties and the float just below 0.5
    ties = np.array([127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, np.nextafter(np.float32(0.5), 0)], np.float32)
    x[3, :ties.size] = ties
    x[3, ties.size:] = 0.25
    q, s = quantize_rows(torch.from_numpy(x).to(device))
    gq, gs = quantize_activation(x)
    assert np.array_equal(q.cpu().numpy(), gq)
    assert np.array_equal(s.cpu().numpy().view(np.uint32), gs.view(np.uint32))
    assert list(gq[3, :ties.size]) == [127, 0, 2, 2, 0, -2, -2, 126, 0]   # half to even


def test_wrong_dtype_is_one_clear_error(device):
    with pytest.raises(Exception, match=r"operand 'x' must be torch.float32"):
        quantize_rows(torch.zeros((2, 8), dtype=torch.float16, device=device))


def test_rope_then_quantize_is_bit_exact_with_the_reference_ops(device):
    """RoPE (HF rotate-half) + per-(token, head) INT8 in one kernel, written at the cache's start position."""
    from llmaccel.gpu_baseline.reference import quantize_per_row
    from llmaccel.gpu_baseline.triton.quantize import rope_quantize
    from llmaccel.mapping import llama_math as lm
    from llmaccel.simulator.specs.model import load_model_spec
    spec = load_model_spec("tiny")
    rng = np.random.default_rng(5)
    t, nh, d, start = 3, 4, spec.head_dim, 5
    x = torch.from_numpy((rng.standard_normal((t, nh, d)) * 2).astype(np.float32))
    pos = torch.arange(start, start + t)
    cos, sin = lm.rope_cos_sin(spec, pos, lm.inv_freq(spec))
    want_q, want_s = quantize_per_row(lm.apply_rope(x, cos, sin))
    cache_q = torch.zeros((16, nh, d), dtype=torch.int8, device=device)
    cache_s = torch.zeros((16, nh), dtype=torch.float32, device=device)
    rope_quantize(x.to(device), cos.to(device), sin.to(device), cache_q, cache_s,
                  torch.tensor([start], dtype=torch.int32, device=device))
    assert torch.equal(cache_q[start:start + t].cpu(), want_q.to(torch.int8))
    assert torch.equal(cache_s[start:start + t].cpu(), want_s)
    assert not cache_q[:start].any() and not cache_q[start + t:].any()
    q8, s = rope_quantize(x.to(device), None, None)          # no RoPE (V), fresh buffers
    vq, vs = quantize_per_row(x)
    assert torch.equal(q8.cpu(), vq.to(torch.int8)) and torch.equal(s.cpu(), vs)


@pytest.mark.parametrize("k", [256, 1500])
def test_add_rmsnorm_against_the_reference_ops(k, device):
    """Residual add bit-exact; RMSNorm's mean is a tree sum, so the contract's 8-ULP RMSNorm bound applies:
    scales within 8 ULP and codes within one step of the reference's (measured: 1 ULP, no code differed)."""
    from llmaccel.gpu_baseline.reference import quantize_per_row
    from llmaccel.gpu_baseline.triton.norm import add_norm_prepare
    from llmaccel.mapping import llama_math as lm
    rng = np.random.default_rng(k)
    x = torch.from_numpy((rng.standard_normal((5, k)) * 3).astype(np.float32))
    r = torch.from_numpy(rng.standard_normal((5, k)).astype(np.float32))
    w = torch.from_numpy(rng.uniform(0.5, 1.5, k).astype(np.float32))
    xo, (q, s) = add_norm_prepare(x.to(device), r.to(device), w.to(device), None, 1e-5, "rmsnorm", "int8")
    h = lm.rmsnorm(x + r, w, 1e-5)
    qr, sr = quantize_per_row(h)
    assert torch.equal(xo.cpu(), x + r)
    assert float((q.cpu().float() - qr).abs().max()) <= 1
    assert bool(((s.cpu() - sr).abs() <= 8 * torch.from_numpy(np.spacing(sr.numpy()))).all())
    _, h16 = add_norm_prepare(x.to(device), None, w.to(device), None, 1e-5, "rmsnorm", "fp16")   # weight-only: FP16
    want = lm.rmsnorm(x, w, 1e-5).half().float()
    assert bool(((h16.cpu().float() - want).abs() <= torch.from_numpy(np.spacing(want.half().numpy())).float()).all())


def test_silu_mul_from_a_stacked_gate_up_output(device):
    """gate and up as strided views of one stacked [T, 2I] output; SiLU's exp within the contract's 4 ULP,
    so scales within 8 ULP and codes within one step (measured: identical)."""
    from llmaccel.gpu_baseline.reference import quantize_per_row
    from llmaccel.gpu_baseline.triton.activation import act_prepare
    rng = np.random.default_rng(9)
    k = 1100
    gu = torch.from_numpy((rng.standard_normal((4, 2 * k)) * 3).astype(np.float32)).to(device)
    q, s = act_prepare(gu[:, :k], gu[:, k:], "silu", "int8")
    g, u = gu[:, :k].cpu(), gu[:, k:].cpu()
    qr, sr = quantize_per_row(g / (1 + torch.exp(-g)) * u)
    assert float((q.cpu().float() - qr).abs().max()) <= 1
    assert bool(((s.cpu() - sr).abs() <= 8 * torch.from_numpy(np.spacing(sr.numpy()))).all())
