"""The model's input rows: the FP16 token embedding (as FP32) plus, for learned positions, the position row.

``x[t] = float(embed[ids[t]]) (+ positions[start + t])``, one launch: the FP16 -> FP32 conversion is
exact and the add is the reference's one FP32 add, so the rows are bit-exact with
``gpu_baseline.reference``. The position is read from ``start`` on the device, so a captured CUDA
graph of the decode step replays at every position. The positions table is already shifted so that
row ``p`` is position ``p`` (OPT's offset of 2 is removed when the checkpoint is read).
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from llmaccel.gpu_baseline.triton.launch import check_operand, compile_options

CHUNK = 1024


@triton.jit
def _embed_kernel(ids_ptr, emb_ptr, pos_ptr, start_ptr, out_ptr, H, LEARNED: tl.constexpr, CHUNK: tl.constexpr):
    t = tl.program_id(0)
    tok = tl.load(ids_ptr + t).to(tl.int64)
    p = (tl.load(start_ptr) + t).to(tl.int64)
    lane = tl.arange(0, CHUNK)
    for k0 in range(0, H, CHUNK):
        m = (k0 + lane) < H
        x = tl.load(emb_ptr + tok * H + k0 + lane, mask=m, other=0.0).to(tl.float32)
        if LEARNED:
            x = x + tl.load(pos_ptr + p * H + k0 + lane, mask=m, other=0.0)
        tl.store(out_ptr + t.to(tl.int64) * H + k0 + lane, x, mask=m)


def embed_rows(ids: torch.Tensor, embed: torch.Tensor, positions: Optional[torch.Tensor],
               start: torch.Tensor) -> torch.Tensor:
    """``ids`` long [T] (in range: the caller checks them on the host), ``embed`` fp16 [V, H],
    ``positions`` fp32 [P, H] or None (RoPE families), ``start`` int32 [1] -> fp32 [T, H]."""
    t = ids.shape[0]
    v, h = embed.shape
    check_operand(ids, "ids", torch.long, (t,))
    check_operand(embed, "embed", torch.float16, (v, h))
    check_operand(start, "start", torch.int32, (1,))
    if positions is not None:
        check_operand(positions, "positions", torch.float32, (positions.shape[0], h))
    out = torch.empty((t, h), dtype=torch.float32, device=embed.device)
    _embed_kernel[(t,)](ids, embed, positions if positions is not None else out, start, out, h,
                        LEARNED=positions is not None, CHUNK=CHUNK, **compile_options())
    return out
