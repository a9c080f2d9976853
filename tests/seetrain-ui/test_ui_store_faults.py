"""The dashboard over a damaged store: JSON errors that name the file and `seetrain doctor`,
never a plain-text 500; the page itself still loads and shows the error."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from ui_data import CHROMIUM

DB = "seetrain.db"
PAGE = 4096

WRITE_STORE = """
import sys
import seetrain
for name in ("a", "b"):
    run = seetrain.init(project="faults", experiment_name=name, dir=sys.argv[1])
    for step in range(3000):
        run.log({f"k{i}": step * 0.5 + i for i in range(20)}, step=step)
    run.finish()
"""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> str:
    """Two runs written by the real core, spanning many pages, with the WAL folded in."""
    directory = str(tmp_path_factory.mktemp("ui-faults") / "store")
    proc = subprocess.run([sys.executable, "-c", WRITE_STORE, directory], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(os.path.join(directory, DB))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return directory


def _damaged(pristine: str, tmp_path, where: str) -> str:
    directory = str(tmp_path / "store")
    os.makedirs(directory)
    db = os.path.join(directory, DB)
    shutil.copyfile(os.path.join(pristine, DB), db)
    with open(db, "r+b") as f:
        if where == "header":
            f.write(b"garbage!" * 12 + b"junk")
        else:
            pages = os.path.getsize(db) // PAGE
            assert pages > 300, pages
            for page in (pages // 3, pages // 2, pages * 2 // 3):
                f.seek(page * PAGE)
                f.write(b"\xde\xad\xbe\xef" * (PAGE // 4))
    return directory


def _client(directory: str):
    from starlette.testclient import TestClient

    from seetrain.ui import create_app

    # a route that raised would be re-raised by the test client: the app must answer instead
    return TestClient(create_app(directory), raise_server_exceptions=False)


def _assert_damage_answer(resp, directory: str) -> None:
    assert resp.status_code == 500, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    message = resp.json()["error"]
    assert message.startswith(f"the SeeTrain store {os.path.join(directory, DB)} is damaged ("), message
    assert f"seetrain doctor --dir {directory}" in message and "--repair" in message


def test_a_damaged_header_is_a_json_500_naming_the_file_and_the_doctor(pristine, tmp_path):
    directory = _damaged(pristine, tmp_path, "header")
    with _client(directory) as client:
        for url in ("/api/projects", "/api/projects/faults/runs", "/api/runs/a",
                    "/api/runs/a/scalars?key=k1", "/api/runs/a/media?key=k1"):
            _assert_damage_answer(client.get(url), directory)
        page = client.get("/")  # the page loads; its script shows the error of the API
        assert page.status_code == 200 and "<title>SeeTrain</title>" in page.text
        assert client.get("/api/store").json()["exists"] is True


def test_damaged_pages_are_a_json_500_for_the_requests_that_reach_them(pristine, tmp_path):
    directory = _damaged(pristine, tmp_path, "pages")
    with _client(directory) as client:
        runs = client.get("/api/projects/faults/runs")
        damaged = 0
        if runs.status_code != 200:
            _assert_damage_answer(runs, directory)
            damaged += 1
        for name in ("a", "b"):
            for i in range(20):
                resp = client.get(f"/api/runs/{name}/scalars", params={"key": f"k{i}", "max_points": 100})
                if resp.status_code == 200:
                    assert resp.json()["series"][f"k{i}"]["total"] == 3000
                else:
                    _assert_damage_answer(resp, directory)
                    damaged += 1
        assert damaged, "the damaged pages were read by no request"


def test_the_page_shows_the_damage_in_a_browser(pristine, tmp_path, request):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM}")
    pytest.importorskip("playwright.sync_api")
    from seetrain.ui import BackgroundServer

    browser = request.getfixturevalue("browser")
    directory = _damaged(pristine, tmp_path, "header")
    with BackgroundServer(directory) as url:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            page_errors: list[str] = []
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            page.goto(url)
            box = page.locator(".error-box")
            box.wait_for()
            text = box.inner_text()
            assert "is damaged" in text and "seetrain doctor --dir" in text and "--repair" in text
            assert not page_errors
        finally:
            context.close()
