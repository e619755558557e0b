"""Output paths that can never destroy a user's data.

Every file or directory llmaccel writes for a user (``--out``, ``--trace``,
``--plot``) goes through here, so the rules live in one place:

* a destination is checked before any work starts: ``""``, the current
  directory or one of its parents, a path that is a file where a directory is
  asked (or the reverse), a symbolic link, or a directory we cannot create or
  write into, is one clear :class:`OutputPathError` naming the flag;
* an existing non-empty directory is replaced only with ``force`` and only
  when the caller's ``is_ours`` check (an artifact's manifest of the same
  kind) says llmaccel wrote it and nothing else is in it;
* the new tree (or file) is written complete under a temporary name that
  carries our marker and the writer's process id; the old one is then moved
  aside, the new one renamed into place, and the old one removed last, so a
  kill at any point leaves either the old or the new output whole;
* temporaries of killed runs (our marker, a process id that is no longer
  running) are removed by the next run that writes next to them, and nothing
  else is;
* what we create gets the user's umask (``mkdtemp``/``mkstemp`` would leave
  0700/0600).

It lives in the lowest package so that the RTL generator, the simulator's
traces, the mapping artifacts and the HLS projects all share it.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Callable, Optional

from llmaccel.errors import LlmaccelError

MARK = "llmaccel"


class OutputPathError(LlmaccelError):
    """An output path llmaccel refuses to write (it would destroy data, or cannot be written)."""


def user_umask() -> int:
    """The process umask, read without changing it where /proc allows (thread-safe there)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _temp_name(name: str, suffix: str) -> str:
    return f".{name}.{MARK}-{os.getpid()}-{secrets.token_hex(4)}.{suffix}"


def _leftover_pattern(name: str) -> re.Pattern:
    # ours: .<name>.llmaccel-<pid>-<hex>.partial|old ; earlier releases: .<name>.<8 chars>.partial (mkdtemp)
    return re.compile(rf"^\.{re.escape(name)}\.(?:{MARK}-(\d+)-[0-9a-f]+\.(?:partial|old)|[a-z0-9_]{{8}}\.partial)$")


def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(dest: Path) -> list[Path]:
    """Remove the temporaries that killed runs writing ``dest`` left next to it; returns what was removed."""
    parent, pat, removed = dest.parent, _leftover_pattern(dest.name), []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for e in entries:
        m = pat.match(e.name)
        if m is None or (m.group(1) is not None and _pid_running(int(m.group(1)))):
            continue
        p = Path(e.path)
        if e.is_symlink() or not e.is_dir(follow_symlinks=False):
            p.unlink(missing_ok=True)
        else:
            shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _refuse_cwd_and_parents(dest: Path, flag: str, raw: str) -> None:
    here = Path(os.path.realpath(os.getcwd()))
    target = Path(os.path.realpath(dest))
    if target == here or target in here.parents:
        raise OutputPathError(f"{flag} '{raw}' is the current directory or one of its parents; "
                              "give a new directory name, e.g. out/my-artifact")
    if target == Path(target.anchor):
        raise OutputPathError(f"{flag} '{raw}' is a filesystem root; give a new directory name")


def _check_parent(dest: Path, flag: str, raw: str) -> None:
    """The nearest existing ancestor of ``dest`` must be a writable directory (nothing is created yet,
    so a refused or failed run leaves no empty directories behind)."""
    parent = Path(os.path.abspath(dest)).parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"{flag} '{raw}': '{parent}' exists and is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{flag} '{raw}': directory '{parent}' is not writable")


def _make_parent(dest: Path, flag: str, raw: str) -> None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{flag} '{raw}': cannot create '{dest.parent}' ({exc.strerror})") from None


