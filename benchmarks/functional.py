"""Functional simulation vs the PyTorch reference: the bundled model generating 32 tokens, same machine, same run.

Both generate greedily from the same prompt on the same compressed model (w8,
RTN: GPTQ is not what is timed); the functional side is the whole host path
(Session on the simulator backend: every instruction of every compiled program
executed with the golden units, plus the timing of those programs). Each side
runs ``--runs`` times after one warm-up run (which compiles the bucket programs
and their timing once, as a session would); the median wall time of each is
reported with the ratio. The reference runs on ``--torch-threads`` threads
(default 1); the engine's BLAS (numpy's OpenBLAS) is held to one thread as well
(``OPENBLAS_NUM_THREADS=1``, set before numpy loads), so both sides use one core. Target: ratio <= 2.

Prints ONE JSON line.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # before numpy is imported: one core per side

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmaccel.gpu_baseline.reference import ReferenceModel  # noqa: E402
from llmaccel.host.artifact import compile_in_memory  # noqa: E402
from llmaccel.host.session import Session  # noqa: E402
from llmaccel.assets import bundled_model_dir  # noqa: E402
from llmaccel.mapping.compress import compress_checkpoint, load_compressed  # noqa: E402
from llmaccel.mapping.recipe import get_recipe  # noqa: E402

TARGET_RATIO = 2.0
PROMPT_IDS = [5, 17, 300, 42, 7, 99, 1000, 3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--recipe", default="w8")
    ap.add_argument("--design", default="flightllm-u280")
    ap.add_argument("--torch-threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory() as tmp:
        compress_checkpoint(bundled_model_dir(), get_recipe(args.recipe), Path(tmp) / "c")
        cm = load_compressed(Path(tmp) / "c")
    art = compile_in_memory(cm, args.design, max_len=128)
    sess = Session(art)
    ref = ReferenceModel.from_compressed(cm)

    def functional() -> list[int]:
        return list(sess.stream(PROMPT_IDS, args.tokens))

    def reference() -> list[int]:
        return list(ref.generate_greedy(PROMPT_IDS, args.tokens))

    ft = functional()        # warm-up: compiles the bucket programs and times them once
    rt = reference()
    f_s, r_s = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        functional()
        f_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reference()
        r_s.append(time.perf_counter() - t0)
    fm, rm = statistics.median(f_s), statistics.median(r_s)
    st = sess.last_stats
    print(json.dumps({
        "benchmark": "functional_vs_reference", "model": "bundled tiny-llama", "recipe": cm.recipe.name,
        "design": art.design_name, "prompt_tokens": len(PROMPT_IDS), "generated_tokens": args.tokens,
        "runs": args.runs, "functional_s_median": round(fm, 4), "reference_s_median": round(rm, 4),
        "ratio": round(fm / rm, 3), "target_ratio_max": TARGET_RATIO, "meets_target": fm / rm <= TARGET_RATIO,
        "tokens_match_reference": ft == rt, "instructions_per_request": st.instructions_executed,
        "functional_instructions_per_s": round(st.instructions_executed / fm),
        "simulated_ttft_s": st.ttft_s, "simulated_decode_tokens_per_s": st.decode_tokens_per_s,
        "simulated_tokens_per_J": st.tokens_per_J, "torch_threads": torch.get_num_threads(),
        "functional_s_all": [round(x, 4) for x in f_s], "reference_s_all": [round(x, 4) for x in r_s]}))


if __name__ == "__main__":
    main()
