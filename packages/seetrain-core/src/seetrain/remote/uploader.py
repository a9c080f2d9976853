"""The upload of one run from a store directory to a team server: a replay of the store.

The cursor lives in the store itself, in the table ``uploads`` (one row per run and server),
made by the uploader (``CREATE TABLE IF NOT EXISTS``; the store's layout version is
unchanged). Batches are **write-ahead**: before batch ``seq`` is sent, its range (the last
scalar chunk, media item and file row it holds) is recorded as pending; after the server's
200 the cursor moves past it. A process that dies in between (SIGKILL, a lost connection)
leaves the pending record behind, and whoever uploads next (the same run later, or
``seetrain sync``) sends the *same* range under the *same* ``seq``: the server stores a
(run, source, seq) once, so nothing is lost and nothing is stored twice.

The source of every batch is the store directory's id (``meta.store_uid``, a uuid made on
the first upload), so sequence numbers are the store's own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from typing import Any, Callable

from ..store.schema import DB_NAME, connect
from .client import Client

__all__ = ["RunUploader", "UPLOADS_DDL", "store_uid", "run_ids", "upload_states"]

UPLOADS_DDL = """
CREATE TABLE IF NOT EXISTS uploads (
    run_id TEXT NOT NULL,
    host TEXT NOT NULL,
    next_seq INTEGER NOT NULL DEFAULT 0,
    chunk_cursor INTEGER NOT NULL DEFAULT 0,
    media_cursor INTEGER NOT NULL DEFAULT 0,
    files_cursor INTEGER NOT NULL DEFAULT 0,
    meta_hash TEXT,
    pending_seq INTEGER,
    pending_chunk INTEGER,
    pending_media INTEGER,
    pending_files INTEGER,
    pending_meta TEXT,
    PRIMARY KEY (run_id, host)
)
"""

#: limits of one batch (well under the server's defaults)
MAX_CHUNKS = 2_000
MAX_POINTS = 1_000_000
MAX_MEDIA_BYTES = 16 * 1024 * 1024

_MEDIA_FORMATS = {"png", "jpeg", "jpg", "gif", "webp", "flac", "wav", "mp3", "ogg"}


def _open(directory: str) -> sqlite3.Connection:
    conn = connect(os.path.join(directory, DB_NAME), create=False, busy_timeout=30.0)
    conn.execute(UPLOADS_DDL)
    return conn


def store_uid(conn: sqlite3.Connection) -> str:
    """The store directory's stable id (``meta.store_uid``), made on first use."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'store_uid'").fetchone()
    if row is None:
        conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('store_uid', ?)", (uuid.uuid4().hex,))
        row = conn.execute("SELECT value FROM meta WHERE name = 'store_uid'").fetchone()
    return row[0]


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


