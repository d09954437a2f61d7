"""Mailbox commands: SELECT/EXAMINE (CONDSTORE/QRESYNC), CREATE, DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, NAMESPACE, STATUS, APPEND, CLOSE, UNSELECT."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mailactors.actors.imap.errors import ImapError, ask_store
from mailactors.actors.imap.mailboxes import imap_name, list_attributes, pattern_regex
from mailactors.actors.imap.selected import SelectedMailbox
from mailactors.actors.imap.uidlist import UidList
from mailactors.actors.messages import (
    Appended,
    AppendMessages,
    CreateMailbox,
    DeleteMailbox,
    Delivery,
    ExpungeMessages,
    RenameMailbox,
    SubscribeMailbox,
)
from mailactors.protocol.imap import commands as c
from mailactors.protocol.imap.framing import DEFAULT_MAX_LITERAL
from mailactors.protocol.imap.response import (
    format_fetch,
    format_flags,
    format_list,
    format_status,
    format_vanished,
    untagged,
    untagged_status,
)
from mailactors.protocol.imap.sequence import format_sequence_set
from mailactors.protocol.message import summarize
from mailactors.storage.account import (
    SPECIAL_USE,
    AccountStoreError,
    Mailbox,
    normalize_flags,
    normalize_mailbox_name,
)
from mailactors.storage.files import SpoolFile, StorageFullError, create_spool_file

if TYPE_CHECKING:
    from mailactors.actors.imap.session import ImapSessionActor

Result = tuple[str, str | None] | None

_SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
_SPECIAL_USE_BY_UPPER = {s.upper(): s for s in SPECIAL_USE}


def find_mailbox(s: ImapSessionActor, name: str) -> Mailbox | None:
    """The mailbox called `name`, or None (also for names that cannot exist)."""
    try:
        return s.reader_db().mailbox(name)
    except AccountStoreError:
        return None


def _name(name: str) -> str:
    # RFC 3501 6.3.3: a trailing hierarchy delimiter only says children are intended.
    return name.rstrip("/") or name


def select(s: ImapSessionActor, cmd: c.Select) -> Result:
    if s.selected is not None:
        s.selected = None
        # RFC 7162 3.2.11 / RFC 9051 7.1: the previous mailbox is closed.
        s._send(untagged_status("OK", "previous mailbox closed", "[CLOSED]"))
    mb = find_mailbox(s, cmd.mailbox)
    if mb is None:
        raise ImapError("NO", "mailbox does not exist", "[NONEXISTENT]")
    if cmd.qresync is not None and not s.notify.qresync:
        # RFC 7162 3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
        raise ImapError("BAD", "QRESYNC is not enabled")
    if cmd.condstore:
        s.notify.condstore = True
    db = s.reader_db()
    uids, highest = db.snapshot(mb.id)
    view = SelectedMailbox(
        mb.id, imap_name(mb.name), mb.uidvalidity, cmd.readonly, UidList(uids), highest
    )
    out = bytearray()
    out += untagged(b"FLAGS " + format_flags(_SYSTEM_FLAGS))
    perm = "()" if cmd.readonly else "(" + " ".join((*_SYSTEM_FLAGS, "\\*")) + ")"
    out += untagged_status("OK", "flags permitted", f"[PERMANENTFLAGS {perm}]")
    out += untagged(f"{view.count} EXISTS")
    if not s.rev2:
        # RFC 3501 6.3.1: RECENT, and the first unseen message (IMAP4rev2 dropped both).
        out += untagged("0 RECENT")
        first = db.first_unseen_uid(mb.id)
        n = None if first is None else view.msn(first)
        if n is not None:
            out += untagged_status("OK", "first unseen", f"[UNSEEN {n}]")
    if s.rev2:
        # RFC 9051 6.3.2: the server MUST return a LIST response with the mailbox name.
        names = {imap_name(b.name) for b in db.list_mailboxes()}
        attrs = list_attributes(
            mb,
            view.name,
            names,
            subscribed=mb.subscribed,
            want_subscribed=False,
            want_special_use=True,
        )
        out += format_list(attrs, "/", view.name, utf8=True)
    out += untagged_status("OK", "UIDs valid", f"[UIDVALIDITY {mb.uidvalidity}]")
    out += untagged_status("OK", "predicted next UID", f"[UIDNEXT {mb.uidnext}]")
    out += untagged_status("OK", "highest modseq", f"[HIGHESTMODSEQ {highest}]")
    q = cmd.qresync
    if q is not None and q.uidvalidity == mb.uidvalidity:
        # RFC 7162 3.2.5.1: report what vanished and changed since the client's modseq.
        changed, vanished = db.changes_since(mb.id, q.modseq)
        if q.known_uids is not None:
            known = q.known_uids
            vanished = [u for u in vanished if known.contains(u, view.max_uid)]
        if vanished:
            out += format_vanished(vanished, earlier=True)
        for m in changed:
            n = view.msn(m.uid)
            if n is None:
                continue
            out += format_fetch(
                n,
                [
                    ("UID", str(m.uid).encode()),
                    ("FLAGS", format_flags(m.flags)),
                    ("MODSEQ", f"({m.modseq})".encode()),
                ],
            )
    s._send(bytes(out))
    s.selected = view
    code = "[READ-ONLY]" if cmd.readonly else "[READ-WRITE]"
    return f"{'EXAMINE' if cmd.readonly else 'SELECT'} completed", code


def close(s: ImapSessionActor, cmd: c.Close) -> Result:
    view = s.selected
    assert view is not None
    if not view.readonly:
        # RFC 9051 6.4.1: CLOSE expunges \Deleted messages silently.
        ask_store(s.store, ExpungeMessages(view.mailbox_id, None))
    s.selected = None
    return "CLOSE completed", None


def unselect(s: ImapSessionActor, cmd: c.Unselect) -> Result:
    s.selected = None
    return "UNSELECT completed", None


def create(s: ImapSessionActor, cmd: c.Create) -> Result:
    name = _name(cmd.mailbox)
    if len(cmd.special_use) > 1:
        raise ImapError("NO", "one special-use attribute per mailbox", "[USEATTR]")
    use = _SPECIAL_USE_BY_UPPER.get(cmd.special_use[0].upper()) if cmd.special_use else None
    ask_store(s.store, CreateMailbox(name, use))
    return "CREATE completed", None


def delete(s: ImapSessionActor, cmd: c.Delete) -> Result:
    ask_store(s.store, DeleteMailbox(_name(cmd.mailbox)))
    return "DELETE completed", None


def rename(s: ImapSessionActor, cmd: c.Rename) -> Result:
    ask_store(s.store, RenameMailbox(_name(cmd.mailbox), _name(cmd.new_name)))
    return "RENAME completed", None


def subscribe(s: ImapSessionActor, cmd: c.Subscribe | c.Unsubscribe) -> Result:
    on = isinstance(cmd, c.Subscribe)
    ask_store(s.store, SubscribeMailbox(_name(cmd.mailbox), on))
    return f"{'SUBSCRIBE' if on else 'UNSUBSCRIBE'} completed", None


def namespace(s: ImapSessionActor, cmd: c.Namespace) -> Result:
    # RFC 2342 5: one personal namespace, no others.
    s._send(untagged('NAMESPACE (("" "/")) NIL NIL'))
    return "NAMESPACE completed", None


def _status_values(s: ImapSessionActor, mb: Mailbox, items: tuple[str, ...]) -> list[tuple[str, int]]:
    db = s.reader_db()
    counts: tuple[int, int, int, int] | None = None
    values: list[tuple[str, int]] = []
    for item in items:
        if item in ("MESSAGES", "UNSEEN", "DELETED", "SIZE") and counts is None:
            counts = db.mailbox_counts(mb.id)
        if item == "MESSAGES":
            assert counts is not None
            values.append((item, counts[0]))
        elif item == "UNSEEN":
            assert counts is not None
            values.append((item, counts[1]))
        elif item == "DELETED":
            assert counts is not None
            values.append((item, counts[2]))
        elif item == "SIZE":
            assert counts is not None
            values.append((item, counts[3]))
        elif item == "UIDNEXT":
            values.append((item, mb.uidnext))
        elif item == "UIDVALIDITY":
            values.append((item, mb.uidvalidity))
        elif item == "RECENT":
            values.append((item, 0))
        elif item == "HIGHESTMODSEQ":
            s.notify.condstore = True
            values.append((item, db.highest_modseq(mb.id)))
        elif item == "APPENDLIMIT":
            values.append((item, DEFAULT_MAX_LITERAL))
    return values


def status(s: ImapSessionActor, cmd: c.Status) -> Result:
    mb = find_mailbox(s, cmd.mailbox)
    if mb is None:
        raise ImapError("NO", "mailbox does not exist", "[NONEXISTENT]")
    s._send(format_status(imap_name(mb.name), _status_values(s, mb, cmd.items), s.utf8))
    return "STATUS completed", None


def list_mailboxes(s: ImapSessionActor, cmd: c.List) -> Result:
    db = s.reader_db()
    if cmd.patterns == ("",):
        # RFC 3501 6.3.8: an empty pattern asks for the delimiter and root.
        s._send(format_list(["\\Noselect"], "/", "", utf8=s.utf8))
        return "LIST completed", None
    boxes = {imap_name(mb.name): mb for mb in db.list_mailboxes()}
    subscribed = {imap_name(n) for n in db.subscriptions()}
    select_subscribed = "SUBSCRIBED" in cmd.selection
    select_special = "SPECIAL-USE" in cmd.selection
    want_subscribed = select_subscribed or "SUBSCRIBED" in cmd.return_options
    want_special = select_special or "SPECIAL-USE" in cmd.return_options or not cmd.extended
    regexes = [pattern_regex(cmd.reference, p) for p in cmd.patterns]
    all_names = set(boxes)
    chosen = subscribed if select_subscribed else all_names
    # RFC 5258 3.5: with RECURSIVEMATCH, parents of selected mailboxes that match the
    # pattern are returned too, with CHILDINFO naming the criteria their children meet.
    childinfo: set[str] = set()
    if "RECURSIVEMATCH" in cmd.selection and select_subscribed:
        for name in subscribed:
            parent = name.rpartition("/")[0]
            while parent:
                childinfo.add(parent)
                parent = parent.rpartition("/")[0]
    out = bytearray()
    for name in sorted(chosen | childinfo):
        if not any(r.match(name) for r in regexes):
            continue
        mb = boxes.get(name)
        if select_special and (mb is None or not mb.special_use):
            continue
        if name not in chosen and name in childinfo:
            attrs = list_attributes(
                mb, name, all_names, subscribed=False, want_subscribed=False, want_special_use=False
            )
            out += format_list(
                attrs, "/", name, utf8=s.utf8, extended='("CHILDINFO" ("SUBSCRIBED"))'
            )
            continue
        attrs = list_attributes(
            mb,
            name,
            all_names,
            subscribed=name in subscribed,
            want_subscribed=want_subscribed,
            want_special_use=want_special,
        )
        extended = '("CHILDINFO" ("SUBSCRIBED"))' if name in childinfo else ""
        out += format_list(attrs, "/", name, utf8=s.utf8, extended=extended)
        if cmd.status_items is not None and mb is not None:
            # RFC 5819: a STATUS response follows each selectable mailbox.
            out += format_status(name, _status_values(s, mb, cmd.status_items), s.utf8)
    s._send(bytes(out))
    return "LIST completed", None


def lsub(s: ImapSessionActor, cmd: c.Lsub) -> Result:
    db = s.reader_db()
    boxes = {imap_name(mb.name) for mb in db.list_mailboxes()}
    regex = pattern_regex(cmd.reference, cmd.pattern)
    out = bytearray()
    for name in sorted(imap_name(n) for n in db.subscriptions()):
        if regex.match(name):
            attrs = [] if name in boxes else ["\\Noselect"]
            out += format_list(attrs, "/", name, utf8=s.utf8, command="LSUB")
    s._send(bytes(out))
    return "LSUB completed", None


def append(s: ImapSessionActor, cmd: c.Append) -> Result:
    try:
        name = normalize_mailbox_name(cmd.mailbox)
    except AccountStoreError:
        raise ImapError("NO", "invalid mailbox name", "[CANNOT]") from None
    if find_mailbox(s, name) is None:
        # RFC 9051 6.3.12: NO [TRYCREATE] when the mailbox does not exist.
        raise ImapError("NO", "mailbox does not exist", "[TRYCREATE]")
    spools: list[SpoolFile] = []
    try:
        deliveries = []
        for msg in cmd.messages:
            try:
                flags = normalize_flags(msg.flags)
            except ValueError as exc:
                raise ImapError("BAD", f"invalid flag: {exc}") from None
            try:
                spool = create_spool_file(s.services.spool_dir, prefix="imap-")
                spools.append(spool)
                spool.write(msg.data)
                spool.finish()
            except StorageFullError:
                raise ImapError("NO", "insufficient storage", "[OVERQUOTA]") from None
            received = msg.internal_date or _now()
            deliveries.append(
                Delivery(name, str(spool.path), received, flags, _summary(s, msg.data))
            )
        answer = ask_store(s.store, AppendMessages(name, tuple(deliveries)), trycreate=True)
    finally:
        for spool in spools:
            spool.discard()
    assert isinstance(answer, Appended)
    code = f"[APPENDUID {answer.uidvalidity} {format_sequence_set(answer.uids)}]"
    return "APPEND completed", code


def _summary(s: ImapSessionActor, data: bytes) -> bytes | None:
    """The cached summary, made here rather than on the store's single thread."""
    try:
        return summarize(data)
    except Exception:
        s.log.warning("summarizing appended message failed", exc_info=True)
        return None


def _now() -> datetime:
    return datetime.now(UTC)


HANDLERS: dict[type, Callable[[Any, Any], Result]] = {
    c.Select: select,
    c.Close: close,
    c.Unselect: unselect,
    c.Create: create,
    c.Delete: delete,
    c.Rename: rename,
    c.Subscribe: subscribe,
    c.Unsubscribe: subscribe,
    c.Namespace: namespace,
    c.Status: status,
    c.List: list_mailboxes,
    c.Lsub: lsub,
    c.Append: append,
}
