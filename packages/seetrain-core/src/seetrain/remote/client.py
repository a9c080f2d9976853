"""The HTTP client of the team server's ingest API (``/api/v1``, see
``seetrain_server.protocol``).

Every request goes through :func:`seetrain.errors.with_retry` (exponential backoff with
jitter; a ``Retry-After`` of a 429 or 503 answer is honoured) around
:func:`seetrain.errors.with_circuit_breaker` (after ``failure_threshold`` failed requests in a
row the server is not asked again before ``recovery_timeout`` seconds): both count under the
integration ``seetrain.remote`` of :func:`seetrain.errors.get_integration_error_stats`.

What a retry cannot fix (400, 401, 403, 404, 413, 422) is raised at once as
:class:`PermanentError`, carrying the server's own message.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..errors import CircuitOpenError, SeeTrainError, with_circuit_breaker, with_retry
from . import INTEGRATION

__all__ = ["Client", "RemoteError", "PermanentError", "TransientError", "CircuitOpenError"]

#: answers a retry cannot change
PERMANENT = frozenset({400, 401, 403, 404, 405, 409, 413, 422})
#: the longest Retry-After honoured, in seconds
MAX_RETRY_AFTER = 60.0


class RemoteError(SeeTrainError):
    """A request to the team server failed."""

    def __init__(self, message: str, status: int | None = None, server_message: str | None = None) -> None:
        super().__init__(message)
        #: the HTTP status, None when there was no answer
        self.status = status
        #: the server's ``error`` text, when it gave one
        self.server_message = server_message


class PermanentError(RemoteError):
    """The server refused the request (400/401/403/404/413/422): sending it again would not help."""


class TransientError(RemoteError):
    """No answer, or one that may change (5xx, 429): retried."""

    def __init__(self, message: str, status: int | None = None, server_message: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status, server_message)
        #: seconds the server asked to wait (``Retry-After``)
        self.retry_after = retry_after


def _server_message(answer: Any) -> str:
    try:
        body = answer.json()
    except Exception:  # noqa: BLE001 - not JSON
        return (answer.text or "").strip()[:500]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return str(body)[:500]


def _retry_after(answer: Any) -> float | None:
    value = answer.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, min(MAX_RETRY_AFTER, float(value)))
    except ValueError:
        return None


class Client:
    """A client of one server (``host``, a base URL) with one API key.

    :param timeout: seconds a request may take (connecting: at most 5).
    :param max_retries: retries of one request after its first attempt.
    :param base_delay: the first backoff, doubled on each retry, plus jitter up to it.
    :param failure_threshold: failed attempts in a row that open the circuit.
    :param recovery_timeout: seconds the circuit stays open before one trial request.
    :param sleep: how to wait between attempts (tests pass their own).
    """

    def __init__(self, host: str, api_key: str | None = None, *, timeout: float = 30.0, max_retries: int = 3,
                 base_delay: float = 0.5, max_delay: float = 30.0, failure_threshold: int = 5,
                 recovery_timeout: float = 30.0, sleep: Callable[[float], Any] | None = None,
                 transport: Any = None) -> None:
        import httpx

        from .credentials import normalize_host

        self.host = normalize_host(host)
        headers = {"User-Agent": "seetrain-remote"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=self.host, headers=headers, transport=transport,
                                  timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)))
        self._sleep = sleep or time.sleep
        self._hint = threading.local()

        def wait(delay: float) -> None:
            hinted = getattr(self._hint, "retry_after", None)
            self._hint.retry_after = None
            self._sleep(max(delay, hinted) if hinted is not None else delay)

        breaker = with_circuit_breaker(failure_threshold, recovery_timeout, exceptions=TransientError,
                                       integration=INTEGRATION, name="request")
        retry = with_retry(max_retries, base_delay, max_delay=max_delay, exceptions=TransientError,
                           integration=INTEGRATION, name="upload", sleep=wait)
        self._attempt = breaker(self._request_once)
        self._request = retry(self._attempt)

    @property
    def breaker(self) -> Any:
        """The pybreaker circuit breaker of this client."""
        return self._attempt.breaker

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one attempt ----------------------------------------------------------------------
    def _request_once(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        import httpx

        self._hint.retry_after = None
        try:
            answer = self._http.request(method, path, json=body, params=params)
        except httpx.TransportError as exc:
            raise TransientError(f"{method} {self.host}{path}: no answer ({type(exc).__name__}: {exc})") from exc
        status = answer.status_code
        if status == 200:
            try:
                return answer.json()
            except ValueError as exc:
                raise TransientError(f"{method} {self.host}{path}: the answer is not JSON", status) from exc
        message = _server_message(answer)
        if status in PERMANENT or (400 <= status < 500 and status != 429 and status != 408):
            hint = ""
            if status == 401:
                hint = f" (the API key is missing or wrong: seetrain login {self.host})"
            elif status == 403:
                hint = " (the API key may not write to this project)"
            raise PermanentError(f"the server {self.host} refused {method} {path}: {status} {message}{hint}",
                                 status, message)
        retry_after = _retry_after(answer) if status in (429, 503) else None
        self._hint.retry_after = retry_after
        raise TransientError(f"{method} {self.host}{path}: {status} {message}", status, message, retry_after)

    # -- the API --------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        """One request with retries and the breaker: the answer's JSON. Raises
        :class:`PermanentError`, :class:`TransientError` (retries spent) or
        :class:`~seetrain.errors.CircuitOpenError`."""
        return self._request(method, path, body, params)

    def put_run(self, run_id: str, body: dict) -> dict:
        """``PUT /api/v1/runs/{run_id}``: create or update the run."""
        return self.request("PUT", f"/api/v1/runs/{run_id}", body)

    def send_batch(self, run_id: str, body: dict) -> dict:
        """``POST /api/v1/runs/{run_id}/batches``: ``{"stored": bool, "max_seq": N}``."""
        return self.request("POST", f"/api/v1/runs/{run_id}/batches", body)

    def max_seq(self, run_id: str, source: str) -> int:
        """The highest sequence number of ``source`` the server stored for the run (-1: none)."""
        return int(self.request("GET", f"/api/v1/runs/{run_id}/batches", params={"source": source})["max_seq"])
