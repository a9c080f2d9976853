"""The server's logs: readable text for a terminal, or one JSON object per line for a log
pipeline (``seetrain server --log-format json``).

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``; a request's line
(logger ``seetrain.server.access``, written by :class:`AccessLogMiddleware` in place of
uvicorn's access log) adds ``method``, ``path``, ``status``, ``duration_ms`` and ``key_id``
(the public id of the API key, never the key). Health probes are logged at DEBUG, so a load
balancer polling ``/healthz`` does not flood the log.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["ACCESS_LOGGER", "FORMATS", "AccessLogMiddleware", "JsonFormatter", "TextFormatter", "configure"]

#: the values of ``--log-format``
FORMATS = ("text", "json")
#: the logger of one line per request
ACCESS_LOGGER = "seetrain.server.access"
#: the fields a request's record carries (``extra=``), in the order they are written
REQUEST_FIELDS = ("method", "path", "status", "duration_ms", "key_id", "client")
#: paths probed by load balancers and orchestrators: their requests are logged at DEBUG
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def _utc(created: float) -> str:
    return _dt.datetime.fromtimestamp(created, _dt.UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the request fields a record
    carries, and ``exception`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _utc(record.created), "level": record.levelname,
                                "logger": record.name, "message": record.getMessage()}
        for field in REQUEST_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``2026-01-02T03:04:05.678Z INFO seetrain.server.access: GET /api/v1/runs 200 3.1 ms key=…``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record.created)


def configure(log_format: str = "text", level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Send the server's logs (and uvicorn's) to ``stream`` (stderr) in ``log_format``."""
    if log_format not in FORMATS:
        raise ValueError(f"unknown log format {log_format!r}: one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own loggers: through the root handler, in the same format; its access log is
    # replaced by ours (the app's middleware), which knows the key id
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


class AccessLogMiddleware:
    """Pure ASGI middleware: one record per HTTP request on :data:`ACCESS_LOGGER`, after the
    response (or the failure) with its status and duration. The key id is read from the
    principal the authentication middleware (inside this one) put in the request's state."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped every handler

        async def send_and_record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self._record(scope, status, (time.perf_counter() - start) * 1000)

    def _record(self, scope: dict, status: int, duration_ms: float) -> None:
        path = scope.get("path", "")
        level = logging.DEBUG if path in PROBE_PATHS and status < 400 else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        who = (scope.get("state") or {}).get("principal")
        key_id = getattr(who, "key_id", None)
        client = scope.get("client")
        method = scope.get("method", "")
        duration_ms = round(duration_ms, 2)
        self.logger.log(level, "%s %s %s %.1f ms%s", method, path, status, duration_ms,
                        f" key={key_id}" if key_id else "",
                        extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms,
                               "key_id": key_id, "client": client[0] if client else None})
