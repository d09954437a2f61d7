"""Sans-IO SMTP client state machine (RFC 5321) for outgoing delivery.

Theory of operation
-------------------
The caller (a delivery driver) owns the socket. It creates an SmtpClient, feeds received
bytes with receive_data() (b"" at EOF), pulls events with next_event() until NEED_DATA,
and writes data_to_send() to the server. `timeout` says how long to wait for the next
reply (RFC 5321 4.5.3.2); `ready` says a transaction may start.

    GREETING --220--> HELLO --EHLO/HELO ok--> READY --send_mail--> TRANSACTION
                        ^  \\--STARTTLS offered & wanted--> STARTTLS --220--> TLS_PENDING
                        +--------------------- tls_started() ---------------------+
    TRANSACTION --354 for DATA--> BODY --send_body(end=True)--> DATA_END --reply--> READY
    TRANSACTION --MAIL/all RCPT refused--> READY          READY --quit()--> QUIT --> CLOSED

The client greets automatically (EHLO, falling back to HELO when EHLO is refused,
RFC 5321 4.1.4), and with want_starttls issues STARTTLS when offered; after
StartTlsReady the driver performs the TLS handshake and calls tls_started(), and the
client forgets the capabilities and says EHLO again (RFC 3207 section 4.2).

send_mail() queues [RSET] MAIL, RCPT... and DATA: in one write when the server offers
PIPELINING (RFC 2920), else one command per reply. Every reply of a group is read and
checked. Events of a transaction: MailAccepted, RecipientResult per recipient, then
DataReady (354: call send_body), and it ends with exactly one of MailRejected,
RecipientsRejected, DataAccepted or DataRejected; then `ready` is true again. Extension
checks (SIZE, 8BITMIME, SMTPUTF8, REQUIRETLS) that fail end the transaction at once
with a local MailRejected and nothing is sent. A 421 reply, EOF or the reply to QUIT
end the session with Closed.

Errors: the server misbehaving raises RemoteProtocolError (its reply is a 451 4.5.0
to record for the recipients) and the client is closed; misuse of this API raises
LocalProtocolError.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from mailactors.protocol.address import AddressError, parse_address, parse_domain
from mailactors.protocol.smtp.client_reply import (
    MAX_REPLY_LINE,
    MAX_REPLY_LINES,
    NO_CAPABILITIES,
    Capabilities,
    parse_capabilities,
    protocol_violation,
    take_reply,
)
from mailactors.protocol.smtp.events import NEED_DATA, _Sentinel
from mailactors.protocol.smtp.reply import LocalProtocolError, RemoteProtocolError, Reply

__all__ = [
    "NEED_DATA",
    "MAX_REPLY_LINE",
    "MAX_REPLY_LINES",
    "Capabilities",
    "ClientEvent",
    "Closed",
    "DataAccepted",
    "DataReady",
    "DataRejected",
    "EhloDone",
    "GreetingReceived",
    "HelloRejected",
    "LocalProtocolError",
    "MailAccepted",
    "MailRejected",
    "RecipientResult",
    "RecipientsRejected",
    "RemoteProtocolError",
    "Reply",
    "SmtpClient",
    "StartTlsReady",
    "StartTlsRejected",
    "Timeouts",
]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait for each reply; defaults are RFC 5321 4.5.3.2's minimums."""

    greeting: float = 300.0  # 4.5.3.2.1 Initial 220 Message: 5 minutes
    mail: float = 300.0  # 4.5.3.2.2 MAIL Command: 5 minutes
    rcpt: float = 300.0  # 4.5.3.2.3 RCPT Command: 5 minutes
    data_init: float = 120.0  # 4.5.3.2.4 DATA Initiation: 2 minutes
    data_block: float = 180.0  # 4.5.3.2.5 Data Block: 3 minutes (each send of the body)
    data_final: float = 600.0  # 4.5.3.2.6 DATA Termination: 10 minutes
    # EHLO, STARTTLS, RSET and QUIT have no RFC value; 5 minutes like MAIL.
    other: float = 300.0


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GreetingReceived:
    """The server's greeting; anything but 220 means the client sends QUIT (RFC 5321 3.1)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class EhloDone:
    """EHLO (extended) or the HELO fallback succeeded; `tls` after STARTTLS."""

    capabilities: Capabilities
    extended: bool
    tls: bool
    reply: Reply


@dataclass(frozen=True, slots=True)
class HelloRejected:
    """Both EHLO and HELO were refused; the client sends QUIT."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class StartTlsReady:
    """220 to STARTTLS: do the TLS handshake now, then call tls_started()."""


