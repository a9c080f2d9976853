"""``seetrain server``: the command (registered in the core's CLI through the entry point
group ``seetrain.commands``).

``seetrain server`` serves the app with uvicorn; ``seetrain server db upgrade``,
``seetrain server user add|list`` and ``seetrain server key create|list|revoke`` manage the
database, users and API keys directly (no running server needed). Errors a user can cause print
one line on stderr and exit with status 1; a refused configuration exits with status 2.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import ipaddress
import os
import sys
from collections.abc import Callable
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5095

_DESCRIPTION = """\
Serve SeeTrain's team server: the dashboard, the ingest API (/api/v1) that training runs upload
to (seetrain.init(server=...)), the admin API and the health checks (/healthz, /readyz).

Runs, metrics, media, users and API keys live in the database (a SQLite file by default,
PostgreSQL for teams: postgresql://user:password@host/db); the process keeps no state of its own,
so several `seetrain server` processes against one PostgreSQL behind a load balancer are one
service. The database's layout is upgraded on start.

On the first start (no users yet) the user "admin" is created with an API key that is admin on
every project; that key is printed once. Without --auth the server listens on the loopback
interface only and every caller may do everything."""

_EPILOG = """\
examples:
  seetrain server                                   # http://127.0.0.1:5095, ./seetrain-server.db
  seetrain server --auth --host 0.0.0.0 --db postgresql://seetrain@db/seetrain --log-format json
  seetrain server user add alice
  seetrain server key create --user alice --project vision --role write --label "alice's laptop"
  seetrain server key revoke 3f2a9c0d1e4b

environment: SEETRAIN_SERVER_DB (the database when --db is not given), SEETRAIN_SERVER_MEDIA
(the media store when --media is not given)."""

_DB_HELP = ("database URL: postgresql://user:password@host[:port]/dbname or sqlite:///path/file.db "
            "(default: $SEETRAIN_SERVER_DB, else sqlite:///seetrain-server.db)")


class CommandError(Exception):
    """A user error of ``seetrain server``: printed as one line, exit status ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``server`` (and its subcommands) to the ``seetrain`` command line."""
    p = subparsers.add_parser("server", help="run the team server, manage its database, users and API keys",
                              description=_DESCRIPTION, epilog=_EPILOG,
                              usage="seetrain server [--host HOST] [--port PORT] [--db URL] [--media STORE] "
                                    "[--auth]\n                       [--log-format {text,json}] "
                                    "[--log-level LEVEL]\n       seetrain server {db,user,key} ACTION ... "
                                    "(see seetrain server key --help)",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default: {DEFAULT_HOST}, this machine only); any other "
                        "address, e.g. 0.0.0.0, needs --auth")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"port to listen on (default: {DEFAULT_PORT}; 0: a free port, printed on start)")
    p.add_argument("--db", default=None, metavar="URL", help=_DB_HELP)
    p.add_argument("--media", default=None, metavar="STORE",
                   help="where media contents go: db (in the database, the default) or s3://bucket/prefix "
                        "(an S3-compatible object store; default: $SEETRAIN_SERVER_MEDIA, else db)")
    p.add_argument("--auth", action="store_true",
                   help="require an API key (Authorization: Bearer stk_...) on every API request, with "
                        "roles per project; needed to listen on any address but loopback")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="log lines on stderr: text (default) or json, one object per line with time, level, "
                        "logger, message and, for requests, method, path, status, duration_ms, key_id")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info",
                   help="least severe log lines written (default: info; debug adds the health probes)")
    p.set_defaults(func=_command(cmd_serve))

    sub = p.add_subparsers(dest="server_command", metavar="SUBCOMMAND", prog="seetrain server",
                           title="subcommands (without one: serve)")

    def with_db(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        # SUPPRESS: `seetrain server --db X key list` and `seetrain server key list --db X` both work
        parser.add_argument("--db", default=argparse.SUPPRESS, metavar="URL", help=_DB_HELP)
        return parser

    db = sub.add_parser("db", help="the server's database: db upgrade",
                        description="Manage the server's database.")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = with_db(db_sub.add_parser(
        "upgrade", help="bring the database's layout to this version's (also done on every start)",
        description="Create or upgrade the database's tables to the layout this seetrain-server writes, and print "
                    "the layout version before and after. A database written by a newer seetrain-server is "
                    "refused."))
    upgrade.set_defaults(func=_command(cmd_db_upgrade))

    user = sub.add_parser("user", help="users: user add NAME [--admin], user list",
                          description="Manage the server's users (each holds API keys).")
    user_sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = with_db(user_sub.add_parser("add", help="add a user", description="Add a user."))
    add.add_argument("name", metavar="NAME", help="user name: letters, digits and . _ @ - (at most 64)")
    add.add_argument("--admin", action="store_true",
                     help="an admin: every key of this user is admin on every project")
    add.set_defaults(func=_command(cmd_user_add))
    users = with_db(user_sub.add_parser("list", help="list the users", description="List the users."))
    users.set_defaults(func=_command(cmd_user_list))

    key = sub.add_parser("key", help="API keys: key create, key list, key revoke ID",
                         description="Manage API keys. A key is shown once, when it is created; only a hash "
                                     "of it is stored.")
    key_sub = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    create = with_db(key_sub.add_parser(
        "create", help="create a key and print it (once)",
        description="Create an API key for a user with a role on a project, and print it on stdout: it is "
                    "shown this once and cannot be recovered. Send it as 'Authorization: Bearer <key>'."))
    create.add_argument("--user", required=True, help="the user the key belongs to")
    create.add_argument("--project", required=True,
                        help="the project the role is on ('*': every project)")
    create.add_argument("--role", required=True, choices=("read", "write", "admin"),
                        help="read: see runs; write: also upload runs; admin: also manage them "
                             "(admin on '*': also users and keys)")
    create.add_argument("--label", default=None, help="a note saying where the key is used (shown by key list)")
    create.set_defaults(func=_command(cmd_key_create))
    listing = with_db(key_sub.add_parser("list", help="list keys (ids, users, roles; never the secrets)",
                                         description="List API keys: id, user, label, roles, created, revoked."))
    listing.set_defaults(func=_command(cmd_key_list))
    revoke = with_db(key_sub.add_parser(
        "revoke", help="revoke a key",
        description="Revoke an API key. Running servers stop accepting it within a minute (each replica "
                    "trusts a key it has verified for 60 seconds)."))
    revoke.add_argument("key_id", metavar="ID", help="the key's id (the 12 hex characters after stk_)")
    revoke.set_defaults(func=_command(cmd_key_revoke))


def _command(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``func`` with the errors a user can cause turned into one line on stderr."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        from .auth import AuthError
        from .db import DatabaseError

        try:
            return int(func(args) or 0)
        except CommandError as exc:
            print(f"seetrain server: error: {exc}", file=sys.stderr)
            return exc.status
        except (DatabaseError, AuthError, ValueError, OSError) as exc:
            print(f"seetrain server: error: {exc}", file=sys.stderr)
            return 1

    return run


def _db_url(args: argparse.Namespace) -> str:
    from .db import DEFAULT_URL

    return getattr(args, "db", None) or os.environ.get("SEETRAIN_SERVER_DB") or DEFAULT_URL


def _open(args: argparse.Namespace):
    import logging

    from .db import open_database

    # a management command says what went wrong in its one error line; the pool's retry
    # warnings (one per attempt) would bury it
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    return open_database(_db_url(args))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _listen(host: str, port: int):
    import socket

    host = host.strip("[]")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise CommandError(f"cannot listen on {_url(host, port)}: {exc.strerror or exc}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    if args.server_command is not None:  # pragma: no cover - every subcommand sets its own func
        return 0
    if not args.auth and not is_loopback(args.host):
        raise CommandError(
            f"refusing to listen on {args.host} without authentication: anyone who can reach that address could "
            "read and write every project; add --auth (API keys with roles per project) or listen on "
            f"--host {DEFAULT_HOST}", status=2)
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port {args.port}: a port is 0 to 65535", status=2)

    import logging

    from . import logs

    logs.configure(args.log_format, level=args.log_level.upper())
    log = logging.getLogger("seetrain.server")

    from . import auth
    from .app import create_app
    from .config import Settings

    url = _db_url(args)
    settings = Settings(db_url=url, host=args.host, port=args.port, auth=args.auth)
    if args.media is not None:
        settings.media_url = args.media
    from .db import open_database

    db = open_database(url)
    try:
        try:
            app = create_app(settings, db=db)
        except ImportError as exc:  # an optional dependency of the media store (boto3)
            raise CommandError(f"--media {settings.media_url}: {exc}") from None
        sock = _listen(args.host, args.port)
        port = sock.getsockname()[1]
        # only once nothing else can fail before it is printed: a key made and never shown
        # would leave the server with an admin nobody can act as
        first_key = auth.ensure_first_admin(db)
        # the socket listens already: whoever reads the lines below may connect at once; the
        # URL line comes last, so a script (or a test) reads up to it and has everything
        if first_key:
            print(f"first admin key, shown once: {first_key}", flush=True)
            print("  (user 'admin', admin on every project: keep it in a password manager; make a key per "
                  "person or machine with `seetrain server key create`"
                  + ("" if args.auth else "; keys are checked once the server runs with --auth") + ")", flush=True)
        print(f"seetrain server: serving {_url(args.host, port)} (database {db.describe()}, media "
              f"{settings.media_url}, authentication {'on' if args.auth else 'off'})", flush=True)
        import uvicorn

        config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False,
                                lifespan="auto", timeout_graceful_shutdown=10)
        server = uvicorn.Server(config)
        log.info("seetrain server on %s", _url(args.host, port))
        server.run(sockets=[sock])
        sock.close()
    finally:
        db.close()
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    import logging

    from .db import Database, migrate

    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    db = Database(_db_url(args))
    try:
        before, after = migrate(db)
    finally:
        db.close()
    if before == after:
        print(f"the database {db.describe()} is at layout version {after}: nothing to upgrade")
    else:
        shown = "none (empty database)" if before is None else before
        print(f"upgraded the database {db.describe()}: layout version {shown} -> {after}")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from . import auth

    db = _open(args)
    try:
        auth.create_user(db, args.name, admin=args.admin)
    finally:
        db.close()
    print(f"added user {args.name}" + (" (admin on every project)" if args.admin else "")
          + f"; give it a key with: seetrain server key create --user {args.name} --project P --role write")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    from . import auth

    db = _open(args)
    try:
        users = auth.list_users(db)
    finally:
        db.close()
    if not users:
        print("no users (the first start of the server adds the user admin)")
        return 0
    print(_table([[u["name"], "yes" if u["admin"] else "no", _when(u["created_at"])] for u in users],
                 ["USER", "ADMIN", "CREATED"]))
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    from . import auth

    db = _open(args)
    try:
        key = auth.create_key(db, args.user, args.project, args.role, label=args.label)
    finally:
        db.close()
    # the key alone on stdout (KEY=$(seetrain server key create ...)), the note on stderr
    print(key, flush=True)
    print(f"key {auth.key_id_of(key)} of {args.user}: {args.role} on "
          f"{'every project' if args.project == auth.ALL_PROJECTS else 'project ' + repr(args.project)}; "
          "shown once, store it now", file=sys.stderr)
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    from . import auth

    db = _open(args)
    try:
        keys = auth.list_keys(db)
    finally:
        db.close()
    if not keys:
        print("no API keys")
        return 0
    rows = [[k["id"], k["user"], ",".join(f"{p}:{r}" for p, r in sorted(k["roles"].items())) or "-",
             k["label"] or "-", _when(k["created_at"]), _when(k["revoked_at"])] for k in keys]
    print(_table(rows, ["ID", "USER", "ROLES", "LABEL", "CREATED", "REVOKED"]))
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    from . import auth

    db = _open(args)
    try:
        fresh = auth.revoke_key(db, args.key_id)
    finally:
        db.close()
    if fresh:
        print(f"revoked key {args.key_id}: running servers refuse it within "
              f"{auth.KEY_CACHE_TTL_S:g} seconds")
    else:
        print(f"key {args.key_id} was revoked already")
    return 0


def _when(ts: Any) -> str:
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(float(ts), _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in [header, *rows])
