"""What the functional engine needs of a compressed model: packed linears, norms, FP16 embeddings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.packed_format import PackedLinear

F32 = np.float32


class FunctionalError(LlmaccelError):
    """A program that cannot be executed: a missing tile, an un-gathered row, an access outside its region."""


@dataclass
class ModelWeights:
    """Packed linears (``layers.3.mlp.down_proj``, ``lm_head``), FP32 norms/biases by key, FP32 embeddings."""

    linears: dict[str, PackedLinear]
    norms: dict[str, np.ndarray]      # norms (+ ".bias" for LayerNorm) and linear biases, by canonical key
    embed: np.ndarray                 # [vocab, hidden] FP32 (stored FP16, used as FP32: contract section 1)
    positions: Optional[np.ndarray] = None   # learned position embeddings [positions, hidden] FP32, or None

    @classmethod
    def from_compressed(cls, cm: Any) -> "ModelWeights":
        for k, w in cm.linears.items():
            if not isinstance(w, PackedLinear):
                raise FunctionalError(f"linear '{k}' is FP32 in this compressed model; the accelerator runs packed "
                                      "integer weights: compress with a quantized recipe (w8, w4-g128-gptq, ...)")
        if getattr(cm.recipe, "act_bits", None) != 8 or getattr(cm.recipe, "kv_bits", None) != 8:
            raise FunctionalError(f"recipe '{cm.recipe.name}' does not use INT8 activations and KV cache "
                                  "(act_bits=8, kv_bits=8), which is what the accelerator computes")
        norms = {k: np.asarray(v, F32) for k, v in cm.tensors.items() if k not in ("embed_tokens", "embed_positions")}
        pos = cm.tensors.get("embed_positions")
        return cls(dict(cm.linears), norms, np.asarray(cm.tensors["embed_tokens"]).astype(F32),
                   None if pos is None else np.asarray(pos).astype(F32))