@dataclass(frozen=True, slots=True)
class StartTlsRejected:
    """STARTTLS was refused; the session continues in plaintext unless the driver quits."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class MailAccepted:
    reply: Reply


@dataclass(frozen=True, slots=True)
class MailRejected:
    """MAIL FROM was refused (`local`: refused by our checks, nothing was sent). Ends the transaction."""

    reply: Reply
    local: bool = False


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """The reply to RCPT TO for one recipient."""

    recipient: str
    reply: Reply


@dataclass(frozen=True, slots=True)
class RecipientsRejected:
    """No recipient was accepted, so no message was sent. Ends the transaction."""


@dataclass(frozen=True, slots=True)
class DataReady:
    """354 to DATA: send the message with send_body()."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class DataAccepted:
    """The message was accepted for every accepted recipient. Ends the transaction."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class DataRejected:
    """DATA or the message was refused for every accepted recipient. Ends the transaction."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over: the reply to QUIT, a 421, or None at EOF."""

    reply: Reply | None
    reason: str


ClientEvent = (
    GreetingReceived
    | EhloDone
    | HelloRejected
    | StartTlsReady
    | StartTlsRejected
    | MailAccepted
    | MailRejected
    | RecipientResult
    | RecipientsRejected
    | DataReady
    | DataAccepted
    | DataRejected
    | Closed
    | _Sentinel
)

# --- states ---------------------------------------------------------------------------


class _State(enum.Enum):
    GREETING = "greeting"  # waiting for the 220 greeting
    HELLO = "hello"  # EHLO or HELO sent
    READY = "ready"  # greeted, no transaction
    STARTTLS = "starttls"  # STARTTLS sent
    TLS_PENDING = "tls-pending"  # 220 to STARTTLS received, waiting for tls_started()
    TRANSACTION = "transaction"  # [RSET] MAIL RCPT... DATA sent or queued
    BODY = "body"  # 354 received, the driver sends the message
    DATA_END = "data-end"  # final "." sent, waiting for the reply
    QUIT = "quit"  # QUIT sent
    CLOSED = "closed"


class _Trigger(enum.Enum):
    GREETED = "greeted"
    QUIT = "quit"
    HELLO_DONE = "hello-done"
    STARTTLS = "starttls"
    STARTTLS_OK = "starttls-ok"
    STARTTLS_REFUSED = "starttls-refused"
    TLS_DONE = "tls-done"
    MAIL = "mail"
    DATA_OK = "data-ok"
    BODY_SENT = "body-sent"
    SWALLOW = "swallow"  # 354 without recipients: a lone "." was sent
    TRANSACTION_DONE = "transaction-done"
    CLOSE = "close"


_S = _State
_T = _Trigger
_TRANSITIONS: dict[tuple[_State, _Trigger], _State] = {
    (_S.GREETING, _T.GREETED): _S.HELLO,
    (_S.GREETING, _T.QUIT): _S.QUIT,
    (_S.HELLO, _T.HELLO_DONE): _S.READY,
    (_S.HELLO, _T.STARTTLS): _S.STARTTLS,
    (_S.HELLO, _T.QUIT): _S.QUIT,
    (_S.STARTTLS, _T.STARTTLS_OK): _S.TLS_PENDING,
    (_S.STARTTLS, _T.STARTTLS_REFUSED): _S.READY,
    (_S.TLS_PENDING, _T.TLS_DONE): _S.HELLO,
    (_S.READY, _T.MAIL): _S.TRANSACTION,
    (_S.READY, _T.QUIT): _S.QUIT,
    (_S.TRANSACTION, _T.DATA_OK): _S.BODY,
    (_S.TRANSACTION, _T.SWALLOW): _S.DATA_END,
    (_S.TRANSACTION, _T.TRANSACTION_DONE): _S.READY,
    (_S.BODY, _T.BODY_SENT): _S.DATA_END,
    (_S.DATA_END, _T.TRANSACTION_DONE): _S.READY,
    **{(s, _T.CLOSE): _S.CLOSED for s in _State},
}


