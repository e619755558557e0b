"""The PyTorch reference: equal to transformers uncompressed, equal to the numpy goldens on the INT8 path."""
import numpy as np
import pytest
import torch

from llmaccel.gpu_baseline.reference import Linear, ReferenceModel, quantize_per_row
from llmaccel.simulator.golden.linear import int8_linear, quantize_activation
from triton_cases import random_packed


def test_fp32_reference_matches_transformers(tiny_checkpoint):
    from transformers import LlamaForCausalLM
    hf = LlamaForCausalLM.from_pretrained(tiny_checkpoint).eval()
    ids = torch.randint(0, 256, (64,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expect = hf(ids[None]).logits[0]
    ref = ReferenceModel.from_checkpoint(tiny_checkpoint)
    logits, _ = ref.prefill(ids)
    assert float((logits - expect).abs().max()) < 1e-4
    # decode with the KV cache gives the same logits as the full prefill
    _, cache = ref.prefill(ids[:40], 64)
    steps = torch.cat([ref.forward(ids[i:i + 1], cache) for i in range(40, 64)])
    assert float((steps - expect[40:]).abs().max()) < 1e-4


@pytest.mark.parametrize("bits,nm,sym", [(8, None, True), (4, (2, 4), True), (3, None, False), (2, (8, 16), False)])
def test_int8_linear_is_bit_exact_with_the_numpy_golden(bits, nm, sym):
    rng = np.random.default_rng(bits)
    p = random_packed(rng, 48, 512, bits, 128, nm, sym)
    x = (rng.standard_normal((7, 512)) * rng.uniform(0.1, 5, 512)).astype(np.float32)
    x[3] = 0.0   # an all-zero token takes the scale-1 branch
    expect = int8_linear(p, x)
    got = Linear(p, True, torch.device("cpu"))(torch.from_numpy(x)).numpy()
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), expect.view(np.uint32))


def test_activation_quantization_is_bit_exact_with_the_golden():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((16, 300)) * 3).astype(np.float32)
    q, s = quantize_per_row(torch.from_numpy(x))
    gq, gs = quantize_activation(x)
    assert np.array_equal(q.numpy().astype(np.int8), gq) and np.array_equal(s.numpy(), gs)
    assert gq.min() >= -127


@pytest.mark.gpu
def test_cuda_reference_equals_cpu_on_integer_paths(tiny_checkpoint, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    rng = np.random.default_rng(0)
    p = random_packed(rng, 64, 256, 4, 128, (2, 4))
    x = torch.from_numpy(rng.standard_normal((5, 256)).astype(np.float32))
    cpu = Linear(p, True, torch.device("cpu"))(x)
    gpu = Linear(p, True, torch.device("cuda"))(x.cuda()).cpu()
    assert torch.equal(cpu, gpu)
