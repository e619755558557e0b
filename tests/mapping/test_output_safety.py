"""--out never destroys what llmaccel did not write; artifacts appear whole, atomically, with the user's umask."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmaccel.cli import main
from llmaccel.mapping.artifact_io import read_manifest, write_artifact
from llmaccel.mapping.compiled_artifact import SCHEMA_VERSION
from llmaccel.sparse_dsp.safe_paths import OutputPathError

TINY = str(Path(__file__).resolve().parents[1] / "simulator" / "data" / "tiny-u280.yaml")
REPO = Path(__file__).resolve().parents[2]
COMPILE = ["compile", "--model", "tiny", "--design", TINY, "--recipe", "w4-g128-rtn", "--max-len", "128",
           "--no-storage-report", "--json"]
SCHEMA = "llmaccel.test_artifact"


def _user_tree(root: Path) -> dict[str, bytes]:
    """A directory of someone's files, and their exact contents to compare against later."""
    (root / "notes").mkdir(parents=True, exist_ok=True)
    files = {"thesis.tex": b"\\section{results}", "notes/todo.txt": b"buy milk"}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def _intact(root: Path, files: dict[str, bytes]) -> bool:
    return all((root / n).is_file() and (root / n).read_bytes() == d for n, d in files.items())


def _json_error(capsys, argv) -> tuple[int, str]:
    rc = main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return rc, json.loads(out[-1])["error"] if out else ""


@pytest.mark.parametrize("out", [".", "", "./", ".."])
def test_compile_out_never_deletes_the_current_or_parent_directory(out, tmp_path, monkeypatch, capsys):
    home = tmp_path / "work" / "here"
    home.mkdir(parents=True)
    mine = _user_tree(home)
    theirs = _user_tree(tmp_path / "work")
    monkeypatch.chdir(home)
    for force in ([], ["--force"]):
        rc, err = _json_error(capsys, COMPILE + ["--out", out] + force)
        assert rc == 2 and "--out" in err, err
        assert _intact(home, mine) and _intact(tmp_path / "work", theirs)


def test_compress_out_dot_is_refused_before_any_work(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mine = _user_tree(tmp_path)
    rc, err = _json_error(capsys, ["compress", "--model", str(tiny_checkpoint), "--recipe", "w8", "--out", ".",
                                   "--json"])
    assert rc == 2 and "current directory" in err
    assert _intact(tmp_path, mine) and sorted(os.listdir(tmp_path)) == ["notes", "thesis.tex"]


def test_an_existing_non_empty_directory_is_refused_and_force_replaces_only_our_artifact(tmp_path, capsys):
    user = tmp_path / "results"
    mine = _user_tree(user)
    rc, err = _json_error(capsys, COMPILE + ["--out", str(user)])
    assert rc == 2 and "exists and is not empty" in err and "--force" in err
    rc, err = _json_error(capsys, COMPILE + ["--out", str(user), "--force"])
    assert rc == 2 and "not an llmaccel artifact" in err and _intact(user, mine)

    art = tmp_path / "art"
    assert main(COMPILE + ["--out", str(art)]) == 0
    capsys.readouterr()
    first = read_manifest(art, "llmaccel.compiled_program", SCHEMA_VERSION)
    assert main(COMPILE + ["--out", str(art), "--force"]) == 0        # same kind: replaced
    capsys.readouterr()
    assert read_manifest(art, "llmaccel.compiled_program", SCHEMA_VERSION)["content_hash"] == first["content_hash"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "results"]   # nothing left beside it

    (art / "my-notes.txt").write_text("mine")                          # someone's file inside the artifact
    rc, err = _json_error(capsys, COMPILE + ["--out", str(art), "--force"])
    assert rc == 2 and "my-notes.txt" in err and (art / "my-notes.txt").read_text() == "mine"


def test_force_does_not_replace_an_artifact_of_another_kind(tmp_path):
    other = write_artifact(tmp_path / "a", "llmaccel.other_kind", 1, {}, lambda d: (d / "x.bin").write_bytes(b"1"))
    with pytest.raises(OutputPathError, match="schema 'llmaccel.other_kind', expected 'llmaccel.test_artifact'"):
        write_artifact(other, SCHEMA, 1, {}, lambda d: (d / "y.bin").write_bytes(b"2"), force=True)
    assert (other / "x.bin").read_bytes() == b"1"


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_text("a file"), "exists and is a file"),
    (lambda p: (p.parent / "target").mkdir() or p.symlink_to(p.parent / "target"), "symbolic link"),
])
def test_out_that_is_a_file_or_a_link_is_one_clear_error(make, match, tmp_path, capsys):
    dest = tmp_path / "dest"
    make(dest)
    rc, err = _json_error(capsys, COMPILE + ["--out", str(dest), "--force"])
    assert rc == 2 and match in err


