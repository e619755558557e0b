"""The event engine honours the ISA's wait/release counters, channels, latency and SYS barriers.

Expected cycles are worked out by hand from the op durations in each test.
"""
import pytest

from llmaccel.simulator.timing_engine import UNIT_INDEX, ScheduleError, TimedOp, run

LD, ST, MPE, SFU, SYS = (UNIT_INDEX[u] for u in ("LD", "ST", "MPE", "SFU", "SYS"))
B = {u: 1 << UNIT_INDEX[u] for u in ("LD", "ST", "MPE", "SFU", "SYS")}


def test_wait_release_orders_units():
    ops = [TimedOp(0, LD, 10, release=B["MPE"], name="ld", channel=0),
           TimedOp(0, MPE, 5, wait=B["LD"], name="mv")]
    s = run(ops, 1)
    assert (s.start[1], s.end[1]) == (10, 15)     # MV may not start before the LD's token
    assert s.makespan == 15


def test_without_tokens_units_overlap():
    ops = [TimedOp(0, LD, 10, name="ld", channel=0), TimedOp(0, MPE, 5, name="mv")]
    s = run(ops, 1)
    assert s.start[1] == 0 and s.makespan == 10


def test_unbalanced_tokens_deadlock_is_one_error():
    ops = [TimedOp(0, MPE, 5, wait=B["LD"], name="mv_without_ld")]
    with pytest.raises(ScheduleError, match="deadlock"):
        run(ops, 1)


def test_channels_overlap_same_channel_serialises_completion_in_order():
    ops = [TimedOp(0, LD, 100, name="a", channel=0), TimedOp(0, LD, 100, name="b", channel=1),
           TimedOp(0, LD, 100, name="c", channel=0), TimedOp(0, LD, 10, name="d", channel=2)]
    s = run(ops, 1, channels_per_core=4)
    assert s.end[0] == 100            # issued at 0
    assert (s.start[1], s.end[1]) == (1, 101)   # one issue per cycle, other channel: overlaps
    assert (s.start[2], s.end[2]) == (100, 200)  # same channel as 'a': waits for it
    assert s.end[3] == 200            # short transfer, but completions retire in order


def test_latency_delays_consumer_not_next_transfer():
    ops = [TimedOp(0, LD, 10, release=B["MPE"], latency=50, name="ld0", channel=0),
           TimedOp(0, LD, 10, release=B["MPE"], latency=50, name="ld1", channel=0),
           TimedOp(0, MPE, 1, wait=B["LD"], name="mv0"), TimedOp(0, MPE, 1, wait=B["LD"], name="mv1")]
    s = run(ops, 1)
    assert s.start[1] == 10           # the channel is free after the transfer, not after the latency
    assert s.start[2] == 60 and s.start[3] == 70


def test_initial_tokens_are_free_slots():
    # LD waits for a free slot from the MPE; two initial slots let two LDs go, the third waits
    ops = [TimedOp(0, LD, 10, wait=B["MPE"], release=B["MPE"], name=f"ld{i}", channel=0) for i in range(3)]
    ops += [TimedOp(0, MPE, 100, wait=B["LD"], release=B["LD"], name=f"mv{i}") for i in range(3)]
    s = run(ops, 1, initial_tokens={(0, MPE, LD): 2})
    assert s.start[0] == 0 and s.start[1] == 10
    assert s.start[2] == 110          # slot freed when mv0 (10..110) ends


def test_barrier_meets_at_last_arrival_plus_sync():
    ops = [TimedOp(0, MPE, 10, release=B["SYS"], name="c0"), TimedOp(1, MPE, 30, release=B["SYS"], name="c1"),
           TimedOp(0, SYS, 0, wait=B["MPE"], release=B["SFU"], sync=True, name="bar0"),
           TimedOp(1, SYS, 0, wait=B["MPE"], release=B["SFU"], sync=True, name="bar1"),
           TimedOp(0, SFU, 1, wait=B["SYS"], name="after0"), TimedOp(1, SFU, 1, wait=B["SYS"], name="after1")]
    s = run(ops, 2, sync_cycles=7)
    assert s.end[2] == s.end[3] == 37
    assert s.start[4] == 37 and s.start[5] == 37


def test_bad_core_or_negative_cycles_rejected():
    with pytest.raises(ScheduleError, match="core"):
        run([TimedOp(3, MPE, 1)], 2)
    with pytest.raises(ScheduleError, match="negative"):
        run([TimedOp(0, MPE, -1)], 1)
