"""The accelerator half of ``llmaccel demo``: compile -> run on the simulator -> check against the reference.

``run_accelerator_demo`` compiles a compressed model for a design, generates
greedily on the simulator backend (functional engine + timing of the same
programs) and runs the PyTorch reference of the same compressed model on the
same prompt, returning whether the tokens agree and how far the logits are
apart, with the simulated speed and energy.

It imports ``gpu_baseline`` (the reference) only inside
:func:`check_against_reference`: the reference is the check, not part of the host driver.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from llmaccel.host.artifact import compile_in_memory
from llmaccel.host.session import Session
from llmaccel.mapping.compress import CompressedModel, load_compressed


def run_accelerator_demo(compressed: Union[str, Path, CompressedModel], design: str = "flightllm-u280",
                         prompt_ids: Sequence[int] = (1,), max_new_tokens: int = 32,
                         max_len: Optional[int] = None, reference: Any = None) -> dict[str, Any]:
    """``reference``: the PyTorch reference of ``compressed`` when the caller has built it already."""
    t0 = time.perf_counter()
    cm = compressed if isinstance(compressed, CompressedModel) else load_compressed(compressed)
    need = len(prompt_ids) + max_new_tokens
    art = compile_in_memory(cm, design, max_len=max_len or max(128, -(-need // 128) * 128))
    t_compile = time.perf_counter() - t0
    sess = Session(art)
    ids = [int(t) for t in prompt_ids]
    sess_logits: list[np.ndarray] = []

    def keep(tok: int) -> None:
        sess_logits.append(np.array(sess.logits, np.float32))

    generated = list(sess.stream(ids, max_new_tokens, on_token=keep))
    stats = sess.last_stats
    check = check_against_reference(cm, ids, generated, sess_logits, reference)
    return {"design": art.design_name, "recipe": cm.recipe.name, "prompt_tokens": len(ids),
            "generated_token_ids": generated, **check,
            "ttft_s": stats.ttft_s, "decode_tokens_per_s": stats.decode_tokens_per_s,
            "tokens_per_J": stats.tokens_per_J, "energy_J": stats.energy_J,
            "instructions_executed": stats.instructions_executed,
            "compile_s": t_compile, "wall_s": time.perf_counter() - t0}


def check_against_reference(cm: CompressedModel, prompt_ids: Sequence[int], generated: Sequence[int],
                            step_logits: Sequence[np.ndarray], reference: Any = None,
                            reductions: str = "sequential") -> dict[str, Any]:
    """Greedy tokens and per-step logits of a run against the PyTorch reference of the same compressed model.

    ``step_logits[i]`` are the logits the run sampled its i-th generated token from. Returns
    ``reference_token_ids``, ``tokens_match_reference``, the max absolute and relative
    (to the reference's max |logit| at that step) logit differences over the steps both have, and
    ``reference_reductions``. The one implementation behind ``llmaccel demo`` and
    ``llmaccel run --check-reference``. ``reference`` is ``ReferenceModel.from_compressed(cm)`` if the
    caller has it (the demo does). The reference runs in the units' reduction order by default, where
    the simulator's logits are its bits (difference 0.0; docs/numerics.md section 4): any difference
    then is a finding, not rounding.
    """
    import dataclasses

    import torch

    from llmaccel.gpu_baseline.reference import ReferenceModel

    ref = reference if reference is not None else ReferenceModel.from_compressed(cm, reductions=reductions)
    if ref.reductions != reductions:
        ref = dataclasses.replace(ref, reductions=reductions)        # the same tensors, the other order
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # tiny matrices: one thread is faster than two contending ones
    try:
        ref_tokens, ref_logits = ref.greedy_with_logits([int(t) for t in prompt_ids], len(generated))
    finally:
        torch.set_num_threads(threads)
    n = min(len(step_logits), len(ref_logits))
    diffs = [float(np.max(np.abs(np.asarray(step_logits[i], np.float32) - ref_logits[i]))) for i in range(n)]
    rel = [d / max(float(np.max(np.abs(ref_logits[i]))), 1e-30) for i, d in enumerate(diffs)]
    return {"reference_token_ids": ref_tokens, "tokens_match_reference": list(generated) == ref_tokens,
            "max_abs_logit_diff": max(diffs) if diffs else 0.0, "max_rel_logit_diff": max(rel) if rel else 0.0,
            "reference_reductions": reductions}
