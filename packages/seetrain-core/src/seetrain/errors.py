"""Error handling for SeeTrain and for integrations: statistics of failures.

Every failure SeeTrain catches instead of raising into the training loop (a sink that
raises, a media value that cannot be encoded, an adapter callback that breaks) is recorded
here, per integration and per operation, and logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

__all__ = [
    "get_integration_error_stats",
    "reset_integration_error_stats",
    "record_failure",
    "SeeTrainError",
]

log = logging.getLogger("seetrain")


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
