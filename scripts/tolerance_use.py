"""pytest plugin: how much of each tolerance the tests use (issue 15, docs/numerics.md "Tolerances").

A tolerance is set from a measurement; this measures. For every ``numpy.testing.assert_allclose`` and
every ``pytest.approx`` with an explicit ``rel``/``abs`` it records ``max(|got - want| / tol)``, the
fraction of the bound the assertion used (1.0 = at the bound), and at the end of the session prints the
worst fraction per test and bound, largest first:

    PYTHONPATH=$PWD:scripts python3 -m pytest -q -p no:xdist -p tolerance_use tests/hls/test_hls_golden_units.py

A bound whose worst use is near 1 has no margin; one near 0 may hide a bug and can tighten. Bounds written
as plain comparisons (``assert err <= 2e-2 * ...``) are not seen: set them to 0 in a copy and read the
assertion message, as docs/numerics.md describes for the decode logits.
"""
from __future__ import annotations

import numpy as np
from _pytest import python_api

_worst: dict[tuple, float] = {}
_current = {"test": ""}
_allclose = np.testing.assert_allclose
_approx_eq = python_api.ApproxScalar.__eq__


def _note(kind: str, bound: tuple, used: float) -> None:
    key = (_current["test"].split("[")[0], kind, bound)
    _worst[key] = max(_worst.get(key, 0.0), used)


def _recording_allclose(actual, desired, rtol=1e-7, atol=0, *args, **kwargs):
    try:
        a, d = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
        tol, err = atol + rtol * np.abs(d), np.abs(a - d)
        if err.size:
            frac = np.where(tol > 0, err / np.where(tol > 0, tol, 1.0), np.where(err > 0, np.inf, 0.0))
            _note("allclose", (float(rtol), float(atol)), float(frac.max()))
    except (TypeError, ValueError):
        pass                                  # not numeric: the real assert_allclose reports it
    return _allclose(actual, desired, rtol, atol, *args, **kwargs)


def _recording_approx_eq(self, actual):
    try:
        if (self.rel or 0) > 0 or (self.abs or 0) > 0:
            tol, err = self.tolerance, abs(float(actual) - float(self.expected))
            _note("approx", (self.rel, self.abs), err / tol if tol else (0.0 if err == 0 else float("inf")))
    except (TypeError, ValueError):
        pass
    return _approx_eq(self, actual)


def pytest_configure(config):
    np.testing.assert_allclose = _recording_allclose
    python_api.ApproxScalar.__eq__ = _recording_approx_eq


def pytest_runtest_setup(item):
    _current["test"] = item.nodeid


def pytest_terminal_summary(terminalreporter):
    terminalreporter.section("tolerance use (worst fraction of the bound per test)")
    for (test, kind, bound), used in sorted(_worst.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{used:8.3f}  {kind:8s} {bound}  {test}")
