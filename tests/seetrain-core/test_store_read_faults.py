"""The read side of the store when the store is not what it should be: a damaged database
file, `seetrain doctor` (check and repair), and a reader racing the run that creates the store.

Every store here is written by the real ``seetrain.init/log/finish`` in a subprocess; the
damage is done by hand to a copy, as a failing disk or a bad copy would.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys

import pytest
from core_helpers import run_python

DB = "seetrain.db"
PAGE = 4096
RUNS = ("r0", "r1", "r2")
KEYS = 20
STEPS = 3000

WRITE_STORE = f"""
import sys
import seetrain
for name in {RUNS!r}:
    run = seetrain.init(project="faults", experiment_name=name, dir=sys.argv[1], config={{"lr": 0.1}})
    for step in range({STEPS}):
        run.log({{f"k{{i}}": step * 0.5 + i for i in range({KEYS})}}, step=step)
        if step % 100 == 0:
            run.log({{"note": f"text at step {{step}} " * 10}}, step=step)
    run.finish()
"""

TABLES = ("meta", "runs", "keys", "scalar_chunks", "media", "files")


def _checkpoint(db: str) -> None:
    """Fold the WAL into the main file (what SQLite does when the last connection closes), so
    that damaging the file damages the data."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _counts(db: str) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> str:
    """A store of 3 runs x 20 keys x 3,000 steps (about 1,100 pages of 4 KiB), checkpointed."""
    directory = str(tmp_path_factory.mktemp("faults") / "store")
    run_python(f"import sys; sys.argv[1:] = [{directory!r}]\n" + WRITE_STORE, check=True, timeout=300)
    _checkpoint(os.path.join(directory, DB))
    return directory


def _copy(pristine: str, tmp_path) -> str:
    directory = str(tmp_path / "store")
    os.makedirs(directory)
    shutil.copyfile(os.path.join(pristine, DB), os.path.join(directory, DB))
    return directory


def _table_leaves(db: str, table: str) -> list[int]:
    """The leaf pages of a table's b-tree, in rowid order (read from the file's bytes)."""
    conn = sqlite3.connect(db)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    conn.close()
    with open(db, "rb") as f:
        data = f.read()
    leaves: list[int] = []

    def walk(n: int) -> None:
        page, off = data[(n - 1) * PAGE:n * PAGE], 100 if n == 1 else 0
        if page[off] == 0x0D:  # table leaf
            leaves.append(n)
            return
        assert page[off] == 0x05, (table, n, page[off])  # table interior: children, then the rightmost
        for i in range(int.from_bytes(page[off + 3:off + 5], "big")):
            cell = int.from_bytes(page[off + 12 + 2 * i:off + 14 + 2 * i], "big")
            walk(int.from_bytes(page[cell:cell + 4], "big"))
        walk(int.from_bytes(page[off + 8:off + 12], "big"))

    walk(root)
    return leaves


