"""Error handling for SeeTrain and for integrations.

* :func:`with_retry` -- retry with exponential backoff and jitter (built on tenacity);
* :func:`with_circuit_breaker` -- stop calling what keeps failing, try again later (pybreaker);
* :func:`with_graceful_degradation` -- on failure, return a fallback instead of raising;
* :func:`get_integration_error_stats` -- failures, retries, fallbacks taken, breaker state and
  last error, per integration and per operation.

Each decorator works on plain functions, methods and ``async def`` functions and keeps the
wrapped function's name, docstring and signature. Every failure SeeTrain itself catches
instead of raising into the training loop (a sink that raises, a media value that cannot be
encoded, an adapter callback that breaks) is recorded here too, and logged once.
"""

from __future__ import annotations

import functools as _functools
import threading
import time
from typing import Any, Callable, TypeVar

__all__ = [
    "with_retry",
    "with_circuit_breaker",
    "with_graceful_degradation",
    "CircuitOpenError",
    "get_integration_error_stats",
    "reset_integration_error_stats",
    "record_failure",
    "SeeTrainError",
]

class _Logger:
    """The ``seetrain`` logger, looked up when first used: ``logging`` is imported only when
    there is something to say, which keeps it off the path of ``seetrain.init()``."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("seetrain"), name)


log = _Logger()


def _inspect():
    import inspect  # on first use: keeps `init()` fast

    return inspect


class SeeTrainError(Exception):
    """Base class of the errors SeeTrain raises on purpose."""


_stats_lock = threading.Lock()
_stats: dict[str, dict[str, dict[str, Any]]] = {}
_logged: set[tuple[str, str]] = set()


def _entry(integration: str, operation: str) -> dict[str, Any]:
    ops = _stats.setdefault(integration, {})
    entry = ops.get(operation)
    if entry is None:
        entry = ops[operation] = {
            "calls": 0,
            "failures": 0,
            "retries": 0,
            "fallbacks": 0,
            "dropped": 0,
            "breaker_state": None,
            "last_error": None,
            "last_error_at": None,
        }
    return entry


def record_failure(integration: str, operation: str, exc: BaseException, *, quiet: bool = False) -> None:
    """Count a failure of ``operation`` in ``integration`` and log it the first time."""
    message = f"{type(exc).__name__}: {exc}"
    with _stats_lock:
        entry = _entry(integration, operation)
        entry["failures"] += 1
        entry["last_error"] = message
        entry["last_error_at"] = time.time()
        first = (integration, operation) not in _logged
        _logged.add((integration, operation))
    if first and not quiet:
        log.warning(
            "seetrain: %s failed in %s (%s); training goes on, further failures of it are "
            "counted in seetrain.errors.get_integration_error_stats()",
            operation, integration, message,
        )


def record_event(integration: str, operation: str, field: str, amount: int = 1) -> None:
    """Add ``amount`` to a counter (``calls``, ``retries``, ``fallbacks``) of an operation."""
    with _stats_lock:
        _entry(integration, operation)[field] += amount


def set_breaker_state(integration: str, operation: str, state: str) -> None:
    with _stats_lock:
        _entry(integration, operation)["breaker_state"] = state


def get_integration_error_stats(integration: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Failures, retries, fallbacks taken, breaker state and last error, per integration and
    per operation. A copy: changing it changes nothing.

    >>> from seetrain.errors import get_integration_error_stats
    >>> isinstance(get_integration_error_stats(), dict)
    True
    """
    with _stats_lock:
        items = {name: {op: dict(v) for op, v in ops.items()} for name, ops in _stats.items()}
    if integration is not None:
        return {integration: items.get(integration, {})}
    return items


def reset_integration_error_stats() -> None:
    """Forget all recorded statistics (e.g. between tests)."""
    with _stats_lock:
        _stats.clear()
        _logged.clear()


# -- decorators -------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_INTEGRATION = "user"


def _operation_name(func: Callable, name: str | None) -> str:
    return name or getattr(func, "__qualname__", getattr(func, "__name__", repr(func)))


