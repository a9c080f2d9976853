"""The dashboard's ASGI app: a JSON API over the store, the media files, and the static front end.

Endpoints are plain (sync) functions: Starlette runs them in its thread pool, so the numpy
work of a large series never blocks the event loop, and :class:`StoreReader` gives each
thread its own SQLite connection. Every error a request can cause is answered with a 4xx
and ``{"error": message}``; a store that cannot be read with a 503 (locked, newer layout) or a
500 (a damaged file: the message names it and ``seetrain doctor``), in the same JSON, which the
page shows. The OpenAPI schema is generated from the docstrings below the ``---`` line of each
endpoint.

The same app serves another reader (the team server's, over its database): :func:`create_app`
takes a ``reader_factory``, a ``media`` callable that returns a media file's bytes, and an
``auth_check`` that every read endpoint calls with the project it reads.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.schemas import SchemaGenerator
from starlette.staticfiles import StaticFiles

from .._version import __version__
from ..store.reader import StoreReader
from ..store.schema import (
    DB_NAME,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    resolve_dir,
)
from . import _queries as q

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
#: most keys one series request may ask for
MAX_KEYS = 500


class ApiJSON(JSONResponse):
    """JSON with NaN and ±inf written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
    (JSON has no NaN, and browsers reject the bare tokens Python would write)."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(_finite(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else ("NaN" if value != value else "Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class _DocstringSchema(SchemaGenerator):
    """Starlette's generator, degrading to each docstring's first line where PyYAML is missing."""

    def parse_docstring(self, func_or_method: Any) -> dict[str, Any]:
        try:
            import yaml  # noqa: F401
        except ImportError:
            doc = (func_or_method.__doc__ or "").strip().splitlines()
            return {"summary": doc[0]} if doc else {}
        return super().parse_docstring(func_or_method)


class _Store:
    """Opens the store on first use, so the dashboard can start before the first run does."""

    def __init__(self, dir: str | os.PathLike | None) -> None:
        self.directory = resolve_dir(dir)
        self._reader: StoreReader | None = None
        self._lock = threading.Lock()

    @property
    def exists(self) -> bool:
        if self._reader is not None:
            return True
        try:  # an empty file is no store yet: the run creating it fills it
            return os.stat(os.path.join(self.directory, DB_NAME)).st_size > 0
        except OSError:
            return False

    @property
    def reader(self) -> StoreReader:
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    try:
                        self._reader = StoreReader(self.directory)
                    except StoreNotFoundError as exc:
                        raise q.NotFound(f"{exc}; start a run with seetrain.init(dir={self.directory!r})") from None
        return self._reader


class _Source:
    """A reader made by a factory (the team server's), opened on first use."""

    exists = True

    def __init__(self, reader_factory: Callable[[], StoreReader], label: str | None = None) -> None:
        self._factory = reader_factory
        self._reader: StoreReader | None = None
        self._lock = threading.Lock()
        self._label = label

    @property
    def reader(self) -> StoreReader:
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    self._reader = self._factory()
        return self._reader

    @property
    def directory(self) -> str:
        return self._label if self._label is not None else str(self.reader.directory)


#: (request, project or None, role) -> None, raising an HTTPException (401, 403) to refuse.
#: ``project`` None asks only whether the caller may use the API at all.
AuthCheck = Callable[[Request, "str | None", str], None]
#: path of a media file (as the reader's rows name it) -> (bytes, content type), None: no such file
MediaSource = Callable[[str], "tuple[bytes, str] | None"]


def _store(request: Request) -> _Store | _Source:
    return request.app.state.store


def _check(request: Request, project: str | None, role: str = "read") -> None:
    check = request.app.state.auth_check
    if check is not None:
        check(request, project, role)


def _may_read(request: Request, project: str) -> bool:
    """Whether the caller may read ``project`` (a 401 still propagates: the page asks for a key)."""
    try:
        _check(request, project)
    except HTTPException as exc:
        if exc.status_code == 403:
            return False
        raise
    return True


