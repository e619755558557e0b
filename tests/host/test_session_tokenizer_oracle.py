"""Session behaviours the mutation run found untested (issue 15 survivors host/session.py:105/121/136/217).

* A text prompt is the text's own tokens: no BOS/EOS the tokenizer would add as special tokens. The
  tokenizer here is built by hand (word level, vocabulary below, a post-processor that prepends <s>),
  so the expected ids are read off the vocabulary: "hello world" -> [5, 7].
* ``decode_text`` uses the tokenizer when there is one: ids [5, 7] are the words "hello world" (the
  hand tokenizer has no decoder, so transformers joins the words with one space).
* ``decode_step`` needs a started sequence: with an empty KV cache (the backend reset) it is the
  "decode_step before prefill" error, as before any prefill.
* tokens/J is the decode tokens (generated - 1) over the decode energy: 2 tokens -> 1 / decode_energy_J.
"""
from __future__ import annotations

import pytest

from llmaccel.host.artifact import load_artifact
from llmaccel.host.errors import SessionError
from llmaccel.host.session import Session

VOCAB = {"<unk>": 0, "<s>": 1, "hello": 5, "world": 7}


def _hand_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def sess(host_w8):
    return Session(load_artifact(host_w8[1]), tokenizer=_hand_tokenizer())


def test_a_text_prompt_gets_no_special_tokens(sess):
    assert sess.tokenizer("hello world")["input_ids"] == [1, 5, 7]     # the tokenizer does add <s> itself
    assert sess.encode_prompt("hello world") == [5, 7]


def test_decode_text_uses_the_tokenizer(sess):
    assert sess.decode_text([5, 7]) == "hello world"


def test_decode_step_on_an_empty_cache_is_the_before_prefill_error(sess):
    sess.prefill([5, 7, 5])
    sess.backend.reset()
    assert sess.length == 0 and sess.logits is not None
    with pytest.raises(SessionError, match="decode_step before prefill"):
        sess.decode_step(5)


def test_two_tokens_have_tokens_per_joule_of_their_one_decode_step(sess):
    list(sess.stream([5, 7, 5], 2))
    st = sess.last_stats
    assert st.generated_tokens == 2 and st.decode_energy_J is not None and st.decode_energy_J > 0
    assert st.tokens_per_J == pytest.approx(1 / st.decode_energy_J, rel=1e-12)
