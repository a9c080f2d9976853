"""The dashboard's reader over the server's database (PostgreSQL or SQLite).

:class:`ServerReader` is the local store's :class:`~seetrain.store.reader.StoreReader` with
another connection underneath: the tables and columns are the same (``runs``, ``keys``,
``scalar_chunks`` of packed little-endian arrays, ``media``, ``files``), so every query of the
store reader runs unchanged, through :meth:`Database.query` (which turns ``?`` into psycopg's
placeholders). What differs:

- no directory: :attr:`directory` is the database's URL without its password (the identity the
  dashboard's series cache keys on, and what error messages name);
- status: a run still marked ``running`` reads as ``crashed`` only when its heartbeat is stale
  (its pid names a process on the client's machine, not on the server's);
- media: a row's ``path`` names a blob of the server's media store, served at
  ``/media/<path>`` (:meth:`media` gives that URL); :meth:`media_project` says which project's
  read access a file needs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from seetrain.store.reader import StoreReader
from seetrain.store.schema import STALE_AFTER, StoreError

from .db import Database

__all__ = ["ServerReader", "media_url"]


def media_url(path: str | None) -> str | None:
    """The URL path the dashboard serves a media blob at: ``/media/<path>``, percent-encoded."""
    if not path:
        return None
    return "/media/" + quote(path, safe="/")


class ServerReader(StoreReader):
    """Read access to the server's database: what the dashboard shows (thread-safe; the
    :class:`Database` pools its connections)."""

    #: runs whose last values :meth:`last_scalars_many` keeps (cleared past it)
    MAX_CACHED_RUNS = 100_000

    def __init__(self, db: Database) -> None:  # no directory, no file to open
        self.db = db
        self.directory = db.describe()
        self.db_path = self.directory
        # run id -> ((chunk count, last chunk id), {key: last value}): the runs table of a
        # project re-reads only the runs that have new chunks since
        self._last: dict[str, tuple[tuple, dict[str, float]]] = {}
        self._last_lock = threading.Lock()

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """The rows of one read; a database that cannot be read comes out as a
        :class:`StoreError` (the dashboard answers 503 with its message).

        A text parameter holding NUL matches nothing (PostgreSQL's text cannot hold one, so no
        run, key or project has it): no rows, rather than the driver's error (a 500)."""
        params = tuple(params)
        if any(isinstance(p, str) and "\x00" in p for p in params):
            return []
        try:
            if self.db.dialect == "postgresql":
                # binary results: a chunk's bytea arrives as its bytes, not as hex text to decode
                # (reading a 1,000,000-point key takes half the time)
                with self.db.connection() as conn:
                    cur = conn.execute(self.db.sql(sql), tuple(params), binary=True)
                    return [tuple(r) for r in cur.fetchall()] if cur.description else []
            return self.db.query(sql, params)
        except StoreError:
            raise
        except Exception as exc:
            if not _is_database_error(exc):
                raise
            raise StoreError(f"the server's database {self.directory} cannot be read: {exc}") from exc

    def _effective_status(self, run: dict) -> str:
        # the run's pid is a process of the client's machine: only the heartbeat tells here
        if run["status"] == "running" and run["heartbeat_at"] is not None \
                and time.time() - run["heartbeat_at"] > STALE_AFTER:
            return "crashed"
        return run["status"]

    def last_scalars_many(self, run_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """As the store reader's, from a cache valid while a run has the same chunks (count and
        last id: what the series cache keys on too): one light query per 500 runs finds the
        runs that changed, and only those are read again."""
        run_ids = list(dict.fromkeys(run_ids))
        versions: dict[str, tuple] = {}
        for lo in range(0, len(run_ids), 500):
            batch = run_ids[lo:lo + 500]
            for run_id, count, last in self.query(
                    "SELECT k.run_id, COUNT(c.id), MAX(c.id) FROM keys k JOIN scalar_chunks c ON c.key_id = k.id"
                    f" WHERE k.run_id IN ({', '.join('?' * len(batch))}) GROUP BY k.run_id", batch):
                versions[run_id] = (int(count), int(last))
        out: dict[str, dict[str, float]] = {}
        stale = []
        with self._last_lock:
            for run_id in run_ids:
                entry = self._last.get(run_id)
                if entry is not None and entry[0] == versions.get(run_id, (0, 0)):
                    out[run_id] = dict(entry[1])
                else:
                    stale.append(run_id)
        if stale:
            fresh = super().last_scalars_many(stale)
            with self._last_lock:
                if len(self._last) + len(fresh) > self.MAX_CACHED_RUNS:
                    self._last.clear()
                for run_id, values in fresh.items():
                    self._last[run_id] = (versions.get(run_id, (0, 0)), values)
                    out[run_id] = dict(values)
        return out

    def media(self, run_id: str, key: str) -> list[dict[str, Any]]:
        from seetrain.store.reader import KeyNotFoundError

        key_id, kind = self._key_id(run_id, key)
        if kind == "scalar":
            raise KeyNotFoundError(f"key {key!r} of run {run_id} holds scalars, not media")
        rows = self.query(
            "SELECT step, idx, kind, path, text, caption, meta, ts FROM media WHERE key_id = ? ORDER BY step, idx, id",
            (key_id,))
        return [
            {"step": s, "index": i, "kind": k, "path": media_url(p), "url": media_url(p), "relpath": p,
             "text": t, "caption": c, "meta": json.loads(m) if m else {}, "time": ts}
            for s, i, k, p, t, c, m, ts in rows
        ]

    def media_project(self, path: str) -> str | None:
        """The project of the run that logged the media blob ``path`` (None: no such media)."""
        rows = self.query("SELECT r.project FROM media m JOIN keys k ON k.id = m.key_id "
                          "JOIN runs r ON r.id = k.run_id WHERE m.path = ? LIMIT 1", (path,))
        return rows[0][0] if rows else None

    @property
    def conn(self):  # the store reader's raw SQLite connection has no meaning here
        raise AttributeError("a ServerReader has no SQLite connection: query through query()")

    def close(self) -> None:
        """Nothing of its own to close (the :class:`Database` belongs to the server)."""


def _is_database_error(exc: Exception) -> bool:
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        return True
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # pragma: no cover - dependencies of the package
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg_pool.PoolTimeout))
