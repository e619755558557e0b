"""Attention over the INT8 KV cache (contract section 4), one program per query token and head block.

Scores are the exact INT32 dot product of the INT8 query and key, rescaled as
``(float(dot) * (s_q * s_k)) * c`` with ``c = fp32(1/sqrt(head_dim))``; the
softmax is ``e = exp(score - max)``, ``p = e / sum(e)``; the output is
``sum_t (p_t * s_v[t]) * float(v8[t])``. Three passes over the cache in tiles
(max, sum, weighted values) keep the softmax exactly the contract's rather than
an online rescaled one. Query ``t`` sits at position ``start + t`` and sees keys
``0 .. start + t`` (causal), so the same kernel serves prefill chunks and
decode; ``start`` is read from device memory, so a CUDA graph of the decode
step replays at every position. Grouped-query: head ``h`` reads kv head
``h // (H / KVH)``, as Llama's repeat_kv does.

Reductions inside a tile are tree sums, across tiles sequential; the bound
against the reference is the contract's (softmax 16 ULP, output 8 ULP of the
sum of absolute terms; checked in tests/gpu_baseline/test_triton_attention.py).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from llmaccel.gpu_baseline.triton.formats import KernelFormatError
from llmaccel.gpu_baseline.triton.launch import INTERPRETED, check_operand, compile_options

BLOCK_L = 32


@triton.jit
def _tile_scores(q, sq, k_ptr, sk_ptr, keys, kmask, kvh, KVH, D: tl.constexpr, c):
    """INT32 dots and FP32 scores [HB, BLOCK] of the heads' queries q [HB, D] against one tile of keys."""
    dcol = tl.arange(0, D)
    row = keys.to(tl.int64)[None, :] * KVH + kvh[:, None]                          # [HB, BLOCK]
    k = tl.load(k_ptr + row[:, :, None] * D + dcol[None, None, :], mask=kmask[None, :, None], other=0)
    dot = tl.sum(k.to(tl.int32) * q[:, None, :], axis=2)
    sk = tl.load(sk_ptr + row, mask=kmask[None, :], other=0)
    return dot, (dot.to(tl.float32) * (sq[:, None] * sk)) * c


@triton.jit
def _attention_kernel(q_ptr, sq_ptr, k_ptr, sk_ptr, v_ptr, sv_ptr, start_ptr, out_ptr, dot_ptr,
                      H, KVH, max_len, c, D: tl.constexpr, HB: tl.constexpr, BLOCK: tl.constexpr,
                      STORE_DOT: tl.constexpr):
    t = tl.program_id(0)
    heads = tl.program_id(1) * HB + tl.arange(0, HB)
    kvh = heads // (H // KVH)
    n_keys = tl.load(start_ptr) + t + 1
    dcol = tl.arange(0, D)
    qrow = (t * H + heads).to(tl.int64)
    q = tl.load(q_ptr + qrow[:, None] * D + dcol[None, :]).to(tl.int32)
    sq = tl.load(sq_ptr + qrow)
    lane = tl.arange(0, BLOCK)
    m = tl.full([HB, BLOCK], float("-inf"), tl.float32)
    for l0 in range(0, n_keys, BLOCK):
        keys = l0 + lane
        kmask = keys < n_keys
        dot, s = _tile_scores(q, sq, k_ptr, sk_ptr, keys, kmask, kvh, KVH, D, c)
        if STORE_DOT:
            tl.store(dot_ptr + qrow[:, None] * max_len + keys[None, :], dot, mask=kmask[None, :])
        m = tl.maximum(m, tl.where(kmask[None, :], s, float("-inf")))
    mx = tl.max(m, axis=1)
    den = tl.zeros([HB], dtype=tl.float32)
    for l0 in range(0, n_keys, BLOCK):
        keys = l0 + lane
        kmask = keys < n_keys
        _, s = _tile_scores(q, sq, k_ptr, sk_ptr, keys, kmask, kvh, KVH, D, c)
        den = den + tl.sum(tl.exp(tl.where(kmask[None, :], s - mx[:, None], float("-inf"))), axis=1)
    acc = tl.zeros([HB, D], dtype=tl.float32)
    for l0 in range(0, n_keys, BLOCK):
        keys = l0 + lane
        kmask = keys < n_keys
        _, s = _tile_scores(q, sq, k_ptr, sk_ptr, keys, kmask, kvh, KVH, D, c)
        p = tl.exp(tl.where(kmask[None, :], s - mx[:, None], float("-inf"))) / den[:, None]
        row = keys.to(tl.int64)[None, :] * KVH + kvh[:, None]
        sv = tl.load(sv_ptr + row, mask=kmask[None, :], other=0)
        v = tl.load(v_ptr + row[:, :, None] * D + dcol[None, None, :], mask=kmask[None, :, None], other=0)
        acc = acc + tl.sum((p * sv)[:, :, None] * v.to(tl.float32), axis=1)
    tl.store(out_ptr + qrow[:, None] * D + dcol[None, :], acc)


