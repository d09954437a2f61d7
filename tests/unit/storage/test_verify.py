"""Tests for mailactors.storage.verify: each kind of damage is found, nothing is changed."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
from pathlib import Path

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailactors.storage.account import AccountStore
from mailactors.storage.gentestdata import generate_test_data
from mailactors.storage.verify import (
    ACCOUNT_KIND,
    Problem,
    find_databases,
    open_readonly,
    run_verifydata,
    verify_data_dir,
    verify_database,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated data directory per module; each test works on a copy."""
    d = tmp_path_factory.mktemp("template") / "data"
    generate_test_data(d, logging.getLogger("mailactors.test.storage"))
    return d


@pytest.fixture
def data_dir(template: Path, tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(template, d)
    return d


def tree_digest(root: Path) -> dict[str, str]:
    """Every file below root (relative path -> sha256), to prove nothing changed."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def message_file(data_dir: Path, account: str = "alice") -> Path:
    """The file of an Inbox message (uid 3: not copied, so no other row shares it)."""
    store = AccountStore(data_dir / "accounts" / account, logging.getLogger("t"), readonly=True)
    store.init()
    try:
        inbox = store.mailbox("Inbox")
        assert inbox is not None
        info = store.message(inbox.id, 3)
        assert info is not None
        return store.message_path(info)
    finally:
        store.close()


def kinds_at(problems: list[Problem], path: Path) -> list[str]:
    return [p.kind for p in problems if p.path == path]


def corrupt_page(db: Path, page: int, garbage: bytes) -> None:
    """Overwrite the start of a page (1-based) with garbage, behind SQLite's back."""
    page_size = int.from_bytes(db.read_bytes()[16:18], "big")
    with open(db, "r+b") as f:  # test-only damage
        f.seek((page - 1) * page_size)
        f.write(garbage[:page_size])


def test_generated_data_dir_is_clean_and_unchanged(data_dir: Path) -> None:
    before = tree_digest(data_dir)
    assert verify_data_dir(data_dir) == []
    # Nothing written, not even -wal/-shm files.
    assert tree_digest(data_dir) == before


def test_open_readonly_does_not_create_wal_files(data_dir: Path) -> None:
    db = data_dir / "accounts" / "bob" / "index.db"
    conn = open_readonly(db)
    try:
        assert conn.execute("SELECT count(*) FROM mailbox").fetchall()[0][0] > 0
        with pytest.raises(apsw.ReadOnlyError):
            conn.execute("DELETE FROM mailbox")
    finally:
        conn.close()
    assert sorted(p.name for p in db.parent.iterdir()) == ["index.db", "msg"]


def test_truncated_message_file(data_dir: Path) -> None:
    path = message_file(data_dir)
    size = path.stat().st_size
    os.truncate(path, size - 10)
    problems = verify_data_dir(data_dir)
    assert kinds_at(problems, path) == ["size-mismatch"]
    assert len(problems) == 1
    assert f"{size - 10} bytes" in problems[0].detail and str(size) in problems[0].detail
    assert problems[0].is_error


def test_missing_message_file(data_dir: Path) -> None:
    path = message_file(data_dir, "bob")
    path.unlink()
    problems = verify_data_dir(data_dir)
    assert [(p.path, p.kind) for p in problems] == [(path, "missing-file")]


def test_orphan_message_file(data_dir: Path) -> None:
    orphan = data_dir / "accounts" / "alice" / "msg" / "0" / "9999"
    orphan.write_bytes(b"Subject: nobody's\r\n\r\n")
    problems = verify_data_dir(data_dir)
    assert [(p.path, p.kind) for p in problems] == [(orphan, "orphan-file")]


@pytest.mark.parametrize("page", [1, 2, 3, 5])
def test_corrupted_database_page(data_dir: Path, tmp_path: Path, page: int) -> None:
    db = data_dir / "accounts" / "mailactors" / "index.db"
    corrupt_page(db, page, bytes((i * 37 + 11) % 256 for i in range(4096)))
    problems = verify_data_dir(data_dir)
    found = kinds_at(problems, db)
    assert found, problems
    assert set(found) <= {"corrupt", "open-failed"}
    # The other accounts are still checked.
    assert all(p.path.is_relative_to(db.parent) for p in problems)


def test_corrupt_database_is_reported_by_run_verifydata(data_dir: Path) -> None:
    db = data_dir / "accounts" / "alice" / "index.db"
    corrupt_page(db, 2, b"\xff" * 4096)
    out, err = io.StringIO(), io.StringIO()
    assert run_verifydata(data_dir, out, err) == 1
    lines = err.getvalue().splitlines()
    assert any(line.startswith(f"error: {db}: corrupt:") for line in lines), lines
    assert lines[-1] == f"{len(lines) - 1} error(s) in {data_dir}"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.integers(min_value=1, max_value=20), garbage=st.binary(min_size=1, max_size=4096))
