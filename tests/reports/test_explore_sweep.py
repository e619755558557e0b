"""Sweeps: serial and Ray runs give the same rows bit for bit; the store never recomputes a point it has;
an interrupted sweep keeps what it finished; pruning never changes the front."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from llmaccel.reports.explore import explore, load_spec
from llmaccel.reports.explore.store import Store
from tests.reports._specs import ROOT, tiny_spec


def _table(path, sql):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _points(path) -> list[dict]:
    st = Store(path)
    try:
        return st.rows()
    finally:
        st.close()


def test_serial_and_ray_give_identical_rows(tmp_path):
    pytest.importorskip("ray")
    spec = load_spec(tiny_spec())
    serial = explore(spec, tmp_path / "serial.sqlite", workers=1, progress=False)
    ray_run = explore(spec, tmp_path / "ray.sqlite", workers=2, progress=False)   # a real local Ray, 2 CPUs
    assert serial.counts == ray_run.counts
    a, b = _points(tmp_path / "serial.sqlite"), _points(tmp_path / "ray.sqlite")
    assert len(a) == 8 and a == b                  # every column of every row, floats compared exactly
    q = "SELECT hash, pruned_by FROM sweep_points ORDER BY hash"
    assert _table(tmp_path / "serial.sqlite", q) == _table(tmp_path / "ray.sqlite", q)
    assert serial.fronts == ray_run.fronts and serial.fronts


def test_rerun_and_extension_use_the_store(tmp_path):
    store = tmp_path / "s.sqlite"
    first = explore(load_spec(tiny_spec()), store, workers=1, progress=False)
    assert first.counts["cached"] == 0 and first.counts["estimated"] == 8
    again = explore(load_spec(tiny_spec()), store, workers=1, progress=False)
    assert again.counts == {"points": 8, "cached": 8, "estimated": 0, "simulated": 0,
                            "pruned": first.counts["pruned"]}
    assert again.rows == first.rows
    bigger = tiny_spec(knobs={"cores": [1, 2], "clock_MHz": [150, 200, 250], "chains_per_core": [4, 8]})
    ext = explore(load_spec(bigger), store, workers=1, progress=False)
    assert ext.counts["cached"] == 8 and ext.counts["estimated"] == 4   # only the four 200 MHz points are new
    assert ext.counts["simulated"] <= 4


def test_changed_code_version_is_a_new_point(tmp_path, monkeypatch):
    from llmaccel.reports.explore import points
    store = tmp_path / "s.sqlite"
    explore(load_spec(tiny_spec(knobs={"cores": [1]})), store, workers=1, progress=False)
    monkeypatch.setattr(points, "code_version", lambda: "another-version")
    r = explore(load_spec(tiny_spec(knobs={"cores": [1]})), store, workers=1, progress=False)
    assert r.counts["cached"] == 0


INTERRUPTED = """
import sys
from llmaccel.reports.explore import explore, load_spec
sys.path.insert(0, {root!r})
from tests.reports._specs import tiny_spec
spec = tiny_spec(knobs={{"cores": [1, 2], "clock_MHz": [150, 175, 200, 225, 250], "chains_per_core": [2, 4, 8]}},
                 prune=False)
explore(load_spec(spec), {store!r}, workers=1, progress=False)
"""


def test_interrupted_sweep_keeps_every_finished_point(tmp_path):
    store = tmp_path / "s.sqlite"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED.format(root=str(ROOT), store=str(store))], env=env)
    try:
        deadline = time.time() + 240
        done = 0
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.3)
            if store.exists():
                try:
                    done = _table(store, "SELECT COUNT(*) FROM points WHERE status='simulated'")[0][0]
                except sqlite3.OperationalError:
                    continue
                if done >= 3:
                    break
        assert proc.poll() is None, "the sweep finished before it could be interrupted"
        proc.send_signal(signal.SIGKILL)           # no clean-up at all: the hardest interruption
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = {h for (h,) in _table(store, "SELECT hash FROM points WHERE status='simulated'")}
    assert len(kept) >= 3
    # finished rows are whole: every simulated row has its figures
    assert _table(store, "SELECT COUNT(*) FROM points WHERE status='simulated' AND decode_tokens_per_s IS NULL") == [(0,)]
    spec = tiny_spec(knobs={"cores": [1, 2], "clock_MHz": [150, 175, 200, 225, 250], "chains_per_core": [2, 4, 8]},
                     prune=False)
    r = explore(load_spec(spec), store, workers=1, progress=False)
    n_cands = sum(1 for row in r.rows if row["status"] == "simulated")
    assert r.counts["simulated"] == n_cands - len(kept)      # nothing it had finished was simulated again
    assert _table(store, "SELECT state FROM runs ORDER BY id") == [("running",), ("finished",)]


LLAMA_SWEEP = {"name": "llama-prune", "designs": ["flightllm-u280"], "models": ["llama2-7b"], "recipes": ["flightllm"],
               "workloads": [{"prefill": 128, "decode": 16}], "batch_size": 4,
               "knobs": {"cores": [2, 4], "clock_MHz": [150, 200, 250], "decoders_per_channel": [7, 14]}}


@pytest.mark.slow
def test_pruned_front_equals_unpruned_front(tmp_path):
    full = explore(load_spec(LLAMA_SWEEP | {"prune": False}), tmp_path / "full.sqlite", workers=1, progress=False)
    pruned = explore(load_spec(LLAMA_SWEEP), tmp_path / "pruned.sqlite", workers=1, progress=False)
    assert full.counts["pruned"] == 0 and full.counts["simulated"] == 12
    assert pruned.counts["pruned"] > 0, "the sweep must prune something, or this test proves nothing"
    assert pruned.counts["simulated"] + pruned.counts["pruned"] == 12
    assert pruned.fronts == full.fronts
    key = ("decode_tokens_per_s", "tokens_per_J", "ttft_s", "resource_share")
    fa = {r["hash"]: tuple(r[k] for k in key) for r in full.front_rows()}
    fb = {r["hash"]: tuple(r[k] for k in key) for r in pruned.front_rows()}
    assert fa == fb
    # every pruned point really is dominated by a simulated one in the full run
    from llmaccel.reports.explore.pareto import dominates, vector
    full_by = {r["hash"]: r for r in full.rows}
    for r in pruned.rows:
        if r["pruned_by"]:
            a = vector(full_by[r["pruned_by"]], list(pruned.objectives))
            b = vector(full_by[r["hash"]], list(pruned.objectives))
            assert dominates(a, b)
