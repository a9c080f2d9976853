"""The server's ASGI app: health, the ingest API (``/api/v1``), the admin API, and the
dashboard's pages and JSON API served from the server's database."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from .config import Settings
from .db import Database, open_database
from .media_store import MediaStore, open_media_store


@dataclasses.dataclass
class ServerState:
    """Everything a request handler may use. Nothing in it is state of the replica: the
    database and the media store hold it all (caches aside)."""

    settings: Settings
    db: Database
    media: MediaStore


def server_state(request: Request) -> ServerState:
    return request.app.state.server


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """The one shape of every error the server answers: ``{"error": message, ...}``."""
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra.pop("retry_after"))
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def create_app(settings: Settings | None = None, db: Database | None = None) -> Starlette:
    from . import admin, auth, dashboard, health, ingest

    settings = settings or Settings()
    db = db or open_database(settings.db_url)
    state = ServerState(settings=settings, db=db, media=open_media_store(settings.media_url))
    routes = [*health.routes(state), *ingest.routes(state), *admin.routes(state), *dashboard.routes(state)]

    async def http_error(request: Request, exc: Any) -> JSONResponse:
        response = error(exc.status_code, exc.detail)
        # what a handler set (Retry-After on a 503, WWW-Authenticate on a 401) reaches the client
        for name, value in (getattr(exc, "headers", None) or {}).items():
            response.headers[name] = value
        return response

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        import logging

        logging.getLogger("seetrain.server").exception("internal error on %s", request.url.path)
        return error(500, f"internal server error ({type(exc).__name__})")

    from starlette.exceptions import HTTPException

    app = Starlette(routes=routes, middleware=auth.middleware(state),
                    exception_handlers={HTTPException: http_error, Exception: internal_error})
    app.state.server = state
    return app
