"""seetrain.remote's HTTP client against servers that fail in every way the issue names (500,
503 with Retry-After, 429, a refused key, a server that accepts and never answers), through
httpx's mock transport or a real listening socket; and local mode never loading the uploader."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import httpx
import pytest

from seetrain.errors import CircuitOpenError, get_integration_error_stats, reset_integration_error_stats
from seetrain.remote.client import Client, PermanentError, TransientError


class Server:
    """A scripted server: answers ``replies`` in order (the last one forever), counts calls."""

    def __init__(self, *replies: httpx.Response) -> None:
        self.replies = list(replies)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.replies[min(self.calls, len(self.replies)) - 1]


def client_of(server: Server, sleeps: list[float], **options) -> Client:
    options.setdefault("max_retries", 3)
    options.setdefault("base_delay", 0.01)
    return Client("http://server.test", "stk_key", transport=httpx.MockTransport(server), sleep=sleeps.append,
                  **options)


@pytest.fixture(autouse=True)
def fresh_stats():
    reset_integration_error_stats()
    yield
    reset_integration_error_stats()


def test_503_with_retry_after_is_retried_after_the_time_asked():
    sleeps: list[float] = []
    server = Server(httpx.Response(503, headers={"Retry-After": "7"}, json={"error": "busy"}),
                    httpx.Response(200, json={"stored": True, "max_seq": 0}))
    with client_of(server, sleeps) as client:
        assert client.send_batch("r1", {"source": "s", "seq": 0}) == {"stored": True, "max_seq": 0}
    assert server.calls == 2 and sleeps and sleeps[0] >= 7
    stats = get_integration_error_stats()["seetrain.remote"]
    assert stats["upload"]["retries"] == 1


def test_429_and_500_are_retried_with_backoff_then_raised():
    sleeps: list[float] = []
    server = Server(httpx.Response(429, json={"error": "slow down"}), httpx.Response(500, json={"error": "boom"}))
    with client_of(server, sleeps, failure_threshold=100) as client:
        with pytest.raises(TransientError) as caught:
            client.put_run("r1", {"project": "p"})
    assert server.calls == 4 and len(sleeps) == 3
    assert sleeps[1] >= 0.02 and sleeps[2] >= 0.04  # doubled each time
    assert caught.value.status == 500 and "boom" in str(caught.value)
    assert get_integration_error_stats()["seetrain.remote"]["upload"]["retries"] == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_what_a_retry_cannot_fix_is_raised_at_once_with_the_servers_message(status):
    sleeps: list[float] = []
    server = Server(httpx.Response(status, json={"error": f"the server says {status}"}))
    with client_of(server, sleeps) as client:
        with pytest.raises(PermanentError) as caught:
            client.send_batch("r1", {"source": "s", "seq": 0})
    assert server.calls == 1 and not sleeps
    assert caught.value.status == status and f"the server says {status}" in str(caught.value)
    if status == 401:
        assert "seetrain login http://server.test" in str(caught.value)


def test_the_breaker_opens_and_the_dead_server_is_not_asked_again():
    sleeps: list[float] = []
    server = Server(httpx.Response(500, json={"error": "down"}))
    with client_of(server, sleeps, max_retries=0, failure_threshold=3, recovery_timeout=3600) as client:
        for _ in range(3):
            with pytest.raises(TransientError):
                client.max_seq("r1", "s")
        asked = server.calls
        with pytest.raises(CircuitOpenError):
            client.max_seq("r1", "s")
        assert server.calls == asked == 3
    stats = get_integration_error_stats()["seetrain.remote"]
    assert stats["request"]["breaker_state"] == "open"
    assert stats["request"]["failures"] >= 3


def test_a_server_that_never_answers_is_a_transient_error():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections (the kernel's backlog) and never answers
        port = listener.getsockname()[1]
        sleeps: list[float] = []
        with Client(f"http://127.0.0.1:{port}", None, timeout=0.3, max_retries=1, base_delay=0.0,
                    sleep=sleeps.append) as client:
            with pytest.raises(TransientError) as caught:
                client.put_run("r1", {"project": "p"})
    assert "no answer" in str(caught.value) and len(sleeps) == 1


def test_local_mode_never_loads_the_uploader(tmp_path):
    code = textwrap.dedent(f"""
        import sys, seetrain
        from seetrain.plugins import get_plugin_manager
        run = seetrain.init(project="p", dir={str(tmp_path)!r})
        run.log({{"x": 1.0}})
        run.finish()
        assert not get_plugin_manager().has_plugin("seetrain.remote")
        assert "seetrain.remote.plugin" not in sys.modules and "seetrain.remote.client" not in sys.modules
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={"SEETRAIN_SILENT": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_remote_mode_needs_a_server(tmp_path, monkeypatch):
    import seetrain

    monkeypatch.delenv("SEETRAIN_HOST", raising=False)
    with pytest.raises(ValueError, match="SEETRAIN_HOST"):
        seetrain.init(project="p", dir=str(tmp_path), mode="remote")
