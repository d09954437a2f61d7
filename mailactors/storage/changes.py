"""Change events a StoreActor publishes to IMAP sessions (IDLE, NOTIFY).

Every class is a frozen, slotted, picklable dataclass holding ints and strings, so
events can cross process boundaries. Flags are IMAP flag strings: system flags
("\\Seen", "\\Answered", ...) and keywords (RFC 3501 2.3.2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChangeAddUID:
    """A message was added to a mailbox (delivery, APPEND, COPY, MOVE)."""

    mailbox_id: int
    uid: int
    modseq: int
    flags: tuple[str, ...]
    size: int


@dataclass(frozen=True, slots=True)
class ChangeRemoveUIDs:
    """Messages were expunged; `modseq` is the highest mod-sequence of the expunge."""

    mailbox_id: int
    uids: tuple[int, ...]
    modseq: int


@dataclass(frozen=True, slots=True)
class ChangeFlags:
    """The flags of one message changed; `flags` is the complete new set."""

    mailbox_id: int
    uid: int
    modseq: int
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChangeAddMailbox:
    """A mailbox was created."""

    mailbox_id: int
    name: str
    special_use: str | None


@dataclass(frozen=True, slots=True)
class ChangeRemoveMailbox:
    """A mailbox was deleted."""

    mailbox_id: int
    name: str


@dataclass(frozen=True, slots=True)
class ChangeRenameMailbox:
    """A mailbox was renamed (children are reported one event each)."""

    mailbox_id: int
    old: str
    new: str


Change = (
    ChangeAddUID
    | ChangeRemoveUIDs
    | ChangeFlags
    | ChangeAddMailbox
    | ChangeRemoveMailbox
    | ChangeRenameMailbox
)
