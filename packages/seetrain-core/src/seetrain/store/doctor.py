"""``seetrain doctor``: check a store's database, and salvage a damaged one.

:func:`check` opens the file read-only and runs SQLite's ``PRAGMA integrity_check`` after a
few quick checks (the file is a database, the layout version, every table present).
:func:`repair` copies every row that can still be read into a fresh database of the same
layout, table by table; a table whose scan fails part way is read on by rowid ranges
(probing past the damaged pages), so the rows on the good pages are kept. The damaged file is
kept beside the store as ``seetrain.db.corrupt-<timestamp>`` and the new one takes its place.
A header that is not a database header is rebuilt on a copy first, so a store whose first
bytes were overwritten keeps everything. A store a live run is writing to is not repaired
(unless forced): the run would go on writing to the file moved aside.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import struct
import tempfile
import time
from dataclasses import dataclass, field
from typing import Iterator

from .schema import (
    DB_NAME,
    DDL,
    SCHEMA_VERSION,
    STALE_AFTER,
    StoreCorruptError,
    StoreError,
    connect,
    install,
    is_damage,
    new_database,
    remove_database,
    resolve_dir,
    store_error,
)
from .reader import _pid_alive

#: the tables of the layout, in the order they are copied
TABLES = tuple(line.split()[5] for line in DDL.splitlines() if line.startswith("CREATE TABLE IF NOT EXISTS"))
#: how many of integrity_check's problems a report shows
MAX_PROBLEMS = 10
_MAX_ROWID = 2**63 - 1
_MAGIC = b"SQLite format 3\x00"


@dataclass
class CheckReport:
    """What :func:`check` found. ``problems`` empty means healthy."""

    db_path: str
    problems: list[str] = field(default_factory=list)
    #: problems beyond the ones listed (``None``: integrity_check stopped at its limit)
    more_problems: int | None = 0
    schema_version: int | None = None
    tables: list[str] = field(default_factory=list)
    #: rows per table (a healthy store only)
    rows: dict[str, int] = field(default_factory=dict)
    #: written by a newer SeeTrain: not damaged, but not ours to check or repair
    newer: bool = False

    @property
    def healthy(self) -> bool:
        return not self.problems


@dataclass
class TableSalvage:
    name: str
    kept: int = 0
    #: rows the damaged file held but could not be read (``None``: unknown, its count is unreadable)
    lost: int | None = 0
    note: str | None = None


@dataclass
class RepairReport:
    db_path: str
    check: CheckReport
    #: False when there was nothing to repair (a healthy store: nothing was touched)
    repaired: bool = False
    #: where the damaged file was moved
    aside: str | None = None
    header_rebuilt: bool = False
    tables: list[TableSalvage] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return sum(t.kept for t in self.tables)

    @property
    def lost(self) -> int | None:
        if any(t.lost is None for t in self.tables):
            return None
        return sum(t.lost or 0 for t in self.tables)


def _db_path(directory: str | os.PathLike | None) -> str:
    return os.path.join(resolve_dir(directory), DB_NAME)


def _detail(exc: BaseException) -> str:
    """SQLite's words of an error (a StoreError's cause when it has one)."""
    cause = exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ is not None else exc
    return str(cause)


# -- check -----------------------------------------------------------------------------------------

def check(directory: str | os.PathLike | None = None, *, max_problems: int = MAX_PROBLEMS) -> CheckReport:
    """Check the store at ``directory`` without writing to it.

    :raises StoreNotFoundError: there is no store there.
    :raises StoreError: the store cannot be read for another reason than damage (locked).
    """
    db_path = _db_path(directory)
    report = CheckReport(db_path)
    try:
        conn = connect(db_path, create=False, readonly=True, verify=False)
    except StoreCorruptError as exc:
        report.problems.append(_detail(exc))
        return report
    try:
        report.tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        missing = [t for t in TABLES if t not in report.tables]
        if missing:
            report.problems.append(f"missing tables: {', '.join(missing)}")
        if "meta" in report.tables:
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is None:
                report.problems.append("no schema version in the meta table")
            else:
                report.schema_version = int(row[0])
                if report.schema_version > SCHEMA_VERSION:
                    report.newer = True
                    report.problems.append(
                        f"written by a newer SeeTrain (schema {row[0]}, this one reads {SCHEMA_VERSION}); "
                        "check it with that version (pip install -U seetrain)")
                    return report
        found: list[str] = []
        for (text,) in conn.execute(f"PRAGMA integrity_check({max_problems + 1})"):
            found.extend(line for line in str(text).splitlines() if line and not line.startswith("*** in database"))
        if found != ["ok"]:
            report.problems.extend(found[:max_problems])
            report.more_problems = None if len(found) > max_problems else 0
        if report.healthy:
            report.rows = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    except sqlite3.Error as exc:
        if not is_damage(exc):
            raise store_error(exc, db_path) from exc
        report.problems.append(str(exc))
    finally:
        conn.close()
    return report


# -- reading what can be read ------------------------------------------------------------------------

def _seek(src: sqlite3.Connection, table: str, rowid: int) -> tuple[bool, int | None]:
    """Whether the table's b-tree can be entered at ``rowid``, and the first rowid there."""
    try:
        row = src.execute(f"SELECT rowid FROM {table} WHERE rowid >= ? ORDER BY rowid LIMIT 1", (rowid,)).fetchone()
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return False, None
    return True, None if row is None else row[0]


