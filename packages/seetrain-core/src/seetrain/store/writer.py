"""Writes runs into one store directory. Used from the dispatcher thread only.

The writer is the write-ahead log of a run, so it is built to keep going when the disk does
not:

* A logged step costs O(1) and a few dozen bytes: consecutive steps of a run that logged the
  same keys are packed as they arrive into one block of ``array`` columns (int64 steps,
  float64 times, float64 values row-major), so the buffer holds no Python objects per value.
* :meth:`StoreWriter.flush` writes everything pending in one transaction: statements on run
  rows first (create, config, status …), then one ``scalar_chunks`` row per key and block,
  the media rows and the last step. Each run's batch is written inside a savepoint, so a
  batch that cannot be written (a bad value) is dropped and counted for that run alone.
* When SQLite cannot write (disk full, I/O error, database locked by another process) the
  whole transaction is rolled back and everything stays pending, compactly, to be written by
  the next flush; one warning names the cause and the database, and one more says when the
  store recovered. Past ``SEETRAIN_MAX_PENDING_MB`` (64 MB) of pending values the oldest
  blocks are dropped and counted, with one warning: memory stays bounded, training goes on.
* A store whose database file was deleted (or replaced) under a live run is noticed at the
  next flush: one warning says which runs cannot be written any more and where, and their
  later values are counted as dropped.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from array import array
from typing import Any, Iterable

from .. import errors
from ..media import Media, Text
from .schema import DB_NAME, HEARTBEAT_EVERY, MEDIA_DIR, connect

from ..errors import log  # noqa: E402

#: the name statistics and warnings of the local store are recorded under
STORE = "seetrain.store"
#: how long a write waits for another process's lock before the flush is retried later (s)
BUSY_TIMEOUT = float(os.environ.get("SEETRAIN_STORE_BUSY_TIMEOUT", "1.0"))
#: pending (unwritten) values kept while the store cannot be written, in bytes
MAX_PENDING_BYTES = int(float(os.environ.get("SEETRAIN_MAX_PENDING_MB", "64")) * 1024 * 1024)
_BIG_ENDIAN = sys.byteorder == "big"


def hostname() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it (without importing socket
    on the path of ``init`` where the platform has ``os.uname``)."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return uname().nodename
    import socket  # pragma: no cover - Windows

    return socket.gethostname()


def safe_component(key: str) -> str:
    """A file-name-safe form of one component of a key (never ``..`` or empty)."""
    import re

    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip(".") or "_"
    return cleaned[:80]


def _le(column: array) -> bytes:
    """Little-endian bytes of an ``array`` (the store's byte order on every platform)."""
    if _BIG_ENDIAN:  # pragma: no cover - no big-endian machine in CI
        column = array(column.typecode, column)
        column.byteswap()
    return column.tobytes()


def is_transient(exc: BaseException) -> bool:
    """A failure of the database itself (disk full, I/O, locked, read-only): retried later.
    Anything else (a bad value, a constraint) is a failure of one batch."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


class _Block:
    """Consecutive steps of one run that logged the same scalar keys, packed."""

    __slots__ = ("keys", "steps", "times", "vals", "lo", "hi")

    def __init__(self, keys: tuple) -> None:
        self.keys = keys
        # the step range, kept as steps arrive: no scan of the block at flush
        self.lo = 2**63
        self.hi = -1
        self.steps = array("q")
        self.times = array("d")
        self.vals = array("d")  # row-major: len(steps) * len(keys)

    def nbytes(self) -> int:
        return 16 * len(self.steps) + 8 * len(self.vals)


class _RunBuffer:
    __slots__ = ("run", "blocks", "media", "last_step")

    def __init__(self, run: Any) -> None:
        self.run = run
        self.blocks: list[_Block] = []
        # (key, kind, step, idx, path, text, caption, meta, ts) per media item
        self.media: list[tuple] = []
        self.last_step: int | None = None


class StoreWriter:
    """Buffers what the hooks deliver for the runs of one directory and writes it in one
    transaction per flush."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.db_path = os.path.join(directory, DB_NAME)
        self.conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._buffers: dict[str, _RunBuffer] = {}
        #: statements on run rows, in order: (sql, params, run_id)
        self._ops: list[tuple[str, tuple, str]] = []
        self._key_ids: dict[tuple[str, str], int] = {}
        self._media_counter = 0
        #: unique per process (and per fork): media file names never collide across
        #: processes and hosts writing the same run
        self._uid = os.urandom(4).hex()
        self._last_heartbeat = 0.0
        self._live: dict[str, Any] = {}  # run id -> run, for heartbeats
        self.host = hostname()
        #: the cause of the failure the store is in, or None when writes succeed
        self.failing: str | None = None
        #: the database was deleted or replaced under this writer: nothing can be written
        self.lost = False
        self._pending_warned = False
        self._media_warned: set[str] = set()
        self._open()

    # -- connection ----------------------------------------------------------------------
    def _open(self) -> bool:
        if self.conn is not None:
            return True
        try:
            os.makedirs(os.path.join(self.directory, MEDIA_DIR), exist_ok=True)
            conn = connect(self.db_path, create=True)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            st = os.stat(self.db_path)
        except Exception as exc:
            self._failed(exc)
            return False
        self.conn = conn
        self._identity = (st.st_dev, st.st_ino)
        return True

    def is_current(self) -> bool:
        """False when the database file is no longer the one this writer opened."""
        if self._identity is None:
            return True
        try:
            st = os.stat(self.db_path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def _check_identity(self) -> bool:
        """False (once warned) when the database file under this writer is gone."""
        if self.lost:
            return False
        if self.is_current():
            return True
        self.lost = True
        pending = self._ops or any(buf.blocks or buf.media for buf in self._buffers.values())
        if not self._live and not pending:
            self._close_quietly()  # a store of finished runs went away: nothing is lost
            return False
        runs = ", ".join(sorted(self._live)) or "(finished runs, with values still to write)"
        log.warning(
            "seetrain: the store database %s was deleted or replaced while runs were writing to it; "
            "runs %s cannot be written any more. Training goes on; their values from now on are "
            "counted as dropped (seetrain.errors.get_integration_error_stats()).", self.db_path, runs)
        errors.record_failure(STORE, "write", FileNotFoundError(f"store database deleted: {self.db_path}"),
                              quiet=True)
        for buf in self._buffers.values():
            self._drop_buffer(buf)
        self._ops.clear()
        self._close_quietly()
        return False

    def _close_quietly(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass
            self.conn = None

    # -- runs ---------------------------------------------------------------------------
    def _op(self, run_id: str, sql: str, params: tuple) -> None:
        if not self.lost:
            self._ops.append((sql, params, run_id))

    def create_run(self, run: Any) -> None:
        self._live[run.id] = run
        self._buffers.setdefault(run.id, _RunBuffer(run))
        if getattr(run, "_recorded", False):
            return  # init() wrote the row already, in the caller's thread
        self._op(run.id, INSERT_RUN, run_row(run, self.host))

    def resume_run(self, run: Any) -> None:
        """A run that exists already: running again under this process, unless the handle
        is only attached to a run another process owns."""
        self._buffers.setdefault(run.id, _RunBuffer(run))
        if not getattr(run, "attached", False):
            self._live[run.id] = run
            self._op(run.id,
                     "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, heartbeat_at = ?,"
                     " pid = ?, host = ?, description = ?, tags = ? WHERE id = ?",
                     (time.time(), os.getpid(), self.host, run.description, json.dumps(list(run.tags)), run.id))

    def set_config(self, run_id: str, config: dict) -> None:
        # the frameworks column mirrors config["seetrain"]["frameworks"] (its one source)
        meta = config.get("seetrain")
        frameworks = meta.get("frameworks", []) if isinstance(meta, dict) else []
        self._op(run_id, "UPDATE runs SET config = ?, frameworks = ? WHERE id = ?",
                 (json.dumps(config), json.dumps(frameworks), run_id))

    def set_fields(self, run_id: str, **fields: Any) -> None:
        """Update run columns (``frameworks``, ``tags``, ``summary`` … JSON-encoded when not
        scalars)."""
        if not fields:
            return
        cols = ", ".join(f"{name} = ?" for name in fields)
        values = [json.dumps(v) if isinstance(v, (dict, list, tuple)) else v for v in fields.values()]
        self._op(run_id, f"UPDATE runs SET {cols} WHERE id = ?", (*values, run_id))

    def add_file(self, run_id: str, kind: str, path: str, meta: dict | None) -> None:
        self._op(run_id, "INSERT INTO files (run_id, kind, path, meta, ts) VALUES (?, ?, ?, ?, ?)",
                 (run_id, kind, path, json.dumps(meta) if meta else None, time.time()))

    def finish_run(self, run_id: str, status: str, error: str | None) -> bool:
        """Record the end of a run with everything it logged; True once it is on disk."""
        now = time.time()
        self._op(run_id, "UPDATE runs SET status = ?, error = ?, finished_at = ?, heartbeat_at = ? WHERE id = ?",
                 (status, error, now, now, run_id))
        self._live.pop(run_id, None)
        ok = self.flush()
        buf = self._buffers.get(run_id)
        if buf is not None and not buf.blocks and not buf.media:
            del self._buffers[run_id]
        return ok

    # -- values -------------------------------------------------------------------------
    def add(self, run: Any, step: int, data: dict, ts: float) -> None:
        """Buffer one logged step given as a mapping."""
        self.add_columns(run, step, tuple(data), tuple(data.values()), ts, True)

    def add_columns(self, run: Any, step: int, keys: tuple, values: tuple, ts: float,
                    has_media: bool) -> None:
        """Buffer one logged step given as its keys and values (``has_media=False``: every
        value is a float, known by the caller). O(1): appended to the run's current block."""
        buf = self._buffers.get(run.id)
        if buf is None:
            buf = self._buffers[run.id] = _RunBuffer(run)
        if self.lost:
            self._count_dropped(run, len(keys))
            return
        if has_media:
            scalar_keys, scalar_values = [], []
            for k, v in zip(keys, values):
                if type(v) is float:
                    scalar_keys.append(k)
                    scalar_values.append(v)
                else:
                    self._add_media(run, buf, step, k, v, ts)
            keys, values = tuple(scalar_keys), scalar_values
        if keys:
            blocks = buf.blocks
            block = blocks[-1] if blocks else None
            if block is None or block.keys != keys:
                block = _Block(keys)
                blocks.append(block)
            block.steps.append(step)  # first: an int64 overflow leaves the block as it was
            if step > block.hi:
                block.hi = step
            if step < block.lo:
                block.lo = step
            block.times.append(ts)
            block.vals.extend(values)
        if buf.last_step is None or step > buf.last_step:
            buf.last_step = step

    def _add_media(self, run: Any, buf: _RunBuffer, step: int, key: str, value: Any, ts: float) -> None:
        items: Iterable[Media] = value if isinstance(value, list) else (value,)
        for idx, item in enumerate(items):
            path = None
            text = None
            meta: dict[str, Any] = {}
            if isinstance(item, Text):
                text = item.text
            else:
                try:
                    path = self._write_media_file(run.id, key, step, idx, item)
                except OSError as exc:
                    # this item is lost, and only it: the rest of the step is kept
                    self._count_dropped(run, 1, operation=f"write {item.kind}")
                    errors.record_failure(STORE, f"write {item.kind}", exc, quiet=True)
                    if key not in self._media_warned:
                        self._media_warned.add(key)
                        log.warning("seetrain: could not write the %s %r of run %s at step %d (%s); this "
                                    "value is dropped, the rest of the step is stored", item.kind, key,
                                    run.id, step, exc)
                    continue
                for attr in ("width", "height", "sample_rate", "duration"):
                    if hasattr(item, attr):
                        meta[attr] = getattr(item, attr)
            buf.media.append((key, item.kind, step, idx, path, text, item.caption,
                              json.dumps(meta) if meta else None, ts))

    def _write_media_file(self, run_id: str, key: str, step: int, idx: int, item: Media) -> str:
        rel_dir = os.path.join(MEDIA_DIR, safe_component(run_id), *(safe_component(p) for p in key.split("/")))
        os.makedirs(os.path.join(self.directory, rel_dir), exist_ok=True)
        while True:
            self._media_counter += 1
            rel = os.path.join(rel_dir, f"{step:09d}-{idx}-{self._uid}{self._media_counter}.{item.format}")
            try:
                # "x": never overwrite a file another writer made
                with open(os.path.join(self.directory, rel), "xb") as fh:
                    fh.write(item.encoded or b"")
            except FileExistsError:  # pragma: no cover - a 32-bit random prefix collided
                self._uid = os.urandom(4).hex()
                continue
            return rel.replace(os.sep, "/")

    # -- accounting ---------------------------------------------------------------------
    def _count_dropped(self, run: Any, n: int, operation: str = "values dropped") -> None:
        if run is not None:
            run.dropped = getattr(run, "dropped", 0) + n
        errors.record_event(STORE, operation, "dropped", n)

    def _drop_buffer(self, buf: _RunBuffer) -> int:
        n = sum(len(b.vals) for b in buf.blocks) + len(buf.media)
        if n:
            self._count_dropped(buf.run, n)
        buf.blocks = []
        buf.media = []
        return n

    def pending_bytes(self) -> int:
        return sum(b.nbytes() for buf in self._buffers.values() for b in buf.blocks) + \
            sum(200 * len(buf.media) for buf in self._buffers.values())

    def _bound_pending(self) -> None:
        """Keep the unwritten values within MAX_PENDING_BYTES: drop the oldest blocks."""
        total = self.pending_bytes()
        if total <= MAX_PENDING_BYTES:
            return
        dropped = 0
        while total > MAX_PENDING_BYTES:
            # the run holding the most, its oldest block
            largest = max((buf for buf in self._buffers.values() if buf.blocks),
                          key=lambda b: sum(x.nbytes() for x in b.blocks), default=None)
            if largest is None:
                break
            block = largest.blocks.pop(0)
            total -= block.nbytes()
            dropped += len(block.vals)
            self._count_dropped(largest.run, len(block.vals))
        if not self._pending_warned:
            self._pending_warned = True
            log.warning(
                "seetrain: the store %s has been failing (%s) for so long that more than %d MB of values "
                "wait to be written; the oldest are dropped (%d values so far, counted in "
                "seetrain.errors.get_integration_error_stats()) so that memory stays bounded. "
                "Training goes on.", self.db_path, self.failing, MAX_PENDING_BYTES // (1024 * 1024), dropped)

    def _failed(self, exc: BaseException) -> None:
        cause = f"{exc}"
        if self.failing is None:
            self.failing = cause
            errors.record_failure(STORE, "write", exc, quiet=True)
            log.warning(
                "seetrain: cannot write to the store %s: %s. Training goes on; what is logged is kept in "
                "memory (up to %d MB) and written as soon as the store can be written again.",
                self.db_path, cause, MAX_PENDING_BYTES // (1024 * 1024))
        else:
            errors.record_failure(STORE, "write", exc, quiet=True)

    # -- writing ------------------------------------------------------------------------
    def _key_id(self, run_id: str, key: str, kind: str, new_ids: dict) -> int:
        ident = self._key_ids.get((run_id, key)) or new_ids.get((run_id, key))
        if ident is None:
            conn = self.conn
            conn.execute("INSERT OR IGNORE INTO keys (run_id, key, kind) VALUES (?, ?, ?)", (run_id, key, kind))
            ident = conn.execute("SELECT id FROM keys WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()[0]
            new_ids[(run_id, key)] = ident
        return ident

    def _write_batch(self, run_id: str, buf: _RunBuffer, now: float, new_ids: dict) -> None:
        conn = self.conn
        rows = []
        for block in buf.blocks:
            n = len(block.steps)
            if not n:
                continue
            steps_b, times_b = _le(block.steps), _le(block.times)
            lo, hi = block.lo, block.hi
            width = len(block.keys)
            vals = block.vals
            for column, key in enumerate(block.keys):
                rows.append((self._key_id(run_id, key, "scalar", new_ids), n, lo, hi, steps_b,
                             _le(vals[column::width]), times_b))
        if rows:
            conn.executemany("INSERT INTO scalar_chunks (key_id, n, step_min, step_max, steps, vals, ts)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        if buf.media:
            conn.executemany(
                "INSERT INTO media (key_id, kind, step, idx, path, text, caption, meta, ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(self._key_id(run_id, k, kind, new_ids), kind, *rest) for k, kind, *rest in buf.media])
        if buf.last_step is not None:
            conn.execute(
                # MAX: a resumed or attached handle never moves the last step back
                "UPDATE runs SET last_step = MAX(COALESCE(last_step, -1), ?), heartbeat_at = ? WHERE id = ?",
                (buf.last_step, now, run_id))

    def _confined(self, work: Any, *args: Any) -> BaseException | None:
        """Run ``work(*args)`` inside a savepoint of the open transaction: a failure of the
        database itself is raised (the whole flush is retried later); any other failure is
        rolled back to the savepoint and returned, the transaction going on without it."""
        conn = self.conn
        conn.execute("SAVEPOINT confined")
        try:
            work(*args)
        except Exception as exc:
            if is_transient(exc):
                raise
            conn.execute("ROLLBACK TO confined")
            conn.execute("RELEASE confined")
            return exc
        conn.execute("RELEASE confined")
        return None

    def flush(self) -> bool:
        """Write everything pending in one transaction, and the heartbeats when due.

        Returns True when nothing is left pending. Never raises: a failure of the database
        keeps everything for the next flush; a failure of one run's batch drops that batch
        (counted) and writes the others."""
        if self.lost:
            return True  # nothing can be written any more, and nothing is kept to wait for
        now = time.time()
        dirty = [(run_id, buf) for run_id, buf in self._buffers.items()
                 if buf.blocks or buf.media or buf.last_step is not None]
        beat = now - self._last_heartbeat >= HEARTBEAT_EVERY and bool(self._live)
        if not dirty and not self._ops and not beat:
            return True
        if not self._check_identity_cheap():
            return True
        if self.conn is None and not self._open():
            if self.lost:
                return True
            self._bound_pending()
            return False
        conn = self.conn
        new_ids: dict = {}
        ops = self._ops
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql, params, _run_id in ops:
                exc = self._confined(conn.execute, sql, params)
                if exc is not None:
                    errors.record_failure(STORE, "write run", exc)
            for run_id, buf in dirty:
                batch_ids: dict = {}
                exc = self._confined(self._write_batch, run_id, buf, now, batch_ids)
                if exc is None:
                    new_ids.update(batch_ids)
                else:  # confined to this batch: the other runs' batches are written
                    errors.record_failure(STORE, "write batch", exc)
                    log.warning("seetrain: a batch of run %s could not be stored (%s: %s); it is dropped, "
                                "the run's other values are kept", run_id, type(exc).__name__, exc)
                    self._drop_buffer(buf)
            if beat and self._live:
                conn.executemany("UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                                 [(now, run_id) for run_id in self._live])
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite may have rolled back already (disk full, I/O error)
            if not self._check_identity():
                return True
            self._failed(exc)
            for buf in self._buffers.values():
                if buf.blocks and len(buf.blocks[-1].steps):
                    # later steps go to a new block: the pending bound drops the oldest
                    # blocks, a flush's worth at a time
                    buf.blocks.append(_Block(buf.blocks[-1].keys))
            self._bound_pending()
            return False
        # committed: what was written leaves memory, the new key ids become known
        self._key_ids.update(new_ids)
        del ops[:]
        for _run_id, buf in dirty:
            buf.blocks = []
            buf.media = []
            buf.last_step = None
        if beat:
            self._last_heartbeat = now
        if self.failing is not None:
            log.warning("seetrain: the store %s can be written again; everything kept meanwhile is stored",
                        self.db_path)
            self.failing = None
            self._pending_warned = False
        return True

    def _check_identity_cheap(self) -> bool:
        if self._identity is None:
            return True  # not opened yet: _open decides
        return self._check_identity()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


# -- the run row, also written directly by init() --------------------------------------------

INSERT_RUN = (
    "INSERT OR REPLACE INTO runs (id, project, name, description, group_name, tags, frameworks,"
    " config, summary, status, created_at, heartbeat_at, pid, host)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', 'running', ?, ?, ?, ?)"
)


def run_row(run: Any, host: str) -> tuple:
    return (run.id, run.project, run.name, run.description, run.group,
            json.dumps(list(run.tags)), json.dumps(list(run.frameworks)),
            json.dumps(run.config.as_dict()), run.created_at, time.time(), os.getpid(), host)


def record_run(run: Any, timeout: float = 2.0) -> bool:
    """Write a new run's row at once, from the caller's thread (``init``), so readers see the
    run as soon as ``init`` returns. False if the store cannot be written right now: the
    dispatcher then records it with the run's first events."""
    try:
        conn = connect(os.path.join(run.dir, DB_NAME), create=True)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            conn.execute(INSERT_RUN, run_row(run, hostname()))
        finally:
            conn.close()
    except Exception as exc:
        log.debug("seetrain: could not record run %s directly: %s", run.id, exc)
        return False
    return True
