"""Who is asking, and may they: users, API keys, and roles per project.

An API key looks like ``stk_<id>_<secret>``: ``id`` is 12 hex characters (the primary key of
``api_keys``, safe to show and to log), ``secret`` is ``secrets.token_urlsafe(32)``. Only an
Argon2id hash of the secret is stored; the whole key is shown once, when it is created. A client
sends it as ``Authorization: Bearer stk_…``.

Each key holds a role per project (``roles``; ``*`` is every project): ``read`` < ``write`` <
``admin``. A user marked ``is_admin`` is admin on every project, whatever its keys say.

Verifying Argon2 costs tens of milliseconds and tens of megabytes by design, too much for every
request of an uploader, so each replica keeps the callers it has verified in memory for
:data:`KEY_CACHE_TTL_S` seconds (keyed by the SHA-256 of the whole key; the secret itself is not
kept). The consequence to know: **a revoked key (or a changed role) stops working on the replica
that revoked it at once, and on every other replica within** :data:`KEY_CACHE_TTL_S` **seconds**
(``Settings.key_cache_ttl_s`` where set).

With ``Settings.auth`` off (the default, loopback only) every caller is :data:`ANONYMOUS_ADMIN`.
With it on, the middleware sets ``request.state.principal`` to the key's :class:`Principal`, or
to None for a request without a valid key: it never refuses a request itself, so the health
checks and the dashboard's page and assets stay reachable (the page then asks for a key), and
each handler calls :func:`require`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import threading
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

__all__ = [
    "ALL_PROJECTS", "ANONYMOUS_ADMIN", "KEY_CACHE_TTL_S", "ROLES", "AuthError", "AuthMiddleware", "KeyCache",
    "Principal", "UnknownKeyError", "UnknownUserError", "UserExistsError", "authenticate", "create_key",
    "create_user", "ensure_first_admin", "key_id_of", "list_keys", "list_users", "middleware", "principal",
    "require", "revoke_key", "validate_label", "validate_project", "validate_role", "validate_user_name",
]

#: the roles a key may hold on a project, weakest first (each includes the ones before it)
ROLES = ("read", "write", "admin")
#: seconds a replica trusts a key it has verified before looking at the database again
KEY_CACHE_TTL_S = 60.0
#: the project name that stands for every project in the ``roles`` table
ALL_PROJECTS = "*"

KEY_PREFIX = "stk_"
_KEY = re.compile(r"stk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})")
_KEY_ID = re.compile(r"[0-9a-f]{12}")
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_PROJECT_LENGTH = 256
MAX_LABEL_LENGTH = 200


@dataclasses.dataclass(frozen=True)
class Principal:
    """The caller: an API key with roles per project (``*``: every project)."""

    key_id: str | None
    user: str | None
    is_admin: bool
    roles: dict[str, str]

    def can(self, project: str, role: str) -> bool:
        """Whether this caller holds ``role`` (or a stronger one) on ``project``."""
        if self.is_admin:
            return True
        wanted = ROLES.index(role)
        # the stronger of the project's own role and the every-project role counts
        return any(held in ROLES and ROLES.index(held) >= wanted
                   for held in (self.roles.get(project), self.roles.get(ALL_PROJECTS)) if held)


#: every caller while authentication is off
ANONYMOUS_ADMIN = Principal(key_id=None, user=None, is_admin=True, roles={ALL_PROJECTS: "admin"})


class AuthError(Exception):
    """A user or key operation that cannot be done (the message says why)."""


class UserExistsError(AuthError):
    """A user of that name exists already."""


class UnknownUserError(AuthError, LookupError):
    """No user of that name."""


class UnknownKeyError(AuthError, LookupError):
    """No key of that id."""


# -- the request side ---------------------------------------------------------------------
def principal(request: Request) -> Principal | None:
    """The caller of ``request`` (None: anonymous, or an invalid key, while authentication is on)."""
    state = request.scope.get("state") or {}
    if "principal" in state:
        return state["principal"]
    # no middleware ran (an app assembled by hand): open only if authentication is off
    server = getattr(getattr(request.app, "state", None), "server", None) if "app" in request.scope else None
    if server is not None and getattr(server.settings, "auth", False):
        return None
    return ANONYMOUS_ADMIN


def require(request: Request, project: str, role: str) -> Principal:
    """The caller, if it holds ``role`` on ``project``: else 401 (no valid key) or 403. A 403
    says the same whether the project exists or not. 503 when the key could not be checked
    (the database does not answer): the client should retry, not give up."""
    if role not in ROLES:  # a programming error of the handler, not of the client
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    who = principal(request)
    if who is None:
        state = request.scope.get("state") or {}
        if state.get("auth_unavailable"):
            # not the client's fault: a 503 is retried, where a 401 would stop an uploader for good
            server = getattr(request.app.state, "server", None)
            retry = str(getattr(getattr(server, "settings", None), "retry_after_s", 1))
            raise HTTPException(503, state["auth_problem"], headers={"Retry-After": retry})
        raise HTTPException(401, state.get("auth_problem")
                            or "an API key is needed: send it as 'Authorization: Bearer <key>'")
    if not who.can(project, role):
        what = "the admin API" if project == ALL_PROJECTS and role == "admin" else f"project {project!r}"
        raise HTTPException(403, f"this key may not {role} {what}")
    return who


class KeyCache:
    """The callers this replica has verified: SHA-256 of the whole key -> (Principal, expiry).

    Bounded (``max_entries``); a key is trusted for ``ttl_s`` seconds, then checked against the
    database again. :meth:`evict` drops a key at once (this replica revoked it).
    """

    def __init__(self, ttl_s: float = KEY_CACHE_TTL_S, max_entries: int = 10_000) -> None:
        self.ttl_s = float(ttl_s)
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def digest(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    def get(self, key: str) -> Principal | None:
        digest = self.digest(key)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return entry[0]

    def put(self, key: str, who: Principal) -> None:
        if self.ttl_s <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries = {d: e for d, e in self._entries.items() if e[1] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[self.digest(key)] = (who, now + self.ttl_s)

    def evict(self, key_id: str) -> None:
        """Forget the key ``key_id`` (revoked here: it stops working on this replica now)."""
        with self._lock:
            self._entries = {d: e for d, e in self._entries.items() if e[0].key_id != key_id}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None: no such header)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def key_id_of(key: str) -> str | None:
    """The id part of a well-formed key (None: not a SeeTrain API key)."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def authenticate(db: Any, key: str) -> Principal | None:
    """The :class:`Principal` of ``key``, checked against the database (no cache): None when the
    key is malformed, unknown, revoked or its secret does not match. Blocking (Argon2)."""
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    key_id, secret = match.groups()
    rows = db.query("SELECT k.hash, k.revoked_at, u.name, u.is_admin FROM api_keys k "
                    "JOIN users u ON u.id = k.user_id WHERE k.id = ?", (key_id,))
    if not rows:
        return None
    hashed, revoked_at, user, is_admin = rows[0]
    if revoked_at is not None:
        return None
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        _hasher().verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return None
    roles = {project: role for project, role in db.query("SELECT project, role FROM roles WHERE key_id = ?",
                                                           (key_id,))}
    return Principal(key_id=key_id, user=user, is_admin=bool(is_admin), roles=roles)