def test_unwritable_out_is_one_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, err = _json_error(capsys, COMPILE + ["--out", str(blocker / "art")])
    assert rc == 2 and "is not a directory" in err
    rc, err = _json_error(capsys, COMPILE + ["--out", "/proc/llmaccel-cannot-write-here/art"])
    assert rc == 2 and "--out" in err and "cannot" in err
    if os.geteuid() != 0:                      # root may write into a 0500 directory
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        rc, err = _json_error(capsys, COMPILE + ["--out", str(ro / "art")])
        assert rc == 2 and "not writable" in err


def test_artifacts_get_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        art = write_artifact(tmp_path / "a", SCHEMA, 1, {}, lambda d: (d / "w.bin").write_bytes(b"w"))
    finally:
        os.umask(old)
    assert art.stat().st_mode & 0o777 == 0o750          # mkdtemp would have left 0o700
    assert (art / "w.bin").stat().st_mode & 0o777 == 0o640
    assert (art / "manifest.json").stat().st_mode & 0o777 == 0o640


_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from llmaccel.mapping.artifact_io import write_artifact
    def write(d):
        (d / "new.bin").write_bytes(b"new")
        os.kill(os.getpid(), signal.SIGKILL)          # killed mid-write, as a user's ^C -9 or the OOM killer
    write_artifact(sys.argv[1], "llmaccel.test_artifact", 1, {}, write, force=True)
