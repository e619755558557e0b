"""The single-master efficiency below the smallest measured size, as the sharing fit uses it (issue 15).

Below the smallest single-master row (size a0, efficiency e0) one master's efficiency is proportional to the
size: e(a) = e0 * a / a0 (a transfer that short moves a/a0 of the bytes in the same time). The bundled table
has no multi-master row below a0, so a table with one added row exercises it; the expected sharing factor is
computed by hand from the rows.
"""
from __future__ import annotations

import pytest
import yaml

from llmaccel.simulator.memory_system import DEFAULT_TABLE, MemorySystem


def test_a_sharing_row_below_the_smallest_size_is_relative_to_the_proportional_efficiency(tmp_path):
    data = yaml.safe_load(DEFAULT_TABLE.read_text())
    single = [r for r in data["measurements"] if r.get("use", "model") == "model" and r["pattern"] == "random"
              and r["channels"] == 1 and r["masters_per_channel"] == 1 and not r.get("crosses_switch", False)]
    a0 = min(r["access_bytes"] for r in single)
    bw0 = next(r["measured_GBps"] for r in single if r["access_bytes"] == a0)
    assert not any(r["masters_per_channel"] == 2 for r in data["measurements"])     # the only 2-master row: ours
    # one master at a0/2 bytes would reach bw0/2 (proportional); two masters measured at a quarter of bw0
    # therefore share the channel with factor (bw0/4) / (bw0/2) = 0.5
    data["measurements"].append(dict(use="model", pattern="random", access_bytes=a0 // 2, channels=1,
                                     masters_per_channel=2, measured_GBps=bw0 / 4, source="test row (hand-made)"))
    p = tmp_path / "hbm_small.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    mem = MemorySystem.from_table(path=p)
    assert mem.masters_factor(2) == pytest.approx(0.5, rel=1e-12)
