"""The dashboard on the server: the same pages and JSON API as ``seetrain ui`` (the app of
:func:`seetrain.ui.create_app`), read from the server's database by :class:`ServerReader`,
with media from the server's media store and every read checked against the caller's roles.

With authentication on, the page and its static assets load without a key; the page asks for
one (kept in the browser's localStorage, sent as ``Authorization: Bearer``) when the API
answers 401. Media are fetched by the page with that header and shown from blob URLs, so a key
never appears in a URL (nor in an access log).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Mount

from . import auth
from .reader import ServerReader


def auth_check(request: Request, project: str | None, role: str) -> None:
    """The dashboard's check: ``project`` None asks only for a valid key (401 without one)."""
    if project is None:
        if auth.principal(request) is None:
            auth.require(request, auth.ALL_PROJECTS, role)  # raises the 401 with its reason
        return
    auth.require(request, project, role)


def dashboard_app(state: Any):
    """The dashboard's ASGI app over the server's database and media store."""
    from seetrain.ui import create_app

    def media(path: str) -> tuple[bytes, str] | None:
        return state.media.get(state.db, path)

    return create_app(reader_factory=lambda: ServerReader(state.db), media=media, auth_check=auth_check,
                      label="SeeTrain server")


def routes(state: Any) -> list:
    """The dashboard at ``/`` (pages, ``/api/…`` JSON, ``/media/<path>``, ``/static``). It
    must be the last of the server's routes: the ingest, admin and health routes are matched
    before it."""
    return [Mount("/", app=dashboard_app(state), name="dashboard")]
