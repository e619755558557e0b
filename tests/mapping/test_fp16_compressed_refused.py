"""A compressed FP16 model (recipe fp16) is refused by name when compiled for execution: the functional
engine runs packed integer weights only, so FP16 is timing-only (docs/numerics.md section 7)."""
from __future__ import annotations

import pytest

from llmaccel.mapping.compiler import CompileError
from llmaccel.mapping.compress import compress_checkpoint, load_compressed
from llmaccel.mapping.recipe import NAMED_RECIPES
from llmaccel.mapping.sim_api import build_compiler
from llmaccel.testing.tiny_checkpoints import build_tiny_checkpoint


@pytest.mark.parametrize("design", ["dfx-u280", "flightllm-u280"])
def test_compressed_fp16_model_is_refused_for_execution(tmp_path, design):
    ckpt = build_tiny_checkpoint("gpt2", tmp_path / "ckpt", seed=0)
    compress_checkpoint(ckpt, NAMED_RECIPES["fp16"], tmp_path / "c")
    cm = load_compressed(tmp_path / "c")
    with pytest.raises(CompileError, match=r"layers\.0\.\S+ holds FP16 weights \(recipe weight_dtype='fp16'\).*"
                                           r"timing-only: simulate --recipe fp16 on an fp16 design"):
        build_compiler(cm, design, max_len=128)