_INVALID_KEY = "this API key is not valid (unknown, revoked or mistyped): ask an admin for a new one"


class AuthMiddleware:
    """Pure ASGI middleware: sets ``scope["state"]["principal"]`` (read by :func:`principal`).

    Never answers a request itself. A key seen before is served from the :class:`KeyCache`
    without touching the database; a new one is verified in a worker thread (Argon2 and the
    database are blocking), so the event loop keeps serving.
    """

    #: Argon2 verifications at once: each costs a core and 64 MiB for tens of milliseconds, so
    #: a burst of new (or forged) keys must not take every worker thread the handlers need
    max_concurrent_verifications = 4

    def __init__(self, app: Any, state: Any, cache: KeyCache | None = None) -> None:
        self.app = app
        self.server_state = state
        self.cache = cache if cache is not None else KeyCache()
        self._limiter: Any = None  # made in the event loop, on the first verification

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            request_state = scope.setdefault("state", {})
            if not self.server_state.settings.auth:
                request_state["principal"] = ANONYMOUS_ADMIN
            else:
                request_state["principal"] = await self._principal(scope, request_state)
        await self.app(scope, receive, send)

    async def _principal(self, scope: dict, request_state: dict) -> Principal | None:
        header = None
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        key = parse_bearer(header)
        if key is None:
            return None
        who = self.cache.get(key)
        if who is not None:
            return who
        if key_id_of(key) is None:
            request_state["auth_problem"] = _INVALID_KEY
            return None
        import anyio
        import anyio.to_thread

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_concurrent_verifications)
        try:
            who = await anyio.to_thread.run_sync(authenticate, self.server_state.db, key, limiter=self._limiter)
        except Exception:
            import logging

            # the database is down: the request goes on without a caller, and require() answers
            # 503 (retry later), not 401 (a bad key); the health checks report the outage
            logging.getLogger("seetrain.server.auth").exception("cannot check an API key")
            request_state["auth_problem"] = "the API key cannot be checked now (the database does not answer): retry"
            request_state["auth_unavailable"] = True
            return None
        if who is None:
            request_state["auth_problem"] = _INVALID_KEY
            return None
        self.cache.put(key, who)
        return who


