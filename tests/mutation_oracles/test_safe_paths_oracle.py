"""The atomic writers' clean-up removes only dead runs' temporaries, never a live writer's.

``clean_leftovers`` runs before every write. A temporary named by a running process (this one included:
two threads of one program writing the same output) belongs to a write in progress; removing it would
make that write fail at its rename, or lose its output. The pid in the name is the oracle: this
process is alive by definition.
"""
from __future__ import annotations

import os

from llmaccel.sparse_dsp.safe_paths import write_file_atomically

OURS = dict(is_ours=lambda p: None)        # the test's own files: replacing them is allowed


def test_a_temporary_of_this_live_process_survives_the_clean_up(tmp_path):
    dest = tmp_path / "out.json"
    live = tmp_path / f".out.json.llmaccel-{os.getpid()}-0badcafe.partial"
    live.write_text("a write in progress")
    write_file_atomically(dest, lambda t: t.write_text("done"), "--out", **OURS)
    assert dest.read_text() == "done"
    assert live.read_text() == "a write in progress"


def test_a_second_writer_in_the_same_process_leaves_the_first_ones_temporary(tmp_path):
    """The inner write cleans up next to ``dest`` while the outer one's temporary is open: the outer
    write must still land, and nothing is left behind."""
    dest = tmp_path / "out.json"

    def outer(tmp):
        tmp.write_text("outer")
        write_file_atomically(dest, lambda t: t.write_text("inner"), "--out", **OURS)

    write_file_atomically(dest, outer, "--out", **OURS)
    assert dest.read_text() == "outer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
