"""The IMAP commands a client can send, one frozen dataclass each.

`parse_command` (parser.py) returns one of these. Every command carries its
`tag`. Mailbox names are already decoded (modified UTF-7 or UTF-8) and INBOX is
spelled "INBOX". `uid` marks the "UID" prefixed forms (RFC 9051 section 6.4.9).
Strings are decoded from UTF-8 except message data, which stays bytes.

Commands and their RFCs:
    any state:      CAPABILITY, NOOP, LOGOUT, ID (RFC 2971)
    not authenticated: STARTTLS, AUTHENTICATE (SASL-IR RFC 4959), LOGIN
    authenticated:  ENABLE (RFC 5161), SELECT, EXAMINE (CONDSTORE/QRESYNC RFC 7162),
                    CREATE (USE, RFC 6154), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
                    LIST (LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE
                    RFC 6154), LSUB, NAMESPACE (RFC 2342), STATUS, APPEND
                    (MULTIAPPEND RFC 3502, BINARY RFC 3516, UTF8 RFC 6855), IDLE (RFC 2177)
    selected:       CHECK, CLOSE, UNSELECT (RFC 3691), EXPUNGE, UID EXPUNGE (RFC 4315),
                    SEARCH (ESEARCH RFC 4731, SEARCHRES RFC 5182), FETCH, STORE, COPY,
                    MOVE (RFC 6851)
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from mailactors.protocol.imap.fetchattr import FetchAttr
from mailactors.protocol.imap.searchkey import SearchKey
from mailactors.protocol.imap.sequence import SequenceSet


@dataclass(frozen=True, slots=True)
class Capability:
    """CAPABILITY: list the server's capabilities."""

    tag: str


@dataclass(frozen=True, slots=True)
class Noop:
    """NOOP: do nothing; a chance to send pending untagged updates."""

    tag: str


@dataclass(frozen=True, slots=True)
class Logout:
    """LOGOUT: send BYE, then the tagged OK, then close."""

    tag: str


@dataclass(frozen=True, slots=True)
class Id:
    """ID (RFC 2971): client identification; `params` None when the client sent NIL."""

    tag: str
    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class StartTls:
    """STARTTLS: the caller must discard input buffered behind it."""

    tag: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """AUTHENTICATE mechanism [initial-response] (SASL-IR, RFC 4959).

    `mechanism` is upper-cased. `initial_response` is the decoded base64 (b"" for
    "="), None when the client sent none.
    """

    tag: str
    mechanism: str
    initial_response: bytes | None


@dataclass(frozen=True, slots=True)
class Login:
    """LOGIN userid password."""

    tag: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Enable:
    """ENABLE capability... (RFC 5161), names upper-cased."""

    tag: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QresyncParams:
    """SELECT (QRESYNC (uidvalidity modseq [known-uids [(seq-match-data)]])) (RFC 7162 3.2.5).

    `seq_match` is (known-sequence-set, known-uid-set).
    """

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT, or EXAMINE when `readonly`; CONDSTORE and QRESYNC parameters (RFC 7162)."""

    tag: str
    mailbox: str
    readonly: bool = False
    condstore: bool = False
    qresync: QresyncParams | None = None


@dataclass(frozen=True, slots=True)
class Create:
    """CREATE mailbox [(USE (special-use...))] (RFC 6154 section 3)."""

    tag: str
    mailbox: str
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete:
    """DELETE mailbox."""

    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    """RENAME existing new."""

    tag: str
    mailbox: str
    new_name: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE mailbox."""

    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """UNSUBSCRIBE mailbox."""

    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class List:
    """LIST [(selection-opts)] reference pattern(s) [RETURN (return-opts)] (RFC 5258).

    Options are upper-cased. `status_items` holds the items of RETURN (STATUS (...))
    (RFC 5819), None when not asked. `extended` is whether any LIST-EXTENDED
    syntax was used (the response then carries extended data).
    """

    tag: str
    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()
    return_options: frozenset[str] = frozenset()
    status_items: tuple[str, ...] | None = None
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Lsub:
    """LSUB reference pattern (RFC 3501)."""

    tag: str
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Namespace:
    """NAMESPACE (RFC 2342)."""

    tag: str


@dataclass(frozen=True, slots=True)
class Status:
    """STATUS mailbox (items...), items upper-cased."""

    tag: str
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND; `binary` when sent as literal8 (RFC 3516)."""

    data: bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime.datetime | None = None
    binary: bool = False


@dataclass(frozen=True, slots=True)
class Append:
    """APPEND mailbox message... (MULTIAPPEND, RFC 3502: one or more messages)."""

    tag: str
    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Idle:
    """IDLE (RFC 2177): send "+ idling", then read lines until "DONE"."""

    tag: str


@dataclass(frozen=True, slots=True)
class Check:
    """CHECK (RFC 3501; a NOOP in RFC 9051)."""

    tag: str


@dataclass(frozen=True, slots=True)
class Close:
    """CLOSE: expunge silently (unless read-only) and unselect."""

    tag: str


@dataclass(frozen=True, slots=True)
class Unselect:
    """UNSELECT (RFC 3691): unselect without expunging."""

    tag: str


@dataclass(frozen=True, slots=True)
class Expunge:
    """EXPUNGE, or UID EXPUNGE uid-set (RFC 4315) when `uids` is set."""

    tag: str
    uids: SequenceSet | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """[UID] SEARCH [RETURN (opts)] [CHARSET c] criteria.

    `charset` is upper-cased and None when absent. `return_options` None means a
    plain SEARCH response; a tuple (possibly empty, meaning ALL; RFC 4731
    section 3.1) asks for ESEARCH. `criteria` is a SearchAnd of the top-level keys.
    """

    tag: str
    uid: bool
    criteria: SearchKey
    charset: str | None = None
    return_options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    """[UID] FETCH set attributes [(CHANGEDSINCE n [VANISHED])] (RFC 7162)."""

    tag: str
    uid: bool
    sequence: SequenceSet
    attributes: tuple[FetchAttr, ...]
    changedsince: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store:
    """[UID] STORE set [(UNCHANGEDSINCE n)] (+|-)FLAGS[.SILENT] flags.

    `mode` is "replace" (FLAGS), "add" (+FLAGS) or "remove" (-FLAGS).
    """

    tag: str
    uid: bool
    sequence: SequenceSet
    mode: str
    silent: bool
    flags: tuple[str, ...]
    unchangedsince: int | None = None


@dataclass(frozen=True, slots=True)
class Copy:
    """[UID] COPY set mailbox."""

    tag: str
    uid: bool
    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Move:
    """[UID] MOVE set mailbox (RFC 6851)."""

    tag: str
    uid: bool
    sequence: SequenceSet
    mailbox: str


Command = (
    Capability
    | Noop
    | Logout
    | Id
    | StartTls
    | Authenticate
    | Login
    | Enable
    | Select
    | Create
    | Delete
    | Rename
    | Subscribe
    | Unsubscribe
    | List
    | Lsub
    | Namespace
    | Status
    | Append
    | Idle
    | Check
    | Close
    | Unselect
    | Expunge
    | Search
    | Fetch
    | Store
    | Copy
    | Move
)
