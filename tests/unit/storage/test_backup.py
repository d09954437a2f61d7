"""Tests for mailactors.storage.backup: consistent copies of a data directory."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import apsw
import pytest

from mailactors.storage import backup as backup_mod
from mailactors.storage.account import AccountStore, DeliveryRequest
from mailactors.storage.backup import BackupError, backup_data_dir, backup_database
from mailactors.storage.files import create_spool_file
from mailactors.storage.gentestdata import TEST_ACCOUNTS, generate_test_data
from mailactors.storage.verify import find_databases, open_readonly, verify_data_dir

RECEIVED = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)


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


def mailbox_contents(data_dir: Path, account: str) -> dict[tuple[str, int], tuple[str, bytes]]:
    """(mailbox, uid) -> (flags, file bytes) of every message of an account."""
    store = AccountStore(data_dir / "accounts" / account, logging.getLogger("t"), readonly=True)
    store.init()
    out: dict[tuple[str, int], tuple[str, bytes]] = {}
    try:
        for mb in store.list_mailboxes():
            for info in store.messages(mb.id):
                f = store.open_message(info)
                try:
                    out[(mb.name, info.uid)] = (" ".join(info.flags), f.read())
                finally:
                    f.close()
    finally:
        store.close()
    return out


def logical_rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of a database."""
    conn = open_readonly(db)
    try:
        tables = [
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
        ]
        # Table names come from the schema itself.
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


@pytest.fixture
def writer(data_dir: Path, log: logging.Logger) -> Iterator[AccountStore]:
    """alice's store opened for writing, as the server's StoreActor would hold it."""
    store = AccountStore(data_dir / "accounts" / "alice", log)
    store.init()
    try:
        yield store
    finally:
        store.close()


def deliver(store: AccountStore, spool_dir: Path, data: bytes) -> int:
    """Deliver a message to Inbox; returns its uid."""
    with create_spool_file(spool_dir) as spool:
        spool.write(data)
        spool.finish()
        outcome = store.deliver(DeliveryRequest("Inbox", spool.path, RECEIVED))
    assert outcome.message is not None, outcome.error
    return outcome.message.uid


def test_backup_equals_source_and_verifies(data_dir: Path, tmp_path: Path, log: logging.Logger) -> None:
    lines: list[str] = []
    dest = tmp_path / "backup"
    summary = backup_data_dir(data_dir, dest, log, lines.append)
    databases = [p.relative_to(data_dir).as_posix() for p, _ in find_databases(data_dir)]
    assert summary.problems == ()
    assert summary.databases == len(databases) == len(TEST_ACCOUNTS) + 6
    assert verify_data_dir(dest) == []
    for account in TEST_ACCOUNTS:
        assert mailbox_contents(dest, account) == mailbox_contents(data_dir, account)
    assert [logical_rows(dest / d) for d in databases] == [
        logical_rows(data_dir / d) for d in databases
    ]
    # One progress line per database, in the documented form; file counts for the
    # kinds whose rows refer to files.
    assert [line.split(":")[0] for line in lines] == databases
    assert re.fullmatch(r"accounts/alice/index\.db: \d+ pages, 8 message files", lines[0])
    assert re.fullmatch(r"queue/index\.db: \d+ pages, 3 message files", lines[-3])
    assert re.fullmatch(r"dmarceval\.db: \d+ pages", lines[3])
    # Same file system: every message file is a hard link of the original.
    msg_files = [p for p in dest.rglob("*") if p.is_file() and p.parent.parent.name == "msg"]
    assert summary.files_linked == len(msg_files) > 0
    assert summary.files_copied == 0
    for p in msg_files:
        assert os.path.samefile(p, data_dir / p.relative_to(dest))
    assert summary.bytes >= sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    # The copies are complete in one file each: no -wal or -shm.
    assert not list(dest.rglob("*-wal")) and not list(dest.rglob("*-shm"))
    assert f"{len(databases)} databases" in str(summary) and "files linked" in str(summary)


