"""Tiny random checkpoints of every family, built once per session (llmaccel.testing.tiny_checkpoints)."""
from __future__ import annotations

import pytest

from llmaccel.testing.tiny_checkpoints import TINY_FAMILIES, build_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_family_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {f: build_tiny_checkpoint(f, root / f, seed=0) for f in TINY_FAMILIES}
