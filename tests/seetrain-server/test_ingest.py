"""The ingest API (/api/v1) on a real PostgreSQL (and SQLite where cheap): runs, idempotent
batches, exact values, limits, load shedding, media, and who may write."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from starlette.testclient import TestClient

from seetrain_server import auth
from seetrain_server.app import create_app
from seetrain_server.config import Settings
from seetrain_server.protocol import encode_batch, encode_run, unpack_float64, unpack_int64

RUN = "20261203-210000-abc123"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'server.db'}"


def make_client(url: str, **settings) -> TestClient:
    app = create_app(Settings(db_url=url, **settings))
    return TestClient(app)


@pytest.fixture
def client(postgres_url):
    with make_client(postgres_url) as c:
        yield c
        c.app.state.server.db.close()


@pytest.fixture
def any_client(db_url):
    with make_client(db_url) as c:
        yield c
        c.app.state.server.db.close()


def db(client):
    return client.app.state.server.db


def put_run(client, run=RUN, project="vision", **fields):
    response = client.put(f"/api/v1/runs/{run}", json=encode_run(project, **fields))
    assert response.status_code == 200, response.text
    return response.json()


def send(client, body, run=RUN):
    return client.post(f"/api/v1/runs/{run}/batches", json=body)


def read_key(client, key, run=RUN):
    """Every (step, value, time) of ``key``, decoded from the stored blobs, in insertion order."""
    rows = db(client).query(
        "SELECT c.n, c.steps, c.vals, c.ts FROM scalar_chunks c JOIN keys k ON k.id = c.key_id "
        "WHERE k.run_id = ? AND k.key = ? ORDER BY c.id", (run, key))
    out = []
    for n, steps, vals, ts in rows:
        steps, vals, ts = unpack_int64(bytes(steps)), unpack_float64(bytes(vals)), unpack_float64(bytes(ts))
        assert len(steps) == len(vals) == len(ts) == n
        out.extend(zip(steps, vals, ts, strict=True))
    return out


def count(client, table):
    return db(client).query(f"SELECT COUNT(*) FROM {table}")[0][0]


def nothing_stored(client):
    return all(count(client, t) == 0 for t in ("ingest_batches", "keys", "scalar_chunks", "media", "media_blobs",
                                                "files"))


# -- runs ------------------------------------------------------------------------------------
def test_put_creates_then_updates_a_run_idempotently(any_client):
    assert put_run(any_client, name="resnet", tags=["a"], config={"lr": 0.1, "seetrain": {"frameworks": ["keras"]}},
                   host="gpu-1", pid=42, created_at=1.5e9) == {"run": RUN, "project": "vision"}
    put_run(any_client, name="resnet")  # again: nothing changes but what it gives
    put_run(any_client, description="second try")
    row = db(any_client).query("SELECT project, name, description, tags, config, frameworks, status, created_at, "
                               "host, pid FROM runs WHERE id = ?", (RUN,))
    project, name, description, tags, config, frameworks, status, created_at, host, pid = row[0]
    assert (project, name, description, json.loads(tags), status, created_at, host, pid) == \
        ("vision", "resnet", "second try", ["a"], "running", 1.5e9, "gpu-1", 42)
    assert json.loads(config)["lr"] == 0.1 and json.loads(frameworks) == ["keras"]
    assert count(any_client, "runs") == 1


def test_a_run_never_moves_to_another_project(any_client):
    put_run(any_client, name="first")
    response = any_client.put(f"/api/v1/runs/{RUN}", json=encode_run("audio", name="second"))
    assert response.status_code == 409 and "vision" in response.json()["error"]
    assert db(any_client).query("SELECT project, name FROM runs") == [("vision", "first")]


@pytest.mark.parametrize("body, field", [
    ({}, "project"), ({"project": ""}, "project"), ({"project": "*"}, "project"),
    ({"project": "p", "tags": "x"}, "tags"), ({"project": "p", "pid": "1"}, "pid"),
    ({"project": "p", "created_at": "now"}, "created_at"), ({"project": "p", "nme": "x"}, "nme"),
    ({"project": "p", "name": "a\x00b"}, "name"), ({"project": "p", "config": [1]}, "config"),
])
def test_a_bad_run_body_is_422_naming_the_field(client, body, field):
    response = client.put(f"/api/v1/runs/{RUN}", json=body)
    assert response.status_code == 422 and field in response.json()["error"]
    assert count(client, "runs") == 0


def test_a_bad_run_id_is_refused(client):
    response = client.put("/api/v1/runs/..bad", json={"project": "p"})
    assert response.status_code == 422 and "run id" in response.json()["error"]


# -- batches ---------------------------------------------------------------------------------
def test_values_are_stored_exactly_and_the_run_row_follows(any_client):
    put_run(any_client, created_at=1.7e9)
    steps = np.arange(0, 1000, dtype=np.int64) * 3
    loss = np.random.default_rng(0).standard_normal(1000)
    loss[[5, 6, 7]] = [math.nan, math.inf, -math.inf]
    times = 1.7e9 + np.arange(1000) * 0.01
    body = encode_batch("host-1-a", 0, {"loss": (steps, loss, times), "acc": ([10], [0.5], [1.7e9])},
                        summary={"best": 0.1}, config={"lr": 0.01}, heartbeat=1.7e9 + 99)
    response = send(any_client, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": True, "max_seq": 0}
    got = read_key(any_client, "loss")
    assert [s for s, _, _ in got] == steps.tolist()
    assert np.array_equal(np.array([v for _, v, _ in got]), loss, equal_nan=True)
    assert [t for _, _, t in got] == times.tolist()
    assert read_key(any_client, "acc") == [(10, 0.5, 1.7e9)]
    chunk = db(any_client).query("SELECT n, step_min, step_max FROM scalar_chunks c JOIN keys k ON k.id = c.key_id "
                                 "WHERE k.key = 'loss'")
    assert chunk == [(1000, 0, 2997)]
    last_step, heartbeat, summary, config = db(any_client).query(
        "SELECT last_step, heartbeat_at, summary, config FROM runs WHERE id = ?", (RUN,))[0]
    assert (last_step, heartbeat, json.loads(summary), json.loads(config)) == (2997, 1.7e9 + 99, {"best": 0.1},
                                                                               {"lr": 0.01})
    assert db(any_client).query("SELECT kind FROM keys WHERE key = 'loss'") == [("scalar",)]


def test_the_same_batch_sent_three_times_is_stored_once(any_client):
    put_run(any_client)
    body = encode_batch("src", 0, {"loss": ([1, 2], [0.5, 0.25], [1.0, 2.0])},
                        files=[{"kind": "code", "path": "train.py"}])
    answers = [send(any_client, body).json() for _ in range(3)]
    assert answers == [{"stored": True, "max_seq": 0}, {"stored": False, "max_seq": 0},
                       {"stored": False, "max_seq": 0}]
    assert read_key(any_client, "loss") == [(1, 0.5, 1.0), (2, 0.25, 2.0)]
    assert count(any_client, "scalar_chunks") == 1 and count(any_client, "files") == 1


def test_batches_out_of_order_are_all_stored(any_client):
    put_run(any_client)
    assert send(any_client, encode_batch("src", 2, {"x": ([20], [2.0], [2.0])})).json() == \
        {"stored": True, "max_seq": 2}
    assert send(any_client, encode_batch("src", 1, {"x": ([10], [1.0], [1.0])})).json() == \
        {"stored": True, "max_seq": 2}
    # another source counts its own sequence
    assert send(any_client, encode_batch("other", 0, {"x": ([5], [0.5], [0.5])})).json() == \
        {"stored": True, "max_seq": 0}
    assert sorted(read_key(any_client, "x")) == [(5, 0.5, 0.5), (10, 1.0, 1.0), (20, 2.0, 2.0)]
    assert db(any_client).query("SELECT last_step FROM runs") == [(20,)]  # not moved back by seq 1
    assert any_client.get(f"/api/v1/runs/{RUN}/batches", params={"source": "src"}).json() == {"max_seq": 2}
    assert any_client.get(f"/api/v1/runs/{RUN}/batches", params={"source": "new"}).json() == {"max_seq": -1}


def test_status_ends_the_run(client):
    put_run(client)
    response = send(client, encode_batch("s", 0, status={"status": "crashed", "error": "OOM", "time": 5.0}))
    assert response.status_code == 200
    assert db(client).query("SELECT status, error, finished_at FROM runs") == [("crashed", "OOM", 5.0)]


def test_a_batch_for_an_unknown_run_is_404_with_the_fix(client):
    response = send(client, encode_batch("s", 0, {"x": ([1], [1.0], [1.0])}), run="nope")
    assert response.status_code == 404
    assert "PUT /api/v1/runs/nope" in response.json()["error"]
    assert client.get("/api/v1/runs/nope/batches", params={"source": "s"}).status_code == 404


def test_media_are_stored_and_retrievable(any_client):
    put_run(any_client)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    body = encode_batch("gpu-1", 3, media=[
        {"key": "samples/img", "step": 7, "index": 0, "kind": "image", "format": "png", "data": png,
         "caption": "a cat", "meta": {"width": 8, "height": 8}, "time": 10.0},
        {"key": "samples/img", "step": 7, "index": 1, "kind": "image", "format": "png", "data": png[::-1]},
        {"key": "notes", "step": 7, "index": 0, "kind": "text", "text": "héllo", "time": 11.0},
    ])
    response = send(any_client, body)
    assert response.status_code == 200, response.text
    rows = db(any_client).query("SELECT k.key, k.kind, m.step, m.idx, m.path, m.text, m.caption, m.meta FROM media m "
                                "JOIN keys k ON k.id = m.key_id ORDER BY k.key, m.idx")
    assert [(r[0], r[1], r[2], r[3], r[5], r[6]) for r in rows] == [
        ("notes", "text", 7, 0, "héllo", None), ("samples/img", "image", 7, 0, None, "a cat"),
        ("samples/img", "image", 7, 1, None, None)]
    assert rows[0][4] is None
    path = rows[1][4]
    assert path == f"media/{RUN}/samples/img/000000007-0-gpu-1-3.png"
    media = any_client.app.state.server.media
    assert media.get(db(any_client), path) == (png, "image/png")
    assert media.get(db(any_client), rows[2][4]) == (png[::-1], "image/png")
    assert json.loads(rows[1][7]) == {"width": 8, "height": 8}
    assert db(any_client).query("SELECT last_step FROM runs") == [(7,)]


def test_a_key_holds_scalars_or_media_not_both(client):
    put_run(client)
    assert send(client, encode_batch("s", 0, {"x": ([1], [1.0], [1.0])})).status_code == 200
    response = send(client, encode_batch("s", 1, media=[{"key": "x", "step": 2, "kind": "text", "text": "t"}]))
    assert response.status_code == 422 and "'x'" in response.json()["error"]
    assert client.get(f"/api/v1/runs/{RUN}/batches", params={"source": "s"}).json() == {"max_seq": 0}


# -- refused batches: 4xx naming the problem, nothing stored, the server still serving ----------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


GOOD = {"key": "x", "steps": _b64(np.int64(1).tobytes()), "values": _b64(np.float64(1).tobytes()),
        "times": _b64(np.float64(1).tobytes())}


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 422, "JSON object"),
    (b'{"seq": 0}', 422, "'source'"),
    (b'{"source": "s", "seq": -1}', 422, "'seq'"),
    (b'{"source": "s", "seq": true}', 422, "'seq'"),
    (b'{"source": "s", "seq": 0, "extra": 1}', 422, "'extra'"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [{**GOOD, "steps": "!!!"}]}).encode(), 422,
     "scalars[0].steps"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [{**GOOD, "values": _b64(b"1234")}]}).encode(), 422,
     "scalars[0]"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [{**GOOD, "steps": _b64(np.int64(-5).tobytes())}]}).encode(),
     422, "negative"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [GOOD, {**GOOD, "key": 3}]}).encode(), 422,
     "scalars[1].key"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [GOOD, {**GOOD, "key": "k" * 300}]}).encode(), 422,
     "max_key_length"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [GOOD],
                 "media": [{"key": "m", "step": 1, "kind": "image", "format": "png", "data": "%%"}]}).encode(),
     422, "media[0].data"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [GOOD],
                 "media": [{"key": "m", "step": 1, "kind": "video", "format": "mp4", "data": ""}]}).encode(),
     422, "media[0].kind"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [GOOD], "status": {"status": "done"}}).encode(), 422,
     "status"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [GOOD], "heartbeat": 1e400}).replace("Infinity", "1e400")
     .encode(), 422, "heartbeat"),
    (json.dumps({"source": "s", "seq": 0, "scalars": [GOOD], "files": [{"kind": "code"}]}).encode(), 422,
     "files[0]"),
    (json.dumps({"source": "s\u0000", "seq": 0}).encode(), 422, "source"),
    (b'{"source": "\\ud800", "seq": 0}', 422, "source"),
])
def test_a_malformed_batch_is_refused_and_nothing_is_stored(any_client, body, status, words):
    put_run(any_client)
    response = any_client.post(f"/api/v1/runs/{RUN}/batches", content=body,
                               headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert nothing_stored(any_client)
    # the server still serves
    assert send(any_client, encode_batch("s", 0, {"x": ([1], [1.0], [1.0])})).json()["stored"] is True


def test_limits_are_413_naming_the_setting(postgres_url):
    with make_client(postgres_url, max_body_bytes=10_000, max_chunks_per_batch=3, max_points_per_batch=100,
                     max_keys_per_run=4) as client:
        put_run(client)
        big = np.arange(2000)
        response = send(client, encode_batch("s", 0, {"x": (big, big, big)}))
        assert response.status_code == 413 and "max_body_bytes" in response.json()["error"]
        response = send(client, encode_batch("s", 0, {f"k{i}": ([1], [1.0], [1.0]) for i in range(4)}))
        assert response.status_code == 413 and "max_chunks_per_batch" in response.json()["error"]
        response = send(client, encode_batch("s", 0, {"a": (range(60), range(60), range(60)),
                                                      "b": (range(60), range(60), range(60))}))
        assert response.status_code == 413 and "max_points_per_batch" in response.json()["error"]
        # a body that lies about its size (no Content-Length: chunked) is cut at the limit too
        response = client.post(f"/api/v1/runs/{RUN}/batches", content=iter([b" " * 6000, b" " * 6000]))
        assert response.status_code == 413 and "max_body_bytes" in response.json()["error"]
        assert nothing_stored(client)
        # keys per run counts the keys held already
        assert send(client, encode_batch("s", 0, {f"k{i}": ([1], [1.0], [1.0]) for i in range(3)})).status_code == 200
        response = send(client, encode_batch("s", 1, {"k0": ([2], [1.0], [1.0]), "n1": ([2], [1.0], [1.0]),
                                                      "n2": ([2], [1.0], [1.0])}))
        assert response.status_code == 422 and "max_keys_per_run" in response.json()["error"]
        assert count(client, "scalar_chunks") == 3 and count(client, "ingest_batches") == 1
        client.app.state.server.db.close()


def test_over_the_concurrency_limit_the_replica_sheds_load(client):
    put_run(client)
    gate = client.app.state.server.ingest_gate
    held = 0
    while gate.try_enter():  # every slot taken, as by requests in flight
        held += 1
    try:
        assert held == client.app.state.server.settings.max_concurrent_ingest
        response = send(client, encode_batch("s", 0, {"x": ([1], [1.0], [1.0])}))
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert "max_concurrent_ingest" in response.json()["error"]
        assert client.put(f"/api/v1/runs/{RUN}", json={"project": "vision"}).status_code == 503
    finally:
        for _ in range(held):
            gate.leave()
    assert nothing_stored(client)
    assert send(client, encode_batch("s", 0, {"x": ([1], [1.0], [1.0])})).status_code == 200


# -- who may write -----------------------------------------------------------------------------
class _AsKey:
    """Test-only ASGI middleware: every request comes from ``who`` (authentication itself is
    tested in test_auth.py; here only what ingest does with a caller's roles)."""

    def __init__(self, app, who):
        self.app, self.who = app, who

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            scope.setdefault("state", {})["principal"] = self.who
        await self.app(scope, receive, send)


def as_key(client, roles):
    """A client whose every request comes from a key holding ``roles``: the server's routes
    and error handlers, with the test-only middleware in place of authentication."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    who = auth.Principal(key_id="0123456789ab", user="u", is_admin=False, roles=roles)
    app = Starlette(routes=client.app.routes, middleware=[Middleware(_AsKey, who=who)],
                    exception_handlers=client.app.exception_handlers)
    app.state.server = client.app.state.server
    return TestClient(app)


def test_keys_write_only_their_projects_and_learn_nothing_of_others(client):
    put_run(client, project="vision")
    writer = as_key(client, {"vision": "write"})
    reader = as_key(client, {"vision": "read"})
    stranger = as_key(client, {"audio": "write"})
    body = encode_batch("s", 0, {"x": ([1], [1.0], [1.0])})
    assert send(reader, body).status_code == 403
    # the same answer for a run of another project and for a run that does not exist
    other, missing = send(stranger, body), send(stranger, body, run="missing")
    assert other.status_code == missing.status_code == 403
    assert other.json()["error"].replace(RUN, "X") == missing.json()["error"].replace("missing", "X")
    assert stranger.put(f"/api/v1/runs/{RUN}", json={"project": "audio"}).status_code == 403
    assert stranger.put("/api/v1/runs/new-run", json={"project": "vision"}).status_code == 403
    assert stranger.get(f"/api/v1/runs/{RUN}/batches", params={"source": "s"}).status_code == 403
    assert nothing_stored(client)
    assert send(writer, body).json() == {"stored": True, "max_seq": 0}
    assert reader.get(f"/api/v1/runs/{RUN}/batches", params={"source": "s"}).json() == {"max_seq": 0}
    assert writer.put("/api/v1/runs/r2", json={"project": "vision"}).status_code == 200


def test_openapi_document_is_served(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.0")
    assert {"/api/v1/runs/{run_id}", "/api/v1/runs/{run_id}/batches", "/healthz", "/readyz",
            "/api/v1/admin/keys", "/api/projects"} <= set(doc["paths"])


def test_what_is_ingested_reads_back_through_the_dashboards_reader(any_client):
    from seetrain_server.reader import ServerReader

    put_run(any_client, name="resnet")
    steps = np.arange(5000, dtype=np.int64)
    values = np.sin(steps / 100.0)
    send(any_client, encode_batch("a", 1, {"train/loss": (steps[2500:], values[2500:], steps[2500:] * 1.0)}))
    send(any_client, encode_batch("a", 0, {"train/loss": (steps[:2500], values[:2500], steps[:2500] * 1.0)}))
    reader = ServerReader(db(any_client))
    got_steps, got_values, got_times = reader.scalars(RUN, "train/loss")
    assert got_steps.tolist() == steps.tolist() and got_values.tolist() == values.tolist()
    assert got_times.tolist() == (steps * 1.0).tolist()
    assert reader.run(RUN)["last_step"] == 4999
    assert any_client.get(f"/api/runs/{RUN}/scalars", params={"key": "train/loss", "max_points": 100}).status_code == 200


def test_the_same_batch_sent_at_once_from_many_threads_is_stored_once(client):
    from concurrent.futures import ThreadPoolExecutor

    put_run(client)
    body = encode_batch("src", 7, {f"k{i}": (range(1000), range(1000), range(1000)) for i in range(5)})
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: send(client, body), range(6)))
    ok = [a.json() for a in answers if a.status_code == 200]
    assert all(a.status_code in (200, 503) for a in answers)
    assert sum(a["stored"] for a in ok) == 1
    assert count(client, "scalar_chunks") == 5 and count(client, "keys") == 5


def test_with_authentication_on_a_write_key_of_the_project_ingests(postgres_url):
    with make_client(postgres_url, auth=True) as client:
        database = db(client)
        auth.create_user(database, "alice")
        writer = auth.create_key(database, "alice", "vision", "write")
        reader = auth.create_key(database, "alice", "vision", "read")
        body = encode_batch("s", 0, {"x": ([1], [1.0], [1.0])})
        assert client.put(f"/api/v1/runs/{RUN}", json=encode_run("vision")).status_code == 401
        assert send(client, body).status_code == 401
        as_writer = {"Authorization": f"Bearer {writer}"}
        as_reader = {"Authorization": f"Bearer {reader}"}
        assert client.put(f"/api/v1/runs/{RUN}", json=encode_run("vision"), headers=as_writer).status_code == 200
        assert client.put(f"/api/v1/runs/{RUN}", json=encode_run("vision"), headers=as_reader).status_code == 403
        assert client.post(f"/api/v1/runs/{RUN}/batches", json=body, headers=as_reader).status_code == 403
        assert client.post(f"/api/v1/runs/{RUN}/batches", json=body, headers=as_writer).json() == \
            {"stored": True, "max_seq": 0}
        assert client.get(f"/api/v1/runs/{RUN}/batches", params={"source": "s"},
                          headers=as_reader).json() == {"max_seq": 0}
        database.close()


def test_media_of_keys_and_sources_that_look_alike_on_a_path_never_share_a_file(client):
    put_run(client)
    items = [{"key": key, "step": 1, "kind": "image", "format": "png", "data": key.encode()}
             for key in ("a b", "a_b", "a?b")]
    assert send(client, encode_batch("h 1", 0, media=items)).status_code == 200
    assert send(client, encode_batch("h_1", 0, media=items[:1])).status_code == 200
    rows = db(client).query("SELECT k.key, m.path FROM media m JOIN keys k ON k.id = m.key_id ORDER BY m.id")
    assert len({path for _, path in rows}) == 4
    media = client.app.state.server.media
    for key, path in rows:
        assert media.get(db(client), path)[0] == key.encode()
