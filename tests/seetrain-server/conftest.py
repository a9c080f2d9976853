"""A real PostgreSQL for the server's tests: a private throwaway cluster per test session (on a
free port, its socket in a temporary folder), and a fresh database for each test.

Set ``SEETRAIN_TEST_POSTGRES=postgresql://user@host:port`` to use a running server instead
(each test still gets a database of its own, created and dropped there). Debian's
``postgresql`` package provides the binaries; ``.ci/system-packages.sh`` installs it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def _bindir() -> str | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return candidate
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    # PostgreSQL refuses to run as root: run its programs as the postgres user then
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="session")
def postgres_server():
    """``postgresql://…`` of a PostgreSQL server for this test session (without a database)."""
    given = os.environ.get("SEETRAIN_TEST_POSTGRES")
    if given:
        yield given.rstrip("/")
        return
    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/system-packages.sh does)")
    root = tempfile.mkdtemp(prefix="seetrain-pg-")
    os.chmod(root, 0o777)
    data, sock = os.path.join(root, "data"), os.path.join(root, "sock")
    os.makedirs(sock)
    os.chmod(sock, 0o777)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    proc = _as_postgres([os.path.join(bindir, "initdb"), "-D", data, "--auth=trust", "-U", "postgres",
                         "--no-sync", "-E", "UTF8"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    port = _free_port()
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    proc = _as_postgres([os.path.join(bindir, "pg_ctl"), "-D", data, "-o", options, "-l",
                         os.path.join(root, "log"), "-w", "start"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        _as_postgres([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"], timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty PostgreSQL database for one test: its URL."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{postgres_server}/{name}"
    for _ in range(20):
        try:
            with psycopg.connect(postgres_server + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            break
        except Exception:  # a server process of the test still closing its connections
            time.sleep(0.2)