def _run_for(request: Request, reader: StoreReader) -> dict[str, Any]:
    """The run of the path's ``{run}``, once the caller may read its project.

    Behind an access check, a caller that may not read every project gets the same 403 for
    a run of a project it may not read, a run that does not exist and an id prefix that
    matches several runs: it learns neither the run's project nor whether the run exists."""
    _check(request, None)
    ident = request.path_params["run"]
    refused = HTTPException(403, f"this key may not read run {ident!r}")
    try:
        run = q.resolve_run(reader, ident)
    except q.NotFound:
        if request.app.state.auth_check is None or _may_read(request, "*"):
            raise
        raise refused from None
    if not _may_read(request, run["project"]):
        raise refused
    return run


def _keys_param(request: Request) -> list[str]:
    keys = request.query_params.getlist("key")
    if not keys:
        raise q.BadRequest("give at least one key: ?key=train/loss&key=val/loss")
    if len(keys) > MAX_KEYS:
        raise q.BadRequest(f"at most {MAX_KEYS} keys per request, got {len(keys)}")
    if any(not k for k in keys):
        raise q.BadRequest("a key must not be empty")
    return list(dict.fromkeys(keys))


# -- endpoints ----------------------------------------------------------------------------------

def store_info(request: Request) -> Response:
    """The store being served.
    ---
    summary: The store directory and whether it exists yet
    responses:
      200:
        description: '{"directory": str, "exists": bool, "version": str}'
    """
    _check(request, None)
    store = _store(request)
    return ApiJSON({"directory": store.directory, "exists": store.exists, "version": __version__,
                    "auth": request.app.state.auth_check is not None})


def projects(request: Request) -> Response:
    """The projects of the store, most recently used first.
    ---
    summary: List projects
    responses:
      200:
        description: '{"projects": [{"name": str, "runs": int, "last_run_at": float, "statuses":
          {status: count}}]}; empty while the store does not exist yet'
    """
    _check(request, None)
    store = _store(request)
    if not store.exists:
        return ApiJSON({"projects": [], "directory": store.directory, "exists": False})
    rows = [p for p in q.projects(store.reader) if _may_read(request, p["name"])]
    return ApiJSON({"projects": rows, "directory": store.directory, "exists": True})


def project_runs(request: Request) -> Response:
    """The runs of one project, newest first.
    ---
    summary: List the runs of a project with their summaries
    parameters:
      - {name: project, in: path, required: true, schema: {type: string}}
    responses:
      200:
        description: '{"project": str, "runs": [run with "summary"], "metric_keys": [str]}'
      404:
        description: No such project
    """
    project = request.path_params["project"]
    _check(request, project)  # before looking: a 403 says the same whether the project exists or not
    return ApiJSON(q.project_runs(_store(request).reader, project))


def run_detail(request: Request) -> Response:
    """One run: its fields, config, summary, keys with their kinds, media steps and files.
    ---
    summary: Get a run
    parameters:
      - {name: run, in: path, required: true, description: run id, unique id prefix or unique name,
         schema: {type: string}}
    responses:
      200:
        description: 'the run; "keys": [{"key": str, "kind": "scalar"|"image"|"audio"|"text",
          "steps": [int] (media only)}]'
      404:
        description: No such run
    """
    reader = _store(request).reader
    run = _run_for(request, reader)
    return ApiJSON(q.run_detail(reader, run["id"]))


