"""The session's length checks at their exact boundaries (max_len = 128 in the host_w8 artifact).

A prompt of exactly max_len tokens fits; prompt + max_new_tokens - 1 == max_len fits (the last token
is not fed back); one more is refused. Validation runs before any token is generated, so building
the generator is enough to see it.
"""
from __future__ import annotations

import pytest

from llmaccel.host.errors import SessionError
from llmaccel.host.session import Session


@pytest.fixture(scope="module")
def sess(host_w8):
    return Session.load(host_w8[1])


def test_prompt_of_exactly_max_len_fits_and_one_more_does_not(sess):
    assert sess.max_len == 128
    assert len(sess.encode_prompt(list(range(1, 129)))) == 128
    with pytest.raises(SessionError, match="max_len=128"):
        sess.encode_prompt(list(range(1, 130)))


def test_prompt_plus_new_tokens_boundary(sess):
    prompt = [5, 17, 300, 42, 7]
    sess.stream(prompt, 128 - 5 + 1)                        # 5 + 124 - 1 == 128: allowed
    sess.stream(list(range(1, 129)), 1)                     # a full prompt and one token
    with pytest.raises(SessionError, match=r"max_new_tokens <= 124"):
        sess.stream(prompt, 128 - 5 + 2)


def test_a_prompt_that_is_not_a_sequence_is_one_error(sess):
    for bad in (5, 3.5, None):
        with pytest.raises(SessionError, match="prompt must be text or a sequence"):
            sess.encode_prompt(bad)


def test_request_energy_is_prefill_plus_decode(sess):
    prompt = [5, 17, 300, 42, 7]
    list(sess.stream(prompt, 1))                              # one token: prefill only
    prefill_e = sess.last_stats.energy_J
    list(sess.stream(prompt, 4))
    st = sess.last_stats
    assert st.decode_energy_J is not None and st.decode_energy_J > 0
    assert st.energy_J == pytest.approx(prefill_e + st.decode_energy_J, rel=1e-12)
    assert st.tokens_per_J == pytest.approx(3 / st.decode_energy_J)
