"""Atomic, versioned, hashed artifact directories.

An artifact is a flat directory of data files plus ``manifest.json``: a
schema name and version, the SHA-256 of every data file (``files``), the
writer's metadata (config, recipe, layer formats, ...), a ``timings`` block,
and ``content_hash``. The content hash is the SHA-256 of the canonical JSON
of the whole manifest except ``content_hash`` itself and ``timings`` (wall
times differ run to run; everything else is the same bits for the same
inputs), so it covers every file through its digest and every metadata field.

Writing goes through :mod:`sparse_dsp.safe_paths` (checked destination,
complete tree under a temporary name, old artifact moved aside and removed
last, leftovers of killed runs cleaned, the user's umask). Reading
(:func:`read_manifest`) recomputes the content hash and refuses a manifest
that is not a UTF-8 JSON object, file names that are not plain names in the
directory (absolute, ``..``, separators), symbolic links, listed files that
are missing and files the manifest does not list; ``verify`` also re-hashes
every file. This is integrity against corruption and edits, not a signature:
whoever rewrites a manifest and its hash on purpose is not stopped by it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Optional

from llmaccel import strict_json
from llmaccel.errors import LlmaccelError
from llmaccel.sparse_dsp.safe_paths import check_output_dir, write_dir_atomically

MANIFEST = "manifest.json"
UNHASHED_KEYS = ("content_hash", "timings")
# A 7B model's manifest (config, recipe, 225 layer formats, sensitivities) is well under 1 MiB;
# a bigger one is not ours, and is refused before it is read into memory.
MAX_MANIFEST_BYTES = 64 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactError(LlmaccelError):
    """An artifact that is missing, corrupted, tampered with, or of another schema or version."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_hash(manifest: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``manifest`` without ``content_hash`` and ``timings``."""
    body = {k: v for k, v in manifest.items() if k not in UNHASHED_KEYS}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode("ascii")).hexdigest()


def is_artifact_of(schema: str) -> Callable[[Path], Optional[str]]:
    """The ``--force`` check: None when ``path`` is an llmaccel artifact of ``schema`` holding only its
    listed files (so replacing it deletes nothing llmaccel did not write), else the reason."""
    def check(path: Path) -> Optional[str]:
        try:
            man = _load_json(path / MANIFEST, path)
        except ArtifactError as exc:
            return str(exc)
        if man.get("schema") != schema:
            return f"its manifest has schema '{man.get('schema')}', expected '{schema}'"
        listed = man.get("files")
        if not isinstance(listed, dict):
            return "its manifest lists no files"
        extra = sorted(set(os.listdir(path)) - set(listed) - {MANIFEST})
        if extra:
            return "it holds files its manifest does not list: " + ", ".join(extra[:8])
        return None
    return check


def check_artifact_dest(dest: str | os.PathLike, schema: str, force: bool = False, flag: str = "--out") -> Path:
    """Refuse a destination before any expensive work (same rules as :func:`write_artifact`)."""
    return check_output_dir(dest, flag, force, is_artifact_of(schema), f"artifact ({schema})")


def write_artifact(dest: str | os.PathLike, schema: str, version: int, meta: dict[str, Any],
                   write_files: Callable[[Path], None], force: bool = False,
                   timings: Optional[dict[str, Any]] = None, flag: str = "--out") -> Path:
    """Call ``write_files(tmpdir)``, hash what it wrote, add the manifest, put the tree at ``dest``.

    ``meta`` and ``timings`` are read after ``write_files`` ran (it may fill them in). ``timings``
    is stored outside the content hash; everything in ``meta`` is covered by it.
    """
    clash = {"schema", "schema_version", "files", *UNHASHED_KEYS} & set(meta)
    if clash:
        raise ValueError(f"artifact metadata may not set {sorted(clash)}")

    def build(tmp: Path) -> None:
        write_files(tmp)
        files = {}
        for p in sorted(tmp.iterdir()):
            if p.is_symlink() or not p.is_file() or p.name == MANIFEST:
                raise ValueError(f"artifact writer produced '{p.name}': artifacts are flat directories of files")
            files[p.name] = file_sha256(p)
        manifest = {"schema": schema, "schema_version": version, "files": files, **meta,
                    "timings": dict(timings or {})}
        manifest["content_hash"] = manifest_hash(manifest)
        text = json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False)   # it is read back strictly
        (tmp / MANIFEST).write_text(text, encoding="utf-8")

    return write_dir_atomically(dest, build, flag, force, is_artifact_of(schema), f"artifact ({schema})")


def _load_json(mpath: Path, src: Path) -> dict[str, Any]:
    if mpath.is_symlink() or not mpath.is_file():
        raise ArtifactError(f"artifact '{src}' has no {MANIFEST}: not an llmaccel artifact or incompletely written")
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"artifact '{src}': {MANIFEST} is {mpath.stat().st_size} bytes, more than "
                            f"{MAX_MANIFEST_BYTES} (not an llmaccel manifest)")
    return strict_json.read(mpath, ArtifactError, expect_object=True, source=f"artifact '{src}': {MANIFEST}")


def read_artifact_json(src: Path, name: str) -> Any:
    """A JSON data file of an artifact (``compiled.json``), read strictly; one ArtifactError naming it."""
    return strict_json.read(src / name, ArtifactError, source=f"artifact '{src}': {name}")


