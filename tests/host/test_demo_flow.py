"""The demo's accelerator half: keys the lead's `llmaccel demo` reads, and the functional check it reports."""
from __future__ import annotations

import pytest

from host.demo_flow import run_accelerator_demo


def test_demo_flow_reports_the_functional_check_and_simulated_speed(host_w8, host_ckpt):
    r = run_accelerator_demo(host_w8[0], "flightllm-u280", [5, 17, 300, 42], 8)
    assert len(r["generated_token_ids"]) == 8 and len(r["reference_token_ids"]) == 8
    assert r["tokens_match_reference"] == (r["generated_token_ids"] == r["reference_token_ids"])
    if host_ckpt[1]:
        assert r["tokens_match_reference"] and r["max_rel_logit_diff"] <= 1e-2
    assert r["ttft_s"] > 0 and r["decode_tokens_per_s"] > 0 and r["tokens_per_J"] > 0
    assert r["max_abs_logit_diff"] >= 0 and r["instructions_executed"] > 1000
