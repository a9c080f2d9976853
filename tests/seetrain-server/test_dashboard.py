"""The dashboard served by the team server, read from a real PostgreSQL.

The data is the dashboard tests' store (``tests/seetrain-ui/ui_data.py``: two runs with scalars,
images, audio and text, one with NaN and infinity), written by the real core into a local store
and copied row for row into the server's tables (the same columns, the same packed chunks; media
files into ``media_blobs``). The server's JSON API must then answer what ``seetrain ui`` answers
over the local store. Browser tests drive Debian's Chromium; screenshots go to
``test-artifacts/ui/server-*.png``.
"""

from __future__ import annotations

import mimetypes
import os
import socket
import sqlite3
import sys
import threading
import time

import pytest
from starlette.testclient import TestClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "seetrain-ui"))

from seetrain_server import auth
from seetrain_server.app import create_app
from seetrain_server.config import Settings
from seetrain_server.db import open_database
from ui_data import CHROMIUM, CHROMIUM_FLAGS, write_store

TIMEOUT_MS = 15_000
TABLES = {
    "runs": ("id", "project", "name", "description", "group_name", "tags", "frameworks", "config", "summary",
             "status", "error", "created_at", "finished_at", "heartbeat_at", "last_step", "pid", "host"),
    "keys": ("id", "run_id", "key", "kind"),
    "scalar_chunks": ("id", "key_id", "n", "step_min", "step_max", "steps", "vals", "ts"),
    "media": ("id", "key_id", "step", "idx", "kind", "path", "text", "caption", "meta", "ts"),
    "files": ("id", "run_id", "kind", "path", "meta", "ts"),
}


def copy_store(directory: str, db) -> None:
    """Every row of the local store at ``directory`` into the server's database, and its media
    files into ``media_blobs`` under the path the media rows name."""
    src = sqlite3.connect(os.path.join(directory, "seetrain.db"))
    try:
        with db.transaction() as tx:
            for table, cols in TABLES.items():
                rows = src.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY rowid").fetchall()
                tx.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                               rows)
            for (path,) in src.execute("SELECT path FROM media WHERE path IS NOT NULL"):
                with open(os.path.join(directory, path), "rb") as f:
                    data = f.read()
                content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
                tx.execute("INSERT INTO media_blobs (path, content_type, data) VALUES (?, ?, ?)",
                           (path, content_type, data))
    finally:
        src.close()


@pytest.fixture(scope="module")
def local_store(tmp_path_factory) -> str:
    directory = str(tmp_path_factory.mktemp("server-dashboard") / "store")
    write_store(directory)
    return directory


@pytest.fixture(scope="module")
def run_ids(local_store) -> dict[str, str]:
    from seetrain.store.reader import StoreReader

    reader = StoreReader(local_store)
    try:
        return {r["name"]: r["id"] for r in reader.runs()}
    finally:
        reader.close()