def _plain_name(name: str) -> bool:
    return (name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\0" not in name
            and name != MANIFEST and not os.path.isabs(name))


def read_manifest(src: str | os.PathLike, schema: str, version: int, verify: bool = True) -> dict[str, Any]:
    """Load and check a manifest (schema, version, content hash, the directory's file list);
    with ``verify`` also re-hash every file."""
    src = Path(src)
    if not src.is_dir():
        raise ArtifactError(f"artifact '{src}' does not exist or is not a directory")
    manifest = _load_json(src / MANIFEST, src)
    if manifest.get("schema") != schema:
        raise ArtifactError(f"artifact '{src}' has schema '{manifest.get('schema')}', expected '{schema}'")
    if manifest.get("schema_version") != version:
        raise ArtifactError(f"artifact '{src}' has schema_version {manifest.get('schema_version')}, "
                            f"this llmaccel reads version {version}; re-create the artifact")
    if manifest_hash(manifest) != manifest.get("content_hash"):
        raise ArtifactError(f"artifact '{src}': {MANIFEST} does not match its content_hash (the manifest or a "
                            "file digest was edited, or the file is corrupted); re-create the artifact")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ArtifactError(f"artifact '{src}': {MANIFEST} field 'files' must be an object of name: sha256")
    problems = []
    for name, digest in files.items():
        if not _plain_name(name):
            problems.append(f"file name '{name}' is not a plain name inside the artifact")
        elif not isinstance(digest, str) or not _SHA256.match(digest):
            problems.append(f"file '{name}' has digest {digest!r}, expected 64 hex digits")
        elif (src / name).is_symlink():
            problems.append(f"file '{name}' is a symbolic link")
        elif not (src / name).is_file():
            problems.append(f"file '{name}' listed in the manifest is missing")
    for entry in sorted(os.listdir(src)):
        if entry == MANIFEST or entry in files:
            continue
        kind = "symbolic link" if (src / entry).is_symlink() else ("directory" if (src / entry).is_dir() else "file")
        problems.append(f"{kind} '{entry}' is not listed in the manifest")
    if problems:
        raise ArtifactError(f"artifact '{src}' is refused: " + "; ".join(problems))
    if verify:
        for name, digest in files.items():
            if file_sha256(src / name) != digest:
                raise ArtifactError(f"artifact '{src}': file '{name}' does not match its content hash "
                                    "(corrupted or truncated)")
    return manifest


# ----- the design an artifact was compiled for ----------------------------------------------------
# The manifest keeps the whole design (its YAML content as plain data), not only its name, so an
# artifact compiled for a user's own design YAML runs where that file is absent; the manifest's
# content hash covers it like every other field, and ``design_sha256`` names the design's figures.
DESIGN_KEYS = ("design", "design_spec", "design_sha256")


def design_record(design: Any) -> dict[str, Any]:
    """Manifest fields for ``design`` (a ``simulator.design.AcceleratorDesign``)."""
    from llmaccel.simulator.design import design_sha256, design_to_dict
    return {"design": design.name, "design_spec": design_to_dict(design), "design_sha256": design_sha256(design)}


def design_from_manifest(manifest: dict[str, Any], src: str | os.PathLike) -> Any:
    """The design stored in an artifact's manifest, rebuilt and checked against its hash.

    An artifact written before designs were stored names only a bundled preset: that preset is
    loaded by name (and a name not on the search path is the loader's clear error)."""
    from llmaccel.simulator.design import design_from_dict, design_sha256, load_design
    from llmaccel.simulator.specs._yaml import SpecError

    spec = manifest.get("design_spec")
    if spec is None:
        name = manifest.get("design")
        if not isinstance(name, str):
            raise ArtifactError(f"artifact '{src}': {MANIFEST} names no design (fields 'design_spec', 'design')")
        return load_design(name)
    if not isinstance(spec, dict):
        raise ArtifactError(f"artifact '{src}': {MANIFEST} field 'design_spec' must be an object (the design), "
                            f"got {type(spec).__name__}")
    try:
        design = design_from_dict(spec, f"artifact '{src}' {MANIFEST} design_spec")
    except SpecError as exc:
        raise ArtifactError(f"{exc}; the stored design is not one this llmaccel reads: recompile the "
                            "artifact") from None
    want = manifest.get("design_sha256")
    got = design_sha256(design)
    if want != got:
        raise ArtifactError(f"artifact '{src}': the stored design hashes to {got[:16]}..., its manifest says "
                            f"design_sha256 {str(want)[:16]}... (a field this llmaccel reads differently); "
                            "recompile the artifact")
    if manifest.get("design") != design.name:
        raise ArtifactError(f"artifact '{src}': field 'design' is '{manifest.get('design')}' but the stored "
                            f"design is named '{design.name}'")
    return design


def design_matches(manifest: dict[str, Any], design: str) -> bool:
    """Whether ``design`` (a name, or a design YAML path) is the design the artifact was compiled for: a name
    is compared with the stored name, a YAML file by the hash of the design it holds."""
    if design == manifest.get("design"):
        return True
    from llmaccel.simulator.design import design_sha256, is_design_file
    if not is_design_file(design):
        return False
    from llmaccel.mapping.designs import load_design
    return manifest.get("design_sha256") == design_sha256(load_design(design))
