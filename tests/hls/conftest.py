"""Shared setup of the HLS suite: C-simulation needs g++ and the ap_types headers, else tests skip."""
from __future__ import annotations

import pytest

from llmaccel.errors import LlmaccelError


def _csim_missing() -> str | None:
    from llmaccel.hls_kernels.build import find_ap_types, find_cxx
    try:
        find_cxx()
        find_ap_types()
    except LlmaccelError as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config, items):
    reason = None
    checked = False
    for item in items:
        if "gxx" in item.keywords:
            if not checked:
                reason, checked = _csim_missing(), True
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"C-simulation unavailable: {reason}"))