def damage_pages(directory: str) -> None:
    """Garbage over three pages in the middle of the file: a leaf of ``scalar_chunks`` and one
    of ``media`` halfway through their tables (a scan of them fails part way), and the page at
    2/3 of the file (an overflow page of a chunk's arrays)."""
    db = os.path.join(directory, DB)
    pages = os.path.getsize(db) // PAGE
    assert pages > 500, pages  # the data spans many pages
    chunk_leaves, media_leaves = _table_leaves(db, "scalar_chunks"), _table_leaves(db, "media")
    assert len(chunk_leaves) > 10 and len(media_leaves) > 4
    targets = {chunk_leaves[len(chunk_leaves) // 2], media_leaves[len(media_leaves) // 2], pages * 2 // 3}
    assert len(targets) == 3
    with open(db, "r+b") as f:
        for page in targets:
            f.seek((page - 1) * PAGE)
            f.write(b"\xde\xad\xbe\xef" * (PAGE // 4))


def damage_header(directory: str) -> None:
    """Garbage over the 100-byte database header."""
    with open(os.path.join(directory, DB), "r+b") as f:
        f.write(b"garbage!" * 12 + b"junk")


@pytest.fixture()
def paged(pristine, tmp_path) -> str:
    directory = _copy(pristine, tmp_path)
    damage_pages(directory)
    return directory


@pytest.fixture()
def headless(pristine, tmp_path) -> str:
    directory = _copy(pristine, tmp_path)
    damage_header(directory)
    return directory


def _assert_damage_message(message: str, directory: str) -> None:
    assert message.startswith(f"the SeeTrain store {os.path.join(directory, DB)} is damaged ("), message
    assert f"check it with: seetrain doctor --dir {directory}" in message, message
    assert f"seetrain doctor --dir {directory} --repair" in message, message
    assert "\n" not in message


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seetrain", *args], capture_output=True, text=True, timeout=300)


def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# -- 1. a damaged database: one clear error -------------------------------------------------------

def test_api_names_the_damaged_file_and_the_doctor(paged):
    import seetrain
    from seetrain.store import StoreCorruptError, StoreError

    api = seetrain.Api(paged)
    assert [r.name for r in api.runs()] == list(RUNS)  # the runs table is on good pages
    with pytest.raises(StoreCorruptError) as info:
        for run in api.runs():
            run.history()
    assert isinstance(info.value, StoreError) and not isinstance(info.value, sqlite3.Error)
    _assert_damage_message(str(info.value), paged)
    api.close()


def test_api_on_a_damaged_header(headless):
    import seetrain
    from seetrain.store import StoreCorruptError

    with pytest.raises(StoreCorruptError) as info:
        seetrain.Api(headless)
    _assert_damage_message(str(info.value), headless)
    assert "not a database" in str(info.value)


def test_store_corrupt_error_is_exported_with_store_error():
    import seetrain.errors
    import seetrain.store
    from seetrain.store.schema import StoreCorruptError, StoreError

    assert seetrain.store.StoreCorruptError is StoreCorruptError
    assert "StoreCorruptError" in seetrain.store.__all__
    assert issubclass(StoreCorruptError, StoreError) and issubclass(StoreError, seetrain.errors.SeeTrainError)
    if hasattr(seetrain.errors, "StoreError"):  # wherever StoreError is exported, its subclass is too
        assert seetrain.errors.StoreCorruptError is StoreCorruptError


@pytest.mark.parametrize("damage", ["paged", "headless"])
def test_cli_prints_one_line_and_exits_1(damage, request):
    directory = request.getfixturevalue(damage)
    for args in (["export", "r1"], ["show", "r1"], ["ls"]):
        proc = _cli(*args, "--dir", directory)
        if proc.returncode == 0:  # ls (and show) only read the healthy pages of a paged store
            assert damage == "paged" and args[0] != "export", proc.stderr
            continue
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("seetrain: error: "), proc.stderr
        _assert_damage_message(lines[0][len("seetrain: error: "):], directory)


def test_a_locked_store_is_not_reported_as_damaged(pristine, tmp_path):
    from seetrain.store.schema import StoreCorruptError, StoreError, connect

    directory = _copy(pristine, tmp_path)
    db = os.path.join(directory, DB)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError) as info:
            connect(db, create=False, busy_timeout=0)
        assert not isinstance(info.value, StoreCorruptError)
        assert "locked" in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_connect_takes_a_busy_timeout(pristine, tmp_path):
    from seetrain.store.schema import connect

    db = os.path.join(_copy(pristine, tmp_path), DB)
    conn = connect(db, create=False, busy_timeout=2.5)
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
    conn.close()
    conn = connect(db, create=False)
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 60000
    conn.close()


# -- 2. seetrain doctor ------------------------------------------------------------------------

def test_doctor_on_a_healthy_store(pristine):
    before = _sha(os.path.join(pristine, DB))
    proc = _cli("doctor", "--dir", pristine)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok" in proc.stdout and "healthy" in proc.stdout
    assert _sha(os.path.join(pristine, DB)) == before
    proc = _cli("doctor", "--dir", pristine, "--repair")  # nothing to repair: nothing touched
    assert proc.returncode == 0 and "nothing to repair" in proc.stdout, proc.stdout + proc.stderr
    assert _sha(os.path.join(pristine, DB)) == before
    assert glob.glob(os.path.join(pristine, DB + ".corrupt-*")) == []


@pytest.mark.parametrize("damage", ["paged", "headless"])
def test_doctor_reports_damage_and_changes_nothing(damage, request):
    directory = request.getfixturevalue(damage)
    before = _sha(os.path.join(directory, DB))
    proc = _cli("doctor", "--dir", directory)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "damaged" in proc.stdout and "Traceback" not in proc.stderr
    assert f"seetrain doctor --dir {directory} --repair" in proc.stdout
    if damage == "headless":
        assert "not a database" in proc.stdout
    else:
        assert "page" in proc.stdout  # the first problems integrity_check found
    assert _sha(os.path.join(directory, DB)) == before
    assert sorted(os.listdir(directory)) in ([DB], [DB, DB + "-shm"], [DB, DB + "-shm", DB + "-wal"])


def _table_line(out: str, table: str) -> tuple[int, int]:
    """``kept`` and ``lost`` of a table in the repair report (``<table>  <kept>  <lost>``)."""
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == table:
            return int(parts[1]), int(parts[2])
    raise AssertionError(f"no line for {table} in:\n{out}")


def test_doctor_repair_keeps_the_rows_of_the_good_pages(pristine, paged):
    import seetrain

    original = _counts(os.path.join(pristine, DB))
    damaged_sha = _sha(os.path.join(paged, DB))
    proc = _cli("doctor", "--dir", paged, "--repair")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    kept = {}
    for table in TABLES:
        k, lost = _table_line(out, table)
        assert k + lost == original[table], (table, k, lost, original[table])
        kept[table] = k
    assert kept["runs"] == 3 and kept["meta"] == 1 and kept["keys"] == original["keys"]
    # a damaged leaf and an overflow page lose a few chunks, and a media leaf the rows on it:
    # the rows after them in the table are kept
    assert 0 < original["scalar_chunks"] - kept["scalar_chunks"] < original["scalar_chunks"] // 10
    assert 0 < original["media"] - kept["media"] < original["media"] // 4
    # the damaged file is kept beside the store, byte for byte
    aside = glob.glob(os.path.join(paged, DB + ".corrupt-*"))
    assert len(aside) == 1 and aside[0] in out and _sha(aside[0]) == damaged_sha
    # the new file is healthy, complete in layout, and holds what was kept
    db = os.path.join(paged, DB)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert _counts(db) == kept
    assert _cli("doctor", "--dir", paged).returncode == 0
    # every run and every key reads again
    api = seetrain.Api(paged)
    for run in api.runs():
        history = run.history()
        assert history and all(set(row) <= {"step", *(f"k{i}" for i in range(KEYS))} for row in history)
    api.close()
    proc = _cli("export", "r1", "--dir", paged)
    assert proc.returncode == 0, proc.stderr


def test_doctor_repair_rebuilds_a_damaged_header(pristine, headless):
    import seetrain

    original = _counts(os.path.join(pristine, DB))
    proc = _cli("doctor", "--dir", headless, "--repair")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for table in TABLES:
        assert _table_line(proc.stdout, table) == (original[table], 0)
    api = seetrain.Api(headless)
    reference = seetrain.Api(pristine)
    for run, ref in zip(api.runs(), reference.runs()):
        assert run.id == ref.id and run.history() == ref.history()
    api.close()
    reference.close()


def test_doctor_refuses_to_repair_under_a_live_run(pristine, tmp_path):
    directory = _copy(pristine, tmp_path)
    db = os.path.join(directory, DB)
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        conn = sqlite3.connect(db)
        conn.execute("UPDATE runs SET status = 'running', pid = ?, host = ? WHERE name = 'r2'",
                     (live.pid, socket.gethostname()))
        conn.commit()
        conn.close()
        _checkpoint(db)
        damage_pages(directory)
        before = _sha(db)
        proc = _cli("doctor", "--dir", directory, "--repair")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        err = proc.stderr.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("seetrain: error: ")
        assert f"pid {live.pid}" in err[0] and "--force" in err[0]
        assert _sha(db) == before and not glob.glob(db + ".corrupt-*")
        proc = _cli("doctor", "--dir", directory, "--repair", "--force")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert len(glob.glob(db + ".corrupt-*")) == 1
    finally:
        live.stdin.close()
        live.wait()


def test_doctor_help_and_missing_store(tmp_path):
    proc = _cli("doctor", "--help")
    assert proc.returncode == 0 and "--repair" in proc.stdout and "--force" in proc.stdout
    proc = _cli("doctor", "--dir", str(tmp_path / "nothing"))
    assert proc.returncode == 1 and proc.stderr.startswith("seetrain: error: no SeeTrain store")


# -- 3. a reader racing the run that creates the store ---------------------------------------------

CREATOR = """
import os, sys
from seetrain.store.schema import DB_NAME, connect
root, count = sys.argv[1], int(sys.argv[2])
try:
    for i in range(count):
        directory = os.path.join(root, f"s{i}")
        os.mkdir(directory)
        connect(os.path.join(directory, DB_NAME), create=True).close()
finally:
    open(os.path.join(root, "done"), "w").close()
"""

READER = """
import os, sys
from seetrain.store.reader import StoreReader
from seetrain.store.schema import DB_NAME, StoreError
root, count = sys.argv[1], int(sys.argv[2])
seen = partial = 0
for i in range(count):
    db = os.path.join(root, f"s{i}", DB_NAME)
    while not os.path.exists(db):  # open as soon as the file appears
        if os.path.exists(os.path.join(root, "done")) and not os.path.exists(db):
            sys.exit(f"the creator stopped before store {i}")
    try:
        reader = StoreReader(os.path.dirname(db))
        reader.runs(), reader.projects()
        reader.close()
        seen += 1
    except StoreError as exc:
        partial += 1
        print(f"store {i}: {exc}", file=sys.stderr)
print(seen, partial)
"""


def test_a_reader_never_sees_a_half_created_store(tmp_path):
    count = 300
    root = str(tmp_path)
    reader = subprocess.Popen([sys.executable, "-c", READER, root, str(count)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    creator = subprocess.run([sys.executable, "-c", CREATOR, root, str(count)], capture_output=True, text=True,
                             timeout=300)
    out, err = reader.communicate(timeout=300)
    assert creator.returncode == 0, creator.stderr
    assert reader.returncode == 0, err
    seen, partial = map(int, out.split())
    assert (seen, partial) == (count, 0), err[:2000]


SAME_DIRS = """
import os, sys
from seetrain.store.schema import DB_NAME, connect
root, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    directory = os.path.join(root, f"s{i}")
    os.makedirs(directory, exist_ok=True)
    conn = connect(os.path.join(directory, DB_NAME), create=True)
    assert conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == ("1",)
    conn.close()
"""


def test_creators_racing_on_one_directory_share_one_store(tmp_path):
    count = 60
    procs = [subprocess.Popen([sys.executable, "-c", SAME_DIRS, str(tmp_path), str(count)],
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    for i in range(count):
        directory = tmp_path / f"s{i}"
        # the temporary files of the losers are gone: nothing but the database (and its WAL index)
        assert set(os.listdir(directory)) <= {DB, DB + "-wal", DB + "-shm"}, os.listdir(directory)
        conn = sqlite3.connect(directory / DB)
        assert conn.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_an_empty_database_file_reads_as_no_store(tmp_path):
    """A zero-byte ``seetrain.db`` (a crash before anything was written, or a ``touch``) is
    not a store yet for readers; a run creating the store fills it."""
    from seetrain.store.reader import StoreReader
    from seetrain.store.schema import StoreNotFoundError, connect

    (tmp_path / DB).touch()
    with pytest.raises(StoreNotFoundError):
        StoreReader(tmp_path)
    connect(str(tmp_path / DB), create=True).close()
    reader = StoreReader(tmp_path)
    assert reader.runs() == []
    reader.close()
