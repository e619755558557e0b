"""The result store: one SQLite file, one row per design point with every figure as a column.

Why SQLite rather than Parquet: it ships with Python (no new dependency), each
finished point is one committed transaction (an interrupted sweep keeps every
point it finished, and a reader never sees half a row), rows are updated in
place when a point estimated earlier is simulated later, and users query it
from the ``sqlite3`` shell, pandas (``read_sql``), DuckDB or any SQL tool.
Parquet files are immutable: appending point by point means many small files
or rewriting the file.

Tables:
  ``points``        one row per point (content hash primary key); scalar figures are columns
                    (added as new figures appear), dict/list figures are JSON text columns
  ``sweep_points``  which points a sweep (spec hash) holds, and for pruned ones the simulated
                    point that dominates them
  ``quality``       recipe perplexities on a checkpoint, keyed by their own content hash
  ``runs``          one row per invocation (time, workers, counts): the only non-deterministic table
  ``meta``          marks the file as an llmaccel exploration store, with its schema version
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from llmaccel.errors import LlmaccelError

KIND = "llmaccel-explore"
SCHEMA = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
FIXED = {  # the columns every point has
    "hash": "TEXT PRIMARY KEY", "model": "TEXT", "recipe": "TEXT", "prefill": "INTEGER", "decode": "INTEGER",
    "max_len": "INTEGER", "base_design": "TEXT", "label": "TEXT", "knobs": "TEXT", "design": "TEXT",
    "code_version": "TEXT", "status": "TEXT", "reason": "TEXT",
}


class StoreError(LlmaccelError):
    """The store path holds something that is not an llmaccel exploration store, or a newer schema."""


def _sql_type(v: Any) -> str:
    if isinstance(v, bool) or isinstance(v, int):
        return "INTEGER"
    if isinstance(v, float):
        return "REAL"
    if isinstance(v, (dict, list, tuple)):
        return "JSON"
    return "TEXT"


class Store:
    """An exploration store at ``path``: created if absent, refused if it exists and is not one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists():
            self._check_ours()
        else:
            self._create()
        self.db = sqlite3.connect(self.path, isolation_level=None)   # autocommit; we BEGIN/COMMIT ourselves
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._columns = self._read_columns()

    # ---- opening -------------------------------------------------------------------------------
    def _check_ours(self) -> None:
        p = self.path
        not_ours = f"store '{p}' exists and is not an llmaccel exploration store"
        if not p.is_file():
            raise StoreError(f"{not_ours} (it is not a file); give --store a new path or an existing store")
        with open(p, "rb") as fh:
            head = fh.read(16)
        if head != SQLITE_MAGIC:
            raise StoreError(f"{not_ours} (not an SQLite file); it was left untouched; give --store a new path")
        try:
            con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
            try:
                rows = dict(con.execute("SELECT key, value FROM meta").fetchall())
            finally:
                con.close()
        except sqlite3.DatabaseError:
            raise StoreError(f"{not_ours} (an SQLite file without our 'meta' table); it was left untouched; "
                             f"give --store a new path") from None
        if rows.get("kind") != KIND:
            raise StoreError(f"{not_ours} (meta.kind={rows.get('kind')!r}, expected {KIND!r}); left untouched")
        if int(rows.get("schema", -1)) != SCHEMA:
            raise StoreError(f"store '{p}' has schema {rows.get('schema')}; this llmaccel reads schema {SCHEMA}")

    def _create(self) -> None:
        """Build the empty store under a temporary name, then rename: no half-made store is ever visible."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        con = sqlite3.connect(tmp)
        with con:
            con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            con.executemany("INSERT INTO meta VALUES (?, ?)",
                            [("kind", KIND), ("schema", str(SCHEMA)), ("created_utc", _now())])
            con.execute("CREATE TABLE points (" + ", ".join(f"{k} {v}" for k, v in FIXED.items()) + ")")
            con.execute("CREATE TABLE columns (name TEXT PRIMARY KEY, kind TEXT)")
            con.executemany("INSERT INTO columns VALUES (?, ?)",
                            [(k, "JSON" if k in ("knobs", "design") else "scalar") for k in FIXED])
            con.execute("CREATE TABLE sweep_points (sweep TEXT, hash TEXT, pruned_by TEXT, "
                        "PRIMARY KEY (sweep, hash))")
            con.execute("CREATE TABLE quality (key TEXT PRIMARY KEY, checkpoint TEXT, recipe TEXT, "
                        "eval_tokens INTEGER, perplexity REAL, code_version TEXT)")
            con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, sweep TEXT, spec_name TEXT, "
                        "started_utc TEXT, finished_utc TEXT, workers INTEGER, address TEXT, points INTEGER, "
                        "simulated INTEGER, estimated INTEGER, cached INTEGER, pruned INTEGER, seconds REAL, "
                        "state TEXT)")
        con.close()
        os.replace(tmp, self.path)

    def _read_columns(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT name, kind FROM columns").fetchall())

    def close(self) -> None:
        self.db.close()

    # ---- points ----------------------------------------------------------------------------------
    def _ensure_columns(self, row: dict[str, Any]) -> None:
        for k, v in row.items():
            if k in self._columns or v is None:
                continue
            t = _sql_type(v)
            self.db.execute(f'ALTER TABLE points ADD COLUMN "{k}" {"TEXT" if t == "JSON" else t}')
            self.db.execute("INSERT INTO columns VALUES (?, ?)", (k, "JSON" if t == "JSON" else "scalar"))
            self._columns[k] = "JSON" if t == "JSON" else "scalar"

    def _encode(self, k: str, v: Any) -> Any:
        if v is None:
            return None
        if self._columns.get(k) == "JSON":
            return json.dumps(v, sort_keys=True, separators=(",", ":"))
        return v

    def put(self, row: dict[str, Any]) -> None:
        """Insert or update one point (by ``hash``) in one transaction."""
        row = {k: v for k, v in row.items() if v is not None}   # absent figures stay NULL
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._ensure_columns(row)
            cols = list(row)
            q = (f'INSERT INTO points ({", ".join(chr(34) + c + chr(34) for c in cols)}) VALUES '
                 f'({", ".join("?" for _ in cols)}) ON CONFLICT(hash) DO UPDATE SET '
                 + ", ".join(f'"{c}"=excluded."{c}"' for c in cols if c != "hash"))
            self.db.execute(q, [self._encode(c, row[c]) for c in cols])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _decode_row(self, names: list[str], values: Iterable[Any]) -> dict[str, Any]:
        out = {}
        for k, v in zip(names, values):
            out[k] = json.loads(v) if (v is not None and self._columns.get(k) == "JSON") else v
        return out

    def get_many(self, hashes: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(hashes), 500):
            chunk = hashes[i:i + 500]
            cur = self.db.execute(f"SELECT * FROM points WHERE hash IN ({','.join('?' * len(chunk))})", chunk)
            names = [d[0] for d in cur.description]
            for vals in cur.fetchall():
                r = self._decode_row(names, vals)
                out[r["hash"]] = {k: v for k, v in r.items() if v is not None}
        return out

    def rows(self, sql_where: str = "", params: tuple = ()) -> list[dict[str, Any]]:
        cur = self.db.execute(f"SELECT * FROM points {sql_where} ORDER BY hash", params)
        names = [d[0] for d in cur.description]
        return [self._decode_row(names, v) for v in cur.fetchall()]

    # ---- sweeps, quality, runs --------------------------------------------------------------------
    def set_sweep(self, sweep: str, membership: dict[str, Optional[str]]) -> None:
        """Record the sweep's points (hash -> pruned_by or None), replacing its previous record."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM sweep_points WHERE sweep = ?", (sweep,))
            self.db.executemany("INSERT INTO sweep_points VALUES (?, ?, ?)",
                                [(sweep, h, p) for h, p in sorted(membership.items())])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def sweep_rows(self, sweep: str) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT p.*, s.pruned_by AS pruned_by FROM points p JOIN sweep_points s "
                              "ON p.hash = s.hash WHERE s.sweep = ? ORDER BY p.hash", (sweep,))
        names = [d[0] for d in cur.description]
        return [self._decode_row(names, v) for v in cur.fetchall()]

    def get_quality(self, key: str) -> Optional[float]:
        r = self.db.execute("SELECT perplexity FROM quality WHERE key = ?", (key,)).fetchone()
        return None if r is None else r[0]

    def put_quality(self, key: str, checkpoint: str, recipe: str, eval_tokens: Optional[int], ppl: float,
                    code: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO quality VALUES (?, ?, ?, ?, ?, ?)",
                        (key, checkpoint, recipe, eval_tokens, ppl, code))

    def start_run(self, sweep: str, spec_name: str, workers: int, address: Optional[str], points: int) -> int:
        cur = self.db.execute("INSERT INTO runs (sweep, spec_name, started_utc, workers, address, points, state) "
                              "VALUES (?, ?, ?, ?, ?, ?, 'running')", (sweep, spec_name, _now(), workers, address, points))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, state: str, seconds: float, counts: dict[str, int]) -> None:
        self.db.execute("UPDATE runs SET finished_utc=?, state=?, seconds=?, simulated=?, estimated=?, cached=?, "
                        "pruned=? WHERE id=?", (_now(), state, seconds, counts.get("simulated", 0),
                                                counts.get("estimated", 0), counts.get("cached", 0),
                                                counts.get("pruned", 0), run_id))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