class _Expect(enum.Enum):
    """The command whose reply is awaited."""

    GREETING = "greeting"
    EHLO = "EHLO"
    HELO = "HELO"
    STARTTLS = "STARTTLS"
    RSET = "RSET"
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    DATA_END = "end of data"
    QUIT = "QUIT"


@dataclass(frozen=True, slots=True)
class _Command:
    expect: _Expect
    line: bytes  # b"" for the greeting and the end of data (nothing to send)
    recipient: str = ""


class _Transaction:
    """Bookkeeping of the transaction in progress."""

    __slots__ = ("mail_refusal", "accepted", "swallowing")

    def __init__(self) -> None:
        self.mail_refusal: Reply | None = None
        self.accepted = 0
        self.swallowing = False


# Local refusals of a transaction (RFC 3463 codes).
_REFUSE_SIZE = Reply(552, "5.3.4", "message too big for the receiving server")
_REFUSE_8BIT = Reply(554, "5.6.3", "8-bit message but the server does not offer 8BITMIME")
_REFUSE_SMTPUTF8 = Reply(553, "5.6.7", "internationalized address or header but no SMTPUTF8")
# RFC 8689 section 5: 5.7.30 "REQUIRETLS support required".
_REFUSE_REQUIRETLS = Reply(550, "5.7.30", "REQUIRETLS support required")

_EHLO_NAME = re.compile(r"[\x21-\x7e]+", re.ASCII)


def _checked_path(address: str, *, smtputf8: bool, what: str) -> str:
    try:
        parse_address(address, smtputf8=smtputf8)
    except AddressError as exc:
        raise LocalProtocolError(f"invalid {what} {address!r}: {exc}") from None
    return f"<{address}>"