class RunUploader:
    """Uploads one run of the store at ``directory`` through ``client``.

    Thread-safe: :meth:`upload` and :meth:`pending` may be called from different threads."""

    def __init__(self, directory: str, run_id: str, client: Client | None, host: str | None = None) -> None:
        self.directory = os.path.abspath(directory)
        self.run_id = run_id
        self.client = client  # None: only pending() and done() (seetrain ls)
        self.host = host if host is not None else client.host  # type: ignore[union-attr]
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._source: str | None = None
        self._put_hash: str | None = None
        #: batches sent by this object, and how many the server said it stored now
        self.sent = 0
        self.stored = 0
        self.points_sent = 0

    # -- store access ---------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _open(self.directory)
            self._source = store_uid(self._conn)
            self._conn.execute("INSERT OR IGNORE INTO uploads (run_id, host) VALUES (?, ?)", (self.run_id, self.host))
        return self._conn

    @property
    def source(self) -> str:
        with self._lock:
            self._db()
            return self._source  # type: ignore[return-value]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _cursor(self) -> dict[str, Any]:
        cur = self._db().execute("SELECT * FROM uploads WHERE run_id = ? AND host = ?", (self.run_id, self.host))
        names = [d[0] for d in cur.description]
        return dict(zip(names, cur.fetchone()))

    def _run_row(self, db: sqlite3.Connection | None = None) -> dict[str, Any]:
        cur = (db or self._db()).execute("SELECT * FROM runs WHERE id = ?", (self.run_id,))
        row = cur.fetchone()
        if row is None:
            from ..api import RunNotFoundError

            raise RunNotFoundError(f"no run {self.run_id!r} in the store {self.directory}")
        return dict(zip([d[0] for d in cur.description], row))

    # -- what is left -----------------------------------------------------------------------
    def pending(self) -> dict[str, int]:
        """What the server does not have yet: ``values`` (scalar points), ``steps`` (the span
        of their steps), ``media`` items, and ``meta`` (1 when config, summary or status changed)."""
        db = _open(self.directory)  # its own connection: never waits for a request in flight
        try:
            cur = db.execute("SELECT * FROM uploads WHERE run_id = ? AND host = ?", (self.run_id, self.host))
            row = cur.fetchone()
            cursor = dict(zip([d[0] for d in cur.description], row)) if row else \
                {"chunk_cursor": 0, "media_cursor": 0, "meta_hash": None}
            values, lo, hi = db.execute(
                "SELECT COALESCE(SUM(c.n), 0), MIN(c.step_min), MAX(c.step_max) FROM scalar_chunks c "
                "JOIN keys k ON k.id = c.key_id WHERE k.run_id = ? AND c.id > ?",
                (self.run_id, cursor["chunk_cursor"])).fetchone()
            media = db.execute(
                "SELECT COUNT(*) FROM media m JOIN keys k ON k.id = m.key_id WHERE k.run_id = ? AND m.id > ?",
                (self.run_id, cursor["media_cursor"])).fetchone()[0]
            meta = int(self._meta(db)[1] != cursor["meta_hash"])
        finally:
            db.close()
        return {"values": int(values), "steps": 0 if lo is None else int(hi - lo + 1), "media": int(media),
                "meta": meta}

    def done(self) -> bool:
        left = self.pending()
        return not (left["values"] or left["media"] or left["meta"])

    # -- building batches -------------------------------------------------------------------
    def _meta(self, db: sqlite3.Connection | None = None) -> tuple[dict[str, Any], str]:
        """The run's PUT body and its batch fields (config, summary, status), and their hash."""
        row = self._run_row(db)
        status = row["status"]
        run = {"project": row["project"], "name": row["name"], "tags": _json(row["tags"], []),
               "config": _json(row["config"], {}), "created_at": row["created_at"]}
        for field, column in (("description", "description"), ("group", "group_name"), ("host", "host"),
                              ("pid", "pid")):
            if row[column] is not None:
                run[field] = row[column]
        fields: dict[str, Any] = {"config": run["config"], "summary": _json(row["summary"], {})}
        if status != "running":
            fields["status"] = {"status": status, "error": row["error"],
                                "time": row["finished_at"] or row["heartbeat_at"] or time.time()}
        meta = {"run": run, "fields": fields, "heartbeat": row["heartbeat_at"]}
        digest = hashlib.sha256(json.dumps([run, fields], sort_keys=True, default=str).encode()).hexdigest()
        return meta, digest

    def _plan(self, cursor: dict[str, Any]) -> tuple[int, int, int]:
        """The last chunk, media and file ids of the next batch (no more than its limits)."""
        db = self._db()
        chunk_upto, points = cursor["chunk_cursor"], 0
        for cid, n in db.execute(
                "SELECT c.id, c.n FROM scalar_chunks c JOIN keys k ON k.id = c.key_id "
                "WHERE k.run_id = ? AND c.id > ? ORDER BY c.id LIMIT ?",
                (self.run_id, cursor["chunk_cursor"], MAX_CHUNKS)):
            if points and points + n > MAX_POINTS:
                break
            chunk_upto, points = cid, points + n
        media_upto, size = cursor["media_cursor"], 0
        for mid, path in db.execute(
                "SELECT m.id, m.path FROM media m JOIN keys k ON k.id = m.key_id WHERE k.run_id = ? AND m.id > ? "
                "ORDER BY m.id LIMIT 1000", (self.run_id, cursor["media_cursor"])):
            try:
                item = os.path.getsize(os.path.join(self.directory, path)) if path else 0
            except OSError:
                item = 0
            if size and size + item > MAX_MEDIA_BYTES:
                break
            media_upto, size = mid, size + item
        files_upto = db.execute("SELECT COALESCE(MAX(id), ?) FROM files WHERE run_id = ? AND id > ?",
                                (cursor["files_cursor"], self.run_id, cursor["files_cursor"])).fetchone()[0]
        return chunk_upto, media_upto, files_upto

    def _is_last(self, upto: tuple[int, int, int]) -> bool:
        """Whether nothing is stored past ``upto`` (the batch ending there carries the run's fields)."""
        return self._plan({"chunk_cursor": upto[0], "media_cursor": upto[1], "files_cursor": upto[2]}) == upto

    def _body(self, seq: int, cursor: dict[str, Any], upto: tuple[int, int, int],
              meta: dict[str, Any] | None) -> tuple[dict, int]:
        """The batch ``seq`` holding the rows after ``cursor`` up to ``upto``: (body, points)."""
        db = self._db()
        body: dict[str, Any] = {"source": self._source, "seq": seq}
        scalars, points = [], 0
        for key, n, steps, vals, ts in db.execute(
                "SELECT k.key, c.n, c.steps, c.vals, c.ts FROM scalar_chunks c JOIN keys k ON k.id = c.key_id "
                "WHERE k.run_id = ? AND c.id > ? AND c.id <= ? ORDER BY c.id",
                (self.run_id, cursor["chunk_cursor"], upto[0])):
            # the store's blobs are the wire's packed little-endian arrays already
            scalars.append({"key": key, "steps": _b64(steps), "values": _b64(vals), "times": _b64(ts)})
            points += n
        if scalars:
            body["scalars"] = scalars
        media = []
        for key, step, idx, kind, path, text, caption, item_meta, ts in db.execute(
                "SELECT k.key, m.step, m.idx, m.kind, m.path, m.text, m.caption, m.meta, m.ts FROM media m "
                "JOIN keys k ON k.id = m.key_id WHERE k.run_id = ? AND m.id > ? AND m.id <= ? ORDER BY m.id",
                (self.run_id, cursor["media_cursor"], upto[1])):
            item: dict[str, Any] = {"key": key, "step": step, "index": idx, "kind": kind, "time": ts}
            if caption is not None:
                item["caption"] = caption
            parsed = _json(item_meta, None)
            if isinstance(parsed, dict):
                item["meta"] = parsed
            if kind == "text" or path is None:
                item["kind"] = "text"
                item["text"] = text if text is not None else ""
            else:
                fmt = os.path.splitext(path)[1].lstrip(".").lower()
                try:
                    with open(os.path.join(self.directory, path), "rb") as fh:
                        data = fh.read()
                except OSError as exc:
                    from ..errors import record_failure
                    from . import INTEGRATION

                    record_failure(INTEGRATION, "read media", exc)
                    continue
                if fmt not in _MEDIA_FORMATS:
                    continue
                item["format"], item["data"] = fmt, _b64(data)
            media.append(item)
        if media:
            body["media"] = media
        files = [{"kind": kind, "path": path, "meta": _json(file_meta, {}) or {}, "time": ts}
                 for kind, path, file_meta, ts in db.execute(
                     "SELECT kind, path, meta, ts FROM files WHERE run_id = ? AND id > ? AND id <= ? ORDER BY id",
                     (self.run_id, cursor["files_cursor"], upto[2]))]
        if files:
            body["files"] = files
        if meta is not None:
            body.update(meta["fields"])
            if meta["heartbeat"] is not None:
                body["heartbeat"] = meta["heartbeat"]
        return body, points

    # -- the upload -------------------------------------------------------------------------
    def upload(self, *, deadline: float | None = None, stop: threading.Event | None = None,
               progress: Callable[[int], Any] | None = None) -> int:
        """Send everything the server does not have yet, batch after batch, until done (or
        ``deadline``, a ``time.monotonic()`` value, or ``stop``). Returns the batches sent.
        Raises the client's errors (nothing is lost then: the next upload resumes)."""
        sent = 0
        with self._lock:
            meta, digest = self._meta()
            if self._put_hash != digest:
                self.client.put_run(self.run_id, meta["run"])
                self._put_hash = digest
            while True:
                if stop is not None and stop.is_set():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
                if not self._send_one(progress):
                    break
                sent += 1
        return sent

    def _send_one(self, progress: Callable[[int], Any] | None) -> bool:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            cursor = self._cursor()
            meta, digest = self._meta()
            if cursor["pending_seq"] is None:
                upto = self._plan(cursor)
                caught_up = upto == (cursor["chunk_cursor"], cursor["media_cursor"], cursor["files_cursor"])
                if caught_up and digest == cursor["meta_hash"]:
                    db.execute("COMMIT")
                    return False
                seq = cursor["next_seq"]
                last = self._is_last(upto)
                # record the batch before sending it (write-ahead): its seq, its range, and
                # the hash of the run's fields when it carries them
                db.execute("UPDATE uploads SET pending_seq = ?, pending_chunk = ?, pending_media = ?, "
                           "pending_files = ?, pending_meta = ? WHERE run_id = ? AND host = ?",
                           (seq, *upto, digest if last else None, self.run_id, self.host))
                first_meta = digest if last else None
            else:  # a batch sent before and never confirmed: the same seq, the same range
                seq = cursor["pending_seq"]
                upto = (cursor["pending_chunk"], cursor["pending_media"], cursor["pending_files"])
                first_meta = cursor["pending_meta"]
                last = self._is_last(upto)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        # the run's fields ride on the batch that reaches the end of what is stored
        body, points = self._body(seq, cursor, upto, meta if last else None)
        answer = self.client.send_batch(self.run_id, body)
        self.sent += 1
        self.points_sent += points
        stored = bool(answer.get("stored"))
        self.stored += stored
        # stored now: the fields sent (if any) are on the server; stored before: those the
        # first send carried (if any)
        carried = (digest if last else None) if stored else first_meta
        new_hash = carried if carried is not None else cursor["meta_hash"]
        db.execute("UPDATE uploads SET next_seq = ?, chunk_cursor = ?, media_cursor = ?, files_cursor = ?, "
                   "meta_hash = ?, pending_seq = NULL, pending_chunk = NULL, pending_media = NULL, "
                   "pending_files = NULL, pending_meta = NULL WHERE run_id = ? AND host = ? AND pending_seq = ?",
                   (seq + 1, *upto, new_hash, self.run_id, self.host, seq))
        if progress is not None:
            progress(points)
        return True


def run_ids(directory: str) -> list[str]:
    """The ids of every run in the store at ``directory``, oldest first."""
    conn = _open(directory)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM runs ORDER BY created_at")]
    finally:
        conn.close()


def upload_states(directory: str) -> dict[str, str]:
    """``{run id: "uploaded" | "pending"}`` for the runs of the store at ``directory`` that were
    ever uploaded (uploaded: all of it is on one server at least). Empty for a store
    that never uploaded anything (the store is not written to then)."""
    conn = connect(os.path.join(directory, DB_NAME), create=False, readonly=True)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'uploads'").fetchone() is None:
            return {}
        rows = conn.execute("SELECT run_id, host FROM uploads").fetchall()
    finally:
        conn.close()
    states: dict[str, str] = {}
    for run_id, host in rows:
        try:
            done = RunUploader(directory, run_id, None, host=host).done()
        except Exception:  # noqa: BLE001 - a run the store no longer holds
            continue
        if states.get(run_id) != "uploaded":
            states[run_id] = "uploaded" if done else "pending"
    return states
