"""Layout of a store directory, and the one place SQLite connections are opened."""

from __future__ import annotations

import os
import sqlite3

from ..errors import SeeTrainError

#: bump when the layout changes; readers refuse a store written by a newer layout
SCHEMA_VERSION = 1
DB_NAME = "seetrain.db"
MEDIA_DIR = "media"
#: the store directory when neither ``dir=`` nor ``SEETRAIN_DIR`` is given
DEFAULT_DIR = "seetrain"
#: seconds without a heartbeat after which a running run reads as crashed
STALE_AFTER = 60.0
#: how often a live run writes its heartbeat, in seconds
HEARTBEAT_EVERY = 5.0


class StoreError(SeeTrainError):
    """The store directory cannot be read or written."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """There is no SeeTrain store in the directory."""


def default_dir() -> str:
    """``SEETRAIN_DIR`` if set, else ``./seetrain``."""
    return os.environ.get("SEETRAIN_DIR") or DEFAULT_DIR


def resolve_dir(dir: str | os.PathLike | None) -> str:
    return os.path.abspath(os.fspath(dir) if dir is not None else default_dir())


DDL = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    group_name TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    frameworks TEXT NOT NULL DEFAULT '[]',
    config TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    finished_at REAL,
    heartbeat_at REAL,
    last_step INTEGER,
    pid INTEGER,
    host TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_project ON runs (project, created_at);
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (run_id, key)
);
-- scalars are stored in chunks, one row per key per flush: int64 steps, float64 values and
-- float64 wall times packed little-endian. Exact (every point), compact, and fast to read.
CREATE TABLE IF NOT EXISTS scalar_chunks (
    id INTEGER PRIMARY KEY,
    key_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    step_min INTEGER NOT NULL,
    step_max INTEGER NOT NULL,
    steps BLOB NOT NULL,
    vals BLOB NOT NULL,
    ts BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_key ON scalar_chunks (key_id, step_min);
CREATE TABLE IF NOT EXISTS media (
    id INTEGER PRIMARY KEY,
    key_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    path TEXT,
    text TEXT,
    caption TEXT,
    meta TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS media_by_key ON media (key_id, step);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    meta TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_run ON files (run_id);
"""


def connect(db_path: str, *, create: bool) -> sqlite3.Connection:
    """Open the store database; with ``create`` make the layout if it is missing."""
    if not create and not os.path.isfile(db_path):
        raise StoreNotFoundError(f"no SeeTrain store at {os.path.dirname(db_path)!r} (missing {DB_NAME})")
    try:
        conn = sqlite3.connect(db_path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        if create:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        if create:
            conn.executescript(DDL)
            conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the SeeTrain store {db_path!r}: {exc}") from exc
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise StoreError(
            f"the store {db_path!r} was written by a newer SeeTrain (schema {row[0]}, this one "
            f"reads {SCHEMA_VERSION}); upgrade with: pip install -U seetrain"
        )
    return conn
