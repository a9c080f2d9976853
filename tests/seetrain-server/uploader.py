"""A small client of the ingest API for the server's tests, and helpers that run real
``seetrain server`` processes.

Run as a program it uploads one run, as a training process's uploader would::

    python uploader.py --servers http://127.0.0.1:P1,http://127.0.0.1:P2 --project p --run r1 \
        --keys loss,acc --steps 2000 --batch-steps 100 [--gate FILE --gate-after N]

``PUT /api/v1/runs/<run>`` once, then the steps in batches ``POST /api/v1/runs/<run>/batches``
``{"source", "seq", "scalars": [{"key", "steps", "values", "times"}]}`` (base64 of little-endian
int64 / float64 / float64). A request that fails (refused, reset, timed out, 5xx) is sent again,
with the same ``seq``, to the next server of the list: the server stores a (run, source, seq)
once, so that is safe. With ``--gate`` the client stops after ``--gate-after`` batches, creates
``FILE.<run>.reached`` and waits for ``FILE`` to exist (the test kills a replica in between).
``SEETRAIN_API_KEY`` in the environment is sent as ``Authorization: Bearer``. At the end it prints one JSON line: batches sent, how many the server said it stored, fail-overs.

Values are a function of (key, step) (:func:`value_of`), so a test can check every point.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
from typing import Any

__all__ = ["Replica", "encode", "free_port", "main", "value_of", "wait_for_port"]


def value_of(key: str, step: int) -> float:
    """The value the uploader sends for ``key`` at ``step`` (exact in float64)."""
    return step * 0.25 + (sum(key.encode()) % 97)


def encode(fmt: str, items: list) -> str:
    """base64 of ``items`` packed little-endian (``fmt``: ``q`` int64, ``d`` float64)."""
    return base64.b64encode(struct.pack(f"<{len(items)}{fmt}", *items)).decode("ascii")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> bool:
    """Whether something listens on 127.0.0.1:``port`` within ``timeout`` (False at once when
    ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        time.sleep(0.05)
    return False


class Replica:
    """A real ``seetrain server`` process (``python -m seetrain server --db URL --port P``) on
    127.0.0.1, started on entering, stopped on leaving; :meth:`kill` sends SIGKILL."""

    def __init__(self, db_url: str, *, media: str | None = None, env: dict[str, str] | None = None,
                 log_dir: Any = None, extra_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url
        self.args = [sys.executable, "-m", "seetrain", "server", "--db", db_url, "--port", str(self.port),
                     *(["--media", media] if media else []), *extra_args]
        self.env = {**os.environ, **(env or {})}
        self.log_path = os.path.join(str(log_dir), f"server-{self.port}.log") if log_dir else None
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> Replica:
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.port, self.proc, timeout=60):
            self.stop()
            raise RuntimeError(f"seetrain server did not start on {self.url}:\n{self.output()}")
        return self

    def __enter__(self) -> Replica:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill(self) -> None:
        """SIGKILL: the replica dies mid-request, as on a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
            self._log = None

    def output(self) -> str:
        if self.log_path and os.path.exists(self.log_path):
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        return ""

    def wait_for_output(self, text: str, timeout: float = 60.0) -> str:
        """The first line of the replica's output holding ``text`` (waits for it to be printed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.output().splitlines():
                if text in line:
                    return line
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not in the output of the server on {self.url}:\n{self.output()}")

    def get(self, path: str, api_key: str | None = None, **params: Any):
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.get(self.url + path, params=params, headers=headers, timeout=30)


# -- the client ----------------------------------------------------------------------------
class Failover:
    """Sends each request to the current server; on a failure, to the next, until it is
    answered or ``deadline_s`` has passed."""

    def __init__(self, servers: list[str], deadline_s: float, api_key: str | None = None) -> None:
        import httpx

        self.servers = servers
        self.current = 0
        self.failovers = 0
        self.deadline_s = deadline_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.clients = [httpx.Client(base_url=s, headers=headers, timeout=httpx.Timeout(10.0, connect=2.0))
                        for s in servers]

    def send(self, method: str, path: str, body: dict) -> dict:
        import httpx

        deadline = time.monotonic() + self.deadline_s
        delay = 0.05
        last = None
        while time.monotonic() < deadline:
            client = self.clients[self.current]
            try:
                answer = client.request(method, path, json=body)
            except httpx.TransportError as exc:  # refused, reset, timed out: another replica
                last = f"{type(exc).__name__}: {exc}"
            else:
                if answer.status_code < 300:
                    return answer.json()
                if answer.status_code < 500 and answer.status_code != 429:
                    raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text}")
                last = f"{answer.status_code} {answer.text[:200]}"
                if answer.status_code in (429, 503):  # shedding load: wait as told, same replica
                    time.sleep(min(float(answer.headers.get("Retry-After") or 1), 5.0))
                    continue
            self.current = (self.current + 1) % len(self.clients)
            self.failovers += 1
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        raise SystemExit(f"{method} {path}: no server answered within {self.deadline_s:g} s (last: {last})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--servers", required=True, help="comma-separated base URLs, the preferred one first")
    p.add_argument("--project", required=True)
    p.add_argument("--run", required=True, help="the run's id")
    p.add_argument("--name", default=None)
    p.add_argument("--source", default="uploader")
    p.add_argument("--keys", default="loss", help="comma-separated scalar keys")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-steps", type=int, default=100)
    p.add_argument("--gate", default=None, help="a file to wait for after --gate-after batches")
    p.add_argument("--gate-after", type=int, default=0)
    p.add_argument("--deadline", type=float, default=120.0, help="seconds a request may take, fail-overs included")
    args = p.parse_args(argv)

    # the API key (when the servers run with --auth) from the environment, never a command line
    link = Failover(args.servers.split(","), args.deadline, api_key=os.environ.get("SEETRAIN_API_KEY"))
    link.send("PUT", f"/api/v1/runs/{args.run}", {"project": args.project, "name": args.name or args.run})
    keys = args.keys.split(",")
    stored = repeated = 0
    batches = 0
    for seq, start in enumerate(range(0, args.steps, args.batch_steps)):
        if args.gate and batches == args.gate_after:
            open(args.gate + f".{args.run}.reached", "w").close()
            while not os.path.exists(args.gate):
                time.sleep(0.02)
        steps = list(range(start, min(start + args.batch_steps, args.steps)))
        now = time.time()
        scalars = [{"key": key, "steps": encode("q", steps), "values": encode("d", [value_of(key, s) for s in steps]),
                    "times": encode("d", [now] * len(steps))} for key in keys]
        answer = link.send("POST", f"/api/v1/runs/{args.run}/batches",
                           {"source": args.source, "seq": seq, "scalars": scalars})
        if answer.get("stored"):
            stored += 1
        else:
            repeated += 1
        batches += 1
    print(json.dumps({"run": args.run, "batches": batches, "stored": stored, "repeated": repeated,
                      "failovers": link.failovers}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