def middleware(state: Any) -> list:
    """The server's middleware, outermost first: the access log (:mod:`seetrain_server.logs`),
    then authentication. Sets ``state.key_cache`` (the replica's :class:`KeyCache`; TTL from
    ``Settings.key_cache_ttl_s`` where set, else :data:`KEY_CACHE_TTL_S`)."""
    from starlette.middleware import Middleware

    from .logs import AccessLogMiddleware

    cache = getattr(state, "key_cache", None)
    if cache is None:
        cache = KeyCache(getattr(state.settings, "key_cache_ttl_s", KEY_CACHE_TTL_S))
        state.key_cache = cache
    return [Middleware(AccessLogMiddleware), Middleware(AuthMiddleware, state=state, cache=cache)]


# -- users and keys -------------------------------------------------------------------------
_HASHER = None


def _hasher():
    global _HASHER
    if _HASHER is None:
        from argon2 import PasswordHasher

        _HASHER = PasswordHasher()  # Argon2id, RFC 9106 parameters
    return _HASHER


def validate_user_name(name: Any) -> str:
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise ValueError("a user name is 1 to 64 characters: letters, digits and . _ @ - "
                         "(starting with a letter or digit)")
    return name


def validate_project(project: Any) -> str:
    if not isinstance(project, str) or not project.strip() or len(project) > MAX_PROJECT_LENGTH \
            or _CONTROL.search(project) or project != project.strip():
        raise ValueError(f"a project is a name of 1 to {MAX_PROJECT_LENGTH} characters without control "
                         "characters or surrounding spaces, or * for every project")
    return project


def validate_role(role: Any) -> str:
    if role not in ROLES:
        raise ValueError(f"a role is one of {', '.join(ROLES)}")
    return role


def validate_label(label: Any) -> str | None:
    if label is None:
        return None
    if not isinstance(label, str) or len(label) > MAX_LABEL_LENGTH or _CONTROL.search(label):
        raise ValueError(f"a label is text of at most {MAX_LABEL_LENGTH} characters without control characters")
    return label or None


def create_user(db: Any, name: str, admin: bool = False) -> str:
    """Add the user ``name`` (``admin``: admin on every project); returns the name.

    :raises UserExistsError: a user of that name exists.
    :raises ValueError: the name is not valid.
    """
    validate_user_name(name)
    rows = db.query("INSERT INTO users (name, is_admin, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO NOTHING RETURNING id", (name, bool(admin), time.time()))
    if not rows:
        raise UserExistsError(f"a user named {name!r} exists already")
    return name


def create_key(db: Any, user: str, project: str, role: str, label: str | None = None) -> str:
    """A new API key of ``user`` holding ``role`` on ``project`` (``*``: every project).
    Returns the whole key, ``stk_<id>_<secret>``: it is not stored and cannot be shown again.

    :raises UnknownUserError: no such user.
    :raises ValueError: the project, role or label is not valid.
    """
    validate_project(project)
    validate_role(role)
    label = validate_label(label)
    secret, hashed = _new_secret()
    with db.transaction() as tx:
        users = tx.query("SELECT id FROM users WHERE name = ?", (user,))
        if not users:
            raise UnknownUserError(f"no user named {user!r}: add it first (seetrain server user add {user})")
        key_id = _insert_key(tx, users[0][0], hashed, project, role, label)
    return f"{KEY_PREFIX}{key_id}_{secret}"


