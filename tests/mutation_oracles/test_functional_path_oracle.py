"""Oracles for the functional engine's units and FunctionalModel bookkeeping (issue 15 survivors).

Each expected value is a hand computation or the documented contract, never a value read back from the code.
"""
from __future__ import annotations

import numpy as np
import pytest

from llmaccel.simulator.functional import FunctionalError
from llmaccel.simulator.functional.units import group_sums

F32 = np.float32
# FP32 has a 24-bit significand: an INT8 x INT8 partial sum is exact while G * 127 * 127 <= 2**24, i.e.
# G <= floor(16777216 / 16129) = 1040 (hand computation; 1040 * 16129 = 16 774 160 <= 16 777 216).
LARGEST_EXACT_GROUP = 1040


def test_the_largest_exact_group_is_accepted_and_exact():
    g = LARGEST_EXACT_GROUP
    wg = np.full((1, 1, g), 127, F32)                 # [NG=1, O=1, G]
    q = np.full((1, g), -127, np.int8)                # [T=1, K=G]
    got = group_sums(wg, q, g)
    assert got.shape == (1, 1, 1)
    assert int(got[0, 0, 0]) == -127 * 127 * g       # -16 774 160, exact in FP32


def test_one_past_the_largest_exact_group_is_one_error():
    g = LARGEST_EXACT_GROUP + 1
    with pytest.raises(FunctionalError, match="group_size"):
        group_sums(np.ones((1, 1, g), F32), np.ones((1, g), np.int8), g)


@pytest.fixture(scope="module")
def gpt2_fm(tmp_path_factory):
    """A tiny random GPT-2 (learned position embeddings) compressed w8 and compiled for the tiny 2-core design."""
    from pathlib import Path

    from llmaccel.testing.tiny_checkpoints import build_tiny_checkpoint
    from llmaccel.mapping.compress import compress_checkpoint, load_compressed
    from llmaccel.mapping.recipe import get_recipe
    from llmaccel.mapping.sim_api import build_compiler
    from llmaccel.simulator.functional import ModelWeights
    from llmaccel.simulator.functional_model import FunctionalModel
    root = tmp_path_factory.mktemp("fn_oracle")
    ckpt = build_tiny_checkpoint("gpt2", root / "ckpt", seed=0)
    compress_checkpoint(ckpt, get_recipe("w8"), root / "w8")
    cm = load_compressed(root / "w8")
    design = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")
    comp = build_compiler(cm, design, max_len=128)[0]
    return FunctionalModel(comp.compile_model(), ModelWeights.from_compressed(cm))


def test_after_reset_the_kv_cache_is_empty_and_decode_is_refused(gpt2_fm):
    fm = gpt2_fm
    fm.prefill([3, 17, 99])
    assert fm.length == 3
    fm.reset()
    assert fm.length == 0                     # reset: no tokens in the KV cache
    with pytest.raises(FunctionalError, match="decode before prefill"):
        fm.decode(5)


def test_a_decode_step_reports_the_instructions_it_executed(gpt2_fm):
    # StepResult.instructions: the instructions the step's programs executed, i.e. the growth of the engine's
    # executed-instruction counter over the step (every layer program plus the LM head)
    fm = gpt2_fm
    fm.prefill([3, 17, 99])
    n0 = fm.engine.instructions_executed
    st = fm.decode(5)
    assert st.instructions == fm.engine.instructions_executed - n0 > 0


def test_a_position_past_the_learned_table_is_one_error(gpt2_fm):
    fm = gpt2_fm
    rows = fm.weights.positions.shape[0]          # learned positions 0 .. rows-1 exist
    assert fm._embed(np.asarray([1]), np.asarray([rows - 1])).shape[0] == 1
    with pytest.raises(FunctionalError, match="learned position"):
        fm._embed(np.asarray([1]), np.asarray([rows]))
