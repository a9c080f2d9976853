"""The ingest API (``/api/v1``): runs and their batches, stored idempotently.

The wire format is described in :mod:`seetrain_server.protocol`; the OpenAPI document in
:mod:`seetrain_server.openapi`. The routes:

- ``PUT /api/v1/runs/{run_id}``: create or update a run (write role on its project).
- ``POST /api/v1/runs/{run_id}/batches``: one batch of a run (write role on the run's project).
- ``GET /api/v1/runs/{run_id}/batches?source=S``: the highest sequence number stored for that
  source (read role), where an uploader resumes.
- ``GET /api/v1/openapi.json``: the whole server API, as OpenAPI 3.0.

**Idempotence.** A batch is named by ``(run, source, seq)``. Its row in ``ingest_batches`` is
inserted (``ON CONFLICT DO NOTHING``) in the same transaction as its data: a batch sent again,
by a client that never saw the first answer, finds the row and stores nothing; two copies in
flight at once serialise on the row's unique index. Batches of one source may arrive in any
order; ``max_seq`` is the highest one stored, not a contiguous prefix.

**Speed.** Scalars travel as the store's own blobs (packed little-endian arrays, base64 on the
wire): one ``scalar_chunks`` row per entry, no Python work per point (numpy finds a chunk's
step range), and the rows of a batch go in one ``executemany``.

**Never a 500 for what a client sends.** The body is read within ``max_body_bytes``, parsed and
validated completely before the transaction opens; every error names the field and answers
400, 413 or 422 (see :mod:`seetrain_server.protocol`), and nothing of a refused batch is kept.

**Load shedding.** A replica handles at most ``max_concurrent_ingest`` ingest requests at once
(:class:`IngestGate`); one more is answered 503 with ``Retry-After`` at once instead of queueing
behind the database, so clients back off and a load balancer can send them elsewhere.

**Authorisation without disclosure.** A key that may not write a run's project gets the same
403 whether the run exists or not; only a key with write on every project (``*``) learns that
a run does not exist (404).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import time
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import auth
from .app import error
from .protocol import CONTENT_TYPES, MEDIA_FORMATS, RUN_STATUSES

__all__ = ["routes", "IngestGate", "parse_batch", "parse_run", "Batch", "InvalidRequest"]

#: a run id: what ``seetrain.init`` makes (``20261203-210000-9f3a1b``) and any similar name
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INT64_MAX = 2**63 - 1
#: longest free text kept (run description, a media caption or text, an error message)
MAX_TEXT = 1_000_000
#: longest name (run name, group, tag, source, host, file kind and path)
MAX_NAME = 1024
MAX_TAGS = 256
#: statements with an IN list are split into lists of at most this many values
_IN_BATCH = 500


class InvalidRequest(Exception):
    """A request the server refuses: ``status`` (400, 404, 409, 413, 422) and a message
    naming the field concerned."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class IngestGate:
    """At most ``limit`` ingest requests at once on this replica: a try-acquire semaphore.

    Used from the event loop only (no lock needed: nothing awaits between the test and the
    increment), and independent of any particular loop.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self.active = 0

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1


# -- validation of fields -----------------------------------------------------------------
def _text(value: Any, field: str, *, max_len: int = MAX_NAME, optional: bool = False,
          control: bool = True) -> str | None:
    """A string both engines can store: no NUL, no lone surrogate (``control=False``: no
    control characters at all), at most ``max_len`` characters."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(422, f"{field!r} must be a string{' or null' if optional else ''}")
    if len(value) > max_len:
        raise InvalidRequest(422, f"{field!r} is longer than {max_len} characters")
    if "\x00" in value or (not control and _CONTROL.search(value)):
        raise InvalidRequest(422, f"{field!r} must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(422, f"{field!r} is not valid Unicode (a lone surrogate)") from None
    return value


def _int(value: Any, field: str, *, lo: int = 0, hi: int = _INT64_MAX, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidRequest(422, f"{field!r} must be an integer from {lo} to {hi}")
    return value


def _time(value: Any, field: str, *, optional: bool = True) -> float | None:
    """A wall time (or any finite number): seconds since the epoch."""
    if value is None and optional:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise InvalidRequest(422, f"{field!r} must be a finite number (seconds since the epoch)")


def _object(value: Any, field: str, *, optional: bool = True) -> dict | None:
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(422, f"{field!r} must be a JSON object")
    return value


def _json_text(value: Any, field: str) -> str:
    try:
        return json.dumps(value)
    except (ValueError, RecursionError):
        raise InvalidRequest(422, f"{field!r} is nested too deeply") from None


def _fields(data: Any, where: str, allowed: frozenset[str], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise InvalidRequest(422, f"{where} must be a JSON object")
    unknown = set(data) - allowed
    if unknown:
        raise InvalidRequest(422, f"{where}: unknown field(s) {', '.join(sorted(map(repr, unknown)))}; "
                                  f"the fields are {', '.join(sorted(allowed))}")
    for name in required:
        if name not in data:
            raise InvalidRequest(422, f"{where}: the field {name!r} is required")
    return data


def _key(value: Any, field: str, max_len: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(422, f"{field!r} must be a non-empty string")
    if len(value) > max_len:
        raise InvalidRequest(422, f"{field!r}: the key {value[:60]!r}... is {len(value)} characters long, "
                                  f"more than the server's limit max_key_length = {max_len}")
    return _text(value, field, max_len=max_len)  # type: ignore[return-value]


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidRequest(422, f"{field!r} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(422, f"{field!r} is not valid base64") from None


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequest(400, f"the body is not valid JSON: {exc}") from None


def _run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id):
        raise InvalidRequest(422, f"{run_id[:140]!r} is not a run id: 1 to 128 letters, digits and . _ - "
                                  "(starting with a letter or digit)")
    return run_id


def _frameworks(config: dict) -> str:
    # the frameworks column mirrors config["seetrain"]["frameworks"], as in the local store
    meta = config.get("seetrain")
    frameworks = meta.get("frameworks", []) if isinstance(meta, dict) else []
    return _json_text(frameworks if isinstance(frameworks, list) else [], "config.seetrain.frameworks")


# -- runs -------------------------------------------------------------------------------------
_RUN_FIELDS = frozenset({"project", "name", "description", "group", "tags", "config", "created_at", "host",
                         "pid"})


def parse_run(run_id: str, body: bytes) -> dict[str, Any]:
    """The columns of the body of ``PUT /api/v1/runs/{run_id}`` (only the fields given, and
    the project). :raises InvalidRequest: with the field named."""
    data = _fields(_parse_json(body), "the body", _RUN_FIELDS, ("project",))
    project = data["project"]
    try:
        auth.validate_project(project)
    except ValueError as exc:
        raise InvalidRequest(422, f"'project': {exc}") from None
    if project == auth.ALL_PROJECTS:
        raise InvalidRequest(422, "'project': '*' stands for every project in roles; a run needs a real project")
    columns: dict[str, Any] = {"project": project}
    if "name" in data:
        columns["name"] = _text(data["name"], "name", control=False)
    if "description" in data:
        columns["description"] = _text(data["description"], "description", max_len=MAX_TEXT, optional=True)
    if "group" in data:
        columns["group_name"] = _text(data["group"], "group", optional=True, control=False)
    if "tags" in data:
        tags = data["tags"]
        if not isinstance(tags, list) or len(tags) > MAX_TAGS:
            raise InvalidRequest(422, f"'tags' must be a list of at most {MAX_TAGS} strings")
        columns["tags"] = json.dumps([_text(t, f"tags[{i}]", control=False) for i, t in enumerate(tags)])
    if "config" in data:
        config = _object(data["config"], "config", optional=False)
        columns["config"] = _json_text(config, "config")
        columns["frameworks"] = _frameworks(config)  # type: ignore[arg-type]
    if "created_at" in data:
        columns["created_at"] = _time(data["created_at"], "created_at", optional=False)
    if "host" in data:
        columns["host"] = _text(data["host"], "host", optional=True, control=False)
    if "pid" in data:
        columns["pid"] = _int(data["pid"], "pid", optional=True)
    return columns


def _no_access(run_id: str, role: str) -> HTTPException:
    # the same words whether the run exists or not: a key learns nothing of other projects
    return HTTPException(403, f"this key may not {role} run {run_id!r} (or there is no such run)")


def _run_project(state: Any, run_id: str) -> str | None:
    rows = state.db.query("SELECT project FROM runs WHERE id = ?", (run_id,))
    return rows[0][0] if rows else None


def _authorize_run(state: Any, who: auth.Principal, run_id: str, role: str) -> str:
    """The project of run ``run_id`` if ``who`` holds ``role`` on it; else 403, or 404 for a
    run that does not exist asked by a key holding ``role`` on every project."""
    project = _run_project(state, run_id)
    if project is None:
        if who.can(auth.ALL_PROJECTS, role):
            raise InvalidRequest(404, f"no run {run_id}; create it with PUT /api/v1/runs/{run_id}")
        raise _no_access(run_id, role)
    if not who.can(project, role):
        raise _no_access(run_id, role)
    return project


def put_run(state: Any, who: auth.Principal, run_id: str, columns: dict[str, Any]) -> dict[str, Any]:
    """Create run ``run_id`` or update the given columns of it (blocking)."""
    project = columns["project"]
    now = time.time()
    row = {"name": run_id, "description": None, "group_name": None, "tags": "[]", "frameworks": "[]",
           "config": "{}", "created_at": now, "host": None, "pid": None, **columns}
    names = ["id", "project", "name", "description", "group_name", "tags", "frameworks", "config", "summary",
             "status", "created_at", "heartbeat_at", "pid", "host"]
    values = [run_id, project, row["name"], row["description"], row["group_name"], row["tags"],
              row["frameworks"], row["config"], "{}", "running", row["created_at"],
              # the client's clock where it says (a run synced long after it died must not look alive)
              row["created_at"], row["pid"], row["host"]]
    # an existing run keeps its status and what this request does not give; it never moves
    # to another project (the WHERE: no row comes back, and the caller is told)
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name != "project")
    statement = (f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
                 f"ON CONFLICT (id) DO UPDATE SET {updates or 'project = excluded.project'} "
                 "WHERE runs.project = excluded.project RETURNING id")
    with state.db.transaction() as tx:
        stored = tx.query(statement, values)
    if not stored:
        existing = _run_project(state, run_id)
        if existing is not None and who.can(existing, "write"):
            raise InvalidRequest(409, f"run {run_id} belongs to project {existing!r}; a run cannot move to "
                                      f"another project (create a new run for {project!r})")
        raise _no_access(run_id, "write")
    return {"run": run_id, "project": project}


# -- batches ----------------------------------------------------------------------------------
_BATCH_FIELDS = frozenset({"source", "seq", "scalars", "media", "config", "summary", "status", "files",
                           "heartbeat"})
_SCALAR_FIELDS = frozenset({"key", "steps", "values", "times"})
_MEDIA_FIELDS = frozenset({"key", "step", "index", "kind", "format", "data", "text", "caption", "meta", "time"})
_STATUS_FIELDS = frozenset({"status", "error", "time"})
_FILE_FIELDS = frozenset({"kind", "path", "meta", "time"})


class Batch:
    """A validated batch, ready to store: everything decoded, nothing per point."""

    __slots__ = ("source", "seq", "chunks", "media", "config", "summary", "status", "files", "heartbeat",
                 "last_step", "latest_time")

    def __init__(self) -> None:
        self.source = ""
        self.seq = 0
        #: (key, n, step_min, step_max, steps, vals, ts)
        self.chunks: list[tuple[str, int, int, int, bytes, bytes, bytes]] = []
        #: (key, kind, format, step, index, data, text, caption, meta json, time)
        self.media: list[tuple] = []
        self.config: dict | None = None
        self.summary: dict | None = None
        self.status: tuple[str, str | None, float] | None = None
        self.files: list[tuple[str, str, str | None, float]] = []
        self.heartbeat: float | None = None
        self.last_step: int | None = None
        self.latest_time: float | None = None


def parse_batch(body: bytes, settings: Any, now: float | None = None) -> Batch:
    """Decode and check the body of ``POST /api/v1/runs/{run_id}/batches`` against the wire
    format and the server's limits (``settings``). :raises InvalidRequest: naming the field."""
    now = time.time() if now is None else now
    data = _fields(_parse_json(body), "the body", _BATCH_FIELDS, ("source", "seq"))
    batch = Batch()
    batch.source = _text(data["source"], "source", control=False) or ""
    if not batch.source:
        raise InvalidRequest(422, "'source' must be a non-empty string naming the sending process")
    batch.seq = _int(data["seq"], "seq")  # type: ignore[assignment]
    scalars = data.get("scalars") or []
    media = data.get("media") or []
    if not isinstance(scalars, list):
        raise InvalidRequest(422, "'scalars' must be a list")
    if not isinstance(media, list):
        raise InvalidRequest(422, "'media' must be a list")
    if len(scalars) + len(media) > settings.max_chunks_per_batch:
        raise InvalidRequest(413, f"the batch has {len(scalars) + len(media)} entries (scalars and media), more "
                                  f"than the server's limit max_chunks_per_batch = {settings.max_chunks_per_batch}"
                                  "; send smaller batches")
    max_key, max_points = settings.max_key_length, settings.max_points_per_batch
    points = 0
    last_step = -1
    latest = -math.inf
    for i, entry in enumerate(scalars):
        where = f"scalars[{i}]"
        _fields(entry, where, _SCALAR_FIELDS, ("key", "steps", "values", "times"))
        key = _key(entry["key"], f"{where}.key", max_key)
        # a cheap bound before decoding: base64 holds 3 bytes in 4 characters
        steps_field = entry["steps"]
        if isinstance(steps_field, str) and points + len(steps_field) // 32 > max_points + 1:
            raise _too_many_points(max_points)
        steps = _b64(steps_field, f"{where}.steps")
        vals = _b64(entry["values"], f"{where}.values")
        ts = _b64(entry["times"], f"{where}.times")
        if len(steps) % 8 or not steps:
            raise InvalidRequest(422, f"{where}.steps: {len(steps)} bytes, not a positive multiple of 8 "
                                      "(little-endian int64)")
        if len(vals) != len(steps) or len(ts) != len(steps):
            raise InvalidRequest(422, f"{where}: steps, values and times differ in length ({len(steps) // 8} "
                                      f"steps, {len(vals) / 8:g} values, {len(ts) / 8:g} times)")
        n = len(steps) // 8
        points += n
        if points > max_points:
            raise _too_many_points(max_points)
        step_array = np.frombuffer(steps, dtype="<i8")
        lo, hi = int(step_array.min()), int(step_array.max())
        if lo < 0:
            raise InvalidRequest(422, f"{where}.steps: a step is negative ({lo}); steps are 0 to 2**63-1")
        time_array = np.frombuffer(ts, dtype="<f8")
        newest = float(np.nanmax(time_array)) if n and not np.isnan(time_array).all() else -math.inf
        if math.isfinite(newest) and newest > latest:
            latest = newest
        last_step = max(last_step, hi)
        batch.chunks.append((key, n, lo, hi, steps, vals, ts))
    seen: set[tuple[str, int, int]] = set()
    for i, entry in enumerate(media):
        where = f"media[{i}]"
        _fields(entry, where, _MEDIA_FIELDS, ("key", "step", "kind"))
        key = _key(entry["key"], f"{where}.key", max_key)
        step = _int(entry["step"], f"{where}.step")
        index = _int(entry.get("index", 0), f"{where}.index", hi=2**31 - 1)
        kind = entry["kind"]
        if kind not in MEDIA_FORMATS:
            raise InvalidRequest(422, f"{where}.kind must be one of {', '.join(MEDIA_FORMATS)}")
        fmt = entry.get("format", "txt" if kind == "text" else None)
        if fmt not in MEDIA_FORMATS[kind]:
            raise InvalidRequest(422, f"{where}.format: a {kind} is one of {', '.join(MEDIA_FORMATS[kind])}")
        if (key, step, index) in seen:  # type: ignore[comparison-overlap]
            raise InvalidRequest(422, f"{where}: key {key!r}, step {step}, index {index} twice in one batch")
        seen.add((key, step, index))  # type: ignore[arg-type]
        if kind == "text":
            if "data" in entry:
                raise InvalidRequest(422, f"{where}: a text has 'text', not 'data'")
            text = _text(entry.get("text"), f"{where}.text", max_len=MAX_TEXT)
            content = None
        else:
            if "text" in entry:
                raise InvalidRequest(422, f"{where}: an {kind} has 'data' (base64 of the file), not 'text'")
            content = _b64(entry.get("data"), f"{where}.data")
            text = None
        caption = _text(entry.get("caption"), f"{where}.caption", max_len=MAX_TEXT, optional=True)
        meta = _object(entry.get("meta"), f"{where}.meta")
        when = _time(entry.get("time"), f"{where}.time")
        if when is not None and when > latest:
            latest = when
        last_step = max(last_step, step)  # type: ignore[type-var]
        batch.media.append((key, kind, fmt, step, index, content, text, caption,
                            _json_text(meta, f"{where}.meta") if meta else None, now if when is None else when))
    if "config" in data:
        batch.config = _object(data["config"], "config", optional=False)
        _json_text(batch.config, "config")
    if "summary" in data:
        batch.summary = _object(data["summary"], "summary", optional=False)
        _json_text(batch.summary, "summary")
    if data.get("status") is not None:
        status = _fields(data["status"], "'status'", _STATUS_FIELDS, ("status",))
        if status["status"] not in RUN_STATUSES:
            raise InvalidRequest(422, f"'status.status' must be one of {', '.join(RUN_STATUSES)}")
        err = _text(status.get("error"), "status.error", max_len=MAX_TEXT, optional=True)
        when = _time(status.get("time"), "status.time")
        batch.status = (status["status"], err, now if when is None else when)
    files = data.get("files") or []
    if not isinstance(files, list):
        raise InvalidRequest(422, "'files' must be a list")
    for i, entry in enumerate(files):
        where = f"files[{i}]"
        _fields(entry, where, _FILE_FIELDS, ("kind", "path"))
        meta = _object(entry.get("meta"), f"{where}.meta")
        when = _time(entry.get("time"), f"{where}.time")
        batch.files.append((_text(entry["kind"], f"{where}.kind", control=False),  # type: ignore[arg-type]
                            _text(entry["path"], f"{where}.path", control=False),
                            _json_text(meta, f"{where}.meta") if meta else None, now if when is None else when))
    batch.heartbeat = _time(data.get("heartbeat"), "heartbeat")
    batch.last_step = last_step if last_step >= 0 else None
    batch.latest_time = latest if math.isfinite(latest) else None
    return batch


def _too_many_points(limit: int) -> InvalidRequest:
    return InvalidRequest(413, f"the batch holds more than {limit} points, the server's limit "
                               "max_points_per_batch; send smaller batches")


def _safe_component(text: str) -> str:
    """A path-safe form of one component (as the local store names its media files)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip(".") or "_"
    return cleaned[:80]


def media_path(run_id: str, key: str, step: int, index: int, source: str, seq: int, fmt: str) -> str:
    """Where a media file of a batch is kept: ``media/<run>/<key components>/<step>-<index>-
    <source>-<seq>.<format>``, the same for a batch sent again (an object store rewrites it
    identically). A source that is not path-safe as it is gets a digest of its own, so two
    sources never share a name (a run id is path-safe by its syntax)."""
    parts = [_safe_component(p) for p in key.split("/")]
    name = _safe_component(source)
    if name != source:
        name = f"{name[:40]}-{hashlib.sha256(source.encode()).hexdigest()[:12]}"
    return "/".join(["media", run_id, *parts, f"{step:09d}-{index}-{name}-{seq}.{fmt}"])


def _key_ids(tx: Any, settings: Any, run_id: str, wanted: dict[str, str]) -> dict[str, int]:
    """The ids of the run's keys ``wanted`` (key -> kind), adding the new ones; 422 for a key
    that holds the other kind of value, or past ``max_keys_per_run``."""
    names = list(wanted)
    found: dict[str, tuple[int, str]] = {}

    def lookup(keys: list[str]) -> None:
        for start in range(0, len(keys), _IN_BATCH):
            part = keys[start:start + _IN_BATCH]
            for ident, key, kind in tx.query(
                    f"SELECT id, key, kind FROM keys WHERE run_id = ? AND key IN ({', '.join('?' * len(part))})",
                    (run_id, *part)):
                found[key] = (ident, kind)

    lookup(names)
    new = [name for name in names if name not in found]
    if new:
        count = tx.query("SELECT COUNT(*) FROM keys WHERE run_id = ?", (run_id,))[0][0]
        if count + len(new) > settings.max_keys_per_run:
            raise InvalidRequest(422, f"run {run_id} would have {count + len(new)} keys, more than the server's "
                                      f"limit max_keys_per_run = {settings.max_keys_per_run} (new keys: "
                                      f"{', '.join(map(repr, new[:5]))}{' ...' if len(new) > 5 else ''})")
        tx.executemany("INSERT INTO keys (run_id, key, kind) VALUES (?, ?, ?) ON CONFLICT (run_id, key) DO NOTHING",
                       [(run_id, name, wanted[name]) for name in new])
        lookup(new)
    ids = {}
    for name, kind in wanted.items():
        ident, held = found[name]
        if (held == "scalar") != (kind == "scalar"):
            raise InvalidRequest(422, f"key {name!r} of run {run_id} holds {'scalars' if held == 'scalar' else 'media'}"
                                      f"; it cannot also hold {'scalars' if kind == 'scalar' else 'media'} "
                                      "(log them under another key)")
        ids[name] = ident
    return ids


def store_batch(state: Any, run_id: str, batch: Batch) -> dict[str, Any]:
    """Store ``batch`` of run ``run_id`` in one transaction, unless it was stored before
    (blocking). ``{"stored": bool, "max_seq": int}``."""
    settings = state.settings
    wanted: dict[str, str] = {}
    for key, *_ in batch.chunks:
        wanted[key] = "scalar"
    for key, kind, *_ in batch.media:
        if wanted.get(key, kind) == "scalar":
            raise InvalidRequest(422, f"key {key!r} holds both scalars and media in this batch")
        wanted.setdefault(key, kind)
    now = time.time()
    # (the chunk columns are stored uncompressed on PostgreSQL, see db.ENGINE_MIGRATIONS:
    # its default compression, pglz, made a 100,000-point insert six times slower)
    with state.db.transaction() as tx:
        fresh = tx.query("INSERT INTO ingest_batches (run_id, source, seq, received_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (run_id, source, seq) DO NOTHING RETURNING seq",
                         (run_id, batch.source, batch.seq, now))
        if fresh:
            ids = _key_ids(tx, settings, run_id, wanted) if wanted else {}
            if batch.chunks:
                tx.executemany("INSERT INTO scalar_chunks (key_id, n, step_min, step_max, steps, vals, ts) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)",
                               [(ids[key], *rest) for key, *rest in batch.chunks])
            if batch.media:
                rows = []
                used: set[str] = set()
                for i, (key, kind, fmt, step, index, content, text, caption, meta, when) in enumerate(batch.media):
                    path = None
                    if content is not None:
                        path = media_path(run_id, key, step, index, batch.source, batch.seq, fmt)
                        if path in used:  # two keys that differ only in characters a path cannot hold
                            path = f"{path[:-len(fmt) - 1]}-{i}.{fmt}"
                        used.add(path)
                        state.media.put(tx, path, content, CONTENT_TYPES.get(fmt, "application/octet-stream"))
                    rows.append((ids[key], kind, step, index, path, text, caption, meta, when))
                tx.executemany("INSERT INTO media (key_id, kind, step, idx, path, text, caption, meta, ts) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if batch.files:
                tx.executemany("INSERT INTO files (run_id, kind, path, meta, ts) VALUES (?, ?, ?, ?, ?)",
                               [(run_id, *entry) for entry in batch.files])
            if batch.config is not None:
                tx.execute("UPDATE runs SET config = ?, frameworks = ? WHERE id = ?",
                           (json.dumps(batch.config), _frameworks(batch.config), run_id))
            if batch.summary is not None:
                tx.execute("UPDATE runs SET summary = ? WHERE id = ?", (json.dumps(batch.summary), run_id))
            # the heartbeat is the client's clock (when it logged), not the server's: a crashed
            # run synced hours later must not look alive
            beat = batch.heartbeat if batch.heartbeat is not None else batch.latest_time
            if batch.last_step is not None or beat is not None:
                # never backwards: batches arrive in any order
                step = -1 if batch.last_step is None else batch.last_step
                beat = -1.0 if beat is None else beat
                tx.execute("UPDATE runs SET "
                           "last_step = CASE WHEN ? > COALESCE(last_step, -1) THEN ? ELSE last_step END, "
                           "heartbeat_at = CASE WHEN ? > COALESCE(heartbeat_at, -1.0) THEN ? ELSE heartbeat_at END "
                           "WHERE id = ?", (step, step, beat, beat, run_id))
            if batch.status is not None:
                status, err, when = batch.status
                if status == "running":
                    tx.execute("UPDATE runs SET status = 'running', error = NULL, finished_at = NULL WHERE id = ?",
                               (run_id,))
                else:
                    tx.execute("UPDATE runs SET status = ?, error = ?, finished_at = ?, "
                               "heartbeat_at = CASE WHEN heartbeat_at IS NULL OR heartbeat_at < ? THEN ? "
                               "ELSE heartbeat_at END WHERE id = ?", (status, err, when, when, when, run_id))
        max_seq = tx.query("SELECT MAX(seq) FROM ingest_batches WHERE run_id = ? AND source = ?",
                           (run_id, batch.source))[0][0]
    return {"stored": bool(fresh), "max_seq": int(max_seq)}


# -- the HTTP side ----------------------------------------------------------------------------
async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) past ``limit`` bytes, by its Content-Length or by
    what actually arrives."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise InvalidRequest(400, "the Content-Length header is not a number")
        if int(length) > limit:
            raise _too_large(int(length), limit)
    parts = []
    size = 0
    try:
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise _too_large(size, limit)
            parts.append(part)
    except ClientDisconnect:
        # nobody reads the answer; this only keeps it out of the log as an internal error
        raise InvalidRequest(400, "the client closed the connection before the whole body arrived") from None
    return b"".join(parts)


def _too_large(size: int, limit: int) -> InvalidRequest:
    return InvalidRequest(413, f"the body has {'more than ' if size > limit else ''}{size} bytes, more than the "
                               f"server's limit max_body_bytes = {limit}; send smaller batches")


def _caller(request: Request) -> auth.Principal:
    """The caller, or 401 (no valid key) before anything is read."""
    who = auth.principal(request)
    if who is None:
        auth.require(request, auth.ALL_PROJECTS, "read")  # raises the 401 with its reason
    return who  # type: ignore[return-value]


def routes(state: Any) -> list:
    """The ingest routes over ``state`` (:class:`seetrain_server.app.ServerState`); sets
    ``state.ingest_gate``."""
    gate = IngestGate(state.settings.max_concurrent_ingest)
    state.ingest_gate = gate

    def busy() -> Response:
        return error(503, f"this server is busy ({gate.limit} ingest requests at once, the setting "
                          "max_concurrent_ingest); retry after the time in Retry-After",
                     retry_after=state.settings.retry_after_s)

    def put_run_blocking(who: auth.Principal, run_id: str, body: bytes) -> dict[str, Any]:
        columns = parse_run(run_id, body)
        auth_project = columns["project"]
        if not who.can(auth_project, "write"):
            raise HTTPException(403, f"this key may not write project {auth_project!r}")
        return put_run(state, who, run_id, columns)

    async def put_run_route(request: Request) -> Response:
        who = _caller(request)
        if not gate.try_enter():
            return busy()
        try:
            run_id = _run_id(request.path_params["run_id"])
            body = await _read_body(request, state.settings.max_body_bytes)
            return JSONResponse(await run_in_threadpool(put_run_blocking, who, run_id, body))
        except InvalidRequest as exc:
            return error(exc.status, str(exc))
        finally:
            gate.leave()

    def post_batch_blocking(who: auth.Principal, run_id: str, body: bytes) -> dict[str, Any]:
        _authorize_run(state, who, run_id, "write")
        return store_batch(state, run_id, parse_batch(body, state.settings))

    async def post_batch(request: Request) -> Response:
        who = _caller(request)
        if not gate.try_enter():
            return busy()
        try:
            run_id = _run_id(request.path_params["run_id"])
            body = await _read_body(request, state.settings.max_body_bytes)
            return JSONResponse(await run_in_threadpool(post_batch_blocking, who, run_id, body))
        except InvalidRequest as exc:
            return error(exc.status, str(exc))
        finally:
            gate.leave()

    def max_seq_blocking(who: auth.Principal, run_id: str, source: str) -> dict[str, Any]:
        _authorize_run(state, who, run_id, "read")
        rows = state.db.query("SELECT MAX(seq) FROM ingest_batches WHERE run_id = ? AND source = ?",
                              (run_id, source))
        return {"max_seq": -1 if not rows or rows[0][0] is None else int(rows[0][0])}

    async def get_batches(request: Request) -> Response:
        who = _caller(request)
        try:
            run_id = _run_id(request.path_params["run_id"])
            source = request.query_params.get("source")
            if source is None:
                raise InvalidRequest(422, "the query parameter 'source' is required (the sending process)")
            source = _text(source, "source", control=False)
            return JSONResponse(await run_in_threadpool(max_seq_blocking, who, run_id, source))
        except InvalidRequest as exc:
            return error(exc.status, str(exc))

    async def openapi_json(request: Request) -> Response:
        from .openapi import openapi_document

        return JSONResponse(openapi_document())

    return [
        Route("/api/v1/runs/{run_id}", put_run_route, methods=["PUT"]),
        Route("/api/v1/runs/{run_id}/batches", post_batch, methods=["POST"]),
        Route("/api/v1/runs/{run_id}/batches", get_batches, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi_json, methods=["GET"]),
    ]
