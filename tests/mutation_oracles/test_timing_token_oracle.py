"""Token semantics of the event engine: a token exists only where an instruction releases one.

The ISA's wait/release bits are the only synchronisation (simulator.timing_engine): an op that releases
nothing gives nobody a token, so a consumer waiting for it is a deadlock, reported as one
``ScheduleError``; the same consumer after a producer that does release runs after it.
"""
from __future__ import annotations

import pytest

from llmaccel.simulator.isa import UNITS
from llmaccel.simulator.timing_engine import ScheduleError, TimedOp, run

LD, MPE = UNITS.index("LD"), UNITS.index("MPE")
B = {u: 1 << i for i, u in enumerate(UNITS)}


def test_an_op_that_releases_nothing_gives_no_token():
    ops = [TimedOp(0, MPE, 5, name="mv"), TimedOp(0, LD, 10, wait=B["MPE"], name="ld", channel=0)]
    with pytest.raises(ScheduleError):
        run(ops, 1)


def test_the_same_consumer_runs_after_a_producer_that_releases():
    ops = [TimedOp(0, MPE, 5, release=B["LD"], name="mv"), TimedOp(0, LD, 10, wait=B["MPE"], name="ld", channel=0)]
    s = run(ops, 1)
    assert s.start[1] >= s.end[0] == 5                 # the LD waits for the MV's token, released at its end
