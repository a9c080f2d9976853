"""API keys, roles and the admin API of the team server, on a real PostgreSQL and on SQLite,
through the real ASGI app (starlette's TestClient) with authentication on."""

from __future__ import annotations

import json
import logging

import pytest
from seetrain_server import Settings, auth, create_app, logs
from seetrain_server import db as dbm
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'server.db'}"


async def _probe(request: Request) -> JSONResponse:
    """A throwaway protected route: require(project, role) as a handler calls it."""
    who = auth.require(request, request.path_params["project"], request.path_params["role"])
    return JSONResponse({"user": who.user, "key_id": who.key_id})


class Server:
    """One replica: the app over ``url`` with authentication on, plus the probe route."""

    def __init__(self, url: str, *, auth_on: bool = True, cache_ttl_s: float | None = None) -> None:
        settings = Settings(db_url=url, auth=auth_on)
        if cache_ttl_s is not None:
            settings.key_cache_ttl_s = cache_ttl_s
        self.db = dbm.open_database(url)
        self.app = create_app(settings, db=self.db)
        self.app.router.routes.insert(0, Route("/probe/{project}/{role}", _probe))
        self.client = TestClient(self.app)
        self.state = self.app.state.server

    def get(self, path: str, key: str | None = None, **kw):
        return self.client.get(path, headers=_bearer(key), **kw)

    def post(self, path: str, body=None, key: str | None = None, **kw):
        return self.client.post(path, json=body, headers=_bearer(key), **kw)

    def close(self) -> None:
        self.client.close()
        self.db.close()


