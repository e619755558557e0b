"""The dense baseline through transformers with a static KV cache: the same greedy tokens as our FP32 reference."""
import pytest
import torch

from triton_cases import requires_cuda
from llmaccel.gpu_baseline.hf_baseline import HfBaseline
from llmaccel.gpu_baseline.reference import ReferenceModel
from llmaccel.assets import bundled_model_dir

PROMPT = [5, 17, 99, 300, 12, 7]


def test_static_cache_greedy_tokens_equal_the_fp32_reference():
    # FP32 on CPU: the baseline's code path (static cache, generate) without FP16 rounding
    hf = HfBaseline.from_checkpoint(bundled_model_dir(), "cpu", torch.float32)
    want = list(ReferenceModel.from_checkpoint(bundled_model_dir()).generate_greedy(PROMPT, 8))
    assert hf.generate_greedy(PROMPT, 8) == want


def test_time_generation_needs_two_tokens():
    hf = HfBaseline.from_checkpoint(bundled_model_dir(), "cpu", torch.float32)
    with pytest.raises(Exception, match=r"new_tokens=1 is invalid; allowed: >= 2"):
        hf.time_generation(PROMPT, 1)


@pytest.mark.gpu
@requires_cuda
def test_fp16_compiled_baseline_on_cuda_times_both_phases():
    hf = HfBaseline.from_checkpoint(bundled_model_dir(), "cuda", torch.float16, compile=True)
    toks = hf.generate_greedy(PROMPT, 16)
    assert len(toks) == 16
    t = hf.time_generation(PROMPT, 16, repeats=2)
    assert t.prefill_ms > 0 and t.decode_ms_per_token > 0


def test_synthetic_model_is_built_in_the_asked_dtype_and_restores_the_default():
    from llmaccel.gpu_baseline.hf_baseline import synthetic_llama
    cfg = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, vocab_size=100)
    m = synthetic_llama(cfg, "cpu", torch.bfloat16)
    assert {p.dtype for p in m.parameters()} == {torch.bfloat16}
    assert torch.get_default_dtype() == torch.float32
    assert len(HfBaseline.from_model(m, "cpu").generate_greedy([1, 2, 3], 4)) == 4