@pytest.fixture
def database(postgres_url, local_store):
    db = open_database(postgres_url)
    copy_store(local_store, db)
    yield db
    db.close()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_database(request, local_store, tmp_path):
    """The copied store on PostgreSQL, and on the server's SQLite file (the reader serves both)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'server.db'}"
    db = open_database(url)
    copy_store(local_store, db)
    yield db
    db.close()


@pytest.fixture
def local_client(local_store):
    from seetrain.ui import create_app as create_ui

    with TestClient(create_ui(local_store)) as client:
        yield client


def server_client(database, auth_on: bool = False) -> TestClient:
    app = create_app(Settings(db_url=database.url, auth=auth_on), db=database)
    return TestClient(app)


def _same_json(local: dict, server: dict, *drop: str) -> None:
    for name in drop:
        local.pop(name, None)
        server.pop(name, None)
    assert server == local


# -- the JSON API ---------------------------------------------------------------------------
def test_the_json_api_over_the_server_answers_what_the_local_store_answers(any_database, local_client, run_ids):
    with server_client(any_database) as server:
        local, remote = local_client.get("/api/projects").json(), server.get("/api/projects").json()
        assert [p["name"] for p in remote["projects"]] == ["nlp", "vision"]
        _same_json(local, remote, "directory")

        for project in ("vision", "nlp"):
            local, remote = (c.get(f"/api/projects/{project}/runs") for c in (local_client, server))
            assert remote.status_code == 200
            _same_json(local.json(), remote.json())

        for name, run_id in run_ids.items():
            local, remote = local_client.get(f"/api/runs/{run_id}").json(), server.get(f"/api/runs/{run_id}").json()
            assert remote["status"] == "finished"
            _same_json(local, remote)
            # a unique prefix and the name resolve on the server as they do locally
            assert server.get(f"/api/runs/{run_id[:-3]}").json()["id"] == run_id
            assert server.get(f"/api/runs/{name}").json()["id"] == run_id

        run_id = run_ids["resnet-a"]
        for params in ({"key": ["train/loss", "val/acc"]}, {"key": "train/loss", "max_points": 10},
                       {"key": "train/loss", "step_min": 5, "step_max": 20}, {"key": "lr", "since_step": 40}):
            local = local_client.get(f"/api/runs/{run_id}/scalars", params=params).json()
            remote = server.get(f"/api/runs/{run_id}/scalars", params=params).json()
            _same_json(local, remote)
        downsampled = server.get(f"/api/runs/{run_id}/scalars", params={"key": "train/loss", "max_points": 10}).json()
        assert downsampled["series"]["train/loss"]["exact"] is False
        assert len(downsampled["series"]["train/loss"]["steps"]) <= 10
        # NaN and infinity come out as the local store gives them
        bert = run_ids["bert"]
        _same_json(local_client.get(f"/api/runs/{bert}/scalars", params={"key": "loss"}).json(),
                   server.get(f"/api/runs/{bert}/scalars", params={"key": "loss"}).json())

        for key in ("samples/image", "samples/audio", "samples/text"):
            local = local_client.get(f"/api/runs/{run_id}/media", params={"key": key}).json()
            remote = server.get(f"/api/runs/{run_id}/media", params={"key": key}).json()
            assert len(remote["items"]) == len(local["items"]) == 3
            for mine, theirs in zip(remote["items"], local["items"]):
                assert {k: v for k, v in mine.items() if k != "url"} == {k: v for k, v in theirs.items() if k != "url"}
                if theirs["url"] is None:
                    assert mine["url"] is None
                    continue
                assert mine["url"].startswith("/media/")
                got, want = server.get(mine["url"]), local_client.get(theirs["url"])
                assert got.status_code == 200, got.text
                assert got.content == want.content and len(got.content) > 0
                assert got.headers["content-type"].split(";")[0] == want.headers["content-type"].split(";")[0]

        # errors keep the dashboard's shape
        assert server.get("/api/runs/nope").status_code == 404
        assert server.get("/api/projects/nope/runs").status_code == 404
        assert server.get(f"/api/runs/{run_id}/scalars", params={"key": "samples/image"}).status_code == 400
        assert server.get("/media/media/nope.png").status_code == 404
        # a NUL cannot be in a name PostgreSQL holds: unknown, not a driver error
        for path, params in (("/api/runs/a%00b", {}), ("/api/projects/a%00b/runs", {}),
                             (f"/api/runs/{run_id}/scalars", {"key": "a\x00b"}),
                             (f"/api/runs/{run_id}/media", {"key": "a\x00b"}), ("/media/a%00b", {})):
            assert server.get(path, params=params).status_code == 404, path
        # the page and its assets
        assert "SeeTrain" in server.get("/").text
        assert server.get("/static/js/main.js").status_code == 200


def test_media_uploaded_through_the_ingest_api_are_served_by_the_dashboard(postgres_url):
    import base64

    db = open_database(postgres_url)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32  # the bytes are served as they were sent
    try:
        with server_client(db) as server:
            assert server.put("/api/v1/runs/up1", json={"project": "uploads", "name": "uploaded"}).status_code == 200
            body = {"source": "s", "seq": 0, "media": [
                {"key": "samples/image", "step": 3, "kind": "image", "format": "png",
                 "data": base64.b64encode(png).decode(), "caption": "three"},
                {"key": "samples/text", "step": 3, "kind": "text", "text": "hello"}]}
            response = server.post("/api/v1/runs/up1/batches", json=body)
            assert response.status_code == 200, response.text
            detail = server.get("/api/runs/up1").json()
            assert {k["key"]: k["kind"] for k in detail["keys"]} == {"samples/image": "image", "samples/text": "text"}
            items = server.get("/api/runs/up1/media", params={"key": "samples/image"}).json()["items"]
            assert [(i["step"], i["caption"]) for i in items] == [(3, "three")]
            image = server.get(items[0]["url"])
            assert image.status_code == 200 and image.content == png
            assert image.headers["content-type"] == "image/png"
            text = server.get("/api/runs/up1/media", params={"key": "samples/text"}).json()["items"]
            assert text[0]["text"] == "hello" and text[0]["url"] is None
    finally:
        db.close()


def test_a_running_run_reads_as_crashed_only_by_its_heartbeat(database, run_ids):
    run_id = run_ids["bert"]
    # a pid that is no process here: the server does not look at it (it is the client's)
    database.execute("UPDATE runs SET status = 'running', pid = 999999999, host = ?, heartbeat_at = ? WHERE id = ?",
                     (socket.gethostname(), time.time(), run_id))
    with server_client(database) as server:
        assert server.get(f"/api/runs/{run_id}").json()["status"] == "running"
        database.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time() - 3600, run_id))
        assert server.get(f"/api/runs/{run_id}").json()["status"] == "crashed"


def test_a_read_key_reads_its_project_only(database, run_ids):
    auth.create_user(database, "alice")
    nlp_key = auth.create_key(database, "alice", "nlp", "read")
    with server_client(database, auth_on=True) as server:
        # the page and its assets load without a key; the API does not
        assert server.get("/").status_code == 200
        assert server.get("/static/js/api.js").status_code == 200
        for path in ("/api/store", "/api/projects", "/api/projects/nlp/runs", f"/api/runs/{run_ids['bert']}"):
            response = server.get(path)
            assert response.status_code == 401, path
            assert "API key" in response.json()["error"]
        assert server.get("/api/projects", headers={"Authorization": "Bearer stk_000000000000_" + "x" * 40}
                          ).status_code == 401

        headers = {"Authorization": f"Bearer {nlp_key}"}
        assert [p["name"] for p in server.get("/api/projects", headers=headers).json()["projects"]] == ["nlp"]
        assert server.get("/api/projects/nlp/runs", headers=headers).status_code == 200
        assert server.get(f"/api/runs/{run_ids['bert']}", headers=headers).status_code == 200
        assert server.get(f"/api/runs/{run_ids['bert']}/scalars", params={"key": "loss"},
                          headers=headers).status_code == 200

        vision = run_ids["resnet-a"]
        media_path = database.query("SELECT m.path FROM media m JOIN keys k ON k.id = m.key_id "
                                    "WHERE k.run_id = ? AND m.path IS NOT NULL LIMIT 1", (vision,))[0][0]
        for path, params in (("/api/projects/vision/runs", {}), ("/api/projects/no-such-project/runs", {}),
                             (f"/api/runs/{vision}", {}), (f"/api/runs/{vision}/scalars", {"key": "train/loss"}),
                             (f"/api/runs/{vision}/media", {"key": "samples/image"}), (f"/media/{media_path}", {})):
            response = server.get(path, params=params, headers=headers)
            assert response.status_code == 403, (path, response.text)
            assert "may not read" in response.json()["error"]
        # a run of another project, a run that does not exist, an id prefix of several runs:
        # the same 403, which names neither the run's project nor says whether it exists
        for ident in (vision, "20990101-000000-abcdef", vision[:2]):
            response = server.get(f"/api/runs/{ident}", headers=headers)
            assert response.status_code == 403, (ident, response.text)
            assert response.json()["error"] == f"this key may not read run {ident!r}"

        # an admin key reads everything
        admin_key = auth.create_key(database, "alice", "*", "admin")
        everything = server.get("/api/projects", headers={"Authorization": f"Bearer {admin_key}"}).json()
        assert {p["name"] for p in everything["projects"]} == {"nlp", "vision"}
        image = server.get(f"/media/{media_path}", headers={"Authorization": f"Bearer {admin_key}"})
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")


def test_the_last_values_of_many_runs_are_those_of_each_run(database, local_store, run_ids):
    import numpy as np
    from seetrain.store.reader import StoreReader
    from seetrain_server.reader import ServerReader

    ids = list(run_ids.values())
    local = StoreReader(local_store)
    try:
        assert local.last_scalars_many(ids) == {r: local.last_scalars(r) for r in ids}
    finally:
        local.close()
    # a chunk whose steps came out of order: its last step is not its highest
    key_id = database.query("SELECT id FROM keys WHERE run_id = ? AND key = 'lr'", (run_ids["resnet-a"],))[0][0]
    database.execute("INSERT INTO scalar_chunks (id, key_id, n, step_min, step_max, steps, vals, ts) "
                     "VALUES (100000, ?, 2, 65, 70, ?, ?, ?)",
                     (key_id, np.array([70, 65], "<i8").tobytes(), np.array([1.0, 2.0], "<f8").tobytes(),
                      np.array([1.0, 2.0], "<f8").tobytes()))
    reader = ServerReader(database)
    many = reader.last_scalars_many(ids)
    assert many == {r: reader.last_scalars(r) for r in ids}
    assert many[run_ids["resnet-a"]]["lr"] == 1.0


def test_the_dashboard_is_mounted_after_the_servers_own_routes(database):
    from starlette.routing import Mount

    app = create_app(Settings(db_url=database.url), db=database)
    assert isinstance(app.routes[-1], Mount) and app.routes[-1].path == ""
    with TestClient(app) as server:
        assert server.get("/healthz").status_code == 200


# -- in a browser -------------------------------------------------------------------------------
class _Uvicorn:
    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            assert self.thread.is_alive(), "the server did not start"
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def in_chromium(scenario) -> None:
    """Run ``scenario(page)`` in a fresh headless Chromium, in a thread of its own: Playwright's
    sync API cannot start where an asyncio loop is set, nor beside the dashboard tests' own
    session browser, whatever order the tests run in."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}", pytrace=False)
    outcome: list[BaseException] = []

    def main() -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
                try:
                    context = browser.new_context(viewport={"width": 1440, "height": 900})
                    page = context.new_page()
                    page.set_default_timeout(TIMEOUT_MS)
                    errors: list[str] = []
                    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
                    # the 401 that brings the login form and the 403 of a project the key may not
                    # read are logged by Chromium as failed resources: expected
                    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
                            if msg.type == "error" and not any(f"status of {c}" in msg.text for c in (401, 403))
                            else None)
                    scenario(page)
                    assert not errors, errors
                finally:
                    browser.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread, raised there
            outcome.append(exc)

    thread = threading.Thread(target=main, name="chromium", daemon=True)
    thread.start()
    thread.join()
    if outcome:
        raise outcome[0]