""")


def test_a_killed_replacement_leaves_the_old_artifact_whole_and_the_next_run_cleans_up(tmp_path):
    art = write_artifact(tmp_path / "a", SCHEMA, 1, {"v": 1}, lambda d: (d / "old.bin").write_bytes(b"old"))
    beside = tmp_path / "someone-elses.partial"
    beside.mkdir()                                     # not named by us: must survive the clean-up
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(art)], env=env, cwd=tmp_path)
    assert r.returncode == -signal.SIGKILL
    assert read_manifest(art, SCHEMA, 1)["v"] == 1 and (art / "old.bin").read_bytes() == b"old"
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".a.")]
    assert len(left) == 1 and left[0].name.endswith(".partial")
    write_artifact(art, SCHEMA, 1, {"v": 2}, lambda d: (d / "new.bin").write_bytes(b"new"), force=True)
    assert read_manifest(art, SCHEMA, 1)["v"] == 2 and sorted(os.listdir(art)) == ["manifest.json", "new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "someone-elses.partial"]


def test_a_failed_write_leaves_nothing_and_the_old_artifact_stays(tmp_path):
    art = write_artifact(tmp_path / "a", SCHEMA, 1, {"v": 1}, lambda d: (d / "old.bin").write_bytes(b"old"))

    def fail(d: Path) -> None:
        (d / "half.bin").write_bytes(b"half")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        write_artifact(art, SCHEMA, 1, {"v": 2}, fail, force=True)
    assert read_manifest(art, SCHEMA, 1)["v"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


@pytest.mark.parametrize("flag", ["--trace", "--plot"])
def test_trace_and_plot_paths_are_checked(flag, tmp_path, capsys):
    sim = ["simulate", "--model", "tiny", "--design", TINY, "--recipe", "w4-g128-rtn", "--prefill", "16",
           "--decode", "16", "--max-len", "128", "--json"]
    rc, err = _json_error(capsys, sim + [flag, str(tmp_path)])
    assert rc == 2 and "is a directory" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, err = _json_error(capsys, sim + [flag, str(blocker / "out")])
    assert rc == 2 and str(blocker) in err and "not a directory" in err
    user = tmp_path / "README.md"
    user.write_text("my readme")
    rc, err = _json_error(capsys, sim + [flag, str(user)])
    assert rc == 2 and "refusing to overwrite" in err and user.read_text() == "my readme"
    ours = tmp_path / "ours"
    assert main(sim + [flag, str(ours)]) == 0 and main(sim + [flag, str(ours)]) == 0   # ours: replaced
    capsys.readouterr()
    assert ours.stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "file", "ours"]


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_hls_emit_force_never_deletes_the_current_directory_or_a_users_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    mine = _user_tree(tmp_path)
    for out in (".", "notes", ".."):
        rc, err = _json_error(capsys, ["hls", "emit", "--kernel", "sfu_n1024_u1", "--out", out, "--force", "--json"])
        assert rc == 2 and "--out" in err, err
    assert _intact(tmp_path, mine)
    prj = tmp_path / "prj"
    argv = ["hls", "emit", "--kernel", "sfu_n1024_u1", "--out", str(prj), "--json"]
    assert main(argv) == 0 and main(argv + ["--force"]) == 0      # our own project: replaced
    capsys.readouterr()
    (prj / "my-edits.cpp").write_text("mine")
    rc, err = _json_error(capsys, argv + ["--force"])
    assert rc == 2 and "my-edits.cpp" in err and (prj / "my-edits.cpp").read_text() == "mine"


def test_rtl_generate_refuses_a_non_empty_directory_and_leaves_no_temporaries(tmp_path):
    from llmaccel.sparse_dsp.rtl.gen import generate
    user = tmp_path / "rtl"
    mine = _user_tree(user)
    decoy = tmp_path / "new.tmp-gen"           # the name the old writer deleted without asking
    decoy.mkdir()
    (decoy / "keep.v").write_text("module keep; endmodule")
    with pytest.raises(OutputPathError, match="exists and is not empty; give a new directory name$"):
        generate("dsp_chain", {}, user)
    assert _intact(user, mine) and (decoy / "keep.v").is_file()
    m = generate("dsp_chain", {}, tmp_path / "new")
    assert sorted(os.listdir(tmp_path / "new")) == sorted(m["files"] + ["config.json"])
    assert (decoy / "keep.v").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "new.tmp-gen", "rtl"]


def test_yosys_workdir_never_overwrites_a_users_files(tmp_path, monkeypatch):
    from llmaccel.sparse_dsp.rtl.synth import synth_unit
    user = tmp_path / "work"
    mine = _user_tree(user)
    (user / "synth.ys").write_text("my own yosys script")   # one of the names a run writes, among others
    with pytest.raises(OutputPathError, match="--workdir .*synthesis run does not write: notes, thesis.tex"):
        synth_unit("dsp_chain", {"chain_len": 2, "nm": None}, workdir=user)
    assert _intact(user, mine) and (user / "synth.ys").read_text() == "my own yosys script"
    monkeypatch.chdir(user)
    with pytest.raises(OutputPathError, match="current directory"):
        synth_unit("dsp_chain", {"chain_len": 2, "nm": None}, workdir=Path("."))


def test_an_interrupt_between_the_two_renames_puts_the_old_artifact_back(tmp_path, monkeypatch):
    import llmaccel.sparse_dsp.safe_paths as sp
    art = write_artifact(tmp_path / "a", SCHEMA, 1, {"v": 1}, lambda d: (d / "old.bin").write_bytes(b"old"))
    real = os.rename

    def rename(src, dst):
        if Path(src).name.endswith(".partial"):          # the new tree going in: ^C right here
            raise KeyboardInterrupt
        real(src, dst)
    monkeypatch.setattr(sp.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        write_artifact(art, SCHEMA, 1, {"v": 2}, lambda d: (d / "new.bin").write_bytes(b"new"), force=True)
    monkeypatch.undo()
    assert read_manifest(art, SCHEMA, 1)["v"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
