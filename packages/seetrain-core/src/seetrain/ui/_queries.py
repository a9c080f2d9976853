"""What the dashboard asks of a store, composed from :class:`~seetrain.store.reader.StoreReader`.

Everything here is read-only and returns plain JSON-able Python values (non-finite floats
are left as they are; :mod:`._app` turns them into ``null`` when it encodes a response).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Any

from ..store.reader import KeyNotFoundError, StoreReader, envelope_indices
from ..store.schema import MEDIA_DIR

#: default and largest number of points a series request returns
DEFAULT_MAX_POINTS = 2000
MAX_MAX_POINTS = 200_000


class BadRequest(ValueError):
    """A request the API refuses with a 400 (the message says what to change)."""


class NotFound(LookupError):
    """A request for something the store does not hold (answered with a 404)."""


def duration(run: dict[str, Any]) -> float | None:
    """Seconds from start to end (or to the last heartbeat while running)."""
    end = run["finished_at"] or run["heartbeat_at"]
    if run["status"] == "running":
        end = max(end or 0.0, time.time())
    return None if end is None else max(0.0, end - run["created_at"])


def run_brief(run: dict[str, Any]) -> dict[str, Any]:
    """The fields of a run every page shows (no per-key data)."""
    return {
        "id": run["id"],
        "project": run["project"],
        "name": run["name"],
        "description": run["description"],
        "group": run["group_name"],
        "tags": run["tags"],
        "frameworks": run["frameworks"],
        "status": run["status"],
        "error": run["error"],
        "created_at": run["created_at"],
        "finished_at": run["finished_at"],
        "heartbeat_at": run["heartbeat_at"],
        "last_step": run["last_step"],
        "duration": duration(run),
        "host": run["host"],
        "pid": run["pid"],
        "config": run["config"],
    }


def summary(reader: StoreReader, run: dict[str, Any], last: dict[str, float] | None = None) -> dict[str, Any]:
    """Last value of every scalar key (``last``: already read), overridden by the run's
    explicit ``run.summary``."""
    out: dict[str, Any] = dict(last) if last is not None else reader.last_scalars(run["id"])
    out.update(run["summary"])
    return out


def projects(reader: StoreReader) -> list[dict[str, Any]]:
    """Projects, most recently used first, with how many of their runs are in each status."""
    statuses: dict[str, dict[str, int]] = {}
    for run in reader.runs():
        counts = statuses.setdefault(run["project"], {})
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    return [{**p, "statuses": statuses.get(p["name"], {})} for p in reader.projects()]


def project_runs(reader: StoreReader, project: str) -> dict[str, Any]:
    """The runs of a project with their summaries, and the union of their metric keys."""
    rows = reader.runs(project)
    if not rows:
        known = [p["name"] for p in reader.projects()]
        hint = f"; projects: {', '.join(known)}" if known else "; the store has no runs yet"
        raise NotFound(f"no project {project!r} in the store{hint}")
    runs = []
    metric_keys: set[str] = set()
    last = reader.last_scalars_many(row["id"] for row in rows)
    for row in rows:
        brief = run_brief(row)
        brief["summary"] = summary(reader, row, last[row["id"]])
        metric_keys.update(k for k, v in brief["summary"].items() if isinstance(v, (int, float)))
        runs.append(brief)
    runs.reverse()  # newest first, as people look for the run they just started
    return {"project": project, "runs": runs, "metric_keys": sorted(metric_keys)}


def run_detail(reader: StoreReader, ident: str) -> dict[str, Any]:
    """A run with its keys (and their kinds), summary, media step counts and files."""
    row = resolve_run(reader, ident)
    out = run_brief(row)
    keys = reader.keys(row["id"])
    media_steps = reader.media_steps(row["id"])
    out["summary"] = summary(reader, row)
    out["keys"] = [
        {"key": k, "kind": kind, **({"steps": sorted(set(media_steps.get(k, [])))} if kind != "scalar" else {})}
        for k, kind in keys
    ]
    out["files"] = reader.files(row["id"])
    return out


def resolve_run(reader: StoreReader, ident: str) -> dict[str, Any]:
    from ..store.reader import RunNotFoundError

    try:
        return reader.run(ident)
    except RunNotFoundError as exc:
        raise NotFound(str(exc)) from None


def parse_int(name: str, raw: str | None, *, minimum: int | None = None, maximum: int | None = None,
              default: int | None = None) -> int | None:
    """An integer query parameter, or a :class:`BadRequest` naming it."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise BadRequest(f"query parameter {name!r} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise BadRequest(f"query parameter {name!r} must be at most {maximum}, got {value}")
    return value


def _finite_or_none(values) -> tuple[list, dict[str, str]]:
    """A float array as a list with NaN and ±inf as ``None`` (JSON has no NaN), and what each
    of those was, by index: ``{"3": "NaN", "7": "Infinity"}``."""
    import numpy as np

    if len(values) == 0:
        return [], {}
    finite = np.isfinite(values)
    if finite.all():
        return values.tolist(), {}
    out = values.astype(object)
    out[~finite] = None
    bad = np.nonzero(~finite)[0]
    names = {str(i): "NaN" if np.isnan(values[i]) else "Infinity" if values[i] > 0 else "-Infinity"
             for i in bad.tolist()}
    return out.tolist(), names


