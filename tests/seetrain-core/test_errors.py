"""seetrain.errors: each decorator driven through real failures."""

import asyncio
import inspect

import pytest

from seetrain.errors import (
    CircuitOpenError,
    get_integration_error_stats,
    reset_integration_error_stats,
    with_circuit_breaker,
    with_graceful_degradation,
    with_retry,
)


class Flaky:
    """Fails ``failures`` times, then returns ``value``."""

    def __init__(self, failures, exc=ConnectionError):
        self.failures = failures
        self.calls = 0
        self.exc = exc

    def __call__(self, value="ok"):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return value


def test_retry_until_success_and_stats():
    flaky = Flaky(2)
    sleeps = []

    @with_retry(max_retries=3, base_delay=0.5, max_delay=2.0, integration="tests", sleep=sleeps.append)
    def fetch(value):
        """Fetch something."""
        return flaky(value)

    assert fetch("data") == "data" and flaky.calls == 3
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.0 + 1e-9 and sleeps[1] <= 2.0
    assert fetch.__name__ == "fetch" and fetch.__doc__ == "Fetch something."
    assert list(inspect.signature(fetch).parameters) == ["value"]
    stats = get_integration_error_stats()["tests"]["test_retry_until_success_and_stats.<locals>.fetch"]
    assert stats["retries"] == 2 and stats["failures"] == 2 and stats["last_error"] == "ConnectionError: failure 2"


def test_retry_gives_up_with_the_original_exception():
    flaky = Flaky(10)
    fetch = with_retry(max_retries=2, base_delay=0.0, name="fetch")(flaky)
    with pytest.raises(ConnectionError, match="failure 3"):
        fetch()
    assert flaky.calls == 3


def test_retry_only_the_listed_exceptions():
    flaky = Flaky(1, exc=KeyError)
    fetch = with_retry(max_retries=3, base_delay=0.0, exceptions=(ConnectionError,))(flaky)
    with pytest.raises(KeyError):
        fetch()
    assert flaky.calls == 1


def test_retry_on_methods_and_async():
    class Client:
        def __init__(self):
            self.flaky = Flaky(1)

        @with_retry(max_retries=2, base_delay=0.0)
        def get(self):
            return self.flaky("method")

    assert Client().get() == "method"
    flaky = Flaky(2)
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    @with_retry(max_retries=2, base_delay=0.01, sleep=fake_sleep)
    async def fetch():
        await asyncio.sleep(0)
        return flaky("async")

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch()) == "async" and flaky.calls == 3 and len(slept) == 2


def test_circuit_breaker_opens_half_opens_and_closes():
    now = [1000.0]
    calls = []

    @with_circuit_breaker(failure_threshold=3, recovery_timeout=60.0, clock=lambda: now[0], integration="tests",
                          name="upload")
    def upload(fail):
        calls.append(fail)
        if fail:
            raise TimeoutError("server down")
        return "sent"

    for _ in range(3):
        with pytest.raises(TimeoutError):
            upload(True)
    state = lambda: get_integration_error_stats()["tests"]["upload"]["breaker_state"]
    assert state() == "open"
    with pytest.raises(CircuitOpenError, match="circuit open"):
        upload(False)
    assert len(calls) == 3  # not called while open
    now[0] += 61
    with pytest.raises(TimeoutError):  # half-open trial fails: open again
        upload(True)
    assert state() == "open"
    with pytest.raises(CircuitOpenError):
        upload(False)
    now[0] += 61
    assert upload(False) == "sent"  # half-open trial succeeds: closed
    assert state() == "closed"
    assert upload(False) == "sent" and upload.breaker.current_state == "closed"


def test_circuit_breaker_async():
    now = [0.0]
    flaky = Flaky(2, exc=OSError)

    @with_circuit_breaker(failure_threshold=2, recovery_timeout=5, clock=lambda: now[0])
    async def send():
        return flaky("delivered")

    for _ in range(2):
        with pytest.raises(OSError):
            asyncio.run(send())
    with pytest.raises(CircuitOpenError):
        asyncio.run(send())
    now[0] = 6
    assert asyncio.run(send()) == "delivered"
    assert send.breaker.current_state == "closed"


def test_graceful_degradation():
    def fallback_function():
        return "cached"

    @with_graceful_degradation(fallback_func=fallback_function, integration="tests", name="main")
    def main_operation(x):
        raise ValueError(f"bad {x}")

    assert main_operation(1) == "cached"

    @with_graceful_degradation(fallback_func=lambda x: x * 2)
    def double_remote(x):
        raise ConnectionError

    assert double_remote(21) == 42

    @with_graceful_degradation(default=-1)
    async def remote():
        raise ConnectionError

    assert asyncio.run(remote()) == -1
    stats = get_integration_error_stats()["tests"]["main"]
    assert stats["fallbacks"] == 1 and stats["failures"] == 1 and stats["last_error"] == "ValueError: bad 1"

    @with_graceful_degradation(default=0, exceptions=(ConnectionError,))
    def strict():
        raise KeyError("not degraded")

    with pytest.raises(KeyError):
        strict()


def test_stats_reset():
    with_graceful_degradation()(lambda: 1 / 0)()
    assert get_integration_error_stats()
    reset_integration_error_stats()
    assert get_integration_error_stats() == {}