def test_any_page_damage_gives_problems_not_tracebacks(
    data_dir: Path, tmp_path: Path, page: int, garbage: bytes
) -> None:
    copy = tmp_path / "copy" / "index.db"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(data_dir / "accounts" / "mailactors" / "index.db", copy)
    pages = copy.stat().st_size // int.from_bytes(copy.read_bytes()[16:18], "big")
    corrupt_page(copy, min(page, pages), garbage)
    problems = verify_database(copy, ACCOUNT_KIND)
    assert all(isinstance(p, Problem) for p in problems)


def test_spool_leftover_is_a_notice(data_dir: Path) -> None:
    leftover = data_dir / "tmp" / "0123.tmp"
    leftover.write_bytes(b"half a message")
    problems = verify_data_dir(data_dir)
    assert [(p.path, p.kind, p.is_error) for p in problems] == [(leftover, "tmp-leftover", False)]
    out, err = io.StringIO(), io.StringIO()
    assert run_verifydata(data_dir, out, err) == 0
    assert out.getvalue().startswith(f"notice: {leftover}: tmp-leftover:")
    assert err.getvalue() == ""


def test_unknown_database_is_reported(data_dir: Path) -> None:
    stray = data_dir / "whatever.db"
    conn = apsw.Connection(str(stray))
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    assert [(p.path, p.kind) for p in verify_data_dir(data_dir)] == [(stray, "unknown-database")]
    assert (stray, None) in find_databases(data_dir)


def set_user_version(db: Path, version: int) -> None:
    conn = apsw.Connection(str(db))
    try:
        conn.pragma("user_version", version)
    finally:
        conn.close()


def test_schema_too_new(data_dir: Path) -> None:
    db = data_dir / "accounts" / "bob" / "index.db"
    set_user_version(db, len(ACCOUNT_KIND.migrations) + 1)
    problems = verify_data_dir(data_dir)
    assert [(p.path, p.kind) for p in problems] == [(db, "schema-too-new")]


def test_schema_missing_and_older(data_dir: Path) -> None:
    bob = data_dir / "accounts" / "bob" / "index.db"
    alice = data_dir / "accounts" / "alice" / "index.db"
    set_user_version(bob, 0)
    set_user_version(alice, len(ACCOUNT_KIND.migrations) - 1)
    problems = verify_data_dir(data_dir)
    assert kinds_at(problems, bob) == ["schema-missing"]
    assert kinds_at(problems, alice) == ["schema-older"]
    assert not next(p for p in problems if p.path == alice).is_error


def test_not_a_database(data_dir: Path) -> None:
    db = data_dir / "accounts" / "alice" / "index.db"
    db.write_bytes(b"this is no database " * 300)
    problems = verify_data_dir(data_dir)
    assert kinds_at(problems, db) == ["corrupt"]
    # Without rows to compare, files are not reported one by one.
    assert [p for p in problems if p.path != db] == []


def test_missing_data_dir(tmp_path: Path) -> None:
    problems = verify_data_dir(tmp_path / "nope")
    assert [p.kind for p in problems] == ["missing-data-dir"]
    out, err = io.StringIO(), io.StringIO()
    assert run_verifydata(tmp_path / "nope", out, err) == 1


def test_verifies_through_wal_of_an_open_writer(data_dir: Path, log: logging.Logger) -> None:
    # A writer that is still open has commits only in its -wal file.
    store = AccountStore(data_dir / "accounts" / "alice", log)
    store.init()
    try:
        inbox = store.mailbox("Inbox")
        assert inbox is not None
        store.expunge(inbox.id, [m.uid for m in store.messages(inbox.id)])
        assert Path(f"{store.db.path}-wal").stat().st_size > 0
        assert verify_data_dir(data_dir) == []
    finally:
        store.close()


def test_queue_rows_match_queue_files(data_dir: Path) -> None:
    msg = data_dir / "queue" / "msg" / "0"
    files = sorted(msg.iterdir(), key=lambda p: int(p.name))
    assert len(files) == 3
    files[0].unlink()
    os.truncate(files[1], 1)
    orphan = msg / "77"
    orphan.write_bytes(b"left by a crash between link and commit")
    problems = verify_data_dir(data_dir)
    assert [(p.path, p.kind) for p in problems] == [
        (files[0], "missing-file"),
        (files[1], "size-mismatch"),
        (orphan, "orphan-file"),
    ]
