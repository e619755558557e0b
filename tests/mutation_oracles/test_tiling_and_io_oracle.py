"""Causal attention tiling counts by hand, sampling-parameter bounds, and the atomic writer's failure path."""
from __future__ import annotations

import pytest

from llmaccel.host.errors import SessionError
from llmaccel.host.sampling import SamplingParams
from llmaccel.mapping.tiling import block_density, causal_pairs
from llmaccel.sparse_dsp.safe_paths import OutputPathError, write_file_atomically


def test_causal_pairs_and_block_density_by_hand():
    assert causal_pairs(0, 4, 0, 4) == 1 + 2 + 3 + 4              # query q sees keys 0..q
    assert causal_pairs(2, 4, 0, 4) == 3 + 4
    assert causal_pairs(0, 4, 2, 4) == 0 + 0 + 1 + 2              # a key tile that starts later
    # 256 x 256 causal grid of 64-blocks: the lower triangle with its diagonal, 10 of 16 blocks
    assert block_density(0, 256, 0, 256, 64) == 10 / 16
    # one query block (rows 128..191) against keys 0..255: key blocks 0, 1, 2 are computed, 3 is masked
    assert block_density(128, 192, 0, 256, 64) == 3 / 4
    # a ragged last query block (rows 0..99): block rows 0 (q <= 63) and 1 (q <= 99)
    assert block_density(0, 100, 0, 128, 64) == 3 / 4


@pytest.mark.parametrize("kw", [{"top_k": -1}, {"top_k": True}, {"top_k": 2.0}, {"top_p": 0.0}, {"top_p": 1.0001},
                                {"temperature": True}, {"seed": True}])
def test_sampling_parameters_outside_their_range_are_refused(kw):
    with pytest.raises(SessionError):
        SamplingParams(**kw)


def test_sampling_parameters_at_their_bounds_are_accepted():
    SamplingParams(temperature=0.0, top_k=0, top_p=1.0, seed=0)
    SamplingParams(temperature=1e-6, top_k=1, top_p=1e-9, seed=2 ** 40)


def test_a_write_that_fails_before_creating_its_file_is_one_clear_error(tmp_path):
    def fail(tmp):
        raise PermissionError(13, "Permission denied")
    with pytest.raises(OutputPathError, match="could not be written"):
        write_file_atomically(tmp_path / "out.json", fail, "--out")
    assert list(tmp_path.iterdir()) == []


def test_prefill_attention_macs_are_the_causal_count():
    """A prefill of T tokens does T(T+1)/2 query-key pairs per head, each head_dim MACs, for q.K and for
    p.V (summed over the chunks and cores the compiler splits it into)."""
    from pathlib import Path

    from llmaccel.mapping.sim_api import build_compiler
    tiny = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")
    comp = build_compiler("tiny", tiny, "w4-g128-rtn", max_len=256)[0]
    from llmaccel.simulator.timing import lower
    s = comp.spec
    for t in (128, 256):
        tot = {"qk": 0, "pv": 0}
        for prog in comp.prefill_programs(t):
            for op in lower(prog, comp.hw):   # the MACs the timing engine derives from the words
                key = op.name.split("[")[0]
                if key in tot:
                    tot[key] += op.macs
        want = t * (t + 1) // 2 * s.num_heads * s.head_dim
        assert tot == {"qk": want, "pv": want}, (t, tot, want)
