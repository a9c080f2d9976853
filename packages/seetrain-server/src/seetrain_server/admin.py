"""The admin API (``/api/v1/admin``): users and API keys. Every route needs the admin role on
``*`` (a key made with ``--project '*' --role admin``, or any key of an admin user).

- ``POST /api/v1/admin/users`` ``{"name": str, "admin": bool}`` → 201 ``{"user": name}``;
  409 when the name is taken.
- ``POST /api/v1/admin/keys`` ``{"user": str, "project": str, "role": "read"|"write"|"admin",
  "label": str|null}`` → 201 ``{"key": "stk_…", "id": "…"}`` (the only time the key is shown);
  404 for an unknown user, 422 for a bad role, project or label.
- ``GET /api/v1/admin/keys`` → ``{"keys": [{"id", "user", "label", "roles": {project: role},
  "created_at", "revoked_at"}]}`` (times in seconds since the epoch; never a hash).
- ``DELETE /api/v1/admin/keys/{key_id}`` → 200 ``{"revoked": key_id}`` (also when it was revoked
  already); 404 for an unknown key. This replica refuses the key from its next request on, the
  others within the key cache's TTL (:data:`seetrain_server.auth.KEY_CACHE_TTL_S`).

Bodies are JSON objects of at most :data:`MAX_BODY_BYTES`; a malformed body is 400, a field of
the wrong type or value 422 naming the field, an unknown field 422.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import auth
from .app import error

#: largest body the admin API reads
MAX_BODY_BYTES = 64 * 1024


class _Invalid(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _json_object(request: Request, fields: dict[str, bool]) -> dict[str, Any]:
    """The request's body as a JSON object with only ``fields`` (name -> required)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise _Invalid(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _Invalid(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(bytes(body) or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Invalid(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _Invalid(422, "the body must be a JSON object with the fields " + ", ".join(fields))
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise _Invalid(422, f"unknown field(s) {', '.join(map(repr, unknown))}: the fields are {', '.join(fields)}")
    missing = [name for name, required in fields.items() if required and name not in data]
    if missing:
        raise _Invalid(422, f"missing field(s) {', '.join(map(repr, missing))}")
    return data


def _field(validate: Any, data: dict, name: str) -> Any:
    try:
        return validate(data.get(name))
    except ValueError as exc:
        raise _Invalid(422, f"{name!r}: {exc}") from None


def routes(state: Any) -> list:
    def admin_only(request: Request) -> None:
        auth.require(request, auth.ALL_PROJECTS, "admin")

    async def add_user(request: Request) -> Response:
        admin_only(request)
        try:
            data = await _json_object(request, {"name": True, "admin": False})
            name = _field(auth.validate_user_name, data, "name")
            admin = data.get("admin", False)
            if not isinstance(admin, bool):
                raise _Invalid(422, "'admin': true or false")
            await run_in_threadpool(auth.create_user, state.db, name, admin)
        except _Invalid as exc:
            return error(exc.status, str(exc))
        except auth.UserExistsError as exc:
            return error(409, str(exc))
        return JSONResponse({"user": name}, status_code=201)

    async def create_key(request: Request) -> Response:
        admin_only(request)
        try:
            data = await _json_object(request, {"user": True, "project": True, "role": True, "label": False})
            user = _field(auth.validate_user_name, data, "user")
            project = _field(auth.validate_project, data, "project")
            role = _field(auth.validate_role, data, "role")
            label = _field(auth.validate_label, data, "label")
            key = await run_in_threadpool(auth.create_key, state.db, user, project, role, label)
        except _Invalid as exc:
            return error(exc.status, str(exc))
        except auth.UnknownUserError as exc:
            return error(404, str(exc))
        return JSONResponse({"key": key, "id": auth.key_id_of(key)}, status_code=201,
                            headers={"Cache-Control": "no-store"})

    async def keys(request: Request) -> Response:
        admin_only(request)
        return JSONResponse({"keys": await run_in_threadpool(auth.list_keys, state.db)})

    async def revoke(request: Request) -> Response:
        admin_only(request)
        key_id = request.path_params["key_id"]
        try:
            await run_in_threadpool(auth.revoke_key, state.db, key_id)
        except auth.UnknownKeyError as exc:
            return error(404, str(exc))
        cache = getattr(state, "key_cache", None)
        if cache is not None:
            cache.evict(key_id)
        return JSONResponse({"revoked": key_id})

    return [
        Route("/api/v1/admin/users", _by_method(POST=add_user), methods=_ANY),
        Route("/api/v1/admin/keys", _by_method(GET=keys, POST=create_key), methods=_ANY),
        Route("/api/v1/admin/keys/{key_id}", _by_method(DELETE=revoke), methods=_ANY),
    ]


_ANY = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _by_method(**handlers: Any) -> Any:
    """One endpoint per path answering 405 itself for other methods: a route limited to some
    methods would let the dashboard's catch-all mount answer the others with a 404."""
    if "GET" in handlers:
        handlers.setdefault("HEAD", handlers["GET"])
    allow = ", ".join(handlers)

    async def endpoint(request: Request) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            response = error(405, f"{request.method} is not allowed on {request.url.path}: {allow}")
            response.headers["Allow"] = allow
            return response
        return await handler(request)

    return endpoint