class SmtpClient:
    """One SMTP client connection as a state machine: bytes in, events and bytes out."""

    def __init__(
        self, ehlo_name: str, *, want_starttls: bool, timeouts: Timeouts | None = None
    ) -> None:
        """`ehlo_name` is our host name or address literal (RFC 5321 4.1.1.1)."""
        if not _EHLO_NAME.fullmatch(ehlo_name):
            raise LocalProtocolError(f"invalid EHLO name {ehlo_name!r}")
        try:
            parse_domain(ehlo_name, smtputf8=False)
        except AddressError as exc:
            raise LocalProtocolError(f"invalid EHLO name {ehlo_name!r}: {exc}") from None
        self._ehlo_name = ehlo_name
        self._want_starttls = want_starttls
        self._timeouts = timeouts or Timeouts()
        self._state = _State.GREETING
        self._buf = bytearray()
        self._out = bytearray()
        self._events: deque[ClientEvent] = deque()
        self._expected: deque[_Command] = deque([_Command(_Expect.GREETING, b"")])
        self._unsent: deque[_Command] = deque()
        self._eof = False
        self._tls = False
        self._capabilities: Capabilities | None = None
        self._extended = False
        self._tx: _Transaction | None = None
        self._transactions = 0
        self._body_line_start = True
        self._body_cr = False

    # -- public API --------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Greeted and idle: send_mail() or quit() may be called."""
        return self._state is _State.READY

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def tls_active(self) -> bool:
        """tls_started() was called."""
        return self._tls

    @property
    def capabilities(self) -> Capabilities | None:
        """The capabilities of the latest EHLO (NO_CAPABILITIES after HELO), None before."""
        return self._capabilities

    @property
    def timeout(self) -> float | None:
        """Seconds to wait for the server now (RFC 5321 4.5.3.2); None when nothing is awaited."""
        t = self._timeouts
        if self._state is _State.BODY:
            return t.data_block
        if self._state in (_State.CLOSED, _State.TLS_PENDING) or not self._expected:
            return None
        return {
            _Expect.GREETING: t.greeting,
            _Expect.MAIL: t.mail,
            _Expect.RCPT: t.rcpt,
            _Expect.DATA: t.data_init,
            _Expect.DATA_END: t.data_final,
        }.get(self._expected[0].expect, t.other)

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the server; b"" means the server closed its side (EOF)."""
        if self._eof and data:
            raise LocalProtocolError("receive_data() after EOF")
        if not data:
            self._eof = True
            return
        if self._state in (_State.CLOSED, _State.TLS_PENDING):
            # RFC 3207 section 4.2 (and the STARTTLS response injection attacks): nothing
            # received in plaintext after the 220 to STARTTLS may be used.
            return
        self._buf += data

    def data_to_send(self) -> bytes:
        """Return and clear the bytes queued for the server."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> ClientEvent:
        """The next event or NEED_DATA. Raises RemoteProtocolError when the server misbehaves."""
        if not self._events:
            try:
                self._process()
            except RemoteProtocolError:
                self._go(_Trigger.CLOSE)
                self._buf.clear()
                self._expected.clear()
                self._unsent.clear()
                raise
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def tls_started(self) -> None:
        """The TLS handshake after StartTlsReady completed: say EHLO again (RFC 3207 4.2)."""
        if self._state is not _State.TLS_PENDING:
            raise LocalProtocolError("tls_started() without StartTlsReady")
        self._tls = True
        # RFC 3207 section 4.2: "The client MUST discard any knowledge obtained from the
        # server, such as the list of SMTP service extensions, which was not obtained from
        # the TLS negotiation itself."
        self._capabilities = None
        self._buf.clear()
        self._go(_Trigger.TLS_DONE)
        self._command(_Command(_Expect.EHLO, f"EHLO {self._ehlo_name}\r\n".encode()))

    def send_mail(
        self,
        mail_from: str,
        recipients: Sequence[str],
        message_size: int,
        *,
        needs_8bit: bool,
        needs_smtputf8: bool,
        requiretls: bool = False,
    ) -> None:
        """Start a transaction: MAIL FROM (mail_from "" is the null path <>), RCPT TO, DATA.

        `needs_8bit`: the message has 8-bit content; `needs_smtputf8`: it has UTF-8
        headers (non-ASCII addresses here are detected too).
        """
        if self._state is not _State.READY:
            raise LocalProtocolError(f"send_mail() in state {self._state.value}")
        if not recipients:
            raise LocalProtocolError("send_mail() needs at least one recipient")
        if message_size < 0:
            raise LocalProtocolError("negative message size")
        caps = self._capabilities or NO_CAPABILITIES
        smtputf8 = needs_smtputf8 or not all(a.isascii() for a in (mail_from, *recipients))
        reverse_path = (
            _checked_path(mail_from, smtputf8=smtputf8, what="sender") if mail_from else "<>"
        )
        forward_paths = [_checked_path(r, smtputf8=smtputf8, what="recipient") for r in recipients]
        refusal: Reply | None = None
        if smtputf8 and not caps.smtputf8:
            # RFC 6531 section 3.4: without SMTPUTF8 from the server the client must not
            # send internationalized addresses or headers; we do not downgrade.
            refusal = _REFUSE_SMTPUTF8
        elif needs_8bit and not caps.eightbitmime:
            # RFC 6152 section 3: 8-bit data only with 8BITMIME; no conversion here.
            refusal = _REFUSE_8BIT
        elif caps.size is not None and message_size > caps.size:
            # RFC 1870 section 6.1: do not send a message larger than the declared SIZE.
            refusal = _REFUSE_SIZE
        elif requiretls and not (self._tls and caps.requiretls):
            # RFC 8689 section 4.2.1: REQUIRETLS messages go only over TLS to servers
            # that offer REQUIRETLS.
            refusal = _REFUSE_REQUIRETLS
        if refusal is not None:
            self._emit(MailRejected(refusal, local=True))
            return
        params: list[str] = []
        if "SIZE" in caps.keywords:
            params.append(f"SIZE={message_size}")  # RFC 1870 section 6
        if (needs_8bit or smtputf8) and caps.eightbitmime:
            params.append("BODY=8BITMIME")  # RFC 6152 section 2
        if smtputf8:
            params.append("SMTPUTF8")  # RFC 6531 section 3.4
        if requiretls:
            params.append("REQUIRETLS")  # RFC 8689 section 4.1
        mail_line = " ".join([f"MAIL FROM:{reverse_path}", *params]) + "\r\n"
        self._tx = _Transaction()
        self._go(_Trigger.MAIL)
        commands: list[_Command] = []
        if self._transactions:
            commands.append(_Command(_Expect.RSET, b"RSET\r\n"))
        commands.append(_Command(_Expect.MAIL, mail_line.encode()))
        for recipient, path in zip(recipients, forward_paths, strict=True):
            commands.append(_Command(_Expect.RCPT, f"RCPT TO:{path}\r\n".encode(), recipient))
        commands.append(_Command(_Expect.DATA, b"DATA\r\n"))
        self._unsent.extend(commands)
        self._flush_commands()

    def send_body(self, data: bytes, *, end: bool = True) -> None:
        """Send (part of) the message after DataReady; `end` adds the final "." line.

        Line endings are normalized to CRLF and lines starting with "." are dot-stuffed
        (RFC 5321 4.5.2), across calls.
        """
        if self._state is not _State.BODY:
            raise LocalProtocolError(f"send_body() in state {self._state.value}")
        if self._body_cr:
            data = b"\r" + data
            self._body_cr = False
        if data.endswith(b"\r") and not end:
            # The LF that completes this CR may come in the next call.
            data = data[:-1]
            self._body_cr = True
        if data:
            # RFC 5321 2.3.8: lines end in CRLF; bare CR and LF become CRLF.
            data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
            # RFC 5321 4.5.2: "Before sending a line of mail text, the SMTP client checks
            # the first character of the line. If it is a period, one additional period
            # is inserted at the beginning of the line."
            data = data.replace(b"\r\n.", b"\r\n..")
            if self._body_line_start and data.startswith(b"."):
                data = b"." + data
            self._body_line_start = data.endswith(b"\r\n")
            self._out += data
        if end:
            if not self._body_line_start:
                self._out += b"\r\n"
            self._out += b".\r\n"
            self._body_line_start = True
            self._go(_Trigger.BODY_SENT)
            self._expected.append(_Command(_Expect.DATA_END, b""))

    def quit(self) -> None:
        """Send QUIT (RFC 5321 4.1.1.10); Closed follows its reply."""
        if self._state is not _State.READY:
            raise LocalProtocolError(f"quit() in state {self._state.value}")
        self._quit()

    # -- internals ---------------------------------------------------------------------

    def _go(self, trigger: _Trigger) -> None:
        try:
            self._state = _TRANSITIONS[(self._state, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"no transition from {self._state.value} on {trigger.value}"
            ) from None

    def _emit(self, event: ClientEvent) -> None:
        self._events.append(event)

    def _command(self, command: _Command) -> None:
        self._out += command.line
        self._expected.append(command)

    def _quit(self) -> None:
        self._unsent.clear()
        self._go(_Trigger.QUIT)
        self._command(_Command(_Expect.QUIT, b"QUIT\r\n"))

    def _flush_commands(self) -> None:
        """Write queued transaction commands: all with PIPELINING, else one per reply."""
        caps = self._capabilities or NO_CAPABILITIES
        while self._unsent and (caps.pipelining or not self._expected):
            command = self._unsent[0]
            tx = self._tx
            if command.expect is _Expect.DATA and tx is not None and not caps.pipelining:
                if tx.accepted == 0 or tx.mail_refusal is not None:
                    # Without pipelining, DATA is only sent when a recipient was accepted.
                    self._unsent.clear()
                    self._end_transaction()
                    return
            self._unsent.popleft()
            self._command(command)

    def _close(self, reply: Reply | None, reason: str) -> None:
        self._go(_Trigger.CLOSE)
        self._buf.clear()
        self._expected.clear()
        self._unsent.clear()
        self._tx = None
        self._emit(Closed(reply, reason))

    def _process(self) -> None:
        """Consume replies until an event is produced or input runs out."""
        while not self._events:
            state = self._state
            if state in (_State.CLOSED, _State.TLS_PENDING):
                return
            enhanced = not (self._expected and self._expected[0].expect in _NO_ENHANCED)
            reply = take_reply(self._buf, enhanced=enhanced)
            if reply is None:
                if self._eof:
                    if state is _State.QUIT:
                        self._close(None, "connection closed after QUIT")
                    else:
                        self._close(None, "connection closed by the server")
                return
            self._reply(reply)

    def _reply(self, reply: Reply) -> None:
        if not self._expected or self._state is _State.BODY:
            if reply.code == 421:
                self._close(reply, "server closing the connection")
                return
            raise protocol_violation(f"unexpected reply {reply.code}")
        command = self._expected.popleft()
        if reply.code == 421 and command.expect is not _Expect.QUIT:
            # RFC 5321 3.8: 421 means the server is closing the channel.
            self._close(reply, "server closing the connection")
            return
        handler = _HANDLERS[command.expect]
        handler(self, command, reply)
        if self._state is _State.TRANSACTION:
            self._flush_commands()

    # Reply handlers, one per awaited command.

    def _on_greeting(self, command: _Command, reply: Reply) -> None:
        self._emit(GreetingReceived(reply))
        if reply.code == 220:
            self._go(_Trigger.GREETED)
            self._command(_Command(_Expect.EHLO, f"EHLO {self._ehlo_name}\r\n".encode()))
        elif reply.code < 400:
            raise protocol_violation(f"greeting with code {reply.code}")
        else:
            # RFC 5321 3.1: after a 554 greeting "the client SHOULD send QUIT".
            self._quit()

    def _on_ehlo(self, command: _Command, reply: Reply) -> None:
        if reply.code == 250:
            self._hello_done(parse_capabilities(reply), extended=True, reply=reply)
        elif reply.code >= 400:
            # RFC 5321 4.1.4: when EHLO is refused, the client falls back to HELO.
            self._command(_Command(_Expect.HELO, f"HELO {self._ehlo_name}\r\n".encode()))
        else:
            raise protocol_violation(f"EHLO answered with {reply.code}")

    def _on_helo(self, command: _Command, reply: Reply) -> None:
        if reply.code == 250:
            self._hello_done(NO_CAPABILITIES, extended=False, reply=reply)
        elif reply.code >= 400:
            self._emit(HelloRejected(reply))
            self._quit()
        else:
            raise protocol_violation(f"HELO answered with {reply.code}")

    def _hello_done(self, caps: Capabilities, *, extended: bool, reply: Reply) -> None:
        self._capabilities = caps
        self._extended = extended
        self._emit(EhloDone(caps, extended, self._tls, reply))
        if self._want_starttls and not self._tls and caps.starttls:
            self._go(_Trigger.STARTTLS)
            self._command(_Command(_Expect.STARTTLS, b"STARTTLS\r\n"))
        else:
            self._go(_Trigger.HELLO_DONE)

    def _on_starttls(self, command: _Command, reply: Reply) -> None:
        if reply.code == 220:
            # RFC 3207 section 4.2 / STARTTLS injection: plaintext that came with the 220
            # must not be read as replies after the handshake.
            self._buf.clear()
            self._go(_Trigger.STARTTLS_OK)
            self._emit(StartTlsReady())
        elif reply.code >= 400:
            self._go(_Trigger.STARTTLS_REFUSED)
            self._emit(StartTlsRejected(reply))
        else:
            raise protocol_violation(f"STARTTLS answered with {reply.code}")

    def _on_rset(self, command: _Command, reply: Reply) -> None:
        # RFC 5321 4.1.1.5: "The receiver MUST send a "250 OK" reply to a RSET command".
        if reply.code != 250:
            raise protocol_violation(f"RSET answered with {reply.code}")

    def _transaction(self) -> _Transaction:
        if self._tx is None:
            raise LocalProtocolError("transaction reply without a transaction")
        return self._tx

    def _on_mail(self, command: _Command, reply: Reply) -> None:
        tx = self._transaction()
        if reply.code == 250:
            self._emit(MailAccepted(reply))
        elif reply.code >= 400:
            tx.mail_refusal = reply
            if not (self._capabilities or NO_CAPABILITIES).pipelining:
                self._unsent.clear()
                self._end_transaction()
        else:
            raise protocol_violation(f"MAIL answered with {reply.code}")

    def _on_rcpt(self, command: _Command, reply: Reply) -> None:
        tx = self._transaction()
        if 300 <= reply.code < 400:
            raise protocol_violation(f"RCPT answered with {reply.code}")
        if tx.mail_refusal is not None:
            return  # RFC 2920 3.1: every reply of the group is read; these mean nothing.
        if reply.code < 300:
            tx.accepted += 1
        self._emit(RecipientResult(command.recipient, reply))

    def _on_data(self, command: _Command, reply: Reply) -> None:
        tx = self._transaction()
        if reply.code == 354:
            if tx.mail_refusal is not None or tx.accepted == 0:
                # RFC 2920 3.1: a server may accept DATA although every RCPT failed; end
                # the empty message at once and ignore its reply.
                tx.swallowing = True
                self._out += b".\r\n"
                self._go(_Trigger.SWALLOW)
                self._expected.append(_Command(_Expect.DATA_END, b""))
                return
            self._body_line_start = True
            self._body_cr = False
            self._go(_Trigger.DATA_OK)
            self._emit(DataReady(reply))
        elif reply.code >= 400:
            self._end_transaction(None if tx.accepted == 0 else DataRejected(reply))
        else:
            raise protocol_violation(f"DATA answered with {reply.code}")

    def _on_data_end(self, command: _Command, reply: Reply) -> None:
        tx = self._transaction()
        if 300 <= reply.code < 400:
            raise protocol_violation(f"end of data answered with {reply.code}")
        if tx.swallowing:
            self._end_transaction()
        elif reply.code < 300:
            self._end_transaction(DataAccepted(reply))
        else:
            self._end_transaction(DataRejected(reply))

    def _end_transaction(self, event: ClientEvent | None = None) -> None:
        """Back to READY with the transaction's final event (derived when None)."""
        tx = self._transaction()
        if event is None:
            if tx.mail_refusal is not None:
                event = MailRejected(tx.mail_refusal)
            else:
                event = RecipientsRejected()
        self._tx = None
        self._transactions += 1
        self._go(_Trigger.TRANSACTION_DONE)
        self._emit(event)

    def _on_quit(self, command: _Command, reply: Reply) -> None:
        self._close(reply, "QUIT")


_NO_ENHANCED = frozenset({_Expect.GREETING, _Expect.EHLO, _Expect.HELO})
_HANDLERS = {
    _Expect.GREETING: SmtpClient._on_greeting,
    _Expect.EHLO: SmtpClient._on_ehlo,
    _Expect.HELO: SmtpClient._on_helo,
    _Expect.STARTTLS: SmtpClient._on_starttls,
    _Expect.RSET: SmtpClient._on_rset,
    _Expect.MAIL: SmtpClient._on_mail,
    _Expect.RCPT: SmtpClient._on_rcpt,
    _Expect.DATA: SmtpClient._on_data,
    _Expect.DATA_END: SmtpClient._on_data_end,
    _Expect.QUIT: SmtpClient._on_quit,
}
