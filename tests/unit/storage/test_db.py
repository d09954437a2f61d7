"""Tests for mailactors.storage.db: open, migrate, transactions, readers, backup."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from mailactors.storage import db as dbmod
from mailactors.storage.db import (
    Database,
    DatabaseError,
    Migration,
    SchemaTooNewError,
    open_databases,
)
from mailactors.storage.files import StorageFullError


def _add_size(conn: apsw.Connection) -> None:
    conn.execute("ALTER TABLE item ADD COLUMN size INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: list[Migration] = [
    "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
    "CREATE TABLE tag (item_id INTEGER NOT NULL REFERENCES item(id), tag TEXT NOT NULL);",
    _add_size,
]


@pytest.fixture
def opened(tmp_path: Path, log: logging.Logger) -> Iterator[Database]:
    d = Database(tmp_path / "index.db", MIGRATIONS, log)
    d.init()
    try:
        yield d
    finally:
        d.close()


def test_init_configures_the_writer(opened: Database) -> None:
    conn = opened.connection
    assert conn.pragma("journal_mode") == "wal"
    assert conn.pragma("foreign_keys") == 1
    assert conn.pragma("synchronous") == 2  # FULL: a commit is durable
    assert conn.pragma("busy_timeout") == dbmod.BUSY_TIMEOUT_MS
    assert opened.schema_version() == 2
    assert opened.path in open_databases()


def test_foreign_keys_are_enforced(opened: Database) -> None:
    with pytest.raises(apsw.ConstraintError):
        with opened.transaction() as conn:
            conn.execute("INSERT INTO tag (item_id, tag) VALUES (99, 'x')")


def test_double_quoted_strings_are_refused(opened: Database) -> None:
    with pytest.raises(apsw.SQLError):
        opened.connection.execute('SELECT "not a column"').fetchall()


def test_migrations_run_once_each(tmp_path: Path, log: logging.Logger) -> None:
    runs: list[int] = []

    def second(conn: apsw.Connection) -> None:
        runs.append(1)
        conn.execute("CREATE TABLE two (x)")

    migrations: list[Migration] = ["CREATE TABLE one (x)", second]
    d = Database(tmp_path / "m.db", migrations, log)
    d.init()
    assert d.schema_version() == 2
    d.close()
    d.init()  # a Database can be opened again after close
    assert d.schema_version() == 2
    d.close()
    assert runs == [1]
    # A newer version of the code adds a migration: only that one runs.
    d = Database(tmp_path / "m.db", [*migrations, "CREATE TABLE three (x)"], log)
    d.init()
    try:
        assert d.schema_version() == 3
        tables = {r[0] for r in d.connection.execute("SELECT name FROM sqlite_schema")}
        assert {"one", "two", "three"} <= tables
    finally:
        d.close()
    assert runs == [1]


def test_failing_migration_rolls_back(tmp_path: Path, log: logging.Logger) -> None:
    def broken(conn: apsw.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("migration bug")

    d = Database(tmp_path / "m.db", ["CREATE TABLE one (x)", broken], log)
    with pytest.raises(RuntimeError, match="migration bug"):
        d.init()
    assert open_databases() == []
    with pytest.raises(DatabaseError):
        _ = d.connection
    fixed = Database(tmp_path / "m.db", ["CREATE TABLE one (x)"], log)
    fixed.init()
    try:
        assert fixed.schema_version() == 1  # the first migration stayed committed
        tables = {r[0] for r in fixed.connection.execute("SELECT name FROM sqlite_schema")}
        assert "half" not in tables
    finally:
        fixed.close()


def test_schema_too_new(tmp_path: Path, log: logging.Logger) -> None:
    d = Database(tmp_path / "m.db", MIGRATIONS, log)
    d.init()
    d.close()
    old_code = Database(tmp_path / "m.db", MIGRATIONS[:1], log)
    with pytest.raises(SchemaTooNewError, match="schema version 2"):
        old_code.init()
    reader = Database(tmp_path / "m.db", MIGRATIONS[:1], log, readonly=True)
    with pytest.raises(SchemaTooNewError):
        reader.init()
    assert open_databases() == []


def test_readonly_never_migrates(tmp_path: Path, log: logging.Logger) -> None:
    d = Database(tmp_path / "m.db", MIGRATIONS[:1], log)
    d.init()
    d.close()
    reader = Database(tmp_path / "m.db", MIGRATIONS, log, readonly=True)
    with pytest.raises(DatabaseError, match="does not migrate"):
        reader.init()
    missing = Database(tmp_path / "missing.db", MIGRATIONS, log, readonly=True)
    with pytest.raises(DatabaseError, match="cannot open"):
        missing.init()
    assert not (tmp_path / "missing.db").exists()


def test_reader_sees_commits_not_open_transactions(opened: Database, log: logging.Logger) -> None:
    reader = Database(opened.path, MIGRATIONS, log, readonly=True)
    reader.init()
    try:
        with opened.transaction() as conn:
            conn.execute("INSERT INTO item (name) VALUES ('a')")
        with opened.transaction() as conn:
            conn.execute("INSERT INTO item (name) VALUES ('b')")
            # WAL: the reader is not blocked and sees only committed rows.
            names = [r[0] for r in reader.connection.execute("SELECT name FROM item")]
            assert names == ["a"]
        with reader.read_transaction() as rconn:
            assert rconn.execute("SELECT count(*) FROM item").fetchone() == (2,)
        with pytest.raises(DatabaseError, match="read-only"):
            with reader.transaction():
                pass
        with pytest.raises(apsw.ReadOnlyError):
            reader.connection.execute("INSERT INTO item (name) VALUES ('c')")
    finally:
        reader.close()


def test_transaction_commits_and_rolls_back(opened: Database) -> None:
    with opened.transaction() as conn:
        conn.execute("INSERT INTO item (name) VALUES ('kept')")
    with pytest.raises(ValueError, match="boom"):
        with opened.transaction() as conn:
            conn.execute("INSERT INTO item (name) VALUES ('lost')")
            raise ValueError("boom")
    names = [r[0] for r in opened.connection.execute("SELECT name FROM item")]
    assert names == ["kept"]
    assert not opened.connection.in_transaction


def test_transactions_do_not_nest(opened: Database) -> None:
    with opened.transaction():
        with pytest.raises(DatabaseError, match="nest"):
            with opened.transaction():
                pass
    assert not opened.connection.in_transaction


def test_transaction_is_immediate(opened: Database, log: logging.Logger) -> None:
    other = Database(opened.path, MIGRATIONS, log)
    other.init()
    try:
        other.connection.set_busy_timeout(0)
        with opened.transaction():
            # BEGIN IMMEDIATE takes the write lock at once, so a second writer
            # fails when it begins, not halfway through its work.
            with pytest.raises(apsw.BusyError):
                with other.transaction():
                    pass
        with other.transaction() as conn:
            conn.execute("INSERT INTO item (name) VALUES ('x')")
    finally:
        other.close()


def test_disk_full_is_storage_full_error(opened: Database) -> None:
    conn = opened.connection
    pages = conn.pragma("page_count")
    conn.pragma("max_page_count", pages + 2)
    with pytest.raises(StorageFullError):
        with opened.transaction() as c:
            c.execute("INSERT INTO item (name) VALUES (?)", ("x" * 100_000,))
    assert conn.execute("SELECT count(*) FROM item").fetchone() == (0,)


def test_connection_and_close(tmp_path: Path, log: logging.Logger) -> None:
    d = Database(tmp_path / "c.db", MIGRATIONS, log)
    with pytest.raises(DatabaseError, match="not open"):
        _ = d.connection
    d.init()
    with pytest.raises(DatabaseError, match="already open"):
        d.init()
    assert open_databases() == [tmp_path / "c.db"]
    d.close()
    d.close()
    assert open_databases() == []
    with pytest.raises(DatabaseError, match="not open"):
        _ = d.connection


def test_backup(
    opened: Database, tmp_path: Path, log: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    with opened.transaction() as conn:
        for i in range(2000):
            conn.execute("INSERT INTO item (name, size) VALUES (?, ?)", (f"item {i}" * 10, i))
    # Small steps exercise the step loop over many pages.
    monkeypatch.setattr(dbmod, "BACKUP_PAGES_PER_STEP", 3)
    dest = tmp_path / "backup.db"
    opened.backup_to(dest)
    copy = Database(dest, MIGRATIONS, log, readonly=True)
    copy.init()
    try:
        assert copy.schema_version() == 2
        assert copy.connection.execute("SELECT count(*), sum(size) FROM item").fetchone() == (
            2000,
            sum(range(2000)),
        )
        assert copy.integrity_check() == []
        # Self-contained: no -wal file is needed next to the copy.
        assert copy.connection.pragma("journal_mode") == "delete"
    finally:
        copy.close()
    with pytest.raises(DatabaseError, match="exists"):
        opened.backup_to(dest)


def test_backup_from_a_reader_while_the_writer_writes(
    opened: Database, tmp_path: Path, log: logging.Logger
) -> None:
    with opened.transaction() as conn:
        conn.execute("INSERT INTO item (name) VALUES ('committed')")
    reader = Database(opened.path, MIGRATIONS, log, readonly=True)
    reader.init()
    try:
        with opened.transaction() as conn:
            conn.execute("INSERT INTO item (name) VALUES ('uncommitted')")
            reader.backup_to(tmp_path / "b.db")
    finally:
        reader.close()
    copy = Database(tmp_path / "b.db", MIGRATIONS, log, readonly=True)
    copy.init()
    try:
        names = [r[0] for r in copy.connection.execute("SELECT name FROM item")]
        assert names == ["committed"]
    finally:
        copy.close()


def test_integrity_check_finds_problems(
    opened: Database, tmp_path: Path, log: logging.Logger
) -> None:
    assert opened.integrity_check() == []
    conn = opened.connection
    conn.pragma("foreign_keys", "OFF")
    conn.execute("INSERT INTO tag (item_id, tag) VALUES (42, 'orphan')")
    conn.pragma("foreign_keys", "ON")
    problems = opened.integrity_check()
    assert len(problems) == 1 and "foreign key" in problems[0]

    # Corrupt a page of another database file behind SQLite's back.
    other = Database(tmp_path / "corrupt.db", MIGRATIONS, log)
    other.init()
    with other.transaction() as c:
        c.execute("CREATE INDEX item_name ON item (name)")
        for i in range(500):
            c.execute("INSERT INTO item (name) VALUES (?)", (f"n{i:05}",))
    other.connection.pragma("wal_checkpoint", "TRUNCATE")
    page_size = int(other.connection.pragma("page_size"))
    other.close()
    with open(tmp_path / "corrupt.db", "r+b") as f:  # test-only corruption
        f.seek(page_size * 4 + 100)
        f.write(b"\xff" * 64)
    other.init()
    try:
        assert other.integrity_check() != []
    finally:
        other.close()


def test_reading_opens_existing_databases_read_only(tmp_path: Path) -> None:
    from mailactors.storage.db import reading
    from mailactors.storage.queue import QueueRequest, QueueStore

    with reading(QueueStore, tmp_path / "none" / "index.db") as missing:
        assert missing is None
    assert not (tmp_path / "none").exists()

    writer = QueueStore(tmp_path / "q", logging.getLogger("t"))
    writer.init()
    src = tmp_path / "m"
    src.write_bytes(b"x")
    writer.enqueue(src, QueueRequest("a@b.example", ("c@d.example",)), now=1)
    writer.close()

    def factory(path: Path, log: logging.Logger | None, readonly: bool) -> QueueStore:
        assert readonly
        return QueueStore(path.parent, log or logging.getLogger("t"), readonly=readonly)

    with reading(factory, tmp_path / "q" / "index.db") as store:
        assert store is not None and len(store.recipients()) == 1
    assert open_databases() == []
