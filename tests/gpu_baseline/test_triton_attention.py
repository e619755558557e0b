"""The Triton attention over the INT8 KV cache: INT32 QK dots bit-exact, outputs within the contract's bound."""
import numpy as np
import pytest
import torch

from llmaccel.gpu_baseline.triton.attention import BLOCK_L, int8_attention
from llmaccel.gpu_baseline.triton.formats import KernelFormatError
from llmaccel.simulator.golden.attention import decode_attention
from llmaccel.simulator.golden.linear import quantize_activation
from llmaccel.simulator.golden.sfu import softmax
from llmaccel.simulator.golden.attention import attention_scores


def _cache(rng, lmax, kvh, d):
    k8, sk = quantize_activation(rng.standard_normal((lmax, kvh, d)).astype(np.float32))
    v8, sv = quantize_activation((rng.standard_normal((lmax, kvh, d)) * 2).astype(np.float32))
    return k8, sk, v8, sv


@pytest.mark.parametrize("heads,kv_heads,start,t,hb", [(4, 2, 0, 5, None), (4, 4, 2 * BLOCK_L - 1, 1, 1),
                                                       (8, 2, 70, 3, 2), (8, 2, 3, 2, 1)],
                         ids=["prefill-gqa", "decode-tile-edge", "chunk-after-cache", "one-head-per-program"])
def test_attention_matches_the_golden(heads, kv_heads, start, t, hb, device):
    rng = np.random.default_rng(start + t)
    d, lmax = 32, 96
    k8, sk, v8, sv = _cache(rng, lmax, kv_heads, d)
    q8, sq = quantize_activation((rng.standard_normal((t, heads, d)) * 3).astype(np.float32))
    dev = lambda a: torch.from_numpy(a).to(device)
    out, dots = int8_attention(dev(q8), dev(sq), dev(k8), dev(sk), dev(v8), dev(sv),
                               torch.tensor([start], dtype=torch.int32, device=device), scores=True,
                               heads_per_block=hb)
    out, dots = out.cpu().numpy(), dots.cpu().numpy()
    kv_of = np.arange(heads) // (heads // kv_heads)
    for i in range(t):
        n = start + i + 1   # causal: query i sees keys 0..start+i
        gold_dot = np.einsum("hd,lhd->hl", q8[i].astype(np.int64), k8[:n][:, kv_of].astype(np.int64))
        assert np.array_equal(dots[i, :, :n], gold_dot), "INT32 QK dot products differ"
        assert not dots[i, :, n:].any(), "keys beyond the causal limit were read"
        gold = decode_attention(q8[i], sq[i], k8[:n], sk[:n], v8[:n], sv[:n], kv_heads)
        # contract section 5: attention output within 8 ULP of the sum of the absolute terms
        p = softmax(attention_scores(q8[i], sq[i], k8[:n], sk[:n], kv_heads))
        abs_terms = np.einsum("hl,hld->hd", np.abs(p * sv[:n][:, kv_of].T),
                              np.abs(v8[:n][:, kv_of].transpose(1, 0, 2).astype(np.float32)))
        bound = 8 * np.spacing(abs_terms.astype(np.float32))
        assert (np.abs(out[i] - gold) <= bound).all(), f"query {i}: beyond 8 ULP of the absolute sum"


def test_attention_rejects_a_head_dim_it_cannot_tile(device):
    z = lambda *s: torch.zeros(*s, dtype=torch.int8, device=device)
    f = lambda *s: torch.ones(*s, dtype=torch.float32, device=device)
    with pytest.raises(KernelFormatError, match=r"head_dim=24 .*power of two"):
        int8_attention(z(1, 2, 24), f(1, 2), z(8, 2, 24), f(8, 2), z(8, 2, 24), f(8, 2),
                       torch.zeros(1, dtype=torch.int32, device=device))