def _resume_after(src: sqlite3.Connection, table: str, pos: int) -> int | None:
    """The first rowid after ``pos`` from which the table reads again (``None``: none).

    Entering the b-tree at a rowid that lives on a damaged page fails; past that page it
    works again. Probe forward in doubling steps until it works, then bisect back to the
    first rowid that does."""
    if pos >= _MAX_ROWID:
        return None
    ok, first = _seek(src, table, pos + 1)
    if ok:
        return first
    lo, step = pos + 1, 1  # lo: a rowid where entering fails
    while True:
        hi = min(lo + step, _MAX_ROWID)
        ok, _ = _seek(src, table, hi)
        if ok:
            break
        if hi == _MAX_ROWID:
            return None
        lo, step = hi, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _seek(src, table, mid)[0]:
            hi = mid
        else:
            lo = mid
    return _seek(src, table, hi)[1]


def _salvage(src: sqlite3.Connection, table: str, columns: list[str]) -> Iterator[tuple]:
    """Every readable row of ``table`` as ``(rowid, *columns)``, in rowid order."""
    cols = ", ".join(["rowid", *columns])
    pos: int | None = None  # the last rowid read (rowids of the store are positive)
    while True:
        try:
            if pos is None:
                cursor = src.execute(f"SELECT {cols} FROM {table} ORDER BY rowid")
            else:
                cursor = src.execute(f"SELECT {cols} FROM {table} WHERE rowid > ? ORDER BY rowid", (pos,))
            while True:
                rows = cursor.fetchmany(256)
                if not rows:
                    return
                for row in rows:
                    pos = row[0]
                    yield row
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
        # the next row, or the page that holds it, cannot be read: find where reading works again
        nxt = _resume_after(src, table, 0 if pos is None else pos)
        if nxt is None:
            return
        try:
            row = src.execute(f"SELECT {cols} FROM {table} WHERE rowid = ?", (nxt,)).fetchone()
        except sqlite3.DatabaseError as exc:  # its rowid reads but its content does not (overflow pages)
            if not is_damage(exc):
                raise
            row = None
        pos = nxt
        if row is not None:
            yield row