def check_output_dir(dest: "str | os.PathLike", flag: str = "--out", force: bool = False,
                     is_ours: Optional[Callable[[Path], Optional[str]]] = None, kind: str = "output") -> Path:
    """Validate a directory destination before any work; returns it as a Path.

    ``is_ours(path)`` returns None when ``path`` is an llmaccel output of the same kind that may be
    replaced, or a reason why not.
    """
    raw = os.fspath(dest)
    if raw == "" or raw.strip() == "":
        raise OutputPathError(f"{flag} is empty; give a new directory name")
    path = Path(raw)
    _refuse_cwd_and_parents(path, flag, raw)
    if path.is_symlink():
        raise OutputPathError(f"{flag} '{raw}' is a symbolic link; give the directory itself or a new name")
    if path.exists():
        if not path.is_dir():
            raise OutputPathError(f"{flag} '{raw}' exists and is a file, not a directory; give a new directory name")
        if any(path.iterdir()):
            if not force:
                hint = "" if is_ours is None else f", or --force to replace an llmaccel {kind} there"
                raise OutputPathError(f"{flag} '{raw}' exists and is not empty; give a new directory name{hint}")
            why = "no check for this kind of output" if is_ours is None else is_ours(path)
            if why is not None:
                raise OutputPathError(f"{flag} '{raw}': refusing to replace it with --force: it is not an "
                                      f"llmaccel {kind} ({why})")
    _check_parent(path, flag, raw)
    return path


def write_dir_atomically(dest: "str | os.PathLike", build: Callable[[Path], None], flag: str = "--out",
                         force: bool = False, is_ours: Optional[Callable[[Path], Optional[str]]] = None,
                         kind: str = "output") -> Path:
    """Build a directory with ``build(tmp)`` and put it at ``dest`` under the rules of this module."""
    path = check_output_dir(dest, flag, force, is_ours, kind)
    _make_parent(path, flag, os.fspath(dest))
    clean_leftovers(path)
    tmp = path.parent / _temp_name(path.name, "partial")
    try:
        tmp.mkdir(mode=0o777)          # mkdir applies the umask itself
    except OSError as exc:
        raise OutputPathError(f"{flag} '{dest}': cannot write in '{path.parent}' ({exc.strerror})") from None
    old = None
    try:
        build(tmp)
        # re-checked at the moment of replacement: something may have appeared while we worked
        check_output_dir(path, flag, force, is_ours, kind)
        if path.exists():
            old = path.parent / _temp_name(path.name, "old")
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException:
        if old is not None and old.exists() and not path.exists():
            os.rename(old, path)           # interrupted between the two renames: the old one goes back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def check_output_file(dest: "str | os.PathLike", flag: str,
                      is_ours: Optional[Callable[[Path], Optional[str]]] = None, kind: str = "file") -> Path:
    """Validate a file destination (``--trace``, ``--plot``) before any work; returns it as a Path.

    An existing file is replaced only when ``is_ours(path)`` returns None (llmaccel wrote it: the
    caller checks the marker its format carries), otherwise the reason is the error.
    """
    raw = os.fspath(dest)
    if raw.strip() == "":
        raise OutputPathError(f"{flag} is empty; give a file name")
    path = Path(raw)
    if raw.endswith(("/", os.sep)) or path.is_dir():
        raise OutputPathError(f"{flag} '{raw}' is a directory; give a file name")
    if path.is_symlink():
        raise OutputPathError(f"{flag} '{raw}' is a symbolic link; give the file itself or a new name")
    if path.exists() and not path.is_file():
        raise OutputPathError(f"{flag} '{raw}' exists and is not a regular file")
    if path.exists():
        why = "no check for this kind of output" if is_ours is None else is_ours(path)
        if why is not None:
            raise OutputPathError(f"{flag} '{raw}' exists and is not an llmaccel {kind} ({why}); "
                                  "refusing to overwrite it: give a new file name")
    _check_parent(path, flag, raw)
    return path


def write_file_atomically(dest: "str | os.PathLike", write: Callable[[Path], None], flag: str,
                          is_ours: Optional[Callable[[Path], Optional[str]]] = None, kind: str = "file") -> Path:
    """``write(tmp)`` writes the whole file under a temporary name; it is then renamed to ``dest``.

    ``tmp`` has no meaningful suffix: writers that infer a format from it must name the format.
    """
    path = check_output_file(dest, flag, is_ours, kind)
    _make_parent(path, flag, os.fspath(dest))
    clean_leftovers(path)
    tmp = path.parent / _temp_name(path.name, "partial")
    try:
        write(tmp)
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~user_umask())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputPathError(f"{flag} '{dest}' could not be written ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
