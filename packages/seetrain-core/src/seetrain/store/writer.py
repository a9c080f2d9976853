"""Writes runs into one store directory. Used from the dispatcher thread only."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from typing import Any, Iterable

from ..media import Media, Text
from .schema import DB_NAME, HEARTBEAT_EVERY, MEDIA_DIR, connect

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(key: str) -> str:
    """A file-name-safe form of one component of a key (never ``..`` or empty)."""
    cleaned = _UNSAFE.sub("_", key).strip(".") or "_"
    return cleaned[:80]


class _RunBuffer:
    __slots__ = ("steps", "media", "last_step", "dirty")

    def __init__(self) -> None:
        # one (step, time, {key: float}) per log call, in order
        self.steps: list[tuple[int, float, dict]] = []
        self.media: list[tuple] = []
        self.last_step: int | None = None
        self.dirty = False


class StoreWriter:
    """Buffers what the hooks deliver for the runs of one directory and writes it in one
    transaction per flush."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(os.path.join(directory, MEDIA_DIR), exist_ok=True)
        self.conn = connect(os.path.join(directory, DB_NAME), create=True)
        self._buffers: dict[str, _RunBuffer] = {}
        self._key_ids: dict[tuple[str, str], int] = {}
        self._media_counter = 0
        self._last_heartbeat = 0.0
        self.host = socket.gethostname()

    # -- runs ---------------------------------------------------------------------------
    def create_run(self, run: Any) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO runs (id, project, name, description, group_name, tags, frameworks,"
            " config, summary, status, created_at, heartbeat_at, pid, host)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', 'running', ?, ?, ?, ?)",
            (
                run.id, run.project, run.name, run.description, run.group,
                json.dumps(list(run.tags)), json.dumps(list(run.frameworks)),
                json.dumps(run.config.as_dict()), run.created_at, time.time(), os.getpid(), self.host,
            ),
        )
        self._buffers[run.id] = _RunBuffer()

    def resume_run(self, run: Any) -> None:
        """A run that exists already: running again under this process, unless the handle
        is only attached to a run another process owns."""
        if not getattr(run, "attached", False):
            self.conn.execute(
                "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, heartbeat_at = ?,"
                " pid = ?, host = ?, description = ?, tags = ? WHERE id = ?",
                (time.time(), os.getpid(), self.host, run.description, json.dumps(list(run.tags)), run.id),
            )
        self._buffers.setdefault(run.id, _RunBuffer())

    def set_config(self, run_id: str, config: dict) -> None:
        # the frameworks column mirrors config["seetrain"]["frameworks"] (its one source)
        meta = config.get("seetrain")
        frameworks = meta.get("frameworks", []) if isinstance(meta, dict) else []
        self.conn.execute("UPDATE runs SET config = ?, frameworks = ? WHERE id = ?",
                          (json.dumps(config), json.dumps(frameworks), run_id))

    def set_fields(self, run_id: str, **fields: Any) -> None:
        """Update run columns (``frameworks``, ``tags``, ``summary`` … JSON-encoded when not
        scalars)."""
        if not fields:
            return
        cols = ", ".join(f"{name} = ?" for name in fields)
        values = [json.dumps(v) if isinstance(v, (dict, list, tuple)) else v for v in fields.values()]
        self.conn.execute(f"UPDATE runs SET {cols} WHERE id = ?", (*values, run_id))

    def add_file(self, run_id: str, kind: str, path: str, meta: dict | None) -> None:
        self.conn.execute(
            "INSERT INTO files (run_id, kind, path, meta, ts) VALUES (?, ?, ?, ?, ?)",
            (run_id, kind, path, json.dumps(meta) if meta else None, time.time()),
        )

    def finish_run(self, run_id: str, status: str, error: str | None) -> None:
        self.flush()
        now = time.time()
        self.conn.execute(
            "UPDATE runs SET status = ?, error = ?, finished_at = ?, heartbeat_at = ? WHERE id = ?",
            (status, error, now, now, run_id),
        )
        self._buffers.pop(run_id, None)

    # -- values -------------------------------------------------------------------------
    def add(self, run: Any, step: int, data: dict, ts: float) -> None:
        buf = self._buffers.get(run.id)
        if buf is None:
            buf = self._buffers[run.id] = _RunBuffer()
        scalars = data
        for value in data.values():
            if type(value) is not float:  # a step with media: split it (rare, off the fast path)
                scalars = {k: v for k, v in data.items() if type(v) is float}
                for k, v in data.items():
                    if type(v) is not float:
                        self._add_media(run, buf, step, k, v, ts)
                break
        if scalars:
            # O(1) per step here; flush turns runs of steps into per-key columns with numpy
            buf.steps.append((step, ts, scalars))
        if buf.last_step is None or step > buf.last_step:
            buf.last_step = step
        buf.dirty = True

    @staticmethod
    def _chunks(steps: list) -> list[tuple[tuple, Any, Any, Any]]:
        """``(keys, steps, times, values matrix)`` for each run of consecutive steps that
        logged the same keys, in order (so a re-logged step keeps its last value last)."""
        import numpy as np

        out = []
        current_keys: tuple | None = None
        block: list = []

        def close() -> None:
            if block:
                out.append((
                    current_keys,
                    np.fromiter((b[0] for b in block), dtype="<i8", count=len(block)),
                    np.fromiter((b[1] for b in block), dtype="<f8", count=len(block)),
                    np.array([b[2] for b in block], dtype="<f8"),
                ))

        for step, ts, data in steps:
            keys = tuple(data)
            if keys != current_keys:
                close()
                current_keys, block = keys, []
            block.append((step, ts, tuple(data.values())))
        close()
        return out

    def _add_media(self, run: Any, buf: _RunBuffer, step: int, key: str, value: Any, ts: float) -> None:
        items: Iterable[Media] = value if isinstance(value, list) else (value,)
        for idx, item in enumerate(items):
            path = None
            text = None
            meta: dict[str, Any] = {}
            if isinstance(item, Text):
                text = item.text
            else:
                self._media_counter += 1
                rel_dir = os.path.join(MEDIA_DIR, safe_component(run.id), *(safe_component(p) for p in key.split("/")))
                os.makedirs(os.path.join(self.directory, rel_dir), exist_ok=True)
                rel = os.path.join(rel_dir, f"{step:09d}-{idx}-{self._media_counter}.{item.format}")
                with open(os.path.join(self.directory, rel), "wb") as fh:
                    fh.write(item.encoded or b"")
                path = rel.replace(os.sep, "/")
                for attr in ("width", "height", "sample_rate", "duration"):
                    if hasattr(item, attr):
                        meta[attr] = getattr(item, attr)
            buf.media.append((run.id, key, item.kind, step, idx, path, text, item.caption,
                              json.dumps(meta) if meta else None, ts))

    def _key_id(self, run_id: str, key: str, kind: str) -> int:
        ident = self._key_ids.get((run_id, key))
        if ident is None:
            self.conn.execute("INSERT OR IGNORE INTO keys (run_id, key, kind) VALUES (?, ?, ?)", (run_id, key, kind))
            ident = self.conn.execute("SELECT id FROM keys WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()[0]
            self._key_ids[(run_id, key)] = ident
        return ident

    def flush(self) -> None:
        """Write everything buffered in one transaction, and the heartbeats when due."""
        now = time.time()
        dirty = [(run_id, buf) for run_id, buf in self._buffers.items() if buf.dirty]
        beat = now - self._last_heartbeat >= HEARTBEAT_EVERY
        if not dirty and not beat:
            return
        import numpy as np

        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for run_id, buf in dirty:
                chunk_rows = []
                for keys, steps, times, values in self._chunks(buf.steps):
                    steps_b, times_b = steps.tobytes(), times.tobytes()
                    lo, hi, n = int(steps.min()), int(steps.max()), len(steps)
                    for column, key in enumerate(keys):
                        chunk_rows.append((self._key_id(run_id, key, "scalar"), n, lo, hi, steps_b,
                                           np.ascontiguousarray(values[:, column]).tobytes(), times_b))
                if chunk_rows:
                    conn.executemany(
                        "INSERT INTO scalar_chunks (key_id, n, step_min, step_max, steps, vals, ts)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)", chunk_rows,
                    )
                if buf.media:
                    conn.executemany(
                        "INSERT INTO media (key_id, kind, step, idx, path, text, caption, meta, ts)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(self._key_id(r, k, kind), kind, *rest) for r, k, kind, *rest in buf.media],
                    )
                conn.execute(
                    # MAX: a resumed or attached handle never moves the last step back
                    "UPDATE runs SET last_step = MAX(COALESCE(last_step, -1), ?), heartbeat_at = ? WHERE id = ?",
                    (buf.last_step, now, run_id),
                )
            if beat and self._buffers:
                conn.executemany(
                    "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'",
                    [(now, run_id) for run_id in self._buffers],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._key_ids.clear()  # ids inserted in the failed transaction are gone
            raise  # the buffers are kept: the next flush writes them
        for _run_id, buf in dirty:
            buf.steps = []
            buf.media = []
            buf.dirty = False
        if beat:
            self._last_heartbeat = now

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.conn.close()