def _bearer(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture
def server(url):
    s = Server(url)
    yield s
    s.close()


@pytest.fixture
def admin_key(server):
    key = auth.ensure_first_admin(server.db)
    assert key is not None
    return key


def test_anonymous_requests_to_a_protected_route_are_401_but_health_is_open(server):
    r = server.get("/probe/A/read")
    assert r.status_code == 401
    assert "Authorization: Bearer" in r.json()["error"]
    assert server.get("/api/v1/admin/keys").status_code == 401
    assert server.get("/healthz").json() == {"status": "ok"}
    assert server.get("/readyz").json() == {"status": "ready", "database": "ok"}


def test_invalid_keys_are_401_with_a_message_that_says_so(server, admin_key):
    key_id = auth.key_id_of(admin_key)
    for bad in ("nonsense", "stk_zzzzzzzzzzzz_" + "a" * 43, "stk_000000000000_" + "a" * 43,
                f"stk_{key_id}_" + "a" * 43):  # malformed, unknown id, right id with a wrong secret
        r = server.get("/probe/A/read", key=bad)
        assert r.status_code == 401, bad
        assert "not valid" in r.json()["error"]
    # another scheme is no key at all
    r = server.client.get("/probe/A/read", headers={"Authorization": f"Basic {admin_key}"})
    assert r.status_code == 401
    assert server.get("/probe/A/read", key=admin_key).status_code == 200


def test_a_read_key_may_read_its_project_only_and_403_never_tells_whether_a_project_exists(server):
    auth.create_user(server.db, "alice")
    key = auth.create_key(server.db, "alice", "A", "read")
    server.db.execute("INSERT INTO runs (id, project, name, status, created_at) VALUES ('r1', 'B', 'r', 'finished', 0)")

    r = server.get("/probe/A/read", key=key)
    assert r.status_code == 200 and r.json() == {"user": "alice", "key_id": auth.key_id_of(key)}
    assert server.get("/probe/A/write", key=key).status_code == 403
    existing = server.get("/probe/B/read", key=key)  # project B has a run
    missing = server.get("/probe/C/read", key=key)  # project C has none
    assert existing.status_code == missing.status_code == 403
    assert existing.json()["error"].replace("'B'", "<p>") == missing.json()["error"].replace("'C'", "<p>")
    assert server.get("/api/v1/admin/keys", key=key).status_code == 403


def test_a_write_key_may_write_and_read_but_not_administer(server):
    auth.create_user(server.db, "bob")
    key = auth.create_key(server.db, "bob", "A", "write")
    assert server.get("/probe/A/write", key=key).status_code == 200
    assert server.get("/probe/A/read", key=key).status_code == 200
    assert server.get("/probe/A/admin", key=key).status_code == 403
    assert server.get("/probe/B/write", key=key).status_code == 403
    # a key on every project ('*')
    everywhere = auth.create_key(server.db, "bob", "*", "write")
    assert server.get("/probe/B/write", key=everywhere).status_code == 200
    assert server.get("/probe/B/admin", key=everywhere).status_code == 403


def test_the_stronger_of_a_project_role_and_the_every_project_role_counts():
    who = auth.Principal(key_id="k", user="u", is_admin=False, roles={"A": "read", "*": "write"})
    assert who.can("A", "write") and who.can("Z", "write")
    assert not who.can("A", "admin")


def test_an_admin_key_manages_users_and_keys(server, admin_key):
    r = server.post("/api/v1/admin/users", {"name": "carol"}, key=admin_key)
    assert r.status_code == 201 and r.json() == {"user": "carol"}
    r = server.post("/api/v1/admin/keys", {"user": "carol", "project": "vision", "role": "write",
                                            "label": "laptop"}, key=admin_key)
    assert r.status_code == 201
    created = r.json()
    assert created["key"].startswith(f"stk_{created['id']}_")
    assert server.get("/probe/vision/write", key=created["key"]).json()["user"] == "carol"

    listed = server.get("/api/v1/admin/keys", key=admin_key).json()["keys"]
    mine = [k for k in listed if k["id"] == created["id"]]
    assert len(mine) == 1
    assert mine[0]["user"] == "carol" and mine[0]["label"] == "laptop"
    assert mine[0]["roles"] == {"vision": "write"} and mine[0]["revoked_at"] is None
    assert set(mine[0]) == {"id", "user", "label", "roles", "created_at", "revoked_at"}

    # a key with admin on one project is not an admin of the server
    project_admin = auth.create_key(server.db, "carol", "vision", "admin")
    assert server.get("/probe/vision/admin", key=project_admin).status_code == 200
    assert server.post("/api/v1/admin/users", {"name": "mallory"}, key=project_admin).status_code == 403
    # an admin user is admin everywhere, whatever its key's role says
    assert server.post("/api/v1/admin/users", {"name": "dave", "admin": True}, key=admin_key).status_code == 201
    dave = auth.create_key(server.db, "dave", "somewhere", "read")
    assert server.get("/probe/elsewhere/admin", key=dave).status_code == 200
    assert server.get("/api/v1/admin/keys", key=dave).status_code == 200

    r = server.client.delete(f"/api/v1/admin/keys/{created['id']}", headers=_bearer(admin_key))
    assert r.status_code == 200 and r.json() == {"revoked": created["id"]}
    again = server.client.delete(f"/api/v1/admin/keys/{created['id']}", headers=_bearer(admin_key))
    assert again.status_code == 200  # idempotent
    listed = server.get("/api/v1/admin/keys", key=admin_key).json()["keys"]
    assert next(k["revoked_at"] for k in listed if k["id"] == created["id"]) is not None


def test_a_revoked_key_stops_working_on_this_replica_at_once_and_on_others_when_their_cache_expires(url):
    one = Server(url)
    two = Server(url)  # another replica on the same database, with the default TTL
    three = Server(url, cache_ttl_s=0)  # a replica that trusts nothing it verified before
    try:
        auth.create_user(one.db, "erin", admin=True)
        admin = auth.create_key(one.db, "erin", "*", "admin")
        auth.create_user(one.db, "frank")
        key = auth.create_key(one.db, "frank", "A", "write")
        for replica in (one, two, three):
            assert replica.get("/probe/A/write", key=key).status_code == 200

        r = one.client.delete(f"/api/v1/admin/keys/{auth.key_id_of(key)}", headers=_bearer(admin))
        assert r.status_code == 200
        assert one.get("/probe/A/write", key=key).status_code == 401  # evicted here at once
        assert three.get("/probe/A/write", key=key).status_code == 401  # nothing cached there
        # replica two may trust its cached verification up to KEY_CACHE_TTL_S; once it expires
        # (cleared here rather than waited for) the database's revocation holds there too
        two.state.key_cache.clear()
        assert two.get("/probe/A/write", key=key).status_code == 401
        assert two.get("/probe/A/write", key=admin).status_code == 200
    finally:
        for replica in (one, two, three):
            replica.close()


def test_revoking_through_the_library_and_roles_seen_by_the_cache(server):
    auth.create_user(server.db, "gina")
    key = auth.create_key(server.db, "gina", "A", "read")
    assert server.get("/probe/A/read", key=key).status_code == 200
    assert server.state.key_cache.get(key) is not None
    assert auth.revoke_key(server.db, auth.key_id_of(key)) is True
    assert auth.revoke_key(server.db, auth.key_id_of(key)) is False
    server.state.key_cache.evict(auth.key_id_of(key))
    assert server.state.key_cache.get(key) is None
    assert server.get("/probe/A/read", key=key).status_code == 401
    with pytest.raises(auth.UnknownKeyError):
        auth.revoke_key(server.db, "0123456789ab")


def test_keys_are_stored_only_as_argon2id_hashes(server, admin_key):
    auth.create_user(server.db, "hank")
    key = auth.create_key(server.db, "hank", "A", "write", label="ci")
    secret = key.split("_", 2)[2]
    everything = []
    for table in ("users", "api_keys", "roles", "meta"):
        everything += [str(value) for row in server.db.query(f"SELECT * FROM {table}") for value in row]
    assert not [v for v in everything if secret in v or key in v]
    hashes = [row[0] for row in server.db.query("SELECT hash FROM api_keys WHERE id = ?", (auth.key_id_of(key),))]
    assert hashes[0].startswith("$argon2id$")
    listing = server.get("/api/v1/admin/keys", key=admin_key).text
    assert "argon2" not in listing and secret not in listing and admin_key.split("_", 2)[2] not in listing


BAD_REQUESTS = [
    # (method, path, body (bytes: sent as is), status)
    ("POST", "/api/v1/admin/users", b"{not json", 400),
    ("POST", "/api/v1/admin/users", b"\xff\xfe", 400),
    ("POST", "/api/v1/admin/users", b"", 422),
    ("POST", "/api/v1/admin/users", [], 422),
    ("POST", "/api/v1/admin/users", {}, 422),
    ("POST", "/api/v1/admin/users", {"name": 42}, 422),
    ("POST", "/api/v1/admin/users", {"name": ""}, 422),
    ("POST", "/api/v1/admin/users", {"name": "x" * 65}, 422),
    ("POST", "/api/v1/admin/users", {"name": "has space"}, 422),
    ("POST", "/api/v1/admin/users", {"name": "ok", "admin": "yes"}, 422),
    ("POST", "/api/v1/admin/users", {"name": "ok", "extra": 1}, 422),
    ("POST", "/api/v1/admin/users", {"name": "admin"}, 409),
    ("POST", "/api/v1/admin/users", b"[" * 100_000, 413),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": "A"}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": "A", "role": "owner"}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": "A", "role": None}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": "", "role": "read"}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": " A", "role": "read"}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": "p" * 300, "role": "read"}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": "a\nb", "role": "read"}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": ["A"], "role": "read"}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": "A", "role": "read", "label": 7}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "admin", "project": "A", "role": "read", "label": "\x00"}, 422),
    ("POST", "/api/v1/admin/keys", {"user": "nobody", "project": "A", "role": "read"}, 404),
    ("DELETE", "/api/v1/admin/keys/0123456789ab", None, 404),
    ("DELETE", "/api/v1/admin/keys/not-a-key-id", None, 404),
    ("DELETE", "/api/v1/admin/keys/" + "%00" * 3, None, 404),
    ("PUT", "/api/v1/admin/keys", {}, 405),
    ("GET", "/api/v1/admin/users", None, 405),
]


