"""Tests for mailactors.storage.account with real SQLite files and message files."""

from __future__ import annotations

import errno
import logging
import os
import pickle
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mailactors.storage import account as accountmod
from mailactors.storage import files
from mailactors.storage.account import (
    MAX_UID,
    AccountStore,
    AccountStoreError,
    DeliveryRequest,
    MailboxExistsError,
    MailboxHasChildrenError,
    MailboxNameError,
    MailboxNotFoundError,
    normalize_flags,
    normalize_mailbox_name,
)
from mailactors.storage.changes import (
    ChangeAddMailbox,
    ChangeAddUID,
    ChangeFlags,
    ChangeRemoveMailbox,
    ChangeRemoveUIDs,
    ChangeRenameMailbox,
)
from mailactors.storage.db import DatabaseError, open_databases
from mailactors.storage.files import create_spool_file, open_files

NOW = datetime(2026, 11, 24, 17, 0, 0, 123000, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path, log: logging.Logger) -> Iterator[AccountStore]:
    s = AccountStore(tmp_path / "accounts" / "mjl", log)
    s.init()
    s.ensure_default_mailboxes()
    try:
        yield s
    finally:
        s.close()


class Sources:
    """Message source files, as the spool leaves them (closed, to be removed later)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(exist_ok=True)
        self.n = 0

    def make(self, data: bytes) -> Path:
        self.n += 1
        p = self.directory / f"src{self.n}"
        p.write_bytes(data)
        return p


@pytest.fixture
def sources(tmp_path: Path) -> Sources:
    return Sources(tmp_path / "tmp")


def deliver(
    store: AccountStore,
    sources: Sources,
    data: bytes,
    mailbox: str = "Inbox",
    flags: tuple[str, ...] = (),
) -> accountmod.MessageInfo:
    out = store.deliver(DeliveryRequest(mailbox, sources.make(data), NOW, flags))
    assert out.error is None, out.error
    assert out.message is not None
    return out.message


def msg_files(store: AccountStore) -> set[Path]:
    return {p for p in (store.directory / "msg").rglob("*") if p.is_file()}


def inbox_id(store: AccountStore) -> int:
    mb = store.mailbox("INBOX")
    assert mb is not None
    return mb.id


# ---- names and flags ---------------------------------------------------------------


def test_normalize_mailbox_name() -> None:
    assert normalize_mailbox_name("INBOX") == "Inbox"
    assert normalize_mailbox_name("inBox/Sub") == "Inbox/Sub"
    assert normalize_mailbox_name("Inboxes") == "Inboxes"
    assert normalize_mailbox_name("a/b") == "a/b"
    for bad in ["", "/a", "a/", "a//b", "a*", "b%", "a\x00b", "a\rb"]:
        with pytest.raises(MailboxNameError):
            normalize_mailbox_name(bad)


def test_normalize_flags() -> None:
    assert normalize_flags(["\\SEEN", "$Junk", "\\seen", "$junk", "Work"]) == (
        "$Junk",
        "\\Seen",
        "Work",
    )
    for bad in ["\\Recent", "\\Unknown", "", "a b", "a(b", "a]"]:
        with pytest.raises(ValueError):
            normalize_flags([bad])


# ---- lifecycle and mailboxes ---------------------------------------------------------


def test_init_layout_and_default_mailboxes(store: AccountStore) -> None:
    assert (store.directory / "index.db").is_file()
    assert (store.directory / "msg").is_dir()
    boxes = {mb.name: mb for mb in store.list_mailboxes()}
    assert set(boxes) == {"Inbox", "Sent", "Archive", "Drafts", "Trash", "Junk"}
    assert boxes["Sent"].special_use == "\\Sent"
    assert boxes["Inbox"].special_use is None
    assert all(mb.subscribed for mb in boxes.values())
    assert all(mb.uidnext == 1 for mb in boxes.values())
    assert len({mb.uidvalidity for mb in boxes.values()}) == 6
    assert store.ensure_default_mailboxes() == []
    assert store.current_modseq() == 1  # RFC 7162: mod-sequences are positive


def test_mailbox_lookup_is_case_insensitive_for_inbox_only(store: AccountStore) -> None:
    a, b = store.mailbox("INBOX"), store.mailbox("inbox")
    assert a is not None and a == b and a.name == "Inbox"
    assert store.mailbox("sent") is None
    assert store.mailbox_by_id(a.id) == a
    assert store.mailbox_by_id(999) is None


def test_create_mailbox_with_parents(store: AccountStore) -> None:
    mb, changes = store.create_mailbox("Lists/python/dev", "\\Archive")
    assert mb.name == "Lists/python/dev" and mb.special_use == "\\Archive"
    assert [c.name for c in changes if isinstance(c, ChangeAddMailbox)] == [
        "Lists",
        "Lists/python",
        "Lists/python/dev",
    ]
    assert not mb.subscribed
    with pytest.raises(MailboxExistsError):
        store.create_mailbox("Lists/python")
    with pytest.raises(MailboxExistsError):
        store.create_mailbox("INBOX")
    with pytest.raises(ValueError, match="special-use"):
        store.create_mailbox("x", "\\Important")
    _, changes = store.create_mailbox("Lists/rust")
    assert len(changes) == 1


def test_delete_mailbox(store: AccountStore, sources: Sources) -> None:
    mb, _ = store.create_mailbox("Old")
    m = deliver(store, sources, b"old mail", "Old")
    path = store.message_path(m)
    assert path.exists()
    store.subscribe("Old")
    changes = store.delete_mailbox("Old")
    assert changes == [ChangeRemoveMailbox(mb.id, "Old")]
    assert store.mailbox("Old") is None
    assert not path.exists()
    assert store.messages(mb.id, include_expunged=True) == []
    assert "Old" in store.subscriptions()  # RFC 3501 6.3.6: subscriptions stay
    again, _ = store.create_mailbox("Old")
    # RFC 3501 2.3.1.1: a reused name must get a greater UIDVALIDITY.
    assert again.uidvalidity > mb.uidvalidity
    assert again.id != mb.id
    with pytest.raises(MailboxNameError):
        store.delete_mailbox("inbox")
    with pytest.raises(MailboxNotFoundError):
        store.delete_mailbox("Nope")
    store.create_mailbox("Old/child")
    with pytest.raises(MailboxHasChildrenError):
        store.delete_mailbox("Old")


def test_rename_mailbox_moves_children(store: AccountStore, sources: Sources) -> None:
    store.create_mailbox("Work/2025")
    work = store.mailbox("Work")
    assert work is not None
    m = deliver(store, sources, b"work mail", "Work/2025")
    changes = store.rename_mailbox("Work", "Archive/Work")
    renames = [(c.old, c.new) for c in changes if isinstance(c, ChangeRenameMailbox)]
    assert renames == [("Work", "Archive/Work"), ("Work/2025", "Archive/Work/2025")]
    assert store.mailbox("Work") is None
    moved = store.mailbox("Archive/Work")
    assert moved is not None and moved.id == work.id and moved.uidvalidity == work.uidvalidity
    sub = store.mailbox("Archive/Work/2025")
    assert sub is not None
    assert [x.uid for x in store.messages(sub.id)] == [m.uid]
    with pytest.raises(MailboxExistsError):
        store.rename_mailbox("Sent", "Trash")
    with pytest.raises(MailboxNotFoundError):
        store.rename_mailbox("Nope", "Other")
    with pytest.raises(MailboxNameError):
        store.rename_mailbox("Archive", "Archive/Inner")
    # Parents of the new name are created.
    changes = store.rename_mailbox("Junk", "Deep/Down/Junk")
    assert store.mailbox("Deep/Down") is not None
    assert any(isinstance(c, ChangeAddMailbox) and c.name == "Deep" for c in changes)


def test_rename_inbox_moves_its_messages(store: AccountStore, sources: Sources) -> None:
    inbox = store.mailbox("Inbox")
    assert inbox is not None
    store.create_mailbox("Inbox/Child")
    m1 = deliver(store, sources, b"one", flags=("\\Seen",))
    m2 = deliver(store, sources, b"two")
    changes = store.rename_mailbox("INBOX", "Old Inbox")
    new = store.mailbox("Old Inbox")
    assert new is not None and new.id != inbox.id
    moved = store.messages(new.id)
    assert [m.flags for m in moved] == [("\\Seen",), ()]
    with store.open_message(moved[0]) as f1, store.open_message(moved[1]) as f2:
        assert (f1.read(), f2.read()) == (b"one", b"two")
    assert store.messages(inbox.id) == []
    # The old rows are expunged (VANISHED for QRESYNC clients), their files gone.
    _, vanished = store.changes_since(inbox.id, 0)
    assert vanished == [m1.uid, m2.uid]
    assert not store.message_path(m1).exists()
    assert store.mailbox("Inbox/Child") is not None  # RFC 3501 6.3.5: children stay
    assert any(isinstance(c, ChangeRemoveUIDs) for c in changes)
    assert store.mailbox("Inbox") is not None
    assert store.rename_mailbox("Inbox", "Inbox/Later")  # to its own child: allowed


def test_subscriptions(store: AccountStore) -> None:
    store.subscribe("Does/Not/Exist")
    store.subscribe("INBOX")
    store.unsubscribe("Sent")
    store.unsubscribe("Never subscribed")
    subs = store.subscriptions()
    assert "Does/Not/Exist" in subs and "Inbox" in subs and "Sent" not in subs
    sent = store.mailbox("Sent")
    assert sent is not None and not sent.subscribed


# ---- delivery ----------------------------------------------------------------------------


def test_deliver(store: AccountStore, sources: Sources) -> None:
    src = sources.make(b"Subject: hi\r\n\r\nhello\r\n")
    before = store.current_modseq()
    out = store.deliver(DeliveryRequest("INBOX", src, NOW, ("\\seen", "$Label1")))
    assert out.error is None and out.message is not None and out.request_index == 0
    m = out.message
    assert m.uid == 1 and m.modseq == before + 1 and m.createseq == m.modseq
    assert m.flags == ("$Label1", "\\Seen")
    assert m.size == len(b"Subject: hi\r\n\r\nhello\r\n")
    assert m.received == NOW
    assert not m.expunged
    assert out.changes == (ChangeAddUID(m.mailbox_id, 1, m.modseq, m.flags, m.size),)
    path = store.message_path(m)
    assert path == store.directory / "msg" / "0" / str(m.id)
    assert path.read_bytes() == src.read_bytes()
    assert src.exists()  # the source is never moved or removed
    assert os.path.samefile(src, path)
    assert store.messages(m.mailbox_id) == [m]
    assert store.message(m.mailbox_id, 1) == m
    mb = store.mailbox("Inbox")
    assert mb is not None and mb.uidnext == 2


def test_received_keeps_milliseconds_and_needs_a_timezone(
    store: AccountStore, sources: Sources
) -> None:
    when = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=timezone(timedelta(hours=-7)))
    out = store.deliver(DeliveryRequest("Inbox", sources.make(b"x"), when))
    assert out.message is not None and out.message.received == when
    naive = store.deliver(DeliveryRequest("Inbox", sources.make(b"x"), datetime(2001, 2, 3)))
    assert naive.message is None and naive.error is not None and "timezone" in naive.error


def test_deliver_many_group_commit(store: AccountStore, sources: Sources) -> None:
    reqs = [
        DeliveryRequest("Inbox", sources.make(b"a"), NOW),
        DeliveryRequest("Nope", sources.make(b"b"), NOW),
        DeliveryRequest("Sent", sources.make(b"c"), NOW, ("\\Seen",)),
        DeliveryRequest("Inbox", sources.make(b"d"), NOW, ("\\Recent",)),
        DeliveryRequest("Inbox", sources.directory / "missing", NOW),
        DeliveryRequest("Inbox", sources.make(b"e"), NOW),
    ]
    outs = store.deliver_many(reqs)
    assert [o.request_index for o in outs] == list(range(6))
    assert [o.error is None for o in outs] == [True, False, True, False, False, True]
    assert "does not exist" in (outs[1].error or "")
    ok = [o.message for o in outs if o.message is not None]
    modseqs = [m.modseq for m in ok]
    assert modseqs == sorted(modseqs) and len(set(modseqs)) == 3
    inbox = [m for m in ok if m.mailbox_id == inbox_id(store)]
    assert [m.uid for m in inbox] == [1, 2]
    assert {store.message_path(m).read_bytes() for m in ok} == {b"a", b"c", b"e"}
    assert msg_files(store) == {store.message_path(m) for m in ok}


def test_deliver_many_storage_full_commits_nothing(store: AccountStore, sources: Sources) -> None:
    deliver(store, sources, b"before")
    conn = store.db.connection
    conn.pragma("max_page_count", conn.pragma("page_count"))  # SQLITE_FULL on growth
    reqs = [
        DeliveryRequest(
            "Inbox", sources.make(b"x" * 5000), NOW, tuple(f"kw{i}" for i in range(200))
        )
        for _ in range(20)
    ]
    modseq = store.current_modseq()
    outs = store.deliver_many(reqs)
    assert all(o.message is None for o in outs)
    assert all((o.error or "").startswith("storage full") for o in outs)
    assert store.current_modseq() == modseq
    assert len(store.messages(inbox_id(store))) == 1
    assert len(msg_files(store)) == 1  # linked files were removed again
    conn.pragma("max_page_count", 1 << 30)
    m = deliver(store, sources, b"after")
    assert m.uid == 2


def test_deliver_many_io_error_commits_nothing(
    store: AccountStore, sources: Sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = files.link_or_copy
    calls = 0

    def failing_second(src: Path, dst: Path, *, make_parents: bool = True) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst, make_parents=make_parents)

    monkeypatch.setattr(accountmod, "link_or_copy", failing_second)
    reqs = [DeliveryRequest("Inbox", sources.make(b"m%d" % i), NOW) for i in range(3)]
    outs = store.deliver_many(reqs)
    assert all(o.message is None and "Input/output error" in (o.error or "") for o in outs)
    assert store.messages(inbox_id(store)) == []
    assert msg_files(store) == set()


def test_deliver_from_an_open_spool_file(store: AccountStore, tmp_path: Path) -> None:
    """The SMTP flow: the spool is still open when the store links it."""
    spool = create_spool_file(tmp_path, prefix="smtp-")
    spool.write(b"Subject: spooled\r\n\r\nbody\r\n")
    spool.finish()
    out = store.deliver(DeliveryRequest("Inbox", spool.path, NOW))
    assert out.message is not None
    spool.discard()  # the caller closes, then removes its spool file
    with store.open_message(out.message) as f:
        assert f.read() == b"Subject: spooled\r\n\r\nbody\r\n"


def test_failed_delivery_from_an_open_spool_does_not_reuse_its_file(
    store: AccountStore, tmp_path: Path, sources: Sources
) -> None:
    """Strict mode (Windows): the linked copy of a still-open spool cannot be removed
    after the rollback; its id must not be handed out again."""
    spool = create_spool_file(tmp_path, prefix="smtp-")
    spool.write(b"spooled")
    spool.finish()
    conn = store.db.connection
    conn.pragma("max_page_count", conn.pragma("page_count"))
    big = tuple(f"kw{i}" for i in range(500))
    outs = store.deliver_many([DeliveryRequest("Inbox", spool.path, NOW, big)] * 5)
    assert all((o.error or "").startswith("storage full") for o in outs)
    stuck = msg_files(store)
    assert stuck  # still open through the spool: removal postponed
    conn.pragma("max_page_count", 1 << 30)
    m = deliver(store, sources, b"next")
    assert store.message_path(m) not in stuck
    assert store.message_path(m).read_bytes() == b"next"
    spool.discard()
    m2 = deliver(store, sources, b"after close")  # retries the postponed removals
    assert msg_files(store) == {store.message_path(m), store.message_path(m2)}


def test_orphan_file_from_a_crash_is_replaced(store: AccountStore, sources: Sources) -> None:
    m = deliver(store, sources, b"first")
    orphan = store.directory / "msg" / "0" / str(m.id + 1)
    orphan.write_bytes(b"left by a crash before COMMIT")
    m2 = deliver(store, sources, b"second")
    assert store.message_path(m2) == orphan
    assert orphan.read_bytes() == b"second"


def test_shard_directory_removed_by_hand_is_made_again(
    store: AccountStore, sources: Sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = deliver(store, sources, b"first")
    shard = store.message_path(m).parent
    store.message_path(m).unlink()
    shard.rmdir()  # the store still remembers it as existing
    synced: list[Path] = []
    real_sync = files.DirectorySyncer.sync

    def recording_sync(self: files.DirectorySyncer, path: Path) -> None:
        synced.append(path)
        real_sync(self, path)

    monkeypatch.setattr(files.DirectorySyncer, "sync", recording_sync)
    m2 = deliver(store, sources, b"second")
    assert store.message_path(m2).read_bytes() == b"second"
    # Both the new shard directory and its entry in msg/ were made durable.
    assert shard in synced and shard.parent in synced


def test_modseq_stays_increasing_across_batches_and_other_writes(
    store: AccountStore, sources: Sources
) -> None:
    seen: list[int] = []
    for _ in range(3):
        outs = store.deliver_many(
            [DeliveryRequest("Inbox", sources.make(b"m%d" % i), NOW) for i in range(3)]
        )
        seen.extend(o.message.modseq for o in outs if o.message is not None)
        inbox = store.mailbox("Inbox")
        assert inbox is not None
        # A write outside deliver_many advances the counter the batch cache knows.
        first = outs[0].message
        assert first is not None
        changed, _, _ = store.set_flags(inbox.id, [first.uid], ["\\Seen"], "add")
        assert len(changed) == 1
        seen.extend(m.modseq for m in changed)
        assert store.current_modseq() == seen[-1]
    assert seen == sorted(seen) and len(set(seen)) == len(seen) == 12
    # UIDs of one mailbox stay dense and ascending when the batches commit.
    inbox = store.mailbox("Inbox")
    assert inbox is not None
    assert [m.uid for m in store.messages(inbox.id)] == list(range(1, 10))
    assert inbox.uidnext == 10


def test_failed_batch_leaves_counters_as_they_were(
    store: AccountStore, sources: Sources, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(store, sources, b"before")
    before = store.current_modseq()
    inbox = store.mailbox("Inbox")
    assert inbox is not None

    def failing(src: Path, dst: Path, *, make_parents: bool = True) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(accountmod, "link_or_copy", failing)
    outs = store.deliver_many([DeliveryRequest("Inbox", sources.make(b"x"), NOW)])
    assert outs[0].message is None
    monkeypatch.undo()
    assert store.current_modseq() == before
    m = deliver(store, sources, b"after")
    assert m.modseq == before + 1 and m.uid == inbox.uidnext


def test_shards(store: AccountStore, sources: Sources) -> None:
    store.db.connection.execute(
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('message', ?)", (4096 * 26 - 1,)
    )
    m = deliver(store, sources, b"sharded")
    assert m.id == 4096 * 26
    assert store.message_path(m) == store.directory / "msg" / "1a" / str(4096 * 26)
    assert store.message_path(m).read_bytes() == b"sharded"


def test_uid_space_exhausted(store: AccountStore, sources: Sources) -> None:
    store.db.connection.execute("UPDATE mailbox SET uidnext = ? WHERE name = 'Inbox'", (MAX_UID,))
    m = deliver(store, sources, b"last")
    assert m.uid == MAX_UID
    out = store.deliver(DeliveryRequest("Inbox", sources.make(b"one too many"), NOW))
    assert out.message is None and "no UIDs left" in (out.error or "")


def test_append(store: AccountStore, sources: Sources) -> None:
    out = store.append("Drafts", sources.make(b"draft"), NOW, ("\\Draft",))
    assert out.message is not None and out.message.flags == ("\\Draft",)


# ---- flags, expunge, copy, move -----------------------------------------------------------


def test_set_flags_modes(store: AccountStore, sources: Sources) -> None:
    mbid = inbox_id(store)
    a = deliver(store, sources, b"a")
    b = deliver(store, sources, b"b", flags=("\\Seen",))
    updated, modified, changes = store.set_flags(mbid, [a.uid, b.uid], ["\\Seen"], "add")
    # b already had \Seen: unchanged flags do not bump its modseq.
    assert [m.uid for m in updated] == [a.uid] and modified == []
    assert updated[0].modseq > b.modseq
    assert changes == [ChangeFlags(mbid, a.uid, updated[0].modseq, ("\\Seen",))]
    assert store.message(mbid, b.uid) == b
    updated, _, _ = store.set_flags(mbid, [a.uid, b.uid], ["\\Flagged", "Work"], "replace")
    assert [m.flags for m in updated] == [("\\Flagged", "Work"), ("\\Flagged", "Work")]
    assert updated[0].modseq < updated[1].modseq  # each changed message: a new modseq
    updated, _, _ = store.set_flags(mbid, [a.uid], ["work"], "remove")
    assert updated[0].flags == ("\\Flagged",)
    assert store.set_flags(mbid, [999], ["\\Seen"], "add") == ([], [], [])
    with pytest.raises(ValueError):
        store.set_flags(mbid, [a.uid], ["\\Recent"], "add")


def test_set_flags_unchangedsince(store: AccountStore, sources: Sources) -> None:
    """RFC 7162 3.1.3: messages changed after UNCHANGEDSINCE are left alone and reported."""
    mbid = inbox_id(store)
    a = deliver(store, sources, b"a")
    b = deliver(store, sources, b"b")
    updated, modified, _ = store.set_flags(mbid, [a.uid, b.uid], ["\\Seen"], "add", a.modseq)
    assert [m.uid for m in updated] == [a.uid]
    assert modified == [b.uid]
    assert store.message(mbid, b.uid) == b
    # UNCHANGEDSINCE 0 fails for every message (RFC 7162 3.1.3 example).
    updated, modified, _ = store.set_flags(mbid, [a.uid, b.uid], ["\\Answered"], "add", 0)
    assert updated == [] and modified == [a.uid, b.uid]


def test_expunge_deleted(store: AccountStore, sources: Sources) -> None:
    mbid = inbox_id(store)
    ms = [deliver(store, sources, b"m%d" % i) for i in range(4)]
    store.set_flags(mbid, [ms[1].uid, ms[3].uid], ["\\Deleted"], "add")
    hms_before = store.highest_modseq(mbid)
    expunged, changes = store.expunge(mbid)
    assert expunged == [ms[1].uid, ms[3].uid]
    assert len(changes) == 1 and isinstance(changes[0], ChangeRemoveUIDs)
    assert changes[0].uids == (ms[1].uid, ms[3].uid)
    assert store.highest_modseq(mbid) == changes[0].modseq > hms_before
    assert [m.uid for m in store.messages(mbid)] == [ms[0].uid, ms[2].uid]
    gone = store.messages(mbid, include_expunged=True)
    rows = {m.uid: m for m in gone}
    assert rows[ms[1].uid].expunged and rows[ms[1].uid].flags == () and rows[ms[1].uid].size == 0
    assert not store.message_path(ms[1]).exists()
    assert store.message(mbid, ms[1].uid) is None
    with pytest.raises(AccountStoreError):
        store.open_message(rows[ms[1].uid])
    assert store.expunge(mbid) == ([], [])
    # UIDs are never reused (RFC 3501 2.3.1.1).
    assert deliver(store, sources, b"new").uid == ms[3].uid + 1


def test_expunge_given_uids(store: AccountStore, sources: Sources) -> None:
    mbid = inbox_id(store)
    ms = [deliver(store, sources, b"m%d" % i) for i in range(3)]
    expunged, _ = store.expunge(mbid, [ms[0].uid, ms[2].uid, 77])
    assert expunged == [ms[0].uid, ms[2].uid]
    assert [m.uid for m in store.messages(mbid)] == [ms[1].uid]


def test_expunge_while_a_reader_has_the_file_open(store: AccountStore, sources: Sources) -> None:
    """Windows semantics: the file is removed once the reader has closed it."""
    mbid = inbox_id(store)
    m = deliver(store, sources, b"being read")
    f = store.open_message(m)
    store.expunge(mbid, [m.uid])
    assert store.message_path(m).exists()  # still open: removal postponed
    assert f.read() == b"being read"
    f.close()
    store.close()
    assert not store.message_path(m).exists()


def test_copy_messages(store: AccountStore, sources: Sources) -> None:
    mbid = inbox_id(store)
    a = deliver(store, sources, b"a", flags=("\\Seen",))
    b = deliver(store, sources, b"b")
    deliver(store, sources, b"z", "Archive")
    pairs, changes = store.copy_messages(mbid, [b.uid, a.uid, 99], "Archive")
    assert pairs == [(a.uid, 2), (b.uid, 3)]
    archive = store.mailbox("Archive")
    assert archive is not None and archive.uidnext == 4
    copied = store.messages(archive.id)[1:]
    assert [m.flags for m in copied] == [("\\Seen",), ()]
    assert [m.size for m in copied] == [1, 1]
    assert os.path.samefile(store.message_path(a), store.message_path(copied[0]))
    assert [c.uid for c in changes if isinstance(c, ChangeAddUID)] == [2, 3]
    assert len(store.messages(mbid)) == 2  # the source is untouched
    with pytest.raises(MailboxNotFoundError):
        store.copy_messages(mbid, [a.uid], "Nope")


def test_move_messages(store: AccountStore, sources: Sources) -> None:
    mbid = inbox_id(store)
    a = deliver(store, sources, b"a")
    b = deliver(store, sources, b"b")
    pairs, changes = store.move_messages(mbid, [a.uid], "Trash")
    trash = store.mailbox("Trash")
    assert trash is not None
    assert pairs == [(a.uid, 1)]
    moved = store.messages(trash.id)
    with store.open_message(moved[0]) as f:
        assert f.read() == b"a"
    assert not store.message_path(a).exists()
    assert [m.uid for m in store.messages(mbid)] == [b.uid]
    removes = [c for c in changes if isinstance(c, ChangeRemoveUIDs)]
    assert removes and removes[0].uids == (a.uid,)
    _, vanished = store.changes_since(mbid, b.modseq)
    assert vanished == [a.uid]


def test_highest_modseq_and_changes_since(store: AccountStore, sources: Sources) -> None:
    mbid = inbox_id(store)
    junk = store.mailbox("Junk")
    assert junk is not None
    assert store.highest_modseq(mbid) == store.current_modseq()  # no rows yet
    a = deliver(store, sources, b"a")
    b = deliver(store, sources, b"b")
    c = deliver(store, sources, b"c")
    # An empty mailbox reports the account counter, which never decreases.
    assert store.highest_modseq(junk.id) == c.modseq
    assert store.highest_modseq(mbid) == c.modseq
    updated, _, _ = store.set_flags(mbid, [a.uid], ["\\Seen"], "add")
    store.expunge(mbid, [b.uid])
    changed, vanished = store.changes_since(mbid, c.modseq)
    assert [m.uid for m in changed] == [a.uid] and changed[0] == updated[0]
    assert vanished == [b.uid]
    changed, vanished = store.changes_since(mbid, 0)
    assert [m.uid for m in changed] == [a.uid, c.uid] and vanished == [b.uid]
    assert store.changes_since(mbid, store.highest_modseq(mbid)) == ([], [])


# ---- passwords, readers, reopen --------------------------------------------------------------


def test_password_credentials(store: AccountStore) -> None:
    assert store.password_credentials() is None
    store.set_password_credentials(b"salt", 4096, b"stored", b"server")
    assert store.password_credentials() == (b"salt", 4096, b"stored", b"server")
    store.set_password_credentials(b"salt2", 8192, b"s2", b"v2")
    assert store.password_credentials() == (b"salt2", 8192, b"s2", b"v2")


def test_readonly_store(store: AccountStore, sources: Sources, log: logging.Logger) -> None:
    m = deliver(store, sources, b"readable")
    reader = AccountStore(store.directory, log, readonly=True)
    reader.init()
    try:
        assert reader.messages(m.mailbox_id) == [m]
        with reader.open_message(m) as f:
            assert f.read() == b"readable"
        m2 = deliver(store, sources, b"later")
        assert reader.messages(m.mailbox_id) == [m, m2]  # sees new commits
        with pytest.raises(DatabaseError, match="read-only"):
            reader.create_mailbox("x")
        with pytest.raises(DatabaseError, match="read-only"):
            reader.deliver(DeliveryRequest("Inbox", sources.make(b"x"), NOW))
        with pytest.raises(DatabaseError, match="read-only"):
            reader.set_flags(m.mailbox_id, [m.uid], ["\\Seen"], "add")
        with pytest.raises(DatabaseError, match="read-only"):
            reader.expunge(m.mailbox_id)
    finally:
        reader.close()


def test_readonly_store_does_not_create_anything(tmp_path: Path, log: logging.Logger) -> None:
    reader = AccountStore(tmp_path / "nobody", log, readonly=True)
    with pytest.raises(DatabaseError):
        reader.init()
    assert not (tmp_path / "nobody").exists()


def test_reopen_keeps_everything(tmp_path: Path, log: logging.Logger, sources: Sources) -> None:
    s = AccountStore(tmp_path / "acc", log)
    s.init()
    s.ensure_default_mailboxes()
    m = deliver(s, sources, b"durable", flags=("\\Seen",))
    s.set_password_credentials(b"s", 1, b"k", b"v")
    boxes = s.list_mailboxes()
    modseq = s.current_modseq()
    s.close()
    s.close()
    assert open_databases() == []
    s = AccountStore(tmp_path / "acc", log)
    s.init()
    try:
        assert s.list_mailboxes() == boxes
        assert s.messages(m.mailbox_id) == [m]
        assert s.current_modseq() == modseq
        assert s.password_credentials() == (b"s", 1, b"k", b"v")
        assert s.db.integrity_check() == []
    finally:
        s.close()
    assert open_files() == []


def test_changes_and_records_pickle(store: AccountStore, sources: Sources) -> None:
    m = deliver(store, sources, b"p")
    _, changes = store.create_mailbox("P")
    for obj in [m, *changes, store.mailbox("P")]:
        assert pickle.loads(pickle.dumps(obj)) == obj


def test_check_files(store: AccountStore, sources: Sources) -> None:
    a = deliver(store, sources, b"a")
    b = deliver(store, sources, b"b")
    assert store.check_files() == ([], [])
    orphan = store.directory / "msg" / "0" / "999"
    orphan.write_bytes(b"orphan")
    store.message_path(a).unlink()  # test-only damage
    assert store.check_files() == ([store.message_path(a)], [orphan])
    store.expunge(b.mailbox_id, [b.uid])
    assert store.check_files() == ([store.message_path(a)], [orphan])


def test_readonly_store_of_a_closed_account(
    tmp_path: Path, log: logging.Logger, sources: Sources
) -> None:
    writer = AccountStore(tmp_path / "acc", log)
    writer.init()
    writer.ensure_default_mailboxes()
    m = deliver(writer, sources, b"x")
    writer.close()
    reader = AccountStore(tmp_path / "acc", log, readonly=True)
    reader.init()
    try:
        assert reader.messages(m.mailbox_id) == [m]
        assert reader.check_files() == ([], [])
    finally:
        reader.close()


def test_deliver_many_atomic_appends_all_or_nothing(tmp_path: Path) -> None:
    """RFC 3502 sec. 6: a MULTIAPPEND that cannot append all messages appends none."""
    store = AccountStore(tmp_path / "acct", logging.getLogger("test"))
    store.init()
    try:
        store.ensure_default_mailboxes()
        good = tmp_path / "good.eml"
        good.write_bytes(b"Subject: good\r\n\r\nbody\r\n")
        missing = tmp_path / "missing.eml"
        now = datetime.now(UTC)
        before = store.current_modseq()
        outcomes = store.deliver_many(
            [DeliveryRequest("Inbox", good, now), DeliveryRequest("Inbox", missing, now)],
            atomic=True,
        )
        assert all(o.message is None and o.error for o in outcomes)
        inbox = store.mailbox("Inbox")
        assert inbox is not None
        assert store.messages(inbox.id) == []
        assert store.current_modseq() == before
        assert [p for p in (tmp_path / "acct" / "msg").rglob("*") if p.is_file()] == []
        # Without atomic, the good one is delivered.
        outcomes = store.deliver_many(
            [DeliveryRequest("Inbox", good, now), DeliveryRequest("Inbox", missing, now)]
        )
        assert outcomes[0].message is not None and outcomes[1].error
        assert len(store.messages(inbox.id)) == 1
    finally:
        store.close()


def test_delivery_creates_a_missing_mailbox_only_when_asked(
    store: AccountStore, tmp_path: Path
) -> None:
    src = tmp_path / "report.eml"
    src.write_bytes(b"Subject: report\r\n\r\nx\r\n")
    now = datetime.now(UTC)
    refused = store.deliver(DeliveryRequest("Reports/DMARC", src, now))
    assert refused.error is not None and "does not exist" in refused.error
    assert store.mailbox("Reports") is None
    out = store.deliver(DeliveryRequest("Reports/DMARC", src, now, ("\\Seen",), create=True))
    assert out.error is None and out.message is not None
    assert [type(c).__name__ for c in out.changes] == [
        "ChangeAddMailbox",
        "ChangeAddMailbox",
        "ChangeAddUID",
    ]
    mb = store.mailbox("Reports/DMARC")
    assert mb is not None and store.mailbox("Reports") is not None
    assert "Reports/DMARC" in store.subscriptions()
    assert [m.flags for m in store.messages(mb.id)] == [("\\Seen",)]
    # Existing mailboxes are used as they are.
    again = store.deliver(DeliveryRequest("Reports/DMARC", src, now, create=True))
    assert [type(c).__name__ for c in again.changes] == ["ChangeAddUID"]
