"""The atomic writers' documented refusals (issue 15 survivors safe_paths.py:127/232, artifact_io.py:80/101).

* ``check_output_dir``/``check_artifact_dest`` replace a non-empty directory only with ``force=True``
  (docstring: "same rules as write_artifact", whose ``force`` defaults to False); the default refuses.
* ``write_file_atomically``: a writer's own exception reaches the caller unchanged, even when the
  writer failed before creating its temporary.
* ``write_artifact``: artifacts are flat directories of files; a writer that leaves a directory, a
  symbolic link, or its own ``manifest.json`` is refused with that message.
"""
from __future__ import annotations

import json
import os

import pytest

from llmaccel.mapping.artifact_io import check_artifact_dest, write_artifact
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.safe_paths import check_output_dir, write_file_atomically

SCHEMA = "mut2-test"


def _files(tmp):
    (tmp / "a.bin").write_bytes(b"\x01\x02")


def test_a_non_empty_directory_is_refused_without_force(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    (d / "x.txt").write_text("user data")
    with pytest.raises(LlmaccelError, match="exists and is not empty"):
        check_output_dir(d, "--out", is_ours=lambda p: None)
    assert check_output_dir(d, "--out", force=True, is_ours=lambda p: None) == d
    assert (d / "x.txt").read_text() == "user data"


def test_an_existing_artifact_is_refused_without_force(tmp_path):
    dest = tmp_path / "art"
    write_artifact(dest, SCHEMA, 1, {}, _files)
    with pytest.raises(LlmaccelError, match="exists and is not empty"):
        check_artifact_dest(dest, SCHEMA)
    assert check_artifact_dest(dest, SCHEMA, force=True) == dest


def test_a_writer_failing_before_its_temporary_exists_raises_its_own_error(tmp_path):
    def write(tmp):
        raise KeyError("the writer's own error")

    with pytest.raises(KeyError, match="the writer's own error"):
        write_file_atomically(tmp_path / "f.json", write, "--trace")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("what", ["directory", "symlink", "manifest"])
def test_a_writer_that_leaves_more_than_plain_files_is_refused(what, tmp_path):
    def write(tmp):
        _files(tmp)
        if what == "directory":
            (tmp / "sub").mkdir()
        elif what == "symlink":
            (tmp / "link").symlink_to(tmp / "a.bin")
        else:
            (tmp / "manifest.json").write_text(json.dumps({"schema": "forged"}))

    with pytest.raises(ValueError, match="artifacts are flat directories of files"):
        write_artifact(tmp_path / "art", SCHEMA, 1, {}, write)
    assert not (tmp_path / "art").exists()