def heads_per_program(num_heads: int) -> int:
    """Many heads per program in the interpreter (numpy vectorises them: the largest power of two
    dividing num_heads); one per program when compiled (registers, and a grid that fills the SMs)."""
    return num_heads & -num_heads if INTERPRETED else 1


def int8_attention(q8: torch.Tensor, s_q: torch.Tensor, k8: torch.Tensor, s_k: torch.Tensor, v8: torch.Tensor,
                   s_v: torch.Tensor, start: torch.Tensor, *, scores: bool = False,
                   heads_per_block: int | None = None):
    """Attention of queries ``q8`` int8 [T, H, D] (scales [T, H]) over the cache ``k8``/``v8`` int8 [Lmax, KVH, D]
    (scales fp32 [Lmax, KVH]) whose first ``start`` (int32 [1], on the device) positions precede the queries.

    Returns fp32 [T, H, D]; with ``scores=True`` also the INT32 QK dot products [T, H, Lmax] (for tests).
    ``heads_per_block`` overrides how many heads one program serves (:func:`heads_per_program`).
    """
    t, h, d = q8.shape
    lmax, kvh, _ = k8.shape
    if d & (d - 1) or d < 16:
        raise KernelFormatError(f"head_dim={d} is not supported by the attention kernel; allowed: a power of two >= 16")
    if h % kvh:
        raise KernelFormatError(f"num_heads={h} must be a multiple of num_kv_heads={kvh}")
    check_operand(q8, "q8", torch.int8, (t, h, d))
    check_operand(s_q, "s_q", torch.float32, (t, h))
    for name, arr in (("k8", k8), ("v8", v8)):
        check_operand(arr, name, torch.int8, (lmax, kvh, d))
    for name, arr in (("s_k", s_k), ("s_v", s_v)):
        check_operand(arr, name, torch.float32, (lmax, kvh))
    check_operand(start, "start", torch.int32, (1,))
    out = torch.empty((t, h, d), dtype=torch.float32, device=q8.device)
    dots = torch.zeros((t, h, lmax) if scores else (1,), dtype=torch.int32, device=q8.device)
    c = float(torch.tensor(1.0 / d ** 0.5, dtype=torch.float32))   # fp32(1/sqrt(d)), rounded once from double
    hb = heads_per_block or heads_per_program(h)
    if hb & (hb - 1) or h % hb:
        raise KernelFormatError(f"heads_per_block={hb} is invalid; allowed: a power of two dividing num_heads={h}")
    _attention_kernel[(t, h // hb)](q8, s_q, k8, s_k, v8, s_v, start, out, dots, h, kvh, lmax, c,
                                    D=d, HB=hb, BLOCK=BLOCK_L, STORE_DOT=scores, **compile_options())
    return (out, dots) if scores else out
