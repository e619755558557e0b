"""The demo's accelerator half: keys the lead's `llmaccel demo` reads, and the functional check it reports."""
from __future__ import annotations

from llmaccel.host.demo_flow import run_accelerator_demo
from llmaccel.host.session import Session


def test_demo_flow_reports_the_functional_check_and_simulated_speed(host_w8, host_ckpt):
    assert host_ckpt[1], "the bundled tiny-llama (llmaccel/assets/tiny-llama) is missing: the demo runs on it"
    prompt = [5, 17, 300, 42]
    r = run_accelerator_demo(host_w8[0], "flightllm-u280", prompt, 8)
    assert len(r["generated_token_ids"]) == 8
    # the check the demo reports must hold, not merely agree with itself: against the reference in the
    # units' reduction order the simulator's tokens and logits are the reference's, bit for bit
    # (docs/numerics.md sections 4-5)
    assert r["reference_reductions"] == "sequential"
    assert r["tokens_match_reference"] is True
    assert r["generated_token_ids"] == r["reference_token_ids"]
    assert r["max_abs_logit_diff"] == 0.0
    # and the same tokens come from the artifact compiled on disk and driven through a Session
    assert list(Session.load(host_w8[1]).stream(prompt, 8)) == r["generated_token_ids"]
    assert r["ttft_s"] > 0 and r["decode_tokens_per_s"] > 0 and r["tokens_per_J"] > 0
    assert r["instructions_executed"] > 1000
