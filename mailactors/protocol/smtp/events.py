"""Events the SMTP server state machine hands to its caller.

Informational events need no answer. Decision events (MailFrom, RcptTo, MessageEnd,
AuthCredentialsNeeded) pause the machine until the caller answers through
SmtpServer.respond / auth_credentials / auth_refused; StartTls waits for tls_started.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailactors.protocol.smtp.reply import Reply

Params = tuple[tuple[str, str | None], ...]


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA = _Sentinel("NEED_DATA")
"""No event without more bytes from the peer."""
PAUSED = _Sentinel("PAUSED")
"""A decision event is pending: answer it before more input is processed."""


@dataclass(frozen=True, slots=True)
class Hello:
    """EHLO (extended) or HELO; informational."""

    domain: str
    extended: bool


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM; decision. address "" is the null reverse-path <>. params: keyword uppercased."""

    address: str
    params: Params
    size: int | None
    body: str | None
    smtputf8: bool
    requiretls: bool


@dataclass(frozen=True, slots=True)
class RcptTo:
    """RCPT TO; decision. address "postmaster" (no domain) for RCPT TO:<Postmaster>.

    params is empty today: no RCPT parameter (e.g. DSN's NOTIFY) is offered yet.
    """

    address: str
    params: Params


@dataclass(frozen=True, slots=True)
class Reset:
    """RSET, or a transaction aborted (EHLO/HELO mid-transaction); informational."""


@dataclass(frozen=True, slots=True)
class StartTls:
    """STARTTLS accepted: send data_to_send(), handshake, then call tls_started()."""


@dataclass(frozen=True, slots=True)
class AuthCredentialsNeeded:
    """AUTH needs the user's stored credentials; decision (auth_credentials / auth_refused)."""

    mechanism: str
    username: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    """AUTH succeeded; 235 2.7.0 is queued."""

    username: str


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """AUTH failed; 535 5.7.8 is queued. username may be "" when the exchange broke early."""

    username: str


@dataclass(frozen=True, slots=True)
class DataStart:
    """Message data begins (354 queued for DATA, nothing for the first BDAT chunk)."""


@dataclass(frozen=True, slots=True)
class MessageData:
    """A piece of the message: dot-unstuffed, with line endings as sent."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MessageEnd:
    """The message is complete; decision: store it, then respond() with a Reply."""

    size: int


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """The message was refused by the protocol (reply already queued); discard the spool."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT: 221 is queued; send it and close."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed, or we gave up (421 queued); send what is queued and close."""

    reason: str


Event = (
    Hello
    | MailFrom
    | RcptTo
    | Reset
    | StartTls
    | AuthCredentialsNeeded
    | Authenticated
    | AuthenticationFailed
    | DataStart
    | MessageData
    | MessageEnd
    | MessageRejected
    | Quit
    | ConnectionClosed
    | _Sentinel
)
