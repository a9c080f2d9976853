"""`seetrain ui`: prints its URL, serves on loopback, stops cleanly on Ctrl+C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest


def test_seetrain_ui_prints_its_url_serves_and_stops_on_ctrl_c(store_dir):
    proc = subprocess.Popen([sys.executable, "-m", "seetrain", "ui", "--dir", store_dir, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:  # ends when the process exits: a failed start fails the test below
            lines.append(line)
            match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            if match:
                break
        assert match, "".join(lines) + proc.stderr.read()
        assert store_dir in "".join(lines)
        url = match.group(1)
        projects = httpx.get(url + "api/projects", timeout=10).json()["projects"]
        assert {p["name"] for p in projects} == {"vision", "nlp"}
        assert "<title>SeeTrain</title>" in httpx.get(url, timeout=10).text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_seetrain_ui_says_which_port_is_taken(store_dir, capsys):
    from seetrain.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["ui", "--dir", store_dir, "--port", str(port)])
    assert code != 0
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "--port" in err


def test_background_server_binds_loopback_on_a_free_port(store_dir):
    from seetrain.ui import BackgroundServer

    with BackgroundServer(store_dir) as url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)
        assert httpx.get(url + "api/store", timeout=10).json()["exists"] is True


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_hosts_are_recognised(host):
    from seetrain.ui._server import _is_loopback

    assert _is_loopback(host)
    assert not _is_loopback("0.0.0.0")
