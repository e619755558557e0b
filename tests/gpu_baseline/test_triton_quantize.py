"""The Triton activation quantizer: codes and scales bit-exact with the golden, ties rounded to even."""
import numpy as np
import pytest
import torch

from gpu_baseline.triton.quantize import quantize_rows
from simulator.golden.linear import quantize_activation


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
