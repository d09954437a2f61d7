"""The selected-mailbox view: numbering, sync from rows, events during IDLE, held expunges."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mailactors.actors.imap.mailboxes import imap_name, pattern_regex
from mailactors.actors.imap.selected import Notify, SelectedMailbox
from mailactors.actors.imap.uidlist import UidList
from mailactors.storage.account import MessageInfo
from mailactors.storage.changes import Change, ChangeAddUID, ChangeFlags, ChangeRemoveUIDs

T = datetime(2026, 1, 1, tzinfo=UTC)


def view(uids: list[int], modseq: int = 10) -> SelectedMailbox:
    return SelectedMailbox(1, "INBOX", 7, False, UidList(uids), modseq)


def info(uid: int, modseq: int, flags: tuple[str, ...] = ()) -> MessageInfo:
    return MessageInfo(uid, 1, uid, modseq, modseq, flags, 10, T, False)


def test_numbering() -> None:
    v = view([3, 5, 9])
    assert (v.msn(3), v.msn(9), v.msn(4), v.max_uid, v.count) == (1, 3, None, 9, 3)


def test_sync_orders_expunge_exists_fetch() -> None:
    v = view([3, 5, 9])
    out = v.sync([info(5, 12, ("\\Seen",)), info(11, 13)], [3], Notify(), allow_expunge=True)
    assert out == b"* 1 EXPUNGE\r\n* 3 EXISTS\r\n* 1 FETCH (FLAGS (\\Seen))\r\n"
    assert list(v.uids) == [5, 9, 11] and v.modseq == 13


def test_sync_holds_expunges_during_fetch() -> None:
    v = view([3, 5, 9])
    assert v.sync([], [5, 9], Notify(), allow_expunge=False) == b""
    assert list(v.uids) == [3, 5, 9] and v.pending_expunge == {5, 9}
    # Highest number first, so each number is right when it is sent.
    assert v.flush_expunges(Notify()) == b"* 3 EXPUNGE\r\n* 2 EXPUNGE\r\n"
    assert list(v.uids) == [3]


def test_qresync_and_condstore_forms() -> None:
    v = view([3, 5, 9])
    notify = Notify(condstore=True, qresync=True)
    out = v.sync([info(9, 20, ("$X",))], [3, 5], notify, allow_expunge=True)
    assert out == b"* VANISHED 3,5\r\n* 1 FETCH (UID 9 FLAGS ($X) MODSEQ (20))\r\n"
    out = v.sync(
        [info(9, 21)], [], Notify(condstore=True), allow_expunge=True, modseq_only=frozenset({9})
    )
    assert out == b"* 1 FETCH (MODSEQ (21))\r\n"
    assert v.sync([info(9, 22)], [], Notify(), allow_expunge=True, quiet=frozenset({9})) == b""
    assert v.modseq == 22


def test_events_skip_what_is_reflected() -> None:
    v = view([3, 5], modseq=10)
    events: list[Change] = [
        ChangeAddUID(1, 5, 9, (), 1),  # already known
        ChangeAddUID(2, 1, 11, (), 1),  # another mailbox
        ChangeAddUID(1, 6, 11, (), 1),
        ChangeFlags(1, 3, 12, ("\\Flagged",)),
        ChangeRemoveUIDs(1, (5,), 13),
        ChangeFlags(1, 3, 8, ("\\Seen",)),  # old
    ]
    out = v.apply_events(events, Notify())
    assert out == b"* 3 EXISTS\r\n* 1 FETCH (FLAGS (\\Flagged))\r\n* 2 EXPUNGE\r\n"
    assert list(v.uids) == [3, 6] and v.modseq == 13


@given(
    st.lists(st.integers(1, 200), unique=True).map(sorted),
    st.sets(st.integers(1, 200)),
)
def test_expunge_keeps_numbering_consistent(uids: list[int], gone: set[int]) -> None:
    v = view(uids)
    v.pending_expunge = {u for u in gone if u in uids}
    out = v.flush_expunges(Notify())
    # Replaying the EXPUNGE responses on the old list gives the new list.
    replay = list(uids)
    for line in out.splitlines():
        del replay[int(line.split()[1]) - 1]
    assert replay == list(v.uids) == [u for u in uids if u not in gone]


def test_list_patterns_and_names() -> None:
    assert imap_name("Inbox") == "INBOX" and imap_name("Inbox/a") == "INBOX/a"
    assert imap_name("Inboxes") == "Inboxes"
    assert pattern_regex("", "*").match("a/b/c")
    assert not pattern_regex("", "%").match("a/b")
    assert pattern_regex("a", "%").match("a/b")
    assert pattern_regex("", "inbox").match("INBOX")
    assert not pattern_regex("", "Arch").match("Archive")


@given(
    st.lists(st.integers(1, 60), unique=True).map(sorted),
    st.sets(st.integers(0, 61)),
    st.integers(0, 61),
    st.integers(0, 61),
)
def test_uidlist_matches_a_plain_list(uids: list[int], gone: set[int], lo: int, hi: int) -> None:
    ul = UidList(uids)
    assert list(ul) == uids and len(ul) == len(uids) and ul.max == max(uids, default=0)
    for i, u in enumerate(uids):
        assert ul[i] == u and ul.index(u) == i
    assert ul.between(lo, hi) == [u for u in uids if lo <= u <= hi]
    assert ul.slice(lo, hi) == uids[lo:hi]
    ul.remove(gone)
    rest = [u for u in uids if u not in gone]
    assert list(ul) == rest and len(ul) == len(rest)
    assert all(ul.index(u) is None for u in gone)
    assert [ul[i] for i in range(len(rest))] == rest
    ul.extend([ul.max + 1, ul.max + 3])
    assert list(ul)[-2:] == [max(rest, default=0) + 1, max(rest, default=0) + 3]
