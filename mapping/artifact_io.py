"""Atomic, versioned, hashed artifact directories.

An artifact is a directory holding data files plus ``manifest.json`` with a
schema name, schema version and the SHA-256 of every data file. It is
written under a temporary name and renamed into place, so a crash never
leaves a directory that looks complete; a reader re-hashes the files and
refuses anything corrupted, truncated or of another schema version.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from sparse_dsp.errors import LlmaccelError

MANIFEST = "manifest.json"


class ArtifactError(LlmaccelError):
    """An artifact that is missing, corrupted, or of another schema or version."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_artifact(dest: str | os.PathLike, schema: str, version: int, meta: dict[str, Any],
                   write_files: Callable[[Path], None]) -> Path:
    """Call ``write_files(tmpdir)``, hash what it wrote, add the manifest, rename to ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        write_files(tmp)
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        content_hash = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        manifest = {"schema": schema, "schema_version": version, "content_hash": content_hash,
                    "files": files, **meta}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def read_manifest(src: str | os.PathLike, schema: str, version: int, verify: bool = True) -> dict[str, Any]:
    """Load and check a manifest; with ``verify`` re-hash every file it lists."""
    src = Path(src)
    mpath = src / MANIFEST
    if not src.is_dir():
        raise ArtifactError(f"artifact '{src}' does not exist or is not a directory")
    if not mpath.is_file():
        raise ArtifactError(f"artifact '{src}' has no {MANIFEST}: not an llmaccel artifact or incompletely written")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"artifact '{src}': {MANIFEST} is not valid JSON ({exc})") from None
    if manifest.get("schema") != schema:
        raise ArtifactError(f"artifact '{src}' has schema '{manifest.get('schema')}', expected '{schema}'")
    if manifest.get("schema_version") != version:
        raise ArtifactError(f"artifact '{src}' has schema_version {manifest.get('schema_version')}, "
                            f"this llmaccel reads version {version}; re-create the artifact")
    if verify:
        for name, digest in manifest.get("files", {}).items():
            f = src / name
            if not f.is_file():
                raise ArtifactError(f"artifact '{src}': file '{name}' listed in the manifest is missing")
            if file_sha256(f) != digest:
                raise ArtifactError(f"artifact '{src}': file '{name}' does not match its content hash "
                                    "(corrupted or truncated)")
    return manifest