def _new_secret() -> tuple[str, str]:
    secret = secrets.token_urlsafe(32)
    return secret, _hasher().hash(secret)


def _insert_key(tx: Any, user_id: int, hashed: str, project: str, role: str, label: str | None) -> str:
    for _ in range(5):
        key_id = secrets.token_hex(6)
        inserted = tx.query("INSERT INTO api_keys (id, user_id, hash, label, created_at) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (id) DO NOTHING RETURNING id", (key_id, user_id, hashed, label, time.time()))
        if inserted:  # else 48 random bits met an existing id: draw another
            tx.execute("INSERT INTO roles (key_id, project, role) VALUES (?, ?, ?)", (key_id, project, role))
            return key_id
    raise AuthError("could not draw an unused key id")  # pragma: no cover - 2**48 ids


def revoke_key(db: Any, key_id: str) -> bool:
    """Revoke the key ``key_id`` (idempotent). It stops working on this replica's next request
    once its :class:`KeyCache` forgets it (``cache.evict``) and on the others within the cache's
    TTL. Returns False when it was revoked already.

    :raises UnknownKeyError: no key of that id.
    """
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise UnknownKeyError(f"no key {key_id!r}: a key id is 12 hex characters (seetrain server key list)")
    with db.transaction() as tx:
        rows = tx.query("SELECT revoked_at FROM api_keys WHERE id = ?", (key_id,))
        if not rows:
            raise UnknownKeyError(f"no key {key_id!r} (seetrain server key list shows them)")
        if rows[0][0] is not None:
            return False
        tx.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (time.time(), key_id))
    return True


def list_keys(db: Any) -> list[dict[str, Any]]:
    """Every key, oldest first: id, user, label, roles ({project: role}), created_at,
    revoked_at (seconds since the epoch; None: active). Never the hash."""
    keys = db.query("SELECT k.id, u.name, k.label, k.created_at, k.revoked_at FROM api_keys k "
                    "JOIN users u ON u.id = k.user_id ORDER BY k.created_at, k.id")
    roles: dict[str, dict[str, str]] = {}
    for key_id, project, role in db.query("SELECT key_id, project, role FROM roles ORDER BY key_id, project"):
        roles.setdefault(key_id, {})[project] = role
    return [{"id": key_id, "user": user, "label": label, "roles": roles.get(key_id, {}),
             "created_at": created_at, "revoked_at": revoked_at}
            for key_id, user, label, created_at, revoked_at in keys]


def list_users(db: Any) -> list[dict[str, Any]]:
    """Every user, oldest first: name, admin, created_at."""
    return [{"name": name, "admin": bool(is_admin), "created_at": created_at}
            for name, is_admin, created_at in db.query("SELECT name, is_admin, created_at FROM users "
                                                       "ORDER BY created_at, id")]


def ensure_first_admin(db: Any) -> str | None:
    """On a server without users: add the user ``admin`` (admin everywhere) and an admin key
    on ``*``, and return that key (shown once). None when there are users already (or another
    replica starting at the same moment made the admin)."""
    if db.query("SELECT 1 FROM users LIMIT 1"):
        return None
    secret, hashed = _new_secret()
    with db.transaction() as tx:
        # the user and its key appear together or not at all; of replicas starting together
        # on an empty database one inserts "admin", the others find it (DO NOTHING) and step back
        if tx.query("SELECT 1 FROM users LIMIT 1"):
            return None
        users = tx.query("INSERT INTO users (name, is_admin, created_at) VALUES ('admin', ?, ?) "
                         "ON CONFLICT (name) DO NOTHING RETURNING id", (True, time.time()))
        if not users:
            return None
        key_id = _insert_key(tx, users[0][0], hashed, ALL_PROJECTS, "admin", "first admin key")
    return f"{KEY_PREFIX}{key_id}_{secret}"
