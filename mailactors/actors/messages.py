"""The frozen, picklable messages actors exchange.

Every message holds only bytes, str, ints, bools, tuples and other messages, so an
actor can move to another process without changing its callers. Replies to a
`tell` name the asking actor by its URN (`reply_to`), never by an object reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailactors.storage.changes import Change

# --- sockets -> sessions -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SocketData:
    """Bytes read from the connection by its session's inbox; b"" is end of stream."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SocketTimeout:
    """The peer sent nothing for the session's idle timeout."""


@dataclass(frozen=True, slots=True)
class SocketError:
    """Reading from the connection failed."""

    error: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The server is stopping: say goodbye (421 / BYE) and close."""

    reason: str


# --- sessions -> stores ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message file to add to one mailbox of the store's account."""

    mailbox: str
    source: str  # path of a closed-or-open spool file; the store never removes it
    received: datetime
    flags: tuple[str, ...] = ()
    summary: bytes | None = None  # protocol.message.summarize() of the file, if known
    size: int | None = None  # the file's size, if known


@dataclass(frozen=True, slots=True)
class DeliverMessages:
    """Ask a StoreActor to add messages; answered by a DeliveryResult told to reply_to.

    Deliveries that arrive together are committed in one transaction (group commit).
    """

    request_id: int
    deliveries: tuple[Delivery, ...]
    reply_to: str  # actor URN


@dataclass(frozen=True, slots=True)
class DeliveredMessage:
    mailbox: str
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Outcome of a DeliverMessages, one entry per delivery, in order.

    `storage_full` is set when the store could not write for lack of space, so the
    session answers 452 (RFC 5321 4.5.3.1.10) instead of a generic 451.
    """

    request_id: int
    account: str
    delivered: tuple[DeliveredMessage | None, ...]
    errors: tuple[str | None, ...]
    storage_full: bool = False


@dataclass(frozen=True, slots=True)
class GetPasswordCredentials:
    """Ask (with a timeout) for the account's salted SCRAM-SHA-256 hash, or None."""


@dataclass(frozen=True, slots=True)
class PasswordCredentials:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def __repr__(self) -> str:
        return "PasswordCredentials(<redacted>)"


@dataclass(frozen=True, slots=True)
class SetPasswordCredentials:
    """Store a new salted password hash (the plain password never reaches a store)."""

    credentials: PasswordCredentials


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Send Changes of this account to the actor with URN `subscriber`."""

    subscriber: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    subscriber: str


@dataclass(frozen=True, slots=True)
class Changes:
    """Published by a StoreActor to its subscribers after each commit."""

    account: str
    changes: tuple[Change, ...]


# --- IMAP sessions -> stores (asked with a timeout) ----------------------------------


@dataclass(frozen=True, slots=True)
class CreateMailbox:
    """CREATE (RFC 3501 6.3.3); answered by StoreDone or StoreFailed."""

    name: str
    special_use: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteMailbox:
    """DELETE (RFC 3501 6.3.4); answered by StoreDone or StoreFailed."""

    name: str


@dataclass(frozen=True, slots=True)
class RenameMailbox:
    """RENAME with children (RFC 3501 6.3.5); answered by StoreDone or StoreFailed."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class SubscribeMailbox:
    """SUBSCRIBE / UNSUBSCRIBE (`subscribe` False); answered by StoreDone or StoreFailed."""

    name: str
    subscribe: bool = True


@dataclass(frozen=True, slots=True)
class AppendMessages:
    """APPEND / MULTIAPPEND (RFC 3502): answered by Appended or StoreFailed."""

    mailbox: str
    deliveries: tuple[Delivery, ...]


@dataclass(frozen=True, slots=True)
class SetFlags:
    """STORE (RFC 3501 6.4.6, UNCHANGEDSINCE RFC 7162 3.1.3); answered by FlagsSet."""

    mailbox_id: int
    uids: tuple[int, ...]
    flags: tuple[str, ...]
    mode: str  # "add", "remove" or "replace"
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class ExpungeMessages:
    """EXPUNGE (uids None: every \\Deleted message) or UID EXPUNGE; answered by StoreDone."""

    mailbox_id: int
    uids: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class CopyMessages:
    """COPY, or MOVE when `move` (RFC 6851); answered by Copied or StoreFailed."""

    mailbox_id: int
    uids: tuple[int, ...]
    destination: str
    move: bool = False


@dataclass(frozen=True, slots=True)
class StoreDone:
    """A write committed."""


@dataclass(frozen=True, slots=True)
class StoreFailed:
    """A write was refused; `kind` says which IMAP response code fits.

    Kinds: "nonexistent", "exists", "name", "haschildren", "uidspace", "full", "error".
    """

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Appended:
    """The uids of appended messages, in order (RFC 4315 APPENDUID)."""

    uidvalidity: int
    uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FlagsSet:
    """Result of SetFlags: uids failing UNCHANGEDSINCE (RFC 7162 3.1.3 MODIFIED)."""

    modified: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Copied:
    """(source uid, destination uid) pairs and the destination's UIDVALIDITY (RFC 4315)."""

    uidvalidity: int
    pairs: tuple[tuple[int, int], ...]


# --- sessions -> auth limiter ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthAllowed:
    """Ask whether a peer IP may try to authenticate now; answered with a bool."""

    ip: str


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """Tell the limiter that an authentication attempt from ip failed."""

    ip: str


@dataclass(frozen=True, slots=True)
class AuthSucceeded:
    ip: str


# --- supervision -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """Told by a session to its listener when it stops."""

    urn: str


@dataclass(frozen=True, slots=True)
class CheckChildren:
    """The supervisor's periodic liveness check."""


@dataclass(frozen=True, slots=True)
class Ping:
    """Asked by the supervisor to confirm an actor started and serves its inbox."""


# --- sessions, reporter -> queue ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """Queue a spool file for remote recipients; answered by Queued told to reply_to."""

    request_id: int
    source: str  # the queue links or copies it; the sender still removes its file
    sender: str
    recipients: tuple[str, ...]
    reply_to: str | None = None  # actor URN; None: nobody waits (reports)
    kind: str = "mail"  # "mail", "dsn", "dmarc-report", "tls-report"
    account: str | None = None
    smtputf8: bool = False
    has_8bit: bool = False
    requiretls: bool = False
    tls_required_no: bool = False


@dataclass(frozen=True, slots=True)
class Queued:
    request_id: int
    message_id: int | None
    error: str | None = None
    storage_full: bool = False


@dataclass(frozen=True, slots=True)
class QueueTick:
    """Look for due recipients now (told by the queue's timer, and by tests)."""


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """What one delivery attempt did for one queued recipient."""

    recipient_id: int
    status: str  # "delivered", "temporary" or "permanent"
    code: int = 0
    enhanced: str = ""
    text: str = ""
    remote_mta: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryAttempted:
    """Told by a delivery worker to the queue when an attempt ended."""

    job_id: int
    outcomes: tuple[RecipientOutcome, ...]


@dataclass(frozen=True, slots=True)
class QueueControl:
    """Asked by the control socket: list, kick, hold or drop; answered with plain data."""

    action: str  # "list", "kick", "hold", "drop"
    ids: tuple[int, ...] | None = None  # recipient ids; None: all (kick)