def with_retry(
    max_retries: int = 3,
    base_delay: float = 1.0,
    *,
    max_delay: float = 60.0,
    jitter: float | None = None,
    exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    integration: str = DEFAULT_INTEGRATION,
    name: str | None = None,
    sleep: Callable[[float], Any] | None = None,
) -> Callable[[F], F]:
    """Retry a function that raises, waiting ``base_delay * 2**n`` seconds (plus random jitter
    up to ``jitter``, default ``base_delay``; at most ``max_delay``) between attempts.

    After ``max_retries`` retries the last exception is raised unchanged. Only ``exceptions``
    are retried; anything else is raised at once. Built on tenacity.

    >>> from seetrain.errors import with_retry
    >>> calls = []
    >>> @with_retry(max_retries=3, base_delay=0.0)
    ... def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise ConnectionError("try again")
    ...     return "ok"
    >>> flaky(), len(calls)
    ('ok', 3)
    """
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")

    def decorate(func: F) -> F:
        import tenacity

        operation = _operation_name(func, name)
        jitter_max = base_delay if jitter is None else jitter

        def wait(retry_state: Any) -> float:
            # base_delay * 2**n plus uniform jitter, the sum capped at max_delay
            delay = base_delay * 2 ** (retry_state.attempt_number - 1) + __import__("random").uniform(0, jitter_max)
            return min(max_delay, delay) if base_delay > 0 else 0.0

        def before_sleep(state: Any) -> None:
            record_event(integration, operation, "retries")
            exc = state.outcome.exception() if state.outcome is not None else None
            if exc is not None:
                record_failure(integration, operation, exc, quiet=True)

        options: dict[str, Any] = dict(
            stop=tenacity.stop_after_attempt(max_retries + 1),
            wait=wait,
            retry=tenacity.retry_if_exception_type(exceptions),
            reraise=True,
            before_sleep=before_sleep,
        )

        if sleep is not None:
            options["sleep"] = sleep

        if _inspect().iscoroutinefunction(func):

            @_functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                record_event(integration, operation, "calls")
                try:
                    return await tenacity.AsyncRetrying(**options)(func, *args, **kwargs)
                except BaseException as exc:
                    record_failure(integration, operation, exc, quiet=True)
                    raise

            return async_wrapper  # type: ignore[return-value]

        @_functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            record_event(integration, operation, "calls")
            try:
                return tenacity.Retrying(**options)(func, *args, **kwargs)
            except BaseException as exc:
                record_failure(integration, operation, exc, quiet=True)
                raise

        return wrapper  # type: ignore[return-value]

    return decorate


class CircuitOpenError(SeeTrainError):
    """The circuit breaker is open: the call was not attempted."""


def _breaker_storage(clock: Callable[[], float]):
    """pybreaker keeps ``opened_at`` as a datetime and compares it with ``datetime.now``;
    this storage measures the time since opening with ``clock`` instead, so a test (or a
    caller with its own notion of time) controls when the breaker half-opens."""
    import datetime as dt

    import pybreaker

    class ClockStorage(pybreaker.CircuitMemoryStorage):
        def __init__(self) -> None:
            super().__init__(pybreaker.STATE_CLOSED)
            self._opened_clock: float | None = None

        @property
        def opened_at(self):  # type: ignore[override]
            if self._opened_clock is None:
                return None
            elapsed = clock() - self._opened_clock
            return dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=elapsed)

        @opened_at.setter
        def opened_at(self, value) -> None:
            self._opened_clock = clock()

    return ClockStorage()