@pytest.mark.parametrize("method,path,body,status", BAD_REQUESTS)
def test_the_admin_api_answers_bad_input_with_a_4xx_and_a_message(server, admin_key, method, path, body, status):
    kw = {"content": body} if isinstance(body, bytes) else ({"json": body} if body is not None else {})
    r = server.client.request(method, path, headers=_bearer(admin_key), **kw)
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_without_authentication_every_caller_is_an_admin(url):
    s = Server(url, auth_on=False)
    try:
        assert s.get("/probe/anything/admin").json() == {"user": None, "key_id": None}
        assert s.post("/api/v1/admin/users", {"name": "ivy"}).status_code == 201
    finally:
        s.close()


def test_the_first_admin_is_made_once(server):
    key = auth.ensure_first_admin(server.db)
    assert key is not None and auth.ensure_first_admin(server.db) is None
    assert [u["name"] for u in auth.list_users(server.db)] == ["admin"]
    assert server.get("/api/v1/admin/keys", key=key).status_code == 200


def test_library_functions_validate_and_name_the_problem(server):
    auth.create_user(server.db, "judy")
    with pytest.raises(auth.UserExistsError, match="judy"):
        auth.create_user(server.db, "judy")
    with pytest.raises(auth.UnknownUserError, match="user add nobody"):
        auth.create_key(server.db, "nobody", "A", "read")
    with pytest.raises(ValueError, match="read, write, admin"):
        auth.create_key(server.db, "judy", "A", "superuser")
    with pytest.raises(ValueError):
        auth.create_user(server.db, "no/slash")
    assert auth.list_keys(server.db) == []  # nothing half-made