def shot(page, name: str) -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    folder = os.path.join(root, "test-artifacts", "ui")
    os.makedirs(folder, exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def test_in_a_browser_sign_in_then_runs_then_a_run_with_charts_and_media(database, run_ids):
    auth.create_user(database, "bob")
    key = auth.create_key(database, "bob", "vision", "read")
    app = create_app(Settings(db_url=database.url, auth=True), db=database)
    with _Uvicorn(app) as url:
        in_chromium(lambda page: _sign_in_scenario(page, url, key, run_ids))


def _sign_in_scenario(page, url: str, key: str, run_ids: dict[str, str]) -> None:
    page.goto(url)
    form = page.locator("form.login")
    form.wait_for()
    shot(page, "server-login")
    # a wrong key: the form comes back and says so
    page.fill("#login-key", "stk_000000000000_" + "x" * 40)
    page.click("form.login button[type=submit]")
    page.locator("form.login .login-problem", has_text="not valid").wait_for()

    page.fill("#login-key", key)
    page.click("form.login button[type=submit]")
    page.locator("a", has_text="vision").first.wait_for()
    assert page.evaluate("() => localStorage.getItem('seetrain.apiKey')") == key
    assert page.locator("text=nlp").count() == 0  # not readable with this key

    page.goto(url + "#/p/vision")
    page.locator("text=resnet-a").first.wait_for()
    page.locator("text=resnet-b").first.wait_for()
    shot(page, "server-runs")

    page.goto(url + f"#/r/{run_ids['resnet-a']}")
    page.locator(".chart-card[data-key='train/loss'][data-state='ready']").wait_for()
    points = page.evaluate("() => { const c = [...window.__seetrain.charts.values()]"
                           ".find((c) => c.key === 'train/loss'); return c && c.u ? c.u.data[0].length : 0; }")
    assert points >= 50
    # the image panel shows a blob fetched with the key
    img = page.locator(".media-card[data-key='samples/image'] img").first
    img.wait_for()
    page.wait_for_function("() => { const i = document.querySelector(\".media-card[data-key='samples/image'] img\");"
                           " return i && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0; }")
    shot(page, "server-run")

    # a run of a project the key may not read: the dashboard's error, not the data
    page.goto(url + f"#/r/{run_ids['bert']}")
    page.locator(".error-box", has_text="may not read").wait_for()

    # sign out: the form is back
    page.click("#sign-out")
    form.wait_for()
    assert page.evaluate("() => localStorage.getItem('seetrain.apiKey')") is None
