"""The selected mailbox as the client knows it: uid <-> message number, mod-sequence.

Theory of operation: `uids` is exactly the list the client believes in (message
number n is uids[n-1]). It changes only when we tell the client: EXISTS appends,
EXPUNGE/VANISHED removes. `modseq` is the highest mod-sequence of the mailbox the
view reflects. Changes come in two ways, both ordered by mod-sequence:

- `sync(changed, vanished)`: rows with modseq > `modseq` read from the database
  (after a command, on NOOP, before IDLE);
- `apply_events(changes)`: Change events the StoreActor publishes after each commit
  (during IDLE, when the session holds no database connection). Every commit takes
  mod-sequences above all earlier ones, so an event whose modseq is not above
  `modseq` is already reflected and is skipped.

RFC 3501 7.4.1: "An EXPUNGE response MUST NOT be sent when no command is in progress,
nor while responding to a FETCH, STORE, or SEARCH command." Expunges seen at such a
moment are kept in `pending_expunge` (their uids stay in `uids`) and are reported at
the next point where they are allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mailactors.actors.imap.uidlist import UidList
from mailactors.protocol.imap.response import format_fetch, format_flags, format_vanished, untagged
from mailactors.storage.account import MessageInfo
from mailactors.storage.changes import Change, ChangeAddUID, ChangeFlags, ChangeRemoveUIDs


@dataclass(slots=True)
class Notify:
    """What the client has enabled that changes untagged FETCH/EXPUNGE responses."""

    condstore: bool = False
    qresync: bool = False


@dataclass(slots=True)
class SelectedMailbox:
    """One session's view of its selected mailbox (see the module docstring)."""

    mailbox_id: int
    name: str
    uidvalidity: int
    readonly: bool
    uids: UidList
    modseq: int
    pending_expunge: set[int] = field(default_factory=set)
    # The uids a SEARCH ... RETURN (SAVE) remembered (RFC 5182 "$").
    saved: tuple[int, ...] = ()

    # --- numbering ------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.uids)

    def msn(self, uid: int) -> int | None:
        """The message sequence number of `uid`, or None if the client does not know it."""
        i = self.uids.index(uid)
        return None if i is None else i + 1

    @property
    def max_uid(self) -> int:
        return self.uids.max

    # --- changes from the database --------------------------------------------------

    def sync(
        self,
        changed: Sequence[MessageInfo],
        vanished: Iterable[int],
        notify: Notify,
        *,
        allow_expunge: bool,
        quiet: frozenset[int] = frozenset(),
        modseq_only: frozenset[int] = frozenset(),
        with_uid: bool = False,
        reported: set[int] | None = None,
    ) -> bytes:
        """Untagged responses for rows that changed since `modseq`; the view advances.

        Flag updates of uids in `quiet` are not reported (STORE .SILENT); for uids in
        `modseq_only` only the MODSEQ is (RFC 7162 3.1.3, .SILENT with CONDSTORE).
        `with_uid`: answering a UID command, whose FETCH responses carry UID
        (RFC 9051 6.4.9). The uids whose flags were reported are added to `reported`.
        """
        top = self.modseq
        gone: list[int] = []
        for uid in vanished:
            if self.msn(uid) is not None:
                gone.append(uid)
        new_uids: list[int] = []
        updates: list[tuple[int, int, tuple[str, ...]]] = []
        for m in changed:
            top = max(top, m.modseq)
            if m.uid > self.max_uid:
                new_uids.append(m.uid)
            elif self.msn(m.uid) is not None:
                updates.append((m.uid, m.modseq, m.flags))
        self.pending_expunge.update(gone)
        out = bytearray()
        if allow_expunge:
            out += self.flush_expunges(notify)
        if new_uids:
            self.uids.extend(sorted(new_uids))
            out += untagged(f"{self.count} EXISTS")
        for uid, modseq, flags in updates:
            if uid in quiet or uid in self.pending_expunge:
                continue
            if reported is not None:
                reported.add(uid)
            out += self._flags_fetch(
                uid, modseq, flags, notify, modseq_only=uid in modseq_only, with_uid=with_uid
            )
        self.modseq = max(top, self.modseq)
        return bytes(out)

    def advance(self, modseq: int) -> None:
        """Note that everything up to `modseq` is reflected (vanished rows included)."""
        self.modseq = max(self.modseq, modseq)

    def flush_expunges(self, notify: Notify) -> bytes:
        """EXPUNGE (or VANISHED with QRESYNC) for every pending expunge; renumbers."""
        if not self.pending_expunge:
            return b""
        gone = sorted(self.pending_expunge)
        self.pending_expunge.clear()
        out = bytearray()
        if notify.qresync:
            # RFC 7162 3.2.10: once QRESYNC is enabled, VANISHED replaces EXPUNGE.
            out += format_vanished(gone)
        else:
            # Highest number first: removing it does not renumber the lower ones.
            for uid in reversed(gone):
                n = self.msn(uid)
                if n is not None:
                    out += untagged(f"{n} EXPUNGE")
        self.uids.remove(gone)
        return bytes(out)

    def _flags_fetch(
        self,
        uid: int,
        modseq: int,
        flags: tuple[str, ...],
        notify: Notify,
        *,
        modseq_only: bool = False,
        with_uid: bool = False,
    ) -> bytes:
        n = self.msn(uid)
        if n is None:
            return b""
        items: list[tuple[str, bytes]] = []
        if notify.qresync or with_uid:
            # RFC 7162 3.2.4: with QRESYNC, unsolicited FETCH responses include UID.
            items.append(("UID", str(uid).encode()))
        if not modseq_only:
            items.append(("FLAGS", format_flags(flags)))
        if notify.condstore:
            items.append(("MODSEQ", f"({modseq})".encode()))
        if not items:
            return b""
        return format_fetch(n, items)

    # --- changes from events (IDLE) -------------------------------------------------

    def apply_events(self, changes: Iterable[Change], notify: Notify) -> bytes:
        """Untagged responses for published changes of this mailbox not yet reflected."""
        out = bytearray()
        added: list[int] = []
        top = self.modseq
        for change in changes:
            if getattr(change, "mailbox_id", None) != self.mailbox_id:
                continue
            if isinstance(change, ChangeAddUID):
                if change.modseq > self.modseq and change.uid > self.max_uid:
                    added.append(change.uid)
                    top = max(top, change.modseq)
            elif isinstance(change, ChangeRemoveUIDs):
                if change.modseq > self.modseq:
                    if added:
                        out += self._announce(added)
                        added = []
                    self.pending_expunge.update(u for u in change.uids if self.msn(u) is not None)
                    out += self.flush_expunges(notify)
                    top = max(top, change.modseq)
            elif isinstance(change, ChangeFlags):
                if change.modseq > self.modseq:
                    if added:
                        out += self._announce(added)
                        added = []
                    out += self._flags_fetch(change.uid, change.modseq, change.flags, notify)
                    top = max(top, change.modseq)
        if added:
            out += self._announce(added)
        self.modseq = top
        return bytes(out)

    def _announce(self, added: list[int]) -> bytes:
        self.uids.extend(sorted(added))
        return untagged(f"{self.count} EXISTS")
