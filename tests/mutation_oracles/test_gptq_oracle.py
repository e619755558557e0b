"""GPTQ and the asymmetric quantizer against references written from the paper and the contract.

The reference below is Algorithm 1 of Frantar et al., "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers" (ICLR 2023), written out directly in
float64 numpy without lazy batching (the paper shows the batched form is the same arithmetic):

    H <- H + lambda I,  lambda = 0.01 * mean(diag H)
    U <- Cholesky(H^-1)^T                        (upper factor)
    for i = 0 .. K-1:
        if i % G == 0: choose the group's scale/zero from the current W[:, i:i+G]
        q_i  <- quant(W[:, i])
        e_i  <- (W[:, i] - q_i) / U[i, i]
        W[:, i:] <- W[:, i:] - e_i U[i, i:]

With a fixed N:M mask a pruned weight's quantized value is 0 (the SparseGPT step). Nothing
here calls mapping.quantize.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from llmaccel.mapping.quantize import quantize_gptq, quantize_rtn
from llmaccel.sparse_dsp.packed_format import LayerFormat


def _params(wg: np.ndarray, keep: np.ndarray, bits: int, symmetric: bool):
    """numerics.md section 1: FP16 scale first, then zero; a zero scale becomes 1."""
    wk = np.where(keep, wg, 0.0)
    if symmetric:
        s = (np.abs(wk).max(axis=1) / (2 ** (bits - 1) - 1)).astype(np.float32).astype(np.float16).astype(np.float64)
        s[s == 0] = 1.0
        z = np.full_like(s, 2 ** (bits - 1))
    else:
        lo = np.minimum(np.where(keep, wg, np.inf).min(axis=1), 0.0)
        hi = np.maximum(np.where(keep, wg, -np.inf).max(axis=1), 0.0)
        s = ((hi - lo) / (2 ** bits - 1)).astype(np.float32).astype(np.float16).astype(np.float64)
        s[s == 0] = 1.0
        z = np.clip(np.rint(-lo / s), 0, 2 ** bits - 1)
    return s, z


def _quant(w: np.ndarray, s, z, bits: int, symmetric: bool) -> np.ndarray:
    if symmetric:
        d = np.clip(np.rint(w / s), -2 ** (bits - 1), 2 ** (bits - 1) - 1)
        return d * s
    u = np.clip(np.rint(w / s) + z, 0, 2 ** bits - 1)
    return (u - z) * s


def gptq_reference(w: np.ndarray, h: np.ndarray, bits: int, g: int, symmetric: bool, keep=None) -> np.ndarray:
    w = w.astype(np.float64).copy()
    o, k = w.shape
    keep = np.ones_like(w, dtype=bool) if keep is None else keep
    h = h.astype(np.float64) + np.eye(k) * 0.01 * np.mean(np.diag(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T
    out = np.zeros_like(w)
    for i in range(k):
        if i % g == 0:
            s, z = _params(w[:, i:i + g], keep[:, i:i + g], bits, symmetric)
        q = np.where(keep[:, i], _quant(w[:, i], s, z, bits, symmetric), 0.0)
        out[:, i] = q
        e = (w[:, i] - q) / u[i, i]
        w[:, i:] -= np.outer(e, u[i, i:])
    return out


def out_err(w, wq, h) -> float:
    d = (w - wq).astype(np.float64)
    return float(np.trace(d @ h @ d.T) / np.trace(w @ h @ w.T))


def _inputs(k=256, n=1024, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 16)) @ r.normal(size=(16, k)) + 0.1 * r.normal(size=(n, k))
    return (x.T @ x / n).astype(np.float32)


CASES = [(3, False, None), (4, True, None), (4, True, (2, 4)), (2, False, None)]


@pytest.mark.parametrize("bits,symmetric,nm", CASES)
def test_gptq_matches_the_papers_algorithm(bits, symmetric, nm):
    r = np.random.default_rng(bits)
    w = (r.normal(size=(32, 256)) * 0.05).astype(np.float32)
    h = _inputs(seed=bits)
    keep = None
    if nm is not None:
        from llmaccel.mapping.prune import nm_mask
        keep = nm_mask(torch.from_numpy(np.abs(w)), *nm).numpy()
    ref = gptq_reference(w, h.astype(np.float64), bits, 128, symmetric, keep)
    fmt = LayerFormat(32, 256, bits, 128, symmetric, nm)
    got = quantize_gptq(torch.from_numpy(w), torch.from_numpy(h), fmt,
                        None if keep is None else torch.from_numpy(keep)).dense_float().astype(np.float64)
    rtn = quantize_rtn(torch.from_numpy(w), fmt, None if keep is None else torch.from_numpy(keep)).dense_float()
    e_ref, e_got, e_rtn = out_err(w, ref, h), out_err(w, got, h), out_err(w, rtn, h)
    # Measured (seed = bits): ours and the float64 reference pick the same value for 99.6-100 % of the
    # weights and their output errors differ by < 0.5 %; ours runs in float32, so a weight near a rounding
    # boundary may flip after 256 columns of accumulated updates. 97 % / 3 % leave room for that drift and
    # still fail a GPTQ without the later-block update (error near RTN's, ~3-20x the reference).
    same = np.mean(np.isclose(got, ref, rtol=0, atol=1e-7))
    assert same >= 0.97, (same, e_got, e_ref)
    assert abs(e_got / e_ref - 1) < 0.03, (e_got, e_ref, e_rtn)
    assert e_ref < e_rtn


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_rtn_asymmetric_codes_match_the_contract_exactly(bits):
    """Signed, off-centre weights: the zero is rint(-min/s), not floor; codes and zeros bit for bit."""
    r = np.random.default_rng(10 + bits)
    w = (r.normal(0.03, 0.05, (16, 256))).astype(np.float32)
    p = quantize_rtn(torch.from_numpy(w), LayerFormat(16, 256, bits, 128, False, None))
    wg = w.reshape(16, 2, 128)
    lo = np.minimum(wg.min(axis=2), 0).astype(np.float32)
    hi = np.maximum(wg.max(axis=2), 0).astype(np.float32)
    s = ((hi - lo) / np.float32(2 ** bits - 1)).astype(np.float16).astype(np.float32)
    s[s == 0] = 1
    z = np.clip(np.rint(-lo / s), 0, 2 ** bits - 1)
    u = np.clip(np.rint(wg / s[..., None]) + z[..., None], 0, 2 ** bits - 1)
    assert np.array_equal(p.scales.astype(np.float32), s)
    assert np.array_equal(p.zeros.astype(np.float32), z.astype(np.float32))
    assert np.array_equal(p.dense_int8().astype(int), (u - z[..., None]).reshape(16, 256).astype(int))
    # the bound the old test called "half a step": with a rounded zero it really is half a step,
    # plus the FP16 scale rounding (relative 2^-11 of the range over 2^bits - 1 steps)
    step = np.repeat(s, 128, axis=1)
    inside = (w >= np.repeat(lo, 128, axis=1)) & (w <= np.repeat(hi, 128, axis=1))
    err = np.abs(p.dense_float() - w)
    assert np.all(err[inside] <= step[inside] * (0.5 + 2 ** bits * 2.0 ** -10))


def test_asymmetric_group_of_positive_weights_has_zero_point_zero():
    """min(w, 0) = 0 for an all-positive group, so z = rint(0 / s) = 0 and the codes are rint(w / s)."""
    w = np.linspace(0.01, 0.2, 128, dtype=np.float32)[None].repeat(4, 0)
    p = quantize_rtn(torch.from_numpy(w), LayerFormat(4, 128, 4, 128, False, None))
    assert p.zeros.tolist() == [[0]] * 4
    s = np.float32(np.float16(np.float32(0.2) / np.float32(15)))
    assert np.array_equal(p.dense_int8()[0].astype(int), np.clip(np.rint(w[0] / s), 0, 15).astype(int))


@pytest.mark.parametrize("symmetric,bits", [(True, 4), (False, 4), (False, 3)])
def test_an_all_zero_group_gets_scale_one_and_zero_codes(symmetric, bits):
    """docs/numerics.md section 1: a group whose scale would be 0 (all weights 0) gets s = 1; its weights
    then dequantize to exactly 0 (asymmetric: zero point 0; symmetric: the implicit 2^(bits-1))."""
    from llmaccel.mapping.quantize import group_params, quantize_codes
    w = torch.zeros(3, 8)
    w[1] = torch.linspace(-1.0, 1.0, 8)              # one ordinary row beside the zero rows
    p = group_params(w, torch.ones_like(w, dtype=torch.bool), bits, symmetric)
    assert p.scale[0].item() == 1.0 and p.scale[2].item() == 1.0
    zero = 2 ** (bits - 1) if symmetric else 0
    assert p.zero[0].item() == zero and p.zero[2].item() == zero
    codes = quantize_codes(w, p, bits, symmetric)
    assert torch.isfinite(codes).all() and (codes[0] == zero).all() and (codes[2] == zero).all()
    assert p.scale[1].item() != 1.0                    # the ordinary row keeps its own scale


def test_weight_space_error_without_a_hessian_by_hand():
    """No calibration Hessian: the error is weight-space, sum (W - Wq)^2 / sum W^2. By hand: W = [[1, 2],
    [3, 4]], Wq = [[1, 2], [3, 3]]: 1 / (1 + 4 + 9 + 16) = 1/30; Wq = W gives 0."""
    from llmaccel.mapping.quantize import reconstruction_error
    w = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert abs(reconstruction_error(w, torch.tensor([[1.0, 2.0], [3.0, 3.0]]), None) - 1 / 30) <= 1e-17
    assert reconstruction_error(w, w.clone(), None) == 0.0
