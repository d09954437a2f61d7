"""Message commands of the selected state: FETCH, STORE, SEARCH, EXPUNGE, COPY, MOVE
(and their UID forms, RFC 9051 6.4.9; CONDSTORE/QRESYNC modifiers, RFC 7162)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mailactors.actors.imap.errors import ImapError, ask_store
from mailactors.actors.imap.fetch import (
    FetchRefused,
    fetch_items,
    needs_summary,
    parse_summary,
)
from mailactors.actors.imap.search import Candidate, matches, uses_modseq
from mailactors.actors.imap.selected import SelectedMailbox
from mailactors.actors.messages import Copied, CopyMessages, ExpungeMessages, FlagsSet, SetFlags
from mailactors.protocol.imap import commands as c
from mailactors.protocol.imap.response import (
    copyuid,
    format_esearch,
    format_fetch,
    format_flags,
    format_search,
    format_vanished,
    untagged_status,
)
from mailactors.protocol.imap.sequence import SequenceSet, format_sequence_set
from mailactors.storage.account import MessageInfo, normalize_flags

if TYPE_CHECKING:
    from mailactors.actors.imap.session import ImapSessionActor

Result = tuple[str, str | None] | None


def _view(s: ImapSessionActor) -> SelectedMailbox:
    view = s.selected
    assert view is not None
    return view


def resolve(view: SelectedMailbox, seq: SequenceSet, uid: bool) -> list[int]:
    """The uids a sequence set names, ascending; "$" is the saved search (RFC 5182)."""
    if seq.saved:
        return [u for u in view.saved if view.msn(u) is not None]
    uids = view.uids
    out: list[int] = []
    if uid:
        for lo, hi in seq.to_ranges(view.max_uid):
            out.extend(uids.between(lo, hi))
        return out
    count = view.count
    for lo, hi in seq.to_ranges(count):
        if hi > count or lo < 1:
            # RFC 9051 6.4.5: a message number that does not exist is an error.
            raise ImapError("BAD", "invalid message sequence number")
        out.extend(uids.slice(lo - 1, hi))
    return out


def _loader(s: ImapSessionActor, info: MessageInfo) -> Callable[[], bytes]:
    def load() -> bytes:
        f = s.reader_db().open_message(info)
        try:
            return f.read()
        finally:
            f.close()

    return load


def fetch(s: ImapSessionActor, cmd: c.Fetch) -> Result:
    view = _view(s)
    if cmd.changedsince is not None or any(a.name == "MODSEQ" for a in cmd.attributes):
        # RFC 7162 3.1: these are CONDSTORE-enabling.
        s.notify.condstore = True
    if cmd.vanished and not s.notify.qresync:
        raise ImapError("BAD", "VANISHED needs ENABLE QRESYNC")
    uids = resolve(view, cmd.sequence, cmd.uid)
    db = s.reader_db()
    if cmd.vanished and cmd.changedsince is not None:
        # RFC 7162 3.2.6: UID FETCH (CHANGEDSINCE n VANISHED) reports expunged uids of
        # the set first, as VANISHED (EARLIER).
        _, gone = db.changes_since(view.mailbox_id, cmd.changedsince)
        largest = max(view.max_uid, max(gone, default=0))
        gone = [u for u in gone if cmd.sequence.contains(u, largest)]
        if gone:
            s._send(format_vanished(gone, earlier=True))
    seen_set: set[int] = set()
    if not view.readonly and any(a.sets_seen for a in cmd.attributes):
        unseen = [m.uid for m in db.messages_by_uid(view.mailbox_id, uids) if "\\Seen" not in m.flags]
        if unseen:
            ask_store(s.store, SetFlags(view.mailbox_id, tuple(unseen), ("\\Seen",), "add"))
            seen_set = set(unseen)
            s._sync(allow_expunge=cmd.uid, quiet=frozenset(seen_set))
    rows = db.messages_by_uid(view.mailbox_id, uids)
    if cmd.changedsince is not None:
        rows = [m for m in rows if m.modseq > cmd.changedsince]
    raw_summaries: dict[int, bytes] = {}
    if needs_summary(cmd.attributes) and rows:
        raw_summaries = db.summaries(view.mailbox_id, [m.uid for m in rows])
    try:
        for m in rows:
            n = view.msn(m.uid)
            if n is None:
                continue
            items = fetch_items(
                m,
                cmd.attributes,
                uid_first=cmd.uid,
                with_modseq=s.notify.condstore,
                add_flags=m.uid in seen_set,
                summary=parse_summary(raw_summaries.get(m.uid)),
                load=_loader(s, m),
            )
            s._send(format_fetch(n, items))
    except FetchRefused as exc:
        raise ImapError("NO", exc.text, f"[{exc.code}]") from None
    return f"{'UID ' if cmd.uid else ''}FETCH completed", None


def store(s: ImapSessionActor, cmd: c.Store) -> Result:
    view = _view(s)
    if cmd.unchangedsince is not None:
        s.notify.condstore = True
    if view.readonly:
        raise ImapError("NO", "mailbox is read-only", "[READ-ONLY]")
    try:
        flags = normalize_flags(cmd.flags)
    except ValueError as exc:
        raise ImapError("BAD", f"invalid flag: {exc}") from None
    uids = resolve(view, cmd.sequence, cmd.uid)
    code = None
    if uids:
        answer = ask_store(
            s.store, SetFlags(view.mailbox_id, tuple(uids), flags, cmd.mode, cmd.unchangedsince)
        )
        assert isinstance(answer, FlagsSet)
        own = frozenset(uids)
        if cmd.silent and s.notify.condstore:
            # RFC 7162 3.1.3: with .SILENT the MODSEQ is still reported.
            s._sync(allow_expunge=cmd.uid, modseq_only=own, with_uid=cmd.uid)
        elif cmd.silent:
            s._sync(allow_expunge=cmd.uid, quiet=own, with_uid=cmd.uid)
        else:
            reported: set[int] = set()
            s._sync(allow_expunge=cmd.uid, with_uid=cmd.uid, reported=reported)
            # RFC 9051 6.4.6: without .SILENT the new flags of every message of the set
            # are returned, also where they did not change.
            rest = [u for u in uids if u not in reported and u not in answer.modified]
            if rest:
                for m in s.reader_db().messages_by_uid(view.mailbox_id, rest):
                    n = view.msn(m.uid)
                    if n is None or m.uid in view.pending_expunge:
                        continue
                    items = [("UID", str(m.uid).encode())] if cmd.uid else []
                    items.append(("FLAGS", format_flags(m.flags)))
                    if s.notify.condstore:
                        items.append(("MODSEQ", f"({m.modseq})".encode()))
                    s._send(format_fetch(n, items))
        if answer.modified:
            numbers = (
                list(answer.modified)
                if cmd.uid
                else [n for n in (view.msn(u) for u in answer.modified) if n is not None]
            )
            # RFC 7162 3.1.3: OK [MODIFIED set] lists the messages that failed the test.
            code = f"[MODIFIED {format_sequence_set(numbers)}]"
    return f"{'UID ' if cmd.uid else ''}STORE completed", code


def search(s: ImapSessionActor, cmd: c.Search) -> Result:
    view = _view(s)
    db = s.reader_db()
    with_modseq = uses_modseq(cmd.criteria)
    if with_modseq:
        s.notify.condstore = True
    rows = {m.uid: m for m in db.messages(view.mailbox_id)}
    saved = frozenset(view.saved)
    found: list[tuple[int, MessageInfo]] = []
    count = view.count
    max_uid = view.max_uid
    for i, uid in enumerate(view.uids):
        info = rows.get(uid)
        if info is None:
            continue
        cand = Candidate(
            info,
            i + 1,
            count,
            max_uid,
            _loader(s, info),
            saved,
            flags_lower=frozenset(f.lower() for f in info.flags),
        )
        if matches(cmd.criteria, cand):
            found.append((i + 1, info))
    numbers = [info.uid if cmd.uid else n for n, info in found]
    top = max((info.modseq for _, info in found), default=None) if with_modseq else None
    opts = cmd.return_options
    if opts is None and not s.rev2:
        s._send(format_search(numbers, top))
    else:
        wanted = set(opts or ()) or {"ALL"}
        if "SAVE" in wanted:
            view.saved = tuple(info.uid for _, info in found)
            wanted.discard("SAVE")
            if not wanted:
                # RFC 5182 2.4: SAVE alone: no ESEARCH response.
                return f"{'UID ' if cmd.uid else ''}SEARCH completed", None
        s._send(
            format_esearch(
                cmd.tag,
                cmd.uid,
                minimum=min(numbers) if "MIN" in wanted and numbers else None,
                maximum=max(numbers) if "MAX" in wanted and numbers else None,
                count=len(numbers) if "COUNT" in wanted else None,
                all_numbers=numbers if "ALL" in wanted else None,
                modseq=top,
            )
        )
    return f"{'UID ' if cmd.uid else ''}SEARCH completed", None


def expunge(s: ImapSessionActor, cmd: c.Expunge) -> Result:
    view = _view(s)
    if view.readonly:
        raise ImapError("NO", "mailbox is read-only", "[READ-ONLY]")
    if cmd.uids is None:
        ask_store(s.store, ExpungeMessages(view.mailbox_id, None))
    else:
        # RFC 4315 2.1: UID EXPUNGE removes only messages of the set that have \Deleted.
        uids = resolve(view, cmd.uids, True)
        deleted = [
            m.uid
            for m in s.reader_db().messages_by_uid(view.mailbox_id, uids)
            if "\\Deleted" in m.flags
        ]
        if deleted:
            ask_store(s.store, ExpungeMessages(view.mailbox_id, tuple(deleted)))
    s._sync(allow_expunge=True)
    code = None
    if s.notify.condstore:
        # RFC 7162 3.1.10 (QRESYNC 3.2.10): the tagged OK carries HIGHESTMODSEQ.
        code = f"[HIGHESTMODSEQ {view.modseq}]"
    return f"{'UID ' if cmd.uids is not None else ''}EXPUNGE completed", code


def copy_or_move(s: ImapSessionActor, cmd: c.Copy | c.Move) -> Result:
    view = _view(s)
    move = isinstance(cmd, c.Move)
    name = "MOVE" if move else "COPY"
    if move and view.readonly:
        raise ImapError("NO", "mailbox is read-only", "[READ-ONLY]")
    uids = resolve(view, cmd.sequence, cmd.uid)
    prefix = "UID " if cmd.uid else ""
    if not uids:
        return f"{prefix}{name} completed", None
    answer = ask_store(
        s.store,
        CopyMessages(view.mailbox_id, tuple(uids), cmd.mailbox.rstrip("/"), move),
        trycreate=True,
    )
    assert isinstance(answer, Copied)
    code = None
    if answer.pairs:
        src = [a for a, _ in answer.pairs]
        dst = [b for _, b in answer.pairs]
        code = copyuid(answer.uidvalidity, src, dst).format()
    if move:
        # RFC 6851 4.3: COPYUID goes in an untagged OK before the expunges.
        if code is not None:
            s._send(untagged_status("OK", "moved", code))
        s._sync(allow_expunge=True)
        return f"{prefix}MOVE completed", None
    return f"{prefix}COPY completed", code


HANDLERS: dict[type, Callable[[Any, Any], Result]] = {
    c.Fetch: fetch,
    c.Store: store,
    c.Search: search,
    c.Expunge: expunge,
    c.Copy: copy_or_move,
    c.Move: copy_or_move,
}
