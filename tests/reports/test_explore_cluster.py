"""--address joins an existing Ray cluster: a head started in another process runs the sweep's tasks,
and the rows are the serial run's, bit for bit."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from llmaccel.reports.explore import explore, load_spec
from llmaccel.reports.explore.store import Store
from tests.reports._specs import ROOT, tiny_spec

pytest.importorskip("ray")

HEAD = """
import sys, time, ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
print(ray.get_runtime_context().gcs_address, flush=True)
try:
    while True:
        time.sleep(0.5)
except KeyboardInterrupt:
    ray.shutdown()
"""


@pytest.mark.slow
def test_address_joins_an_existing_cluster(tmp_path):
    # Ray 2.60 clusters use token authentication; a joining driver says so with Ray's own setting
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_AUTH_MODE="token")
    head = subprocess.Popen([sys.executable, "-c", HEAD], stdout=subprocess.PIPE, text=True, env=env)
    try:
        address = head.stdout.readline().strip()
        assert address, "the Ray head did not start"
        knobs = {"cores": [1, 2], "clock_MHz": [150, 250]}
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(tiny_spec(knobs=knobs), sort_keys=False))
        cli = subprocess.run([sys.executable, "-m", "llmaccel", "explore", str(tmp_path / "spec.yaml"), "--quiet",
                              "--json", "--address", address, "--store", str(tmp_path / "cluster.sqlite"),
                              "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
        assert cli.returncode == 0, cli.stderr[-2000:]
        joined = json.loads(cli.stdout)
        serial = explore(load_spec(tiny_spec(knobs=knobs)), tmp_path / "serial.sqlite", workers=1, progress=False)
        a, b = Store(tmp_path / "cluster.sqlite"), Store(tmp_path / "serial.sqlite")
        assert a.rows() == b.rows() and len(a.rows()) == 4
        assert {g: [r["hash"] for r in rows] for g, rows in joined["fronts"].items()} == serial.fronts
        runs = a.db.execute("SELECT address FROM runs").fetchall()
        assert runs == [(address,)]
    finally:
        head.send_signal(signal.SIGINT)          # the head's own ray.shutdown() stops what it started
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