def _count(src: sqlite3.Connection, table: str) -> int | None:
    """How many rows the damaged table held, from whichever of its b-trees still counts them
    (an index survives damage to the table's own pages, and the other way round)."""
    attempts = [f"SELECT COUNT(*) FROM {table}"]
    try:
        indexes = [r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                             (table,))]
    except sqlite3.DatabaseError:
        indexes = []
    attempts += [f'SELECT COUNT(*) FROM {table} INDEXED BY "{name}"' for name in indexes]
    attempts.append(f"SELECT COUNT(*) FROM {table} NOT INDEXED")
    for sql in attempts:
        try:
            return src.execute(sql).fetchone()[0]
        except sqlite3.DatabaseError:
            continue
    return None


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _header_fixed_copy(db_path: str) -> str | None:
    """A copy of ``db_path`` with a rebuilt 100-byte header, when its header is not one
    (``None`` when the header is fine, or when no page size makes the copy readable)."""
    with open(db_path, "rb") as f:
        head = f.read(100)
    page_size = int.from_bytes(head[16:18], "big") if len(head) >= 18 else 0
    page_size = 65536 if page_size == 1 else page_size
    if head.startswith(_MAGIC) and page_size >= 512 and page_size & (page_size - 1) == 0:
        return None
    size = os.path.getsize(db_path)
    wal = db_path + "-wal"
    has_wal = os.path.isfile(wal) and os.path.getsize(wal) > 0
    for guess in (4096, 1024, 2048, 8192, 16384, 32768, 65536, 512):
        if size < guess or size % guess:
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{DB_NAME}.", suffix=".header.tmp", dir=os.path.dirname(db_path))
        os.close(fd)
        try:
            shutil.copyfile(db_path, tmp)
            if has_wal:
                shutil.copyfile(wal, tmp + "-wal")
            version = 2 if has_wal else 1  # 2: WAL, so that the frames of the -wal are read
            header = (_MAGIC + struct.pack(">H", guess if guess < 65536 else 1)
                      + bytes([version, version, 0, 64, 32, 32])
                      # change counter, pages, freelist trunk and count (dropped), schema cookie,
                      # schema format, cache size, autovacuum root, UTF-8, user version,
                      # incremental vacuum, application id
                      + struct.pack(">IIIIIIIIIIII", 1, size // guess, 0, 0, 1, 4, 0, 0, 1, 0, 0, 0)
                      + bytes(20) + struct.pack(">II", 1, sqlite3.sqlite_version_info[0] * 1_000_000
                                                 + sqlite3.sqlite_version_info[1] * 1000
                                                 + sqlite3.sqlite_version_info[2]))
            assert len(header) == 100
            with open(tmp, "r+b") as f:
                f.write(header)
            conn = connect(tmp, create=False, readonly=True, verify=False)
            try:
                names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                conn.close()
            if "runs" in names:
                return tmp
        except (sqlite3.Error, StoreError):
            pass
        remove_database(tmp)
    return None


# -- live runs ------------------------------------------------------------------------------------

def live_runs(src: sqlite3.Connection) -> list[tuple[str, int | None, str | None]]:
    """``(id, pid, host)`` of the runs that are still writing: status ``running`` and a live pid
    on this host (or, on another host, a heartbeat younger than ``STALE_AFTER``)."""
    try:
        if "runs" not in {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}:
            return []
        columns = _columns(src, "runs")
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return []  # the runs cannot be read: nothing says one is live
    if not {"id", "status", "pid", "host", "heartbeat_at"} <= set(columns):
        return []
    index = {c: i + 1 for i, c in enumerate(columns)}
    here, now, live = socket.gethostname(), time.time(), []
    for row in _salvage(src, "runs", columns):
        if row[index["status"]] != "running":
            continue
        pid, host, beat = row[index["pid"]], row[index["host"]], row[index["heartbeat_at"]]
        if host == here:
            alive = bool(pid) and _pid_alive(int(pid))
        else:
            alive = beat is not None and now - beat <= STALE_AFTER
        if alive:
            live.append((row[index["id"]], pid, host))
    return live


# -- repair -----------------------------------------------------------------------------------------

def _aside_path(db_path: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = f"{db_path}.corrupt-{stamp}", 1
    while os.path.exists(path):
        n += 1
        path = f"{db_path}.corrupt-{stamp}-{n}"
    return path


def _refuse_if_live(src: sqlite3.Connection, db_path: str, force: bool) -> None:
    if force:
        return
    live = live_runs(src)
    if live:
        run_id, pid, host = live[0]
        where = f"pid {pid}" + ("" if host == socket.gethostname() else f" on {host}")
        others = f" and {len(live) - 1} more" if len(live) > 1 else ""
        directory = os.path.dirname(db_path)
        raise StoreError(
            f"not repairing {db_path}: run {run_id} ({where}){others} is still writing to it; stop it first "
            f"(or repair anyway with: seetrain doctor --dir {directory} --repair --force, and the run's "
            "later writes go to the file moved aside)")


def repair(directory: str | os.PathLike | None = None, *, force: bool = False) -> RepairReport:
    """Salvage every readable row of a damaged store into a fresh database that takes its
    place; the damaged file is kept as ``seetrain.db.corrupt-<timestamp>``. A healthy store
    is left as it is (``repaired`` is False).

    :raises StoreError: a run is still writing to the store (unless ``force``), or the store
        was written by a newer SeeTrain.
    """
    db_path = _db_path(directory)
    found = check(directory)
    report = RepairReport(db_path, found)
    if found.healthy:
        return report
    if found.newer:
        raise StoreError(f"not repairing {db_path}: {found.problems[0]}")
    store_dir = os.path.dirname(db_path)
    source = _header_fixed_copy(db_path)
    report.header_rebuilt = source is not None
    tmp: str | None = None
    try:
        src = connect(source or db_path, create=False, readonly=True, verify=False)
        try:
            _refuse_if_live(src, db_path, force)
            try:
                src_tables = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise store_error(exc, db_path) from exc
                # not even the list of tables reads: a new empty store would keep nothing
                raise StoreError(
                    f"nothing in {db_path} can be read ({exc}), so it is left as it is; move it away to "
                    "start a new store there") from exc
            tmp = new_database(store_dir)
            dst = sqlite3.connect(tmp, isolation_level=None)
            try:
                dst.execute("PRAGMA synchronous = OFF")  # synced once, as a whole, below
                for table in TABLES:
                    report.tables.append(_copy_table(src, dst, table, src_tables))
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                dst.close()
            # a run may have started while the rows were copied
            if source is None:
                _refuse_if_live(src, db_path, force)
        finally:
            src.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        report.aside = _aside_path(db_path)
        os.rename(db_path, report.aside)
        wal = db_path + "-wal"
        if os.path.exists(wal):  # the WAL belongs to the damaged file: keep them together (or drop it empty)
            if os.path.getsize(wal):
                os.rename(wal, report.aside + "-wal")
            else:
                os.unlink(wal)
        if os.path.exists(db_path + "-shm"):
            os.unlink(db_path + "-shm")
        if not install(tmp, db_path):
            kept = f"{db_path}.repaired-{os.path.basename(report.aside).rsplit('corrupt-', 1)[1]}"
            os.rename(tmp, kept)
            tmp = None
            raise StoreError(
                f"a new {db_path} was created while repairing (a run started?): the repaired database is "
                f"{kept} and the damaged one {report.aside}; stop the runs and move {kept} to {db_path}")
        tmp = None
        report.repaired = True
        return report
    finally:
        if tmp is not None:
            remove_database(tmp)
        if source is not None:
            remove_database(source)


def _copy_table(src: sqlite3.Connection, dst: sqlite3.Connection, table: str, src_tables: set[str]) -> TableSalvage:
    result = TableSalvage(table)
    if table not in src_tables:
        result.lost, result.note = None, "missing in the damaged file"
        return result
    try:
        wanted = _columns(dst, table)
        have = set(_columns(src, table))
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        result.lost, result.note = None, str(exc)
        return result
    columns = [c for c in wanted if c in have]
    verb = "INSERT OR REPLACE" if table == "meta" else "INSERT OR IGNORE"
    insert = (f"{verb} INTO {table} (rowid, {', '.join(columns)}) "
              f"VALUES ({', '.join('?' * (len(columns) + 1))})")
    dst.execute("BEGIN")
    batch: list[tuple] = []
    for row in _salvage(src, table, columns):
        batch.append(row)
        if len(batch) >= 256:
            result.kept += dst.executemany(insert, batch).rowcount
            batch.clear()
    if batch:
        result.kept += dst.executemany(insert, batch).rowcount
    dst.execute("COMMIT")
    total = _count(src, table)
    result.lost = None if total is None else max(0, total - result.kept)
    return result