def run_scalars(request: Request) -> Response:
    """Scalar series of a run, exact or downsampled with a min/max envelope.
    ---
    summary: Get scalar series (downsampled to max_points with a min/max envelope)
    description: Each series holds at most max_points points. When the requested range holds
      more, it is cut into max_points/2 buckets and each bucket keeps its minimum and its
      maximum, so spikes stay visible; "exact" says whether every point is there. Ask again
      with step_min/step_max to zoom in; since_step returns only the points after that step.
      NaN and infinite values are null in "values", and named in "nonfinite" by their index.
    parameters:
      - {name: run, in: path, required: true, schema: {type: string}}
      - {name: key, in: query, required: true, description: a scalar key; repeat for several,
         schema: {type: array, items: {type: string}}}
      - {name: max_points, in: query, schema: {type: integer, minimum: 2, maximum: 200000, default: 2000}}
      - {name: step_min, in: query, schema: {type: integer}}
      - {name: step_max, in: query, schema: {type: integer}}
      - {name: since_step, in: query, schema: {type: integer}}
    responses:
      200:
        description: '{"run": str, "series": {key: {"steps": [int], "values": [float|null],
          "times": [float], "total": int, "exact": bool, "nonfinite": {index: "NaN"|"Infinity"|"-Infinity"}}}}'
      400:
        description: Bad parameters (not an integer, step_min > step_max, a media key)
      404:
        description: No such run or key
    """
    reader = _store(request).reader
    run = _run_for(request, reader)
    params = request.query_params
    keys = _keys_param(request)
    max_points = q.parse_int("max_points", params.get("max_points"), minimum=2, maximum=q.MAX_MAX_POINTS,
                             default=q.DEFAULT_MAX_POINTS)
    step_min = q.parse_int("step_min", params.get("step_min"))
    step_max = q.parse_int("step_max", params.get("step_max"))
    since_step = q.parse_int("since_step", params.get("since_step"))
    if step_min is not None and step_max is not None and step_min > step_max:
        raise q.BadRequest(f"bad range: step_min ({step_min}) is greater than step_max ({step_max})")
    cache = request.app.state.series_cache
    out = {key: q.series(reader, run["id"], key, max_points=max_points, step_min=step_min, step_max=step_max,
                         since_step=since_step, cache=cache) for key in keys}
    return ApiJSON({"run": run["id"], "status": run["status"], "last_step": run["last_step"], "series": out})


def run_media(request: Request) -> Response:
    """The images, audio clips or texts logged under one key of a run.
    ---
    summary: List the media of a key
    parameters:
      - {name: run, in: path, required: true, schema: {type: string}}
      - {name: key, in: query, required: true, schema: {type: string}}
      - {name: step, in: query, description: only this step, schema: {type: integer}}
    responses:
      200:
        description: '{"key": str, "kind": str, "steps": [int], "items": [{"step": int, "index": int,
          "kind": str, "url": str|null, "text": str|null, "caption": str|null, "meta": {}}]}'
      400:
        description: Bad parameters, or a scalar key
      404:
        description: No such run or key
    """
    reader = _store(request).reader
    run = _run_for(request, reader)
    key = request.query_params.get("key")
    if not key:
        raise q.BadRequest("give the media key: ?key=samples/image")
    step = q.parse_int("step", request.query_params.get("step"))
    return ApiJSON(q.media_items(reader, run["id"], key, step))


def media_file(request: Request) -> Response:
    # a file from the store's media folder only; see _queries.media_file for the checks
    store = _store(request)
    media = request.app.state.media
    if media is not None:  # another reader's media (the team server's database or object store)
        path = request.path_params["path"]
        _check(request, None)
        project = getattr(store.reader, "media_project", lambda p: None)(path)
        if project is None:  # unknown to the reader: the same 404 as a missing file
            raise q.NotFound(f"no media file {path!r}")
        _check(request, project)
        found = media(path)
        if found is None:
            raise q.NotFound(f"no media file {path!r}")
        data, content_type = found
        # private: the response may depend on the caller's key
        return Response(data, media_type=content_type,
                        headers={"Cache-Control": "private, max-age=86400, immutable",
                                 "X-Content-Type-Options": "nosniff"})
    path = q.media_file(store.directory, request.path_params["path"])
    return FileResponse(path, headers={"Cache-Control": "max-age=86400, immutable",
                                       "X-Content-Type-Options": "nosniff"})


def openapi(request: Request) -> Response:
    return ApiJSON(request.app.state.schemas.get_schema(routes=request.app.routes))


