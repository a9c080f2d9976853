"""Health checks for load balancers and orchestrators (no API key needed).

- ``GET /healthz`` (liveness): 200 ``{"status": "ok"}`` while the process serves requests. It
  does not touch the database, so an outage of the database does not get every replica
  restarted.
- ``GET /readyz`` (readiness): 200 ``{"status": "ready", "database": "ok"}`` when the database
  answers within :data:`READY_TIMEOUT_S` seconds, else 503 ``{"status": "not ready", "database":
  "<reason>"}`` with ``Retry-After``: take the replica out of rotation, not down.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

#: longest wait for the database's answer before /readyz says not ready
READY_TIMEOUT_S = 5.0
_NO_STORE = {"Cache-Control": "no-store"}


def routes(state: Any) -> list:
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def readyz(request: Request) -> JSONResponse:
        import anyio
        import anyio.to_thread

        reason = None
        with anyio.move_on_after(READY_TIMEOUT_S) as scope:
            try:
                # blocking (a pooled connection): in a worker thread, abandoned past the timeout
                await anyio.to_thread.run_sync(state.db.ping, abandon_on_cancel=True)
            except Exception as exc:  # noqa: BLE001 - DatabaseError, or whatever the driver raised
                reason = str(exc) or type(exc).__name__
        if scope.cancelled_caught:
            reason = f"no answer within {READY_TIMEOUT_S:g} s"
        if reason is not None:
            return JSONResponse({"status": "not ready", "database": reason}, status_code=503,
                                headers={**_NO_STORE, "Retry-After": str(state.settings.retry_after_s)})
        return JSONResponse({"status": "ready", "database": "ok"}, headers=_NO_STORE)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