@pytest.mark.parametrize("url", ["postgresql"], indirect=True)
def test_readyz_is_503_with_retry_after_when_the_database_is_gone(server):
    server.db.close()
    r = server.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "not ready" and r.json()["database"]
    assert r.headers["Retry-After"] == str(server.state.settings.retry_after_s)
    assert server.get("/healthz").status_code == 200  # alive: do not restart it for the database


@pytest.mark.parametrize("url", ["postgresql"], indirect=True)
def test_a_key_that_cannot_be_checked_while_the_database_is_down_is_503_to_retry(server, admin_key):
    assert server.get("/probe/A/read", key=admin_key).status_code == 200  # verified: cached
    auth.create_user(server.db, "kai")
    fresh = auth.create_key(server.db, "kai", "A", "read")
    server.db.close()
    r = server.get("/probe/A/read", key=fresh)
    assert r.status_code == 503 and "cannot be checked now" in r.json()["error"]  # an uploader retries a 503
    assert server.get("/probe/A/read").status_code == 401  # no key at all: still the client's problem
    assert server.get("/probe/A/read", key=admin_key).status_code == 200  # the cache carries on


def test_the_access_log_names_the_key_id_never_the_key(server, admin_key, caplog):
    with caplog.at_level(logging.DEBUG, logger=logs.ACCESS_LOGGER):
        server.get("/api/v1/admin/keys", key=admin_key)
        server.get("/probe/A/read")
        server.get("/healthz")
    records = [r for r in caplog.records if r.name == logs.ACCESS_LOGGER]
    by_path = {(r.path, r.status): r for r in records}
    ok = by_path[("/api/v1/admin/keys", 200)]
    assert ok.method == "GET" and ok.key_id == auth.key_id_of(admin_key) and ok.duration_ms >= 0
    assert by_path[("/probe/A/read", 401)].key_id is None
    assert by_path[("/healthz", 200)].levelno == logging.DEBUG  # probes do not flood the log
    line = json.loads(logs.JsonFormatter().format(ok))
    assert {"time", "level", "logger", "message", "method", "path", "status", "duration_ms", "key_id"} <= set(line)
    assert line["level"] == "INFO" and line["status"] == 200 and line["time"].endswith("Z")
    secret = admin_key.split("_", 2)[2]
    assert all(secret not in logs.JsonFormatter().format(r) and secret not in logs.TextFormatter().format(r)
               for r in records)


def test_an_escaped_exception_is_logged_as_a_500_request(url, caplog):
    s = Server(url, auth_on=False)

    async def boom(request):
        raise RuntimeError("boom")

    s.app.router.routes.insert(0, Route("/boom", boom))
    try:
        with caplog.at_level(logging.INFO, logger=logs.ACCESS_LOGGER):
            client = TestClient(s.app, raise_server_exceptions=False)
            assert client.get("/boom").status_code == 500
        assert [r.status for r in caplog.records if r.name == logs.ACCESS_LOGGER and r.path == "/boom"] == [500]
    finally:
        s.close()
