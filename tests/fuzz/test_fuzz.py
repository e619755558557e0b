"""Bounded, seeded fuzzing of every file format and CLI entry point (issue 11).

The same cases on every run (fixed seed, ``random.Random`` only); the whole module
stays well under 60 s on one core. ``benchmarks/fuzz.py`` runs the same generators
for 1e5+ cases. A failure message lists the first crashes and silent acceptances,
each with the input that caused it.
"""
from __future__ import annotations

import json

import pytest

from fuzz_cases import fuzz  # tests/fuzz is on sys.path (pytest rootdir-less import)

SEED = 11
# Sized to fit 60 s on one core together (measured ~25 s on the 2-core dev box with other load).
COUNTS = {"isa": 3000, "yaml": 500, "checkpoint": 300, "manifest": 150, "compiled": 60, "cli": 120}


@pytest.fixture(scope="module")
def tally():
    return fuzz(COUNTS, SEED, cli_limit_s=30.0)


@pytest.mark.parametrize("fmt", sorted(COUNTS))
def test_no_crash_and_no_silent_acceptance(tally, fmt):
    row = tally.counts[fmt]
    bad = [e for e in tally.examples if e["format"] == fmt]
    assert sum(row.values()) == COUNTS[fmt]
    assert row["crash"] == 0 and row["silent"] == 0 and row["timeout"] == 0, json.dumps(bad, indent=1)


def test_cases_exercise_both_outcomes(tally):
    # a fuzzer whose inputs all bounce off the first check tests nothing deeper: some must pass
    assert tally.counts["isa"]["ok"] > 100 and tally.counts["isa"]["refused"] > 100
    assert tally.counts["yaml"]["ok"] > 10 and tally.counts["yaml"]["refused"] > 100
    assert tally.counts["checkpoint"]["refused"] > 100
    assert tally.counts["cli"]["refused"] > 50
