"""Session: generation, streaming, sampling determinism, and one clear error per bad input that leaves
the KV cache as it was."""
from __future__ import annotations

import numpy as np
import pytest

from llmaccel.host.errors import SessionError
from llmaccel.host.sampling import SamplingParams, Sampler, sample_token
from llmaccel.host.session import Session
from llmaccel.errors import LlmaccelError

PROMPT = [5, 17, 300, 42, 7]


@pytest.fixture(scope="module")
def sess(host_w8):
    _, art = host_w8
    return Session.load(art)


def _continue(s: Session, tokens: list[int]) -> list[np.ndarray]:
    return [s.decode_step(t).copy() for t in tokens]


def test_generate_streams_the_same_tokens_as_greedy_decode_steps(sess, host_w8):
    seen = []
    toks = list(sess.stream(PROMPT, 6, on_token=seen.append))
    assert toks == seen and len(toks) == 6
    st = sess.last_stats
    assert st.generated_tokens == 6 and st.prompt_tokens == len(PROMPT)
    assert st.ttft_s > 0 and st.decode_tokens_per_s > 0 and st.energy_J > 0 and st.tokens_per_J > 0
    # the same tokens by hand: prefill, argmax, decode_step
    fresh = Session.load(host_w8[1])
    logits = fresh.prefill(PROMPT)
    manual = []
    for _ in range(6):
        manual.append(int(np.argmax(logits)))
        logits = fresh.decode_step(manual[-1])
    assert manual == toks


def test_sampling_is_deterministic_for_a_seed(sess):
    a = list(sess.stream(PROMPT, 8, temperature=1.0, top_k=50, top_p=0.9, seed=7))
    b = list(sess.stream(PROMPT, 8, temperature=1.0, top_k=50, top_p=0.9, seed=7))
    c = list(sess.stream(PROMPT, 8, temperature=1.0, top_k=50, top_p=0.9, seed=8))
    assert a == b
    assert a != c


def test_sample_token_follows_the_documented_algorithm():
    logits = np.log(np.array([0.1, 0.6, 0.3]))
    p = SamplingParams(temperature=1.0, seed=3)
    u = np.random.Generator(np.random.PCG64(3)).random()
    # sorted by probability: ids 1 (0.6), 2 (0.3), 0 (0.1); first whose cumulative exceeds u
    expect = 1 if u < 0.6 else (2 if u < 0.9 else 0)
    assert sample_token(logits, p, np.random.Generator(np.random.PCG64(3))) == expect
    # top-k 1 and a tiny top-p both reduce to the most likely id, whatever the draw
    assert all(Sampler(SamplingParams(1.0, 1, 1.0, s))(logits) == 1 for s in range(5))
    assert all(Sampler(SamplingParams(1.0, 0, 0.05, s))(logits) == 1 for s in range(5))
    # top-p 0.8 keeps ids 1 and 2 only: id 0 is never drawn
    assert {Sampler(SamplingParams(1.0, 0, 0.8, s))(logits) for s in range(200)} == {1, 2}


@pytest.mark.parametrize("kw, field", [
    ({"temperature": -1.0}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"top_k": -3}, "top_k"), ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p"), ({"seed": -1}, "seed"),
    ({"max_new_tokens": 0}, "max_new_tokens"),
])
def test_bad_sampling_parameter_is_one_error_and_keeps_the_cache(sess, host_w8, kw, field):
    sess.prefill(PROMPT)
    first = _continue(sess, [11, 12])
    length, logits = sess.length, sess.logits.copy()
    args = {"max_new_tokens": 4, **kw}
    with pytest.raises(SessionError, match=field):
        sess.stream(PROMPT, **args)
    assert sess.length == length and np.array_equal(sess.logits, logits)
    # generation continues exactly as a fresh session that never saw the bad request
    after = _continue(sess, [13, 14])
    fresh = Session.load(host_w8[1])
    fresh.prefill(PROMPT)
    ref = _continue(fresh, [11, 12, 13, 14])
    assert all(np.array_equal(x, y) for x, y in zip(first + after, ref))


@pytest.mark.parametrize("prompt, match", [
    ([], "empty"), ("", "empty"), (list(range(129)), "max_len=128"), ([5, 99999], "vocabulary"),
    ([5, "x"], "integer token ids"),
])
def test_bad_prompt_is_one_error_and_keeps_the_cache(sess, prompt, match):
    sess.prefill(PROMPT)
    _continue(sess, [21])
    length, logits = sess.length, sess.logits.copy()
    with pytest.raises(SessionError, match=match):
        sess.prefill(prompt)
    with pytest.raises(SessionError, match=match):
        sess.stream(prompt, 2)
    assert sess.length == length and np.array_equal(sess.logits, logits)


def test_beyond_the_compiled_maximum_is_one_error_and_the_session_stays_usable(sess, host_w8):
    with pytest.raises(SessionError, match="max_len=128"):
        sess.stream(PROMPT, 128 - len(PROMPT) + 2)          # prompt + new - 1 > 128
    ids = list(range(3, 3 + 126))
    sess.prefill(ids)
    sess.decode_step(7)
    sess.decode_step(8)                                      # 128 tokens: the cache is full
    assert sess.length == 128
    full_logits = sess.logits.copy()
    with pytest.raises(SessionError, match="KV cache is full"):
        sess.decode_step(9)
    assert sess.length == 128 and np.array_equal(sess.logits, full_logits)
    toks = list(sess.stream(PROMPT, 3))                      # usable again, and equal to a fresh session
    assert toks == list(Session.load(host_w8[1]).stream(PROMPT, 3))


def test_bad_decode_token_is_one_error(sess):
    sess.prefill(PROMPT)
    before = sess.logits.copy()
    for bad in (-1, 2048, 3.5, True):
        with pytest.raises(SessionError, match="token="):
            sess.decode_step(bad)
    assert np.array_equal(sess.logits, before) and sess.length == len(PROMPT)


def test_text_prompt_uses_the_checkpoints_tokenizer(sess, host_ckpt):
    if sess.tokenizer is None:
        pytest.fail("the bundled model's tokenizer did not load (tokenizer.json is a tracked file)")
    ids = sess.tokenizer("def main():", add_special_tokens=False)["input_ids"]
    assert list(sess.stream("def main():", 3)) == list(sess.stream(ids, 3))
    assert isinstance(sess.decode_text([ids[0]]), str)


def test_xrt_backend_without_pyxrt_is_one_clear_error(host_w8):
    pytest.importorskip("numpy")
    try:
        import pyxrt  # noqa: F401
        pytest.skip("pyxrt is installed here")
    except ImportError:
        pass
    with pytest.raises(LlmaccelError, match="pyxrt"):
        Session.load(host_w8[1], backend="xrt")
    with pytest.raises(LlmaccelError, match="backend='tpu' is unknown"):
        Session.load(host_w8[1], backend="tpu")