def with_circuit_breaker(
    failure_threshold: int = 5,
    recovery_timeout: float = 60.0,
    *,
    exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    integration: str = DEFAULT_INTEGRATION,
    name: str | None = None,
    clock: Callable[[], float] | None = None,
) -> Callable[[F], F]:
    """Open the circuit after ``failure_threshold`` consecutive failures: calls then raise
    :class:`CircuitOpenError` at once, without running the function, until
    ``recovery_timeout`` seconds passed; then one trial call is let through (half-open) and
    its outcome closes or re-opens the circuit. Built on pybreaker.

    The breaker is shared by every call of the decorated function and is reachable as
    ``func.breaker``; its state is in :func:`get_integration_error_stats`.
    """
    import pybreaker

    exc_types = exceptions if isinstance(exceptions, tuple) else (exceptions,)

    def decorate(func: F) -> F:
        operation = _operation_name(func, name)

        class Listener(pybreaker.CircuitBreakerListener):
            def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
                set_breaker_state(integration, operation, new_state.name)

        breaker = pybreaker.CircuitBreaker(
            fail_max=failure_threshold,
            reset_timeout=recovery_timeout,
            # exceptions the caller did not ask to count pass through without tripping
            exclude=[lambda e: not isinstance(e, exc_types)],
            listeners=[Listener()],
            state_storage=_breaker_storage(clock or time.monotonic),
            name=operation,
            throw_new_error_on_trip=False,
        )
        set_breaker_state(integration, operation, breaker.current_state)

        def _open_error() -> CircuitOpenError:
            return CircuitOpenError(
                f"{operation}: circuit open after {failure_threshold} failures; not called "
                f"(retried after {recovery_timeout:g} s)"
            )

        def run_sync(call: Callable[[], Any]) -> Any:
            record_event(integration, operation, "calls")
            try:
                return breaker.call(call)
            except pybreaker.CircuitBreakerError as exc:
                raise _open_error() from exc
            except BaseException as exc:
                if isinstance(exc, exc_types):
                    record_failure(integration, operation, exc, quiet=True)
                raise

        if _inspect().iscoroutinefunction(func):
            @_functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                # pybreaker's own async support needs tornado: run the coroutine here and
                # report its outcome to the breaker through a synchronous call
                if breaker.current_state == pybreaker.STATE_OPEN:
                    opened = breaker._state_storage.opened_at
                    import datetime as dt

                    if opened and dt.datetime.now(dt.timezone.utc) < opened + dt.timedelta(seconds=recovery_timeout):
                        record_event(integration, operation, "calls")
                        raise _open_error()
                    breaker.half_open()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    error = exc

                    def replay() -> Any:
                        raise error
                    return run_sync(replay)
                return run_sync(lambda: result)

            async_wrapper.breaker = breaker  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @_functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run_sync(lambda: func(*args, **kwargs))

        wrapper.breaker = breaker  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def _call_fallback(fallback: Callable, args: tuple, kwargs: dict) -> Any:
    try:
        _inspect().signature(fallback).bind(*args, **kwargs)
    except TypeError:
        return fallback()  # a fallback that takes no arguments (as in the seed)
    except ValueError:  # builtins without a signature
        pass
    return fallback(*args, **kwargs)


def with_graceful_degradation(
    fallback_func: Callable[..., Any] | None = None,
    *,
    default: Any = None,
    exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    integration: str = DEFAULT_INTEGRATION,
    name: str | None = None,
    count_calls: bool = True,
) -> Callable[[F], F]:
    """On one of ``exceptions``, record the failure and return ``fallback_func(...)`` (called
    with the same arguments when it accepts them, else with none; awaited when it is async)
    or ``default`` instead of raising.

    ``count_calls=False`` skips counting the calls that succeed (a locked counter): the
    dispatcher wraps every hook implementation this way, on its hot path.

    >>> from seetrain.errors import with_graceful_degradation
    >>> @with_graceful_degradation(fallback_func=lambda: "cached")
    ... def fetch():
    ...     raise TimeoutError("slow server")
    >>> fetch()
    'cached'
    """

    def decorate(func: F) -> F:
        operation = _operation_name(func, name)

        def degrade(exc: BaseException, args: tuple, kwargs: dict) -> Any:
            record_failure(integration, operation, exc)  # logged the first time
            record_event(integration, operation, "fallbacks")
            if fallback_func is None:
                return default
            return _call_fallback(fallback_func, args, kwargs)

        if _inspect().iscoroutinefunction(func):
            @_functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                if count_calls:
                    record_event(integration, operation, "calls")
                try:
                    return await func(*args, **kwargs)
                except exceptions as exc:
                    result = degrade(exc, args, kwargs)
                    if _inspect().isawaitable(result):
                        result = await result
                    return result

            return async_wrapper  # type: ignore[return-value]

        @_functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if count_calls:
                record_event(integration, operation, "calls")
            try:
                return func(*args, **kwargs)
            except exceptions as exc:
                return degrade(exc, args, kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate

