"""Layout of a store directory, and the one place SQLite connections are opened."""

from __future__ import annotations

import os
import sqlite3

from ..errors import SeeTrainError

#: bump when the layout changes; readers refuse a store written by a newer layout
SCHEMA_VERSION = 1
DB_NAME = "seetrain.db"
MEDIA_DIR = "media"
#: the store directory when neither ``dir=`` nor ``SEETRAIN_DIR`` is given
DEFAULT_DIR = "seetrain"
#: seconds without a heartbeat after which a running run reads as crashed
STALE_AFTER = 60.0
#: how often a live run writes its heartbeat, in seconds
HEARTBEAT_EVERY = 5.0


class StoreError(SeeTrainError):
    """The store directory cannot be read or written."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """There is no SeeTrain store in the directory."""


class StoreCorruptError(StoreError):
    """The store's database file is damaged. ``seetrain doctor --dir DIR`` checks it and
    ``seetrain doctor --dir DIR --repair`` keeps every row that can still be read."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        #: the damaged database file
        self.path = path


def default_dir() -> str:
    """``SEETRAIN_DIR`` if set, else ``./seetrain``."""
    return os.environ.get("SEETRAIN_DIR") or DEFAULT_DIR


def resolve_dir(dir: str | os.PathLike | None) -> str:
    return os.path.abspath(os.fspath(dir) if dir is not None else default_dir())


DDL = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    group_name TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    frameworks TEXT NOT NULL DEFAULT '[]',
    config TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    finished_at REAL,
    heartbeat_at REAL,
    last_step INTEGER,
    pid INTEGER,
    host TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_project ON runs (project, created_at);
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    UNIQUE (run_id, key)
);
-- scalars are stored in chunks, one row per key per flush: int64 steps, float64 values and
-- float64 wall times packed little-endian. Exact (every point), compact, and fast to read.
CREATE TABLE IF NOT EXISTS scalar_chunks (
    id INTEGER PRIMARY KEY,
    key_id INTEGER NOT NULL,
    n INTEGER NOT NULL,
    step_min INTEGER NOT NULL,
    step_max INTEGER NOT NULL,
    steps BLOB NOT NULL,
    vals BLOB NOT NULL,
    ts BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_key ON scalar_chunks (key_id, step_min);
CREATE TABLE IF NOT EXISTS media (
    id INTEGER PRIMARY KEY,
    key_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    path TEXT,
    text TEXT,
    caption TEXT,
    meta TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS media_by_key ON media (key_id, step);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    meta TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_run ON files (run_id);
"""


# primary SQLite result codes (the low byte of an extended code)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26


def damaged_error(db_path: str, detail: object) -> StoreCorruptError:
    """The one message of a damaged store: the file, SQLite's words, and what to run."""
    import shlex  # not on the path of init

    directory = shlex.quote(os.path.dirname(db_path) or ".")
    return StoreCorruptError(
        f"the SeeTrain store {db_path} is damaged ({detail}); check it with: seetrain doctor --dir {directory}"
        f"  (recover what is readable with: seetrain doctor --dir {directory} --repair)",
        db_path,
    )


def is_damage(exc: BaseException) -> bool:
    """Whether an SQLite error says the file is damaged (not busy, locked or missing)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised without a result code: only the plain DatabaseError means damage
        return type(exc) is sqlite3.DatabaseError
    return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def store_error(exc: sqlite3.Error, db_path: str) -> StoreError:
    """The :class:`StoreError` to raise for an SQLite error met while reading ``db_path``."""
    if is_damage(exc):
        return damaged_error(db_path, exc)
    code = getattr(exc, "sqlite_errorcode", None)
    if (code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)) or "locked" in str(exc):
        return StoreError(f"the SeeTrain store {db_path} is locked by another process ({exc}); try again")
    return StoreError(f"cannot read the SeeTrain store {db_path}: {exc}")


def _configure(conn: sqlite3.Connection, busy_timeout: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {max(0, int(busy_timeout * 1000))}")


#: the whole layout in one transaction (executescript commits any open transaction first, so
#: the BEGIN is part of the script)
_LAYOUT = (f"BEGIN IMMEDIATE;\n{DDL}\nINSERT OR IGNORE INTO meta (name, value) "
           f"VALUES ('schema_version', '{SCHEMA_VERSION}');\nCOMMIT;")


def _build(path: str) -> None:
    """Write a complete, empty store database at ``path`` (a fresh file nobody else opens)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # nobody sees this file before it is complete and closed: no journal, no syncs
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA journal_mode = OFF")
        conn.executescript(_LAYOUT)
        conn.execute("PRAGMA journal_mode = WAL")  # persists in the header: every opener gets WAL
    finally:
        conn.close()


def remove_database(path: str) -> None:
    """Remove a database file and its -wal, -shm and -journal files, those that exist."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def new_database(directory: str) -> str:
    """A complete, empty store database in a temporary file of ``directory`` (so that it can be
    put in place with :func:`install`): its path. Its permissions follow the umask, as a
    database SQLite creates itself."""
    while True:
        tmp = os.path.join(directory, f".{DB_NAME}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    try:
        _build(tmp)
    except BaseException:
        remove_database(tmp)
        raise
    return tmp


def install(tmp: str, db_path: str) -> bool:
    """Move the finished database ``tmp`` to ``db_path`` unless a file is there already; never
    clobbers. False when one was (another process won): ``tmp`` is then left to the caller."""
    try:
        os.link(tmp, db_path)  # atomic, and fails if the target exists
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links
        if os.path.exists(db_path):
            return False
        os.rename(tmp, db_path)
    remove_database(tmp)
    return True


def _size(path: str) -> int:
    """The size of a file, 0 for none."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _create(db_path: str, busy_timeout: float) -> None:
    """Create the store database at ``db_path`` atomically: readers see no file or the whole
    layout, never a file without its tables."""
    if _size(db_path):
        return
    tmp = new_database(os.path.dirname(db_path) or ".")
    try:
        if install(tmp, db_path):
            return
    finally:
        remove_database(tmp)  # gone already when it was installed; dropped when another process won
    if not _size(db_path):
        # an empty file (touched, or left by a crash before anything was written): fill it in
        # one transaction, and only then turn WAL on (that writes the first page at once);
        # readers take an empty file for no store
        conn = sqlite3.connect(db_path, timeout=busy_timeout, isolation_level=None)
        try:
            _configure(conn, busy_timeout)
            conn.executescript(_LAYOUT)  # IF NOT EXISTS / OR IGNORE: racing fillers agree
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()


def connect(db_path: str, *, create: bool, busy_timeout: float = 60.0, readonly: bool = False,
            verify: bool = True) -> sqlite3.Connection:
    """Open the store database; with ``create`` make it first if it is missing.

    Creation is atomic (see :func:`_create`). ``busy_timeout`` (seconds) is how long a
    statement waits for another connection's lock. ``readonly`` opens the file read-only (it
    never writes, not even a checkpoint); ``verify=False`` skips reading the layout version,
    for ``seetrain doctor`` on a damaged file. SQLite errors come out as :class:`StoreError`
    (:class:`StoreCorruptError` for a damaged file).
    """
    if create:
        try:
            _create(db_path, busy_timeout)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create the SeeTrain store {db_path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot create the SeeTrain store {db_path}: {exc}") from exc
    elif not os.path.isfile(db_path):
        raise StoreNotFoundError(f"no SeeTrain store at {os.path.dirname(db_path)!r} (missing {DB_NAME})")
    elif not _size(db_path):  # nothing written yet: a run fills it (see _create)
        raise StoreNotFoundError(f"no SeeTrain store at {os.path.dirname(db_path)!r} ({DB_NAME} is empty)")
    try:
        if readonly:
            from urllib.parse import quote

            target, uri = f"file:{quote(os.path.abspath(db_path))}?mode=ro", True
        else:
            target, uri = db_path, False
        conn = sqlite3.connect(target, timeout=busy_timeout, isolation_level=None, check_same_thread=False,
                               uri=uri)
    except sqlite3.Error as exc:
        raise store_error(exc, db_path) from exc
    try:
        _configure(conn, busy_timeout)
        if not readonly:
            conn.execute("PRAGMA synchronous = NORMAL")
        row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() if verify else None
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(exc, db_path) from exc
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"the store {db_path!r} was written by a newer SeeTrain (schema {row[0]}, this one "
            f"reads {SCHEMA_VERSION}); upgrade with: pip install -U seetrain"
        )
    return conn