def test_files_are_copied_when_links_fail(
    data_dir: Path, tmp_path: Path, log: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    dest = tmp_path / "backup"
    summary = backup_data_dir(data_dir, dest, log)
    assert summary.files_linked == 0 and summary.files_copied > 0
    assert verify_data_dir(dest) == []
    assert mailbox_contents(dest, "mailactors") == mailbox_contents(data_dir, "mailactors")
    assert not list(dest.rglob("*.tmp"))


def test_refuses_non_empty_destination(data_dir: Path, tmp_path: Path, log: logging.Logger) -> None:
    dest = tmp_path / "backup"
    dest.mkdir()
    (dest / "something").write_text("x")
    with pytest.raises(BackupError, match="not an empty directory"):
        backup_data_dir(data_dir, dest, log)
    assert sorted(p.name for p in dest.iterdir()) == ["something"]


def test_accepts_empty_destination_refuses_inside_data_dir(
    data_dir: Path, tmp_path: Path, log: logging.Logger
) -> None:
    with pytest.raises(BackupError, match="inside the data directory"):
        backup_data_dir(data_dir, data_dir / "backup", log)
    with pytest.raises(BackupError, match="does not exist"):
        backup_data_dir(tmp_path / "nope", tmp_path / "b0", log)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert backup_data_dir(data_dir, empty, log).problems == ()
    assert verify_data_dir(empty) == []


def test_backup_of_open_writer_includes_commits_in_wal(
    data_dir: Path, tmp_path: Path, log: logging.Logger, writer: AccountStore
) -> None:
    uid = deliver(writer, data_dir / "tmp", b"Subject: only in the WAL\r\n\r\nbody\r\n")
    assert Path(f"{writer.db.path}-wal").stat().st_size > 0
    dest = tmp_path / "backup"
    assert backup_data_dir(data_dir, dest, log).problems == ()
    assert verify_data_dir(dest) == []
    assert mailbox_contents(dest, "alice")[("Inbox", uid)][1].startswith(b"Subject: only in the WAL")


def run_between_passes(
    monkeypatch: pytest.MonkeyPatch,
    before_snapshot: Callable[[], None],
    after_snapshot: Callable[[], None] = lambda: None,
) -> None:
    """Run code after pass 1 (files) and before/after pass 2 copies alice's database."""
    real = backup_database

    def wrapped(src: Path, dst: Path) -> int:
        if src.parent.name != "alice":
            return real(src, dst)
        before_snapshot()
        pages = real(src, dst)
        after_snapshot()
        return pages

    monkeypatch.setattr(backup_mod, "backup_database", wrapped)


def test_file_delivered_after_pass_one_is_linked_in_pass_three(
    data_dir: Path,
    tmp_path: Path,
    log: logging.Logger,
    writer: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uids: list[int] = []
    run_between_passes(
        monkeypatch, lambda: uids.append(deliver(writer, data_dir / "tmp", b"Subject: late\r\n\r\n"))
    )
    dest = tmp_path / "backup"
    summary = backup_data_dir(data_dir, dest, log)
    assert summary.problems == ()
    assert verify_data_dir(dest) == []
    assert mailbox_contents(dest, "alice")[("Inbox", uids[0])][1] == b"Subject: late\r\n\r\n"


def test_file_expunged_after_pass_one_is_pruned(
    data_dir: Path,
    tmp_path: Path,
    log: logging.Logger,
    writer: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = writer.mailbox("Inbox")
    assert inbox is not None
    victim = writer.message(inbox.id, 3)
    assert victim is not None
    victim_file = writer.message_path(victim)
    run_between_passes(monkeypatch, lambda: writer.expunge(inbox.id, [3]))
    dest = tmp_path / "backup"
    summary = backup_data_dir(data_dir, dest, log)
    assert summary.problems == ()
    # Pass 1 linked it; no row of the snapshot refers to it, so pass 4 removed it.
    assert not (dest / victim_file.relative_to(data_dir)).exists()
    assert verify_data_dir(dest) == []
    assert ("Inbox", 3) not in mailbox_contents(dest, "alice")


def test_file_delivered_and_expunged_during_backup_is_a_problem(
    data_dir: Path,
    tmp_path: Path,
    log: logging.Logger,
    writer: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = writer.mailbox("Inbox")
    assert inbox is not None
    uids: list[int] = []
    run_between_passes(
        monkeypatch,
        lambda: uids.append(deliver(writer, data_dir / "tmp", b"Subject: brief\r\n\r\n")),
        lambda: writer.expunge(inbox.id, uids),
    )
    dest = tmp_path / "backup"
    lines: list[str] = []
    summary = backup_data_dir(data_dir, dest, log, lines.append)
    assert len(summary.problems) == 1
    assert "removed before it could be copied" in summary.problems[0]
    assert "accounts/alice/msg/" in summary.problems[0]
    assert "1 problem(s)" in str(summary)
    # The backup is honest about it: verifydata finds the missing file too.
    assert [p.kind for p in verify_data_dir(dest)] == ["missing-file"]
    retries = [line for line in lines if "taking it again" in line]
    assert len(retries) == backup_mod.BACKUP_ATTEMPTS - 1


def test_a_file_vanishing_once_is_handled_by_taking_the_database_again(
    data_dir: Path,
    tmp_path: Path,
    log: logging.Logger,
    writer: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = writer.mailbox("Inbox")
    assert inbox is not None
    uids: list[int] = []

    def deliver_once() -> None:
        if not uids:
            uids.append(deliver(writer, data_dir / "tmp", b"Subject: brief\r\n\r\n"))

    def expunge_once() -> None:
        if uids and writer.message(inbox.id, uids[0]) is not None:
            writer.expunge(inbox.id, uids)

    run_between_passes(monkeypatch, deliver_once, expunge_once)
    dest = tmp_path / "backup"
    lines: list[str] = []
    summary = backup_data_dir(data_dir, dest, log, lines.append)
    assert summary.problems == ()
    assert "notice: accounts/alice/index.db: 1 file(s) delivered and expunged" in lines[0]
    assert verify_data_dir(dest) == []
    assert ("Inbox", uids[0]) not in mailbox_contents(dest, "alice")


def test_file_replaced_after_pass_one_is_taken_again(
    data_dir: Path,
    tmp_path: Path,
    log: logging.Logger,
    writer: AccountStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = writer.mailbox("Inbox")
    assert inbox is not None
    info = writer.message(inbox.id, 3)
    assert info is not None
    path = writer.message_path(info)
    original = path.read_bytes()
    replacement = original.replace(b"line 0", b"LINE 0")

    def replace_file() -> None:
        # What a rolled-back delivery whose id is handed out again looks like.
        path.unlink()
        path.write_bytes(replacement)

    run_between_passes(monkeypatch, replace_file)
    dest = tmp_path / "backup"
    assert backup_data_dir(data_dir, dest, log).problems == ()
    assert (dest / path.relative_to(data_dir)).read_bytes() == replacement


def test_unknown_database_is_copied_with_a_notice(
    data_dir: Path, tmp_path: Path, log: logging.Logger
) -> None:
    conn = apsw.Connection(str(data_dir / "future.db"))
    conn.execute("CREATE TABLE t (x); INSERT INTO t VALUES (42)")
    conn.close()
    lines: list[str] = []
    dest = tmp_path / "backup"
    summary = backup_data_dir(data_dir, dest, log, lines.append)
    assert summary.databases == len(find_databases(data_dir))
    assert any(line.startswith("notice: future.db: unknown database kind") for line in lines)
    copy = apsw.Connection(str(dest / "future.db"))
    try:
        assert copy.execute("SELECT x FROM t").fetchall() == [(42,)]
    finally:
        copy.close()


def test_backup_database_refuses_existing_destination(data_dir: Path, tmp_path: Path) -> None:
    src = data_dir / "accounts" / "bob" / "index.db"
    dst = tmp_path / "exists.db"
    dst.write_bytes(b"")
    with pytest.raises(BackupError, match="exists"):
        backup_database(src, dst)
    with pytest.raises(BackupError, match="cannot open|failed"):
        backup_database(tmp_path / "missing.db", tmp_path / "new.db")


def test_backup_while_a_writer_delivers_and_expunges(
    data_dir: Path, tmp_path: Path, log: logging.Logger
) -> None:
    """A thread delivers and expunges while backups run: each backup verifies and
    holds every message committed before it began."""
    stop = threading.Event()
    committed: list[tuple[int, bytes, float]] = []  # (uid, bytes, monotonic time of commit)
    expunged: set[int] = set()
    errors: list[BaseException] = []
    ready = threading.Event()

    def delivering() -> None:
        store = AccountStore(data_dir / "accounts" / "alice", log)
        store.init()
        try:
            inbox = store.mailbox("Inbox")
            assert inbox is not None
            n = 0
            while not stop.is_set():
                data = f"Subject: loop {n}\r\n\r\n{'x' * (n % 300)}\r\n".encode()
                uid = deliver(store, data_dir / "tmp", data)
                committed.append((uid, data, time.monotonic()))
                if n % 5 == 4:
                    # Expunge an older loop message; it was committed before, but a
                    # backup may start after its expunge, so it is tracked as gone.
                    old_uid = committed[n - 3][0]
                    store.expunge(inbox.id, [old_uid])
                    expunged.add(old_uid)
                n += 1
                if n == 20:
                    ready.set()
        except BaseException as exc:
            errors.append(exc)
            ready.set()
        finally:
            store.close()

    thread = threading.Thread(target=delivering, name="test-deliveries")
    thread.start()
    try:
        assert ready.wait(30)
        during = 0
        for round_ in range(3):
            began = time.monotonic()
            acked_before = [(uid, data) for uid, data, t in list(committed) if t < began]
            gone_before = set(expunged)
            dest = tmp_path / f"backup{round_}"
            summary = backup_data_dir(data_dir, dest, log)
            ended = time.monotonic()
            during += sum(1 for _, _, t in list(committed) if began <= t <= ended)
            assert summary.problems == ()
            assert verify_data_dir(dest) == []
            contents = mailbox_contents(dest, "alice")
            for uid, data in acked_before:
                if uid in gone_before:
                    continue
                if uid in expunged:
                    # Expunged while the backup ran: present or not, both are consistent.
                    continue
                assert contents[("Inbox", uid)][1] == data
    finally:
        stop.set()
        thread.join(30)
    assert errors == []
    # The test means something only if deliveries did run while backups ran.
    assert during > 0
