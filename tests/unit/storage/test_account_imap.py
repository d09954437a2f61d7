"""AccountStore parts the IMAP server uses: cached summaries, uid arrays, counts, snapshots."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import apsw
import pytest

from mailactors.protocol.message import Summary
from mailactors.storage.account import MIGRATIONS, AccountStore, DeliveryRequest

NOW = datetime(2026, 11, 24, 17, 0, 0, tzinfo=UTC)
MESSAGE = (
    b"From: Alice <alice@example.org>\r\nSubject: summary test\r\n"
    b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nbody\r\n"
)


@pytest.fixture
def store(tmp_path: Path, log: logging.Logger) -> Iterator[AccountStore]:
    s = AccountStore(tmp_path / "acc", log)
    s.init()
    s.ensure_default_mailboxes()
    try:
        yield s
    finally:
        s.close()


def deliver(
    store: AccountStore, tmp_path: Path, n: int, data: bytes = MESSAGE, flags: tuple[str, ...] = ()
) -> int:
    src = tmp_path / f"src{n}"
    src.write_bytes(data)
    out = store.deliver(DeliveryRequest("Inbox", src, NOW, flags))
    assert out.message is not None, out.error
    return out.message.uid


def inbox(store: AccountStore) -> int:
    mb = store.mailbox("INBOX")
    assert mb is not None
    return mb.id


def test_summary_cached_at_delivery_and_copied(store: AccountStore, tmp_path: Path) -> None:
    uid = deliver(store, tmp_path, 1)
    cached = store.summaries(inbox(store), [uid])
    summary = Summary.from_bytes(cached[uid])
    assert b'"summary test"' in summary.envelope
    assert summary.size == len(MESSAGE)
    pairs, _ = store.copy_messages(inbox(store), [uid], "Archive")
    archive = store.mailbox("Archive")
    assert archive is not None
    assert store.summaries(archive.id, [pairs[0][1]]) == cached
    store.expunge(inbox(store), [uid])
    assert store.summaries(inbox(store), [uid]) == {}
    # More uids than fit in one IN list take the scan path.
    assert store.summaries(archive.id, list(range(1, 2000))) == cached


def test_unparsable_file_has_no_summary(store: AccountStore, tmp_path: Path) -> None:
    uid = deliver(store, tmp_path, 1, data=b"")
    assert store.messages_by_uid(inbox(store), [uid])[0].size == 0
    # An empty message still summarizes (an empty header); absent summaries are fine too.
    assert set(store.summaries(inbox(store), [uid])) <= {uid}


def test_uids_snapshot_counts(store: AccountStore, tmp_path: Path) -> None:
    a = deliver(store, tmp_path, 1, flags=("\\Seen",))
    b = deliver(store, tmp_path, 2, flags=("\\Deleted",))
    c = deliver(store, tmp_path, 3)
    box = inbox(store)
    assert list(store.uids(box)) == [a, b, c]
    assert store.uids(box).typecode == "I"
    assert store.mailbox_counts(box) == (3, 2, 1, 3 * len(MESSAGE))
    store.expunge(box)
    uids, highest = store.snapshot(box)
    assert list(uids) == [a, c]
    assert highest == store.highest_modseq(box) == store.current_modseq()
    assert store.mailbox_counts(box) == (2, 1, 0, 2 * len(MESSAGE))
    assert [m.uid for m in store.messages_by_uid(box, [c, b, 99])] == [c]


def test_migration_from_version_1(tmp_path: Path, log: logging.Logger) -> None:
    directory = tmp_path / "old"
    directory.mkdir()
    conn = apsw.Connection(str(directory / "index.db"))
    with conn:
        first = MIGRATIONS[0]
        assert isinstance(first, str)
        conn.execute(first)
        conn.pragma("user_version", 1)
    conn.close()
    s = AccountStore(directory, log)
    s.init()
    try:
        assert s.db.schema_version() == len(MIGRATIONS) == 2
        s.ensure_default_mailboxes()
        uid = deliver(s, tmp_path, 1)
        assert uid in s.summaries(inbox(s), [uid])
    finally:
        s.close()