class SeriesCache:
    """The full arrays of the largest series, so zooming into a 1,000,000-point key slices
    memory instead of re-reading and re-sorting every chunk. An entry is valid while the key
    has the same chunks (count and last id): a live run's new chunk makes it stale."""

    #: series smaller than this are read from SQLite every time (that is fast already)
    MIN_POINTS = 50_000

    def __init__(self, max_points: int = 8_000_000) -> None:
        self.max_points = max_points
        self._entries: OrderedDict[tuple, tuple] = OrderedDict()
        self._points = 0
        self._lock = threading.Lock()

    def scalars(self, reader: StoreReader, run_id: str, key: str, step_min: int | None, step_max: int | None):
        import numpy as np

        rows = reader.query(
            "SELECT COUNT(c.id), MAX(c.id), SUM(c.n) FROM keys k JOIN scalar_chunks c ON c.key_id = k.id"
            " WHERE k.run_id = ? AND k.key = ? AND k.kind = 'scalar'", (run_id, key))
        row = rows[0] if rows else None
        if not row or not row[0] or row[2] < self.MIN_POINTS:
            return reader.scalars(run_id, key, step_min=step_min, step_max=step_max)
        ident, version = (reader.directory, run_id, key), (row[0], row[1])
        with self._lock:
            entry = self._entries.get(ident)
            if entry is not None and entry[0] == version:
                self._entries.move_to_end(ident)
                arrays = entry[1]
            else:
                arrays = None
        if arrays is None:
            arrays = reader.scalars(run_id, key)
            with self._lock:
                old = self._entries.pop(ident, None)
                if old is not None:
                    self._points -= len(old[1][0])
                self._entries[ident] = (version, arrays)
                self._points += len(arrays[0])
                while self._points > self.max_points and len(self._entries) > 1:
                    _, (_, dropped) = self._entries.popitem(last=False)
                    self._points -= len(dropped[0])
        steps, values, times = arrays
        lo = np.searchsorted(steps, step_min, "left") if step_min is not None else 0
        hi = np.searchsorted(steps, step_max, "right") if step_max is not None else len(steps)
        return steps[lo:hi], values[lo:hi], times[lo:hi]


def series(reader: StoreReader, run_id: str, key: str, *, max_points: int = DEFAULT_MAX_POINTS,
           step_min: int | None = None, step_max: int | None = None,
           since_step: int | None = None, cache: SeriesCache | None = None) -> dict[str, Any]:
    """One scalar key of a run, exact or min/max-downsampled to at most ``max_points``.

    ``since_step`` returns only the points after that step (the tail a live chart appends).
    Wall times are rounded to the millisecond (they only place points on a time axis).
    """
    import numpy as np

    if since_step is not None:
        step_min = max(step_min, since_step + 1) if step_min is not None else since_step + 1
    try:
        if cache is not None:
            steps, values, times = cache.scalars(reader, run_id, key, step_min, step_max)
        else:
            steps, values, times = reader.scalars(run_id, key, step_min=step_min, step_max=step_max)
    except KeyNotFoundError as exc:
        kinds = dict(reader.keys(run_id))
        if key in kinds:  # a media key asked for as scalars
            raise BadRequest(str(exc)) from None
        raise NotFound(str(exc)) from None
    total = len(steps)
    exact = total <= max_points
    if not exact:
        idx = envelope_indices(values, max_points)
        steps, values, times = steps[idx], values[idx], times[idx]
    clean, nonfinite = _finite_or_none(values)
    return {
        "key": key,
        "steps": steps.tolist(),
        "values": clean,
        "times": np.round(times, 3).tolist(),
        "total": total,
        "exact": exact,
        "nonfinite": nonfinite,
    }


def media_items(reader: StoreReader, run_id: str, key: str, step: int | None = None) -> dict[str, Any]:
    """The media of one key (optionally of one step), with the URL of each file."""
    try:
        rows = reader.media(run_id, key)
    except KeyNotFoundError as exc:
        kinds = dict(reader.keys(run_id))
        if key in kinds:
            raise BadRequest(str(exc)) from None
        raise NotFound(str(exc)) from None
    items = []
    for m in rows:
        if step is not None and m["step"] != step:
            continue
        items.append({
            "step": m["step"], "index": m["index"], "kind": m["kind"], "caption": m["caption"],
            "text": m["text"], "meta": m["meta"], "time": m["time"],
            # a reader whose media are not files under the store names their URL itself
            "url": m["url"] if "url" in m else media_url(m["relpath"]),
        })
    kind = rows[0]["kind"] if rows else dict(reader.keys(run_id)).get(key)
    return {"run": run_id, "key": key, "kind": kind, "steps": sorted({m["step"] for m in rows}), "items": items}


def media_url(relpath: str | None) -> str | None:
    """``media/<run>/<key>/<file>`` (as the store records it) -> ``/media/<run>/<key>/<file>``."""
    if not relpath:
        return None
    from urllib.parse import quote

    return "/" + quote(relpath)


def media_file(directory: str, path: str) -> str:
    """The absolute path of ``path`` inside the store's media folder, refused unless it lies there.

    The path and its target are resolved (``..``, symlinks) before the check, so neither
    ``../seetrain.db`` nor a symlink planted in the media folder reads outside it.
    """
    if not path or "\x00" in path or os.path.isabs(path) or "\\" in path:
        raise NotFound(f"no media file {path!r} in the store")
    root = os.path.realpath(os.path.join(directory, MEDIA_DIR))
    target = os.path.realpath(os.path.join(root, path))
    if os.path.commonpath([root, target]) != root or target == root or not os.path.isfile(target):
        raise NotFound(f"no media file {path!r} in the store")
    return target