def index(request: Request) -> Response:
    return FileResponse(os.path.join(STATIC_DIR, "index.html"), headers={"Cache-Control": "no-cache"})


def api_not_found(request: Request) -> Response:
    raise q.NotFound(f"no API endpoint {request.url.path!r}; see /api/openapi.json")


# -- errors ---------------------------------------------------------------------------------------

def _error(status: int, message: str) -> Response:
    return ApiJSON({"error": message, "status": status}, status_code=status)


async def _bad_request(request: Request, exc: Exception) -> Response:
    return _error(400, str(exc))


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail if exc.status_code != 404 else f"not found: {request.url.path}")


async def _store_error(request: Request, exc: Exception) -> Response:
    # a damaged file is a 500 that says what to run; an unreadable store otherwise (locked,
    # newer layout) is the server's passing condition, not a bug
    return _error(500 if isinstance(exc, StoreCorruptError) else 503, str(exc))


async def _internal_error(request: Request, exc: Exception) -> Response:
    # a bug: still JSON with a message for the page (the traceback goes to the server's log)
    return _error(500, f"internal error of the dashboard: {type(exc).__name__}: {exc}")


def create_app(dir: str | os.PathLike | None = None, *, reader_factory: Callable[[], StoreReader] | None = None,
               media: MediaSource | None = None, auth_check: AuthCheck | None = None,
               label: str | None = None) -> Starlette:
    """The dashboard of the store at ``dir`` (default ``SEETRAIN_DIR`` or ``./seetrain``) as an
    ASGI app. The store may not exist yet: pages show it empty until a run creates it.

    Another reader instead of a store directory (the team server does this):

    - ``reader_factory``: returns a :class:`StoreReader` (or a subclass reading elsewhere);
      called once, on the first request that reads.
    - ``media``: ``path -> (bytes, content_type)`` or None, serving ``/media/<path>`` (the
      ``url`` of the reader's media rows); the reader's ``media_project(path)`` names the
      project whose read access a file needs.
    - ``auth_check``: ``(request, project, role)``, raising an ``HTTPException`` (401: no valid
      key, 403: not allowed) to refuse; called by every read endpoint with the project it reads
      (``None``: the endpoint reads no project's data). The projects list keeps the projects the
      caller may read.
    - ``label``: what the page shows in place of the store directory.

    >>> from starlette.testclient import TestClient
    >>> from seetrain.ui import create_app
    >>> client = TestClient(create_app("/tmp/no-store-here"))
    >>> client.get("/api/projects").json()["projects"]
    []
    """
    routes = [
        Route("/", index, include_in_schema=False),
        Route("/api/store", store_info),
        Route("/api/projects", projects),
        Route("/api/projects/{project:path}/runs", project_runs),
        Route("/api/runs/{run}", run_detail),
        Route("/api/runs/{run}/scalars", run_scalars),
        Route("/api/runs/{run}/media", run_media),
        Route("/api/openapi.json", openapi, include_in_schema=False),
        Route("/api/{rest:path}", api_not_found, include_in_schema=False),
        Route("/media/{path:path}", media_file, include_in_schema=False),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            q.BadRequest: _bad_request,
            q.NotFound: _not_found,
            HTTPException: _http_error,
            StoreError: _store_error,
            Exception: _internal_error,
        },
    )
    if reader_factory is not None:
        if dir is not None:
            raise TypeError("give a store directory or a reader_factory, not both")
        app.state.store = _Source(reader_factory, label)
    else:
        app.state.store = _Store(dir)
    app.state.media = media
    app.state.auth_check = auth_check
    app.state.series_cache = q.SeriesCache()
    app.state.schemas = _DocstringSchema({
        "openapi": "3.0.3",
        "info": {"title": "SeeTrain dashboard API", "version": __version__,
                 "description": "Read-only JSON API over a SeeTrain store. Errors are "
                                "{\"error\": message, \"status\": code}."},
    })
    return app
