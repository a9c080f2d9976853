"""The server's database layer on a real PostgreSQL and on SQLite: migrations, versions."""

import pytest

from seetrain_server import db as dbm


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'server.db'}"


def test_a_new_database_gets_the_whole_layout(url):
    database = dbm.open_database(url)
    try:
        assert dbm.schema_version(database) == dbm.SCHEMA_VERSION
        tables = {"runs", "keys", "scalar_chunks", "media", "files", "media_blobs", "ingest_batches",
                  "users", "api_keys", "roles"}
        for table in tables:
            assert database.query(f"SELECT COUNT(*) FROM {table}") == [(0,)]
        before, after = dbm.migrate(database)  # again: nothing to do
        assert before == after == dbm.SCHEMA_VERSION
    finally:
        database.close()


def test_a_database_of_a_newer_version_is_refused(url):
    database = dbm.open_database(url)
    database.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(dbm.SCHEMA_VERSION + 1),))
    database.close()
    with pytest.raises(dbm.SchemaTooNewError, match="newer seetrain-server"):
        dbm.open_database(url)


def test_an_older_database_is_upgraded(url, monkeypatch):
    database = dbm.open_database(url)
    database.close()
    monkeypatch.setitem(dbm.MIGRATIONS, dbm.SCHEMA_VERSION + 1, "CREATE TABLE extra (x {bigint})")
    monkeypatch.setattr(dbm, "SCHEMA_VERSION", dbm.SCHEMA_VERSION + 1)
    database = dbm.open_database(url)
    try:
        assert dbm.schema_version(database) == dbm.SCHEMA_VERSION
        assert database.query("SELECT COUNT(*) FROM extra") == [(0,)]
    finally:
        database.close()


def test_a_bad_url_names_the_forms_that_work():
    with pytest.raises(dbm.DatabaseError, match="postgresql://"):
        dbm.Database("mysql://x")


def test_the_password_never_shows():
    assert dbm.redact("postgresql://me:secret@db/x") == "postgresql://me:***@db/x"
