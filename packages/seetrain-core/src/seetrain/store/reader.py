"""Reads a store directory: what :class:`seetrain.Api`, the CLI and the dashboard use.

Readers never write. A run still marked ``running`` whose process is gone (same host, dead
pid) or whose heartbeat is older than ``STALE_AFTER`` reads as ``crashed``.

Every query goes through :meth:`StoreReader.query`, which turns SQLite's errors into
:class:`~seetrain.store.schema.StoreError`: :class:`~seetrain.store.schema.StoreCorruptError`
(naming the file and ``seetrain doctor``) for a damaged file, a plain ``StoreError`` for a
locked one.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable
from typing import Any

from .schema import (
    DB_NAME,
    STALE_AFTER,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    connect,
    resolve_dir,
    store_error,
)

RUN_COLUMNS = ("id", "project", "name", "description", "group_name", "tags", "frameworks", "config",
               "summary", "status", "error", "created_at", "finished_at", "heartbeat_at", "last_step",
               "pid", "host")
_JSON_COLUMNS = ("tags", "frameworks", "config", "summary")


class RunNotFoundError(StoreError, KeyError):
    """No run with that id (or id prefix, or name) in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class KeyNotFoundError(StoreError, KeyError):
    """The run has no key of that name."""

    def __str__(self) -> str:
        return str(self.args[0])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class StoreReader:
    """Read access to one store directory (thread-safe: one connection per thread)."""

    def __init__(self, dir: str | os.PathLike | None = None) -> None:
        self.directory = resolve_dir(dir)
        self.db_path = os.path.join(self.directory, DB_NAME)
        if not os.path.isdir(self.directory):
            raise StoreNotFoundError(f"no SeeTrain store at {self.directory!r} (the directory does not exist)")
        connect(self.db_path, create=False).close()  # fail early with a clear message
        self._local = threading.local()
        self._host = socket.gethostname()

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (raw: query through :meth:`query`)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.db_path, create=False)
        return conn

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        """The rows of one read. SQLite errors come out as :class:`StoreError`; after one that
        says the file is damaged this thread's connection is dropped, so that the next query
        opens the file anew (a repaired store is read without a restart)."""
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            error = store_error(exc, self.db_path)
        if isinstance(error, StoreCorruptError):
            self.close()
        raise error

    def _one(self, sql: str, params: Iterable[Any] = ()) -> tuple | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # -- runs ---------------------------------------------------------------------------
    def _row_to_run(self, row: tuple) -> dict[str, Any]:
        run = dict(zip(RUN_COLUMNS, row))
        for col in _JSON_COLUMNS:
            run[col] = json.loads(run[col]) if run[col] else ({} if col in ("config", "summary") else [])
        run["status"] = self._effective_status(run)
        return run

    def _effective_status(self, run: dict) -> str:
        if run["status"] != "running":
            return run["status"]
        if run["host"] == self._host and run["pid"] and not _pid_alive(run["pid"]):
            return "crashed"
        if run["heartbeat_at"] is not None and time.time() - run["heartbeat_at"] > STALE_AFTER:
            return "crashed"
        return "running"

    def projects(self) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT project, COUNT(*), MAX(created_at) FROM runs GROUP BY project ORDER BY MAX(created_at) DESC")
        return [{"name": p, "runs": n, "last_run_at": t} for p, n, t in rows]

    def runs(self, project: str | None = None) -> list[dict[str, Any]]:
        cols = ", ".join(RUN_COLUMNS)
        if project is None:
            rows = self.query(f"SELECT {cols} FROM runs ORDER BY created_at")
        else:
            rows = self.query(f"SELECT {cols} FROM runs WHERE project = ? ORDER BY created_at", (project,))
        return [self._row_to_run(r) for r in rows]

    def run(self, ident: str) -> dict[str, Any]:
        """A run by id, unique id prefix, or unique name."""
        cols = ", ".join(RUN_COLUMNS)
        row = self._one(f"SELECT {cols} FROM runs WHERE id = ?", (ident,))
        if row is None:
            rows = self.query(f"SELECT {cols} FROM runs WHERE id LIKE ? ESCAPE '\\' OR name = ?",
                              (ident.replace("%", "\\%").replace("_", "\\_") + "%", ident))
            if len(rows) > 1:
                raise RunNotFoundError(f"{ident!r} matches {len(rows)} runs; give more of the run id")
            if not rows:
                raise RunNotFoundError(f"no run {ident!r} in the store {self.directory!r}; list runs with: seetrain ls")
            row = rows[0]
        return self._row_to_run(row)

    # -- keys and values ------------------------------------------------------------------
    def keys(self, run_id: str) -> list[tuple[str, str]]:
        """``(key, kind)`` pairs of a run, sorted by key."""
        return self.query("SELECT key, kind FROM keys WHERE run_id = ? ORDER BY key", (run_id,))

    def _key_id(self, run_id: str, key: str) -> tuple[int, str]:
        row = self._one("SELECT id, kind FROM keys WHERE run_id = ? AND key = ?", (run_id, key))
        if row is None:
            raise KeyNotFoundError(f"run {run_id} has no key {key!r}")
        return row

    def scalars(self, run_id: str, key: str, *, step_min: int | None = None, step_max: int | None = None):
        """``(steps, values, times)`` numpy arrays of a scalar key, sorted by step, one point
        per step (the last value logged at a step wins)."""
        import numpy as np

        key_id, kind = self._key_id(run_id, key)
        if kind != "scalar":
            raise KeyNotFoundError(f"key {key!r} of run {run_id} holds {kind}, not scalars")
        sql = "SELECT steps, vals, ts FROM scalar_chunks WHERE key_id = ?"
        params: list[Any] = [key_id]
        if step_min is not None:
            sql += " AND step_max >= ?"
            params.append(int(step_min))
        if step_max is not None:
            sql += " AND step_min <= ?"
            params.append(int(step_max))
        rows = self.query(sql + " ORDER BY id", params)
        if not rows:
            empty = np.empty(0)
            return empty.astype(np.int64), empty, empty
        steps = np.concatenate([np.frombuffer(r[0], dtype="<i8") for r in rows])
        vals = np.concatenate([np.frombuffer(r[1], dtype="<f8") for r in rows])
        times = np.concatenate([np.frombuffer(r[2], dtype="<f8") for r in rows])
        # stable sort by step, then keep the last write of each step; chunks of steps logged in
        # order (strictly increasing, the common case) are neither sorted nor copied again
        if len(steps) > 1 and not (steps[1:] > steps[:-1]).all():
            order = np.argsort(steps, kind="stable")
            steps, vals, times = steps[order], vals[order], times[order]
            last = np.ones(len(steps), dtype=bool)
            last[:-1] = steps[1:] != steps[:-1]
            if not last.all():
                steps, vals, times = steps[last], vals[last], times[last]
        if step_min is not None or step_max is not None:
            lo = np.searchsorted(steps, step_min, "left") if step_min is not None else 0
            hi = np.searchsorted(steps, step_max, "right") if step_max is not None else len(steps)
            steps, vals, times = steps[lo:hi], vals[lo:hi], times[lo:hi]
        return steps, vals, times

    def last_scalars(self, run_id: str) -> dict[str, float]:
        """The value at the highest step of every scalar key (the run's summary of metrics)."""
        import numpy as np

        out: dict[str, float] = {}
        for key, kind in self.keys(run_id):
            if kind != "scalar":
                continue
            key_id, _ = self._key_id(run_id, key)
            top = self.query("SELECT MAX(step_max) FROM scalar_chunks WHERE key_id = ?", (key_id,))[0][0]
            rows = self.query(
                "SELECT steps, vals FROM scalar_chunks WHERE key_id = ? AND step_max = ? ORDER BY id", (key_id, top))
            value = None
            for steps_b, vals_b in rows:
                steps = np.frombuffer(steps_b, dtype="<i8")
                vals = np.frombuffer(vals_b, dtype="<f8")
                hits = np.nonzero(steps == top)[0]
                if len(hits):
                    value = float(vals[hits[-1]])
            if value is not None:
                out[key] = value
        return out

    def last_scalars_many(self, run_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """:meth:`last_scalars` of many runs in a few queries (a table of a thousand runs is
        one query per 500 runs, not several per key). Only the last 8 bytes of each key's
        newest top chunk are read; a chunk whose last step is not its highest (steps logged out
        of order) is decoded whole."""
        import numpy as np

        run_ids = list(dict.fromkeys(run_ids))
        out: dict[str, dict[str, float]] = {r: {} for r in run_ids}
        newest: dict[tuple[str, str], tuple] = {}
        for lo in range(0, len(run_ids), 500):
            batch = run_ids[lo:lo + 500]
            rows = self.query(
                "SELECT k.run_id, k.key, c.id, c.step_max, substr(c.steps, length(c.steps) - 7, 8),"
                " substr(c.vals, length(c.vals) - 7, 8) FROM keys k JOIN scalar_chunks c ON c.key_id = k.id"
                f" WHERE k.kind = 'scalar' AND k.run_id IN ({', '.join('?' * len(batch))})"
                " AND c.step_max = (SELECT MAX(c2.step_max) FROM scalar_chunks c2 WHERE c2.key_id = k.id)"
                " ORDER BY c.id", batch)
            for run_id, key, chunk_id, top, last_step, last_val in rows:
                newest[(run_id, key)] = (chunk_id, top, last_step, last_val)  # the highest id wins
        for (run_id, key), (chunk_id, top, last_step, last_val) in sorted(newest.items()):
            if np.frombuffer(bytes(last_step), dtype="<i8")[0] == top:
                out[run_id][key] = float(np.frombuffer(bytes(last_val), dtype="<f8")[0])
                continue
            steps_b, vals_b = self.query("SELECT steps, vals FROM scalar_chunks WHERE id = ?", (chunk_id,))[0]
            hits = np.nonzero(np.frombuffer(steps_b, dtype="<i8") == top)[0]
            out[run_id][key] = float(np.frombuffer(vals_b, dtype="<f8")[hits[-1]])
        return out

    def media(self, run_id: str, key: str) -> list[dict[str, Any]]:
        key_id, kind = self._key_id(run_id, key)
        if kind == "scalar":
            raise KeyNotFoundError(f"key {key!r} of run {run_id} holds scalars, not media")
        rows = self.query(
            "SELECT step, idx, kind, path, text, caption, meta, ts FROM media WHERE key_id = ? ORDER BY step, idx, id",
            (key_id,))
        return [
            {"step": s, "index": i, "kind": k, "path": os.path.join(self.directory, p) if p else None,
             "relpath": p, "text": t, "caption": c, "meta": json.loads(m) if m else {}, "time": ts}
            for s, i, k, p, t, c, m, ts in rows
        ]

    def media_steps(self, run_id: str) -> dict[str, list[int]]:
        rows = self.query(
            "SELECT k.key, m.step FROM media m JOIN keys k ON k.id = m.key_id WHERE k.run_id = ? ORDER BY m.step",
            (run_id,))
        out: dict[str, list[int]] = {}
        for key, step in rows:
            out.setdefault(key, []).append(step)
        return out

    def files(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.query("SELECT kind, path, meta, ts FROM files WHERE run_id = ? ORDER BY id", (run_id,))
        return [{"kind": k, "path": p, "meta": json.loads(m) if m else {}, "time": t} for k, p, m, t in rows]

    def history(self, run_id: str, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """One dict per step that has any of ``keys`` (all scalar keys by default)."""
        if keys is None:
            keys = [k for k, kind in self.keys(run_id) if kind == "scalar"]
        rows: dict[int, dict[str, Any]] = {}
        for key in keys:
            steps, vals, _ = self.scalars(run_id, key)
            for s, v in zip(steps.tolist(), vals.tolist()):
                row = rows.get(s)
                if row is None:
                    row = rows[s] = {"step": s}
                row[key] = v
        return [rows[s] for s in sorted(rows)]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def envelope_indices(values, max_points: int):
    """Indices of the points of a min/max envelope: at most ``max_points`` of them.

    The points are cut into ``max_points // 2`` buckets of equal count; each bucket keeps its
    minimum and its maximum (first occurrence), so a single spike survives any zoom level.
    NaNs are skipped unless a whole bucket is NaN (its first point then stands for it);
    infinities count as extremes. One pass of numpy (``reduceat``), no Python loop per
    bucket: a 1,000,000-point key takes a few milliseconds.
    """
    import numpy as np

    n = len(values)
    if max_points is None or n <= max_points:
        return np.arange(n)
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    buckets = max_points // 2
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts = edges[:-1][edges[1:] > edges[:-1]]
    counts = np.diff(np.append(starts, n))
    nan = np.isnan(values)
    keep = np.zeros(n, dtype=bool)
    # NaN reads as +inf for the minimum and -inf for the maximum, so it wins only where a
    # bucket has nothing else
    for fill, reduce in ((np.inf, np.minimum), (-np.inf, np.maximum)):
        filled = np.where(nan, fill, values) if nan.any() else values
        hits = np.flatnonzero(filled == np.repeat(reduce.reduceat(filled, starts), counts))
        keep[hits[np.searchsorted(hits, starts)]] = True  # every bucket has a hit: take its first
    return np.flatnonzero(keep)


def downsample(steps, values, max_points: int):
    """``(steps, values)`` reduced to the min/max envelope of :func:`envelope_indices`."""
    idx = envelope_indices(values, max_points)
    if len(idx) == len(values):
        return steps, values
    return steps[idx], values[idx]
