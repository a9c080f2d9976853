"""The ingest API's wire format (``/api/v1``), and helpers that build its requests.

Clients (the uploader, ``seetrain sync``, tests, benchmarks) send JSON. Every number array is
base64 of packed **little-endian** values, exactly the blobs of the store's ``scalar_chunks``
rows, so neither side does any work per point.

Create or update a run (idempotent)::

    PUT /api/v1/runs/{run_id}
    {"project": "vision",            # required
     "name": "resnet-3", "description": null, "group": null, "tags": ["a"],
     "config": {...}, "created_at": 1764800000.0, "host": "gpu-7", "pid": 4242}
    -> 200 {"run": run_id, "project": "vision"}

Send one batch of a run (the run must exist: PUT it first)::

    POST /api/v1/runs/{run_id}/batches
    {"source": "gpu-7-4242-9f3a",    # the sending process (its sequence numbers are its own)
     "seq": 0,                        # 0, 1, 2 ... per source; resending one stores nothing
     "scalars": [{"key": "loss",
                  "steps": "<base64 of int64 LE>",   # 0 <= step <= 2**63-1
                  "values": "<base64 of float64 LE>",   # NaN and +-inf allowed
                  "times": "<base64 of float64 LE>"}],  # wall time, seconds since the epoch
     "media": [{"key": "samples", "step": 10, "index": 0, "kind": "image", "format": "png",
                "data": "<base64 of the file>", "caption": null, "meta": {"width": 8},
                "time": 1764800000.0},
               {"key": "notes", "step": 10, "index": 0, "kind": "text", "text": "hello",
                "time": 1764800000.0}],
     "config": {...},                 # optional: replaces the run's config
     "summary": {...},                # optional: replaces the run's summary
     "status": {"status": "finished", "error": null, "time": 1764800100.0},   # optional
     "files": [{"kind": "code", "path": "train.py", "meta": {}, "time": 1764800000.0}],
     "heartbeat": 1764800000.0}       # optional
    -> 200 {"stored": true, "max_seq": 0}     # stored now
    -> 200 {"stored": false, "max_seq": 4}    # this (source, seq) was stored before

    GET /api/v1/runs/{run_id}/batches?source=S  -> 200 {"max_seq": N}  (-1: none yet)

A batch is one transaction: stored entirely or not at all. The three arrays of a scalar entry
have the same length; one entry becomes one ``scalar_chunks`` row, so a client sends a key's
points of one flush as one entry (several entries of one key are allowed). Errors answer
``{"error": message}``: 400 (not JSON), 401/403 (key), 404 (no such run), 413 (a limit of the
server's settings: body size, chunks or points per batch), 422 (a field of the wrong type or
value, a key too long, too many keys in the run, a key logged as both scalar and media),
503 with ``Retry-After`` (the replica is busy: retry later). Only a 200 means stored.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["encode_run", "encode_batch", "encode_scalars", "pack_int64", "pack_float64",
           "unpack_int64", "unpack_float64", "MEDIA_KINDS", "MEDIA_FORMATS", "RUN_STATUSES",
           "CONTENT_TYPES"]

#: statuses a batch may set
RUN_STATUSES = ("running", "finished", "crashed", "interrupted")
#: media kinds and the formats each accepts (text has no file)
MEDIA_FORMATS: dict[str, tuple[str, ...]] = {
    "image": ("png", "jpeg", "jpg", "gif", "webp"),
    "audio": ("flac", "wav", "mp3", "ogg"),
    "text": ("txt",),
}
MEDIA_KINDS = tuple(MEDIA_FORMATS)
#: the content type a media file is served with, by format
CONTENT_TYPES = {
    "png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "gif": "image/gif",
    "webp": "image/webp", "flac": "audio/flac", "wav": "audio/wav", "mp3": "audio/mpeg",
    "ogg": "audio/ogg", "txt": "text/plain; charset=utf-8",
}

_BIG_ENDIAN = sys.byteorder == "big"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _pack(typecode: str, values: Any) -> bytes:
    if isinstance(values, (bytes, bytearray, memoryview)):
        return bytes(values)  # packed already (little-endian, as the store keeps it)
    if hasattr(values, "dtype"):  # a numpy array: no per-element Python work
        return values.astype("<i8" if typecode == "q" else "<f8", copy=False).tobytes()
    packed = array(typecode, values)
    if _BIG_ENDIAN:  # pragma: no cover - no big-endian machine in CI
        packed.byteswap()
    return packed.tobytes()


def pack_int64(values: Iterable[int] | Any) -> bytes:
    """Little-endian int64 bytes of ``values`` (a sequence, a numpy array, or bytes as they are)."""
    return _pack("q", values)


def pack_float64(values: Iterable[float] | Any) -> bytes:
    """Little-endian float64 bytes of ``values`` (a sequence, a numpy array, or bytes as they are)."""
    return _pack("d", values)


def _unpack(typecode: str, data: bytes) -> list:
    out = array(typecode)
    out.frombytes(data)
    if _BIG_ENDIAN:  # pragma: no cover
        out.byteswap()
    return out.tolist()


def unpack_int64(data: bytes) -> list[int]:
    """The ints of little-endian int64 bytes (a ``steps`` blob)."""
    return _unpack("q", data)


def unpack_float64(data: bytes) -> list[float]:
    """The floats of little-endian float64 bytes (a ``vals`` or ``ts`` blob)."""
    return _unpack("d", data)


def encode_scalars(key: str, steps: Any, values: Any, times: Any) -> dict[str, str]:
    """One entry of a batch's ``scalars``: ``key`` with its steps, values and wall times
    (sequences, numpy arrays, or packed little-endian bytes)."""
    return {"key": key, "steps": _b64(pack_int64(steps)), "values": _b64(pack_float64(values)),
            "times": _b64(pack_float64(times))}


def encode_run(project: str, *, name: str | None = None, description: str | None = None,
               group: str | None = None, tags: Sequence[str] = (), config: Mapping[str, Any] | None = None,
               created_at: float | None = None, host: str | None = None, pid: int | None = None) -> dict:
    """The body of ``PUT /api/v1/runs/{run_id}``.

    >>> encode_run("vision", name="resnet-3", tags=["baseline"])
    {'project': 'vision', 'name': 'resnet-3', 'tags': ['baseline']}
    """
    body: dict[str, Any] = {"project": project}
    for field, value in (("name", name), ("description", description), ("group", group),
                         ("created_at", created_at), ("host", host), ("pid", pid)):
        if value is not None:
            body[field] = value
    if tags:
        body["tags"] = list(tags)
    if config is not None:
        body["config"] = dict(config)
    return body


def encode_batch(source: str, seq: int, scalars: Mapping[str, tuple[Any, Any, Any]] | None = None,
                 media: Sequence[Mapping[str, Any]] = (), config: Mapping[str, Any] | None = None,
                 summary: Mapping[str, Any] | None = None, status: Any = None,
                 files: Sequence[Mapping[str, Any]] = (), heartbeat: float | None = None) -> dict:
    """The body of ``POST /api/v1/runs/{run_id}/batches``.

    - ``scalars``: ``{key: (steps, values, times)}``, each a sequence, a numpy array or packed
      little-endian bytes.
    - ``media``: dicts with ``key``, ``step``, ``index``, ``kind``, ``format``, ``data`` (bytes,
      encoded here) or ``text``, and optionally ``caption``, ``meta``, ``time``.
    - ``status``: ``"finished"``, or ``(status, error)``, or a dict as on the wire.

    >>> body = encode_batch("host-1-ab", 0, {"loss": ([0, 1], [0.5, 0.25], [1.0, 2.0])})
    >>> body["seq"], body["scalars"][0]["key"], unpack_float64(base64.b64decode(body["scalars"][0]["values"]))
    (0, 'loss', [0.5, 0.25])
    """
    body: dict[str, Any] = {"source": source, "seq": seq}
    if scalars:
        body["scalars"] = [encode_scalars(key, *columns) for key, columns in scalars.items()]
    if media:
        items = []
        for item in media:
            entry = dict(item)
            data = entry.get("data")
            if isinstance(data, (bytes, bytearray, memoryview)):
                entry["data"] = _b64(bytes(data))
            items.append(entry)
        body["media"] = items
    if config is not None:
        body["config"] = dict(config)
    if summary is not None:
        body["summary"] = dict(summary)
    if status is not None:
        if isinstance(status, str):
            status = {"status": status}
        elif isinstance(status, (tuple, list)):
            status = {"status": status[0], "error": status[1] if len(status) > 1 else None}
        body["status"] = dict(status)
    if files:
        body["files"] = [dict(f) for f in files]
    if heartbeat is not None:
        body["heartbeat"] = heartbeat
    return body
