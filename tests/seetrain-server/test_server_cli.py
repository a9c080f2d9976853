"""``seetrain server`` as users run it: real subprocesses of ``python -m seetrain server ...``
against a real PostgreSQL (and SQLite), served over real sockets."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from seetrain_server import db as dbm

KEY = re.compile(r"stk_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def seetrain(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seetrain", *args], check=False, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def get(url: str, key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@contextlib.contextmanager
def served(*args: str, cwd):
    """``seetrain server --port 0 ARGS`` running: yields (base URL, stdout lines up to the URL
    line, the process, the stderr file). The URL line is printed last, once the socket listens."""
    stderr_path = os.path.join(cwd, "server.stderr")
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "seetrain", "server", "--port", "0", *args],
                                stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=cwd)
    lines: list[str] = []
    try:
        base = None
        while base is None:
            line = proc.stdout.readline()
            if not line:  # the process ended before serving
                proc.wait(timeout=60)
                with open(stderr_path) as f:
                    pytest.fail(f"seetrain server exited ({proc.returncode}) before serving:\n{''.join(lines)}{f.read()}")
            lines.append(line)
            match = re.search(r"serving (http://\S+)", line)
            if match:
                base = match.group(1)
        yield base, lines, proc, stderr_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()


@pytest.fixture
def pg(postgres_url):
    return postgres_url


def test_help_documents_every_option_and_subcommand():
    out = seetrain("server", "--help")
    assert out.returncode == 0
    for option in ("--host", "--port", "--db", "--media", "--auth", "--log-format", "--log-level",
                   "SEETRAIN_SERVER_DB", "db", "user", "key"):
        assert option in out.stdout, option
    create = seetrain("server", "key", "create", "--help").stdout
    for option in ("--user", "--project", "--role", "--label", "--db", "read,write,admin"):
        assert option in create, option
    assert "server" in seetrain("--help").stdout


def test_listening_beyond_loopback_without_auth_is_refused(tmp_path):
    out = seetrain("server", "--host", "0.0.0.0", cwd=tmp_path)
    assert out.returncode == 2
    assert "add --auth" in out.stderr and "0.0.0.0" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # refused before touching any database


def test_db_upgrade_prints_the_versions_before_and_after(pg):
    out = seetrain("server", "db", "upgrade", "--db", pg)
    assert out.returncode == 0, out.stderr
    assert f"layout version none (empty database) -> {dbm.SCHEMA_VERSION}" in out.stdout
    assert "postgres@" in out.stdout
    again = seetrain("server", "--db", pg, "db", "upgrade")  # --db before the subcommand works too
    assert again.returncode == 0
    assert f"at layout version {dbm.SCHEMA_VERSION}: nothing to upgrade" in again.stdout


def test_a_database_of_a_newer_version_is_refused_with_one_line(pg, tmp_path):
    database = dbm.open_database(pg)
    database.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(dbm.SCHEMA_VERSION + 1),))
    database.close()
    for args in (["server", "--db", pg, "--port", "0"], ["server", "db", "upgrade", "--db", pg],
                 ["server", "key", "list", "--db", pg]):
        out = seetrain(*args, cwd=tmp_path)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "newer seetrain-server" in lines[0] and "pip install -U" in lines[0], lines
        assert "Traceback" not in out.stderr


def test_user_add_and_key_create_make_a_key_that_a_served_app_accepts(pg, tmp_path):
    assert seetrain("server", "user", "add", "ops", "--admin", "--db", pg).returncode == 0
    assert seetrain("server", "user", "add", "kim", "--db", pg).returncode == 0
    duplicate = seetrain("server", "user", "add", "kim", "--db", pg)
    assert duplicate.returncode == 1 and "exists already" in duplicate.stderr
    made = seetrain("server", "key", "create", "--user", "ops", "--project", "*", "--role", "read",
                    "--label", "ci", "--db", pg)
    assert made.returncode == 0, made.stderr
    ops_key = made.stdout.strip()
    assert KEY.fullmatch(ops_key) and "shown once" in made.stderr
    kim_key = seetrain("server", "key", "create", "--user", "kim", "--project", "A", "--role", "write",
                       "--db", pg).stdout.strip()
    assert KEY.fullmatch(kim_key)
    unknown = seetrain("server", "key", "create", "--user", "nobody", "--project", "A", "--role", "read", "--db", pg)
    assert unknown.returncode == 1 and "no user named 'nobody'" in unknown.stderr

    with served("--db", pg, "--auth", cwd=tmp_path) as (base, lines, _, _):
        assert not any("first admin" in line for line in lines)  # there are users already
        assert get(f"{base}/api/v1/admin/keys")[0] == 401
        status, body = get(f"{base}/api/v1/admin/keys", ops_key)  # an admin user's key
        assert status == 200 and {k["user"] for k in body["keys"]} == {"ops", "kim"}
        assert get(f"{base}/api/v1/admin/keys", kim_key)[0] == 403  # authenticated, not an admin
        assert get(f"{base}/api/v1/admin/keys", kim_key[:-2] + "xx")[0] == 401

        listing = seetrain("server", "key", "list", "--db", pg)
        assert listing.returncode == 0
        kim_id = KEY.fullmatch(kim_key) and kim_key[4:16]
        assert kim_id in listing.stdout and "A:write" in listing.stdout and "ci" in listing.stdout
        assert kim_key[17:] not in listing.stdout
        revoked = seetrain("server", "key", "revoke", kim_id, "--db", pg)
        assert revoked.returncode == 0 and "revoked key" in revoked.stdout
        assert "UTC" in seetrain("server", "key", "list", "--db", pg).stdout.split(kim_id)[1].splitlines()[0]
    missing = seetrain("server", "key", "revoke", "0123456789ab", "--db", pg)
    assert missing.returncode == 1 and "no key" in missing.stderr


def test_the_first_start_prints_the_url_and_the_first_admin_key_once(pg, tmp_path):
    with served("--db", pg, "--auth", "--log-format", "json", cwd=tmp_path) as (base, lines, _, stderr_path):
        text = "".join(lines)
        assert base.startswith("http://127.0.0.1:")
        match = re.search(r"first admin key, shown once: (stk_\S+)", text)
        assert match, text
        key = match.group(1)
        assert get(f"{base}/readyz") == (200, {"status": "ready", "database": "ok"})
        assert get(f"{base}/healthz") == (200, {"status": "ok"})
        status, body = get(f"{base}/api/v1/admin/keys", key)
        assert status == 200 and body["keys"][0]["roles"] == {"*": "admin"}
    # the logs: one JSON object per line; the request's line has the key's id, never the key
    with open(stderr_path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    access = [r for r in records if r["logger"] == "seetrain.server.access" and r["path"] == "/api/v1/admin/keys"]
    assert access and access[0]["key_id"] == key[4:16] and access[0]["status"] == 200
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert not any(key[17:] in json.dumps(r) for r in records)

    with served("--db", pg, cwd=tmp_path) as (_, lines, _, _):  # the second start: no new key
        assert not any("stk_" in line for line in lines)


def test_the_default_database_is_a_sqlite_file_in_the_current_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SEETRAIN_SERVER_DB", "SEETRAIN_SERVER_MEDIA")}
    out = seetrain("server", "user", "add", "lee", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "seetrain-server.db").exists()
    with served("--auth", cwd=tmp_path) as (base, lines, _, _):
        assert "sqlite:///seetrain-server.db" in lines[0]
        assert get(f"{base}/readyz")[0] == 200


def test_without_the_server_extra_the_command_says_how_to_install_it():
    # the distribution's import package made unimportable: what a stale or partial install sees
    code = ("import sys; sys.modules['seetrain_server'] = None; from seetrain.cli import main; "
            "sys.exit(main(['server', '--port', '1', '--help']))")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.startswith('seetrain: error: the team server needs its extra: pip install "seetrain[server]"')


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("seetrain.example", False)])
def test_which_addresses_count_as_this_machine_only(host, loopback):
    from seetrain_server.cli import is_loopback

    assert is_loopback(host) is loopback


def test_text_logs_are_one_readable_line_per_record():
    import logging

    from seetrain_server import logs

    record = logging.LogRecord("seetrain.server.access", logging.INFO, __file__, 1, "GET %s %s", ("/x", 200), None)
    line = logs.TextFormatter().format(record)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO seetrain.server.access: GET /x 200", line)
    with pytest.raises(ValueError, match="text, json"):
        logs.configure("xml")


def test_with_auth_any_address_is_served(tmp_path):
    with served("--host", "0.0.0.0", "--auth", "--db", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path) as (base, *_):
        port = base.rsplit(":", 1)[1]
        assert base == f"http://0.0.0.0:{port}"
        assert get(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})
        assert get(f"http://127.0.0.1:{port}/api/v1/admin/keys")[0] == 401
