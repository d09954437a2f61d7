"""Sans-IO SMTP server state machine (RFC 5321) with ESMTP extensions.

Theory of operation
-------------------
The caller (a session actor) owns the socket. It calls greeting(), feeds received bytes
with receive_data() (b"" at EOF), pulls events with next_event() until NEED_DATA or
PAUSED, and sends data_to_send() to the peer. Replies are queued in command order, so
pipelined commands (RFC 2920) are answered in order.

Decision events (MailFrom, RcptTo, MessageEnd, AuthCredentialsNeeded) stop input
processing: next_event() returns PAUSED until the caller answers with respond(),
auth_credentials() or auth_refused(). The caller should stop reading from the socket
while paused; `buffered_bytes` tells how much unprocessed input is held.

Command states and their transitions are the table _TRANSITIONS below; the commands a
state accepts are _ALLOWED (anything else known gets 503 5.5.1 bad sequence).

    CONNECTED --EHLO/HELO--> GREETED --MAIL ok--> MAIL --RCPT ok--> RCPT --DATA--> DATA
        ^                      |  ^                                   |             |
        |                      |  +----------- message end ------------+-- BDAT ----+
        +-- TLS done -- TLS_PENDING <--STARTTLS--+    GREETED --AUTH--> AUTH --done--> GREETED

Errors: replies to syntax errors, bad sequences, unknown commands, missing AUTH and
failed AUTH count towards max_errors; at the limit 421 4.7.0 is queued and the
session ends with ConnectionClosed. Replies the caller chooses (e.g. 550 for an
unknown recipient, 451 greylisting) and 452/552 limits do not count, so a legitimate
message to many greylisted recipients is not cut off. Enhanced status codes (RFC 2034)
are sent on every reply except the greeting, EHLO/HELO, 334 and 354, also after HELO.

Memory is bounded: command lines are limited (an over-long line is answered with
500 5.5.2 and discarded up to its CRLF), message bytes are streamed as MessageData
events, and an oversized message is only counted and refused after its end.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from mailactors.protocol.address import AddressError, parse_address
from mailactors.protocol.sasl.errors import SaslError, ScramError
from mailactors.protocol.sasl.plain import parse_plain
from mailactors.protocol.sasl.scram import (
    ScramCredentials,
    ScramServer,
    new_nonce,
    verify_password,
)
from mailactors.protocol.smtp.commands import (
    parse_params,
    parse_path_argument,
    split_command,
    syntax_error,
)
from mailactors.protocol.smtp.data import DotDecoder
from mailactors.protocol.smtp.events import (
    NEED_DATA,
    PAUSED,
    AuthCredentialsNeeded,
    Authenticated,
    AuthenticationFailed,
    ConnectionClosed,
    DataStart,
    Event,
    Hello,
    MailFrom,
    MessageData,
    MessageEnd,
    MessageRejected,
    Quit,
    RcptTo,
    Reset,
    StartTls,
)
from mailactors.protocol.smtp.reply import LocalProtocolError, RemoteProtocolError, Reply

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "AuthCredentialsNeeded",
    "Authenticated",
    "AuthenticationFailed",
    "ConnectionClosed",
    "DataStart",
    "Event",
    "Hello",
    "LocalProtocolError",
    "MailFrom",
    "MessageData",
    "MessageEnd",
    "MessageRejected",
    "Quit",
    "RcptTo",
    "RemoteProtocolError",
    "Reply",
    "Reset",
    "ServerSettings",
    "SmtpServer",
    "StartTls",
    "MAX_COMMAND_LINE",
    "MIN_COMMAND_LINE",
    "MAX_AUTH_LINE",
    "MIN_RECIPIENTS",
]

# RFC 5321 4.5.3.1.4: "The maximum total length of a command line including the command
# word and the <CRLF> is 512 octets. SMTP extensions may be used to increase this limit."
MIN_COMMAND_LINE = 512
# Our command line limit: 512 plus room for ESMTP parameters (RFC 5321 4.5.3.1.4 allows
# extensions to raise it; RFC 1869 section 4.1.2 grew it for parameters).
MAX_COMMAND_LINE = 4096
# RFC 4954 section 4: "(At the time of writing of this document, 12288 octets is
# considered to be a sufficient line length limit for handling of deployed
# authentication mechanisms.)" This applies to SASL responses after a 334 challenge;
# the AUTH command line itself stays under the command line limit.
MAX_AUTH_LINE = 12288
# RFC 5321 4.5.3.1.8: "The minimum total number of recipients that MUST be buffered is
# 100 recipients."
MIN_RECIPIENTS = 100
# Bound on the digits of a BDAT chunk size (RFC 3030 chunk-size = 1*DIGIT); 20 digits
# already exceed any 64-bit size.
_MAX_SIZE_DIGITS = 20
MECHANISMS = ("PLAIN", "SCRAM-SHA-256")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Configuration of one SMTP listener (MX or submission)."""

    hostname: str
    submission: bool
    implicit_tls: bool
    starttls_available: bool
    max_message_size: int
    max_recipients: int = 1000
    max_errors: int = 10
    max_line: int = MAX_COMMAND_LINE
    software: str = "mailactors"

    def __post_init__(self) -> None:
        if self.max_recipients < MIN_RECIPIENTS:
            raise ValueError(f"max_recipients must be >= {MIN_RECIPIENTS} (RFC 5321 4.5.3.1.8)")
        if not MIN_COMMAND_LINE <= self.max_line <= MAX_AUTH_LINE:
            raise ValueError(f"max_line must be in {MIN_COMMAND_LINE}..{MAX_AUTH_LINE}")
        if self.max_message_size < 1 or self.max_errors < 1:
            raise ValueError("max_message_size and max_errors must be positive")


class _State(enum.Enum):
    CONNECTED = "connected"  # no EHLO/HELO yet (also right after STARTTLS)
    GREETED = "greeted"  # no transaction
    MAIL = "mail"  # MAIL accepted, no recipient yet
    RCPT = "rcpt"  # at least one recipient accepted
    DATA = "data"  # reading DATA content
    BDAT = "bdat"  # between BDAT chunks
    BDAT_CHUNK = "bdat-chunk"  # reading BDAT chunk bytes
    AUTH = "auth"  # inside an AUTH exchange, reading SASL responses
    TLS_PENDING = "tls-pending"  # STARTTLS accepted, waiting for tls_started()
    CLOSED = "closed"


class _Trigger(enum.Enum):
    HELLO = "hello"
    RESET = "reset"
    MAIL_ACCEPTED = "mail-accepted"
    RCPT_ACCEPTED = "rcpt-accepted"
    DATA = "data"
    BDAT = "bdat"
    CHUNK_DONE = "chunk-done"
    MESSAGE_DONE = "message-done"
    AUTH_START = "auth-start"
    AUTH_DONE = "auth-done"
    STARTTLS = "starttls"
    TLS_DONE = "tls-done"


_S = _State
_T = _Trigger
_TRANSACTION = (_S.MAIL, _S.RCPT, _S.BDAT)
_TRANSITIONS: dict[tuple[_State, _Trigger], _State] = {
    **{(s, _T.HELLO): _S.GREETED for s in (_S.CONNECTED, _S.GREETED, *_TRANSACTION)},
    (_S.CONNECTED, _T.RESET): _S.CONNECTED,
    **{(s, _T.RESET): _S.GREETED for s in (_S.GREETED, *_TRANSACTION)},
    (_S.GREETED, _T.MAIL_ACCEPTED): _S.MAIL,
    (_S.MAIL, _T.RCPT_ACCEPTED): _S.RCPT,
    (_S.RCPT, _T.RCPT_ACCEPTED): _S.RCPT,
    (_S.RCPT, _T.DATA): _S.DATA,
    (_S.RCPT, _T.BDAT): _S.BDAT_CHUNK,
    (_S.BDAT, _T.BDAT): _S.BDAT_CHUNK,
    (_S.BDAT_CHUNK, _T.CHUNK_DONE): _S.BDAT,
    (_S.DATA, _T.MESSAGE_DONE): _S.GREETED,
    (_S.BDAT_CHUNK, _T.MESSAGE_DONE): _S.GREETED,
    (_S.GREETED, _T.AUTH_START): _S.AUTH,
    (_S.AUTH, _T.AUTH_DONE): _S.GREETED,
    (_S.GREETED, _T.STARTTLS): _S.TLS_PENDING,
    (_S.TLS_PENDING, _T.TLS_DONE): _S.CONNECTED,
}

_ANYTIME = frozenset({"EHLO", "HELO", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP"})
_ALLOWED: dict[_State, frozenset[str]] = {
    _S.CONNECTED: _ANYTIME,
    _S.GREETED: _ANYTIME | {"MAIL", "AUTH", "STARTTLS"},
    _S.MAIL: _ANYTIME | {"RCPT"},
    _S.RCPT: _ANYTIME | {"RCPT", "DATA", "BDAT"},
    _S.BDAT: _ANYTIME | {"BDAT"},
}
_KNOWN = frozenset().union(*_ALLOWED.values())


class _Pending(enum.Enum):
    MAIL = "MailFrom"
    RCPT = "RcptTo"
    MESSAGE = "MessageEnd"
    AUTH = "AuthCredentialsNeeded"


class _AuthStep(enum.Enum):
    PLAIN = "plain"  # waiting for the PLAIN response
    SCRAM_FIRST = "scram-first"  # waiting for client-first-message
    SCRAM_FINAL = "scram-final"  # waiting for client-final-message
    SCRAM_DONE = "scram-done"  # server-final sent, waiting for the empty response


class _TooLong:
    """Marker: the command line exceeded the limit."""


_TOO_LONG = _TooLong()

_OK = Reply(250, "2.0.0", "OK")
_REPLY_TOO_LONG = Reply(500, "5.5.2", "line too long")
_REPLY_AUTH_LINE_TOO_LONG = Reply(500, "5.5.6", "authentication exchange line too long")
_REPLY_UNKNOWN = Reply(500, "5.5.1", "command not recognized")
_REPLY_BAD_LINE = Reply(500, "5.5.2", "invalid characters in command line")
_REPLY_AUTH_REQUIRED = Reply(530, "5.7.0", "authentication required")
_REPLY_AUTH_OK = Reply(235, "2.7.0", "authentication successful")
_REPLY_AUTH_FAILED = Reply(535, "5.7.8", "authentication credentials invalid")
_REPLY_AUTH_CANCELLED = Reply(501, "5.0.0", "authentication cancelled")
_REPLY_BAD_BASE64 = Reply(501, "5.5.2", "cannot decode base64 response")
_REPLY_TOO_LARGE = Reply(552, "5.3.4", "message size exceeds fixed maximum message size")
_REPLY_BARE_LINE_ENDING = Reply(
    550, "5.6.0", "bare LF/CR not allowed in message, use CRLF line endings"
)


def _bad_sequence(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(Reply(503, "5.5.1", text))


def _decode_sasl(text: str) -> bytes:
    """Base64 SASL response; "=" is the empty initial response (RFC 4954 section 4)."""
    if text == "=":
        return b""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise RemoteProtocolError(_REPLY_BAD_BASE64) from None


def _parse_bdat(args: str) -> tuple[int, bool]:
    """RFC 3030 section 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF."""
    words = args.split(" ")
    size_text = words[0]
    if (
        not size_text.isascii()
        or not size_text.isdigit()
        or len(size_text) > _MAX_SIZE_DIGITS
        or len(words) > 2
        or (len(words) == 2 and words[1].upper() != "LAST")
    ):
        raise syntax_error("BDAT needs a chunk size and optionally LAST")
    return int(size_text), len(words) == 2


class SmtpServer:
    """One SMTP server connection as a state machine: bytes in, events and bytes out."""

    def __init__(
        self, settings: ServerSettings, *, scram_nonce: Callable[[], str] = new_nonce
    ) -> None:
        """`scram_nonce` draws the server nonce of a SCRAM exchange (tests pass a fixed one)."""
        self._settings = settings
        self._scram_nonce = scram_nonce
        self._state = _State.CONNECTED
        self._buf = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._pending: _Pending | None = None
        self._eof = False
        self._greeted = False
        self._scan_from = 0
        self._discarding_line = False
        self._errors = 0
        self._tls = settings.implicit_tls
        self._extended = False
        # Authentication
        self._authenticated_as: str | None = None
        self._auth_step: _AuthStep | None = None
        self._auth_username = ""
        self._plain_password = ""
        self._scram: ScramServer | None = None
        # Transaction
        self._smtputf8 = False
        self._recipients = 0
        self._pending_mail: MailFrom | None = None
        self._dot: DotDecoder | None = None
        self._chunk_left = 0
        self._chunk_last = False
        self._chunk_skip = 0
        self._message_size = 0

    # -- public API --------------------------------------------------------------------

    @property
    def tls_active(self) -> bool:
        """The connection is TLS (implicit TLS, or after STARTTLS)."""
        return self._tls

    @property
    def authenticated_as(self) -> str | None:
        """The user name after a successful AUTH, else None."""
        return self._authenticated_as

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not processed yet (for back-pressure while PAUSED)."""
        return len(self._buf)

    def greeting(self) -> None:
        """Queue the 220 greeting (RFC 5321 4.3.1)."""
        if self._greeted:
            raise LocalProtocolError("greeting() called twice")
        self._greeted = True
        s = self._settings
        self._send(Reply(220, None, f"{s.hostname} ESMTP {s.software}"))

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; b"" means the peer closed its side (EOF)."""
        if self._eof and data:
            raise LocalProtocolError("receive_data() after EOF")
        if not data:
            self._eof = True
            return
        if self._state in (_State.CLOSED, _State.TLS_PENDING):
            # RFC 3207 section 4: bytes after STARTTLS, before the handshake, are discarded.
            return
        self._buf += data

    def data_to_send(self) -> bytes:
        """Return and clear the bytes queued for the peer."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event:
        """The next event, or NEED_DATA / PAUSED; NEED_DATA forever after Quit/ConnectionClosed."""
        if not self._events:
            if self._pending is not None or self._state is _State.TLS_PENDING:
                return PAUSED
            self._process()
        if self._events:
            return self._events.popleft()
        return PAUSED if self._pending is not None else NEED_DATA

    def respond(self, reply: Reply | None = None) -> None:
        """Answer a pending MailFrom, RcptTo (None = 250) or MessageEnd (a Reply is required)."""
        pending = self._take_pending((_Pending.MAIL, _Pending.RCPT, _Pending.MESSAGE))
        if pending is _Pending.MAIL:
            mail = self._pending_mail
            self._pending_mail = None
            reply = reply or Reply(250, "2.1.0", "sender OK")
            self._send(reply)
            if reply.code < 400 and mail is not None:
                self._smtputf8 = mail.smtputf8
                self._recipients = 0
                self._go(_Trigger.MAIL_ACCEPTED)
        elif pending is _Pending.RCPT:
            reply = reply or Reply(250, "2.1.5", "recipient OK")
            self._send(reply)
            if reply.code < 400:
                self._recipients += 1
                self._go(_Trigger.RCPT_ACCEPTED)
        else:
            if reply is None:
                self._pending = pending
                raise LocalProtocolError("MessageEnd needs an explicit Reply")
            self._send(reply)
        self._check_closing(reply)

    def auth_credentials(
        self, creds: ScramCredentials | None, *, accept_any_password: bool = False
    ) -> None:
        """Answer AuthCredentialsNeeded: the user's stored credentials, None if unknown.

        accept_any_password (PLAIN only; localserve) accepts any password for a known user.
        """
        self._take_pending((_Pending.AUTH,))
        if self._auth_step is _AuthStep.PLAIN:
            password = self._plain_password
            self._plain_password = ""
            ok = creds is not None and (accept_any_password or verify_password(creds, password))
            self._finish_auth(ok)
            return
        scram = self._scram
        if scram is None:
            raise LocalProtocolError("no SCRAM exchange in progress")
        # An unknown user gets made-up credentials, so the exchange looks the same and
        # fails only at the proof: no user enumeration through the AUTH exchange.
        server_first = scram.server_first(creds or self._fake_credentials())
        self._send(Reply(334, None, base64.b64encode(server_first).decode("ascii")))
        self._auth_step = _AuthStep.SCRAM_FINAL

    def auth_refused(self, reply: Reply) -> None:
        """Answer AuthCredentialsNeeded with a refusal (e.g. 454 4.7.0 after too many failures)."""
        self._take_pending((_Pending.AUTH,))
        self._end_auth()
        self._send(reply)
        self._check_closing(reply)

    def tls_started(self) -> None:
        """The TLS handshake after StartTls completed: reset to the pre-EHLO state (RFC 3207 4.2)."""
        if self._state is not _State.TLS_PENDING:
            raise LocalProtocolError("tls_started() without a StartTls event")
        self._tls = True
        self._authenticated_as = None
        self._buf.clear()
        self._scan_from = 0
        self._discarding_line = False
        self._extended = False
        self._go(_Trigger.TLS_DONE)

    # -- internals ---------------------------------------------------------------------

    def _take_pending(self, kinds: tuple[_Pending, ...]) -> _Pending:
        pending = self._pending
        if pending is None:
            raise LocalProtocolError("no decision is pending")
        if pending not in kinds:
            raise LocalProtocolError(f"wrong answer for a pending {pending.value}")
        self._pending = None
        return pending

    def _go(self, trigger: _Trigger) -> None:
        try:
            self._state = _TRANSITIONS[(self._state, trigger)]
        except KeyError:
            raise LocalProtocolError(
                f"no transition from {self._state.value} on {trigger.value}"
            ) from None

    def _send(self, reply: Reply) -> None:
        self._out += reply.to_bytes()

    def _emit(self, event: Event) -> None:
        self._events.append(event)

    def _decide(self, pending: _Pending, event: Event) -> None:
        self._pending = pending
        self._events.append(event)

    def _close(self, reason: str) -> None:
        self._state = _State.CLOSED
        self._buf.clear()
        self._emit(ConnectionClosed(reason))

    def _check_closing(self, reply: Reply) -> None:
        # RFC 5321 3.8: 421 means the service is closing the transmission channel.
        if reply.code == 421 and self._state is not _State.CLOSED:
            self._close("closing after 421 reply")

    def _error(self, reply: Reply) -> None:
        """Queue an error reply caused by the peer; give up after max_errors."""
        self._send(reply)
        self._errors += 1
        if self._errors >= self._settings.max_errors and self._state is not _State.CLOSED:
            self._send(Reply(421, "4.7.0", f"{self._settings.hostname} too many errors"))
            self._close("too many errors")

    def _process(self) -> None:
        """Consume input until an event is produced, a decision is pending or data runs out."""
        while not self._events and self._pending is None:
            state = self._state
            if state in (_State.CLOSED, _State.TLS_PENDING):
                return
            if self._chunk_skip:
                n = min(self._chunk_skip, len(self._buf))
                del self._buf[:n]
                self._chunk_skip -= n
                if self._chunk_skip:
                    if self._eof:
                        self._close("connection closed by peer")
                    return
                continue
            if state is _State.DATA:
                progressed = self._data_step()
            elif state is _State.BDAT_CHUNK:
                progressed = self._chunk_step()
            else:
                progressed = self._line_step()
            if not progressed:
                if self._eof:
                    self._close("connection closed by peer")
                return

    # Command lines

    def _take_line(self) -> bytes | _TooLong | None:
        # Limits include the CRLF (RFC 5321 4.5.3.1.4).
        limit = (MAX_AUTH_LINE if self._state is _State.AUTH else self._settings.max_line) - 2
        buf = self._buf
        if self._discarding_line:
            idx = buf.find(b"\r\n", self._scan_from)
            if idx < 0:
                keep = 1 if buf.endswith(b"\r") else 0
                del buf[: len(buf) - keep]
                self._scan_from = 0
                return None
            del buf[: idx + 2]
            self._scan_from = 0
            self._discarding_line = False
        idx = buf.find(b"\r\n", self._scan_from)
        if idx < 0:
            if len(buf) - buf.endswith(b"\r") > limit:
                # Over-long line: answer now and drop everything up to its CRLF.
                self._discarding_line = True
                keep = 1 if buf.endswith(b"\r") else 0
                del buf[: len(buf) - keep]
                self._scan_from = 0
                return _TOO_LONG
            self._scan_from = max(0, len(buf) - 1)
            return None
        line = bytes(buf[:idx])
        del buf[: idx + 2]
        self._scan_from = 0
        if len(line) > limit:
            return _TOO_LONG
        return line

    def _line_step(self) -> bool:
        raw = self._take_line()
        if raw is None:
            return False
        if isinstance(raw, _TooLong):
            if self._state is _State.AUTH:
                # RFC 4954 section 4: "the server fails the AUTH command with the 500
                # reply. Servers using the enhanced status codes extension ... SHOULD
                # return an enhanced status code of 5.5.6".
                self._end_auth()
                self._error(_REPLY_AUTH_LINE_TOO_LONG)
            else:
                self._error(_REPLY_TOO_LONG)
            return True
        try:
            if self._state is _State.AUTH:
                self._auth_line(raw)
            else:
                self._command_line(raw)
        except RemoteProtocolError as exc:
            self._error(exc.reply)
        return True

    def _command_line(self, raw: bytes) -> None:
        # RFC 5321 2.3.8: lines end in CRLF; a bare CR or LF inside a line is not allowed.
        if b"\r" in raw or b"\n" in raw or b"\x00" in raw:
            raise RemoteProtocolError(_REPLY_BAD_LINE)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError(_REPLY_BAD_LINE) from None
        verb, args = split_command(line)
        if verb not in _KNOWN:
            raise RemoteProtocolError(_REPLY_UNKNOWN)
        if verb not in _ALLOWED[self._state]:
            if verb == "BDAT":
                # RFC 3030 section 2: the chunk follows the command whatever the reply;
                # skip its bytes so they are not read as commands.
                self._chunk_skip = _parse_bdat(args)[0]
            raise _bad_sequence(self._sequence_hint(verb))
        handler = getattr(self, f"_cmd_{verb.lower()}")
        handler(args)

    def _sequence_hint(self, verb: str) -> str:
        state = self._state
        if state is _State.CONNECTED:
            return "send EHLO first"
        if verb == "MAIL":
            return "nested MAIL command"
        if verb in ("RCPT", "DATA", "BDAT") and state is _State.GREETED:
            return "need MAIL command"
        if verb in ("DATA", "BDAT") and state is _State.MAIL:
            return "need RCPT command"
        if verb == "DATA" and state is _State.BDAT:
            return "DATA not allowed during BDAT transaction"
        return f"{verb} not allowed now"

    def _reset_transaction(self) -> bool:
        """Forget the transaction; True if one was active."""
        active = self._state in _TRANSACTION
        self._recipients = 0
        self._smtputf8 = False
        return active

    def _cmd_ehlo(self, args: str) -> None:
        self._hello(args, extended=True)

    def _cmd_helo(self, args: str) -> None:
        self._hello(args, extended=False)

    def _hello(self, args: str, *, extended: bool) -> None:
        domain = args.strip()
        # RFC 5321 4.1.1.1: ehlo = "EHLO" SP ( Domain / address-literal ) CRLF. We accept
        # any visible ASCII word: clients often send host names with "_" and worse, and
        # the name is only informational (RFC 5321 4.1.4).
        if not domain or " " in domain or not domain.isascii() or not domain.isprintable():
            raise syntax_error("EHLO/HELO needs a domain")
        # RFC 5321 4.1.4: EHLO/HELO in a transaction acts like RSET.
        if self._reset_transaction():
            self._emit(Reset())
        self._go(_Trigger.HELLO)
        self._extended = extended
        s = self._settings
        if not extended:
            self._send(Reply(250, None, s.hostname))
        else:
            lines = [
                s.hostname,
                "PIPELINING",  # RFC 2920
                "8BITMIME",  # RFC 6152
                "SMTPUTF8",  # RFC 6531
                f"SIZE {s.max_message_size}",  # RFC 1870
                "ENHANCEDSTATUSCODES",  # RFC 2034
                "CHUNKING",  # RFC 3030
            ]
            if s.starttls_available and not self._tls:
                lines.append("STARTTLS")  # RFC 3207
            if s.submission and self._tls:
                lines.append("AUTH " + " ".join(MECHANISMS))  # RFC 4954
            if self._tls:
                lines.append("REQUIRETLS")  # RFC 8689
            self._send(Reply(250, None, tuple(lines)))
        self._emit(Hello(domain, extended))

    def _cmd_rset(self, args: str) -> None:
        if args.strip():
            raise syntax_error("RSET takes no arguments")
        self._reset_transaction()
        self._go(_Trigger.RESET)
        self._send(_OK)
        self._emit(Reset())

    def _cmd_noop(self, args: str) -> None:
        self._send(_OK)

    def _cmd_quit(self, args: str) -> None:
        if args.strip():
            raise syntax_error("QUIT takes no arguments")
        self._send(Reply(221, "2.0.0", f"{self._settings.hostname} closing connection"))
        self._state = _State.CLOSED
        self._buf.clear()
        self._emit(Quit())

    def _cmd_vrfy(self, args: str) -> None:
        # RFC 5321 3.5.3: 252 when we will not verify; we never reveal whether users exist.
        self._send(Reply(252, "2.5.0", "cannot VRFY user, but will accept message for delivery"))

    def _cmd_expn(self, args: str) -> None:
        raise RemoteProtocolError(Reply(502, "5.5.1", "EXPN not available"))

    def _cmd_help(self, args: str) -> None:
        self._send(
            Reply(214, "2.0.0", "commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP")
        )

    def _cmd_starttls(self, args: str) -> None:
        if args.strip():
            raise syntax_error("STARTTLS takes no arguments")
        if self._tls:
            raise _bad_sequence("TLS already active")
        if not self._settings.starttls_available:
            raise RemoteProtocolError(Reply(502, "5.5.1", "STARTTLS not available"))
        self._send(Reply(220, "2.0.0", "ready to start TLS"))
        # RFC 3207 section 4: anything the client sent after STARTTLS in plaintext is
        # discarded (STARTTLS command injection).
        self._buf.clear()
        self._scan_from = 0
        self._go(_Trigger.STARTTLS)
        self._emit(StartTls())

    def _cmd_mail(self, args: str) -> None:
        s = self._settings
        if s.submission and self._authenticated_as is None:
            # RFC 4954 section 6: 530 5.7.0 Authentication required.
            raise RemoteProtocolError(_REPLY_AUTH_REQUIRED)
        mailbox, param_text = parse_path_argument(args, "FROM:")
        params = parse_params(param_text, smtputf8=True)
        if params and not self._extended:
            raise RemoteProtocolError(Reply(555, "5.5.4", "parameters need EHLO"))
        size: int | None = None
        body: str | None = None
        smtputf8 = False
        requiretls = False
        for keyword, value in params:
            if keyword == "SIZE":
                # RFC 1870 section 6: size-value = 1*20DIGIT
                if value is None or not value.isascii() or not value.isdigit() or len(value) > 20:
                    raise syntax_error("invalid SIZE value")
                size = int(value)
                if size > s.max_message_size:
                    raise RemoteProtocolError(_REPLY_TOO_LARGE)
            elif keyword == "BODY":
                # RFC 6152 section 2: BODY=7BIT / BODY=8BITMIME (no BINARYMIME offered).
                if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                    raise syntax_error("invalid BODY value")
                body = value.upper()
            elif keyword == "SMTPUTF8":
                if value is not None:
                    raise syntax_error("SMTPUTF8 takes no value")
                smtputf8 = True
            elif keyword == "REQUIRETLS" and self._tls:
                # RFC 8689 section 4.1: only offered (and so only accepted) over TLS.
                if value is not None:
                    raise syntax_error("REQUIRETLS takes no value")
                requiretls = True
            elif keyword == "AUTH":
                # RFC 4954 section 5: AUTH=<mailbox> on MAIL; informational, ignored.
                pass
            else:
                raise RemoteProtocolError(Reply(555, "5.5.4", f"unsupported parameter {keyword}"))
        if param_text and not smtputf8 and not param_text.isascii():
            raise syntax_error("non-ASCII parameter requires SMTPUTF8")
        address = self._address(mailbox, smtputf8=smtputf8, code="5.1.7") if mailbox else ""
        mail = MailFrom(address, params, size, body, smtputf8, requiretls)
        self._pending_mail = mail
        self._decide(_Pending.MAIL, mail)

    def _address(self, mailbox: str, *, smtputf8: bool, code: str) -> str:
        try:
            return str(parse_address(mailbox, smtputf8=smtputf8))
        except AddressError as exc:
            raise RemoteProtocolError(Reply(501, code, f"bad address: {exc}")) from None

    def _cmd_rcpt(self, args: str) -> None:
        mailbox, param_text = parse_path_argument(args, "TO:")
        params = parse_params(param_text, smtputf8=self._smtputf8)
        if params:
            # No DSN (RFC 3461) offered: NOTIFY/ORCPT are unknown here.
            raise RemoteProtocolError(Reply(555, "5.5.4", f"unsupported parameter {params[0][0]}"))
        if not mailbox:
            raise RemoteProtocolError(Reply(501, "5.1.3", "null forward-path not allowed"))
        if self._recipients >= self._settings.max_recipients:
            # RFC 5321 4.5.3.1.10: 452 too many recipients; not the peer's fault, not counted.
            self._send(Reply(452, "4.5.3", "too many recipients"))
            return
        if mailbox.lower() == "postmaster":
            # RFC 5321 4.5.1: "<Postmaster>" without a domain MUST be accepted.
            address = "postmaster"
        else:
            address = self._address(mailbox, smtputf8=self._smtputf8, code="5.1.3")
        self._decide(_Pending.RCPT, RcptTo(address, params))

    def _cmd_data(self, args: str) -> None:
        if args.strip():
            raise syntax_error("DATA takes no arguments")
        self._go(_Trigger.DATA)
        self._dot = DotDecoder()
        self._send(Reply(354, None, "start mail input; end with <CRLF>.<CRLF>"))
        self._emit(DataStart())

    def _cmd_bdat(self, args: str) -> None:
        size, last = _parse_bdat(args)
        first = self._state is _State.RCPT
        self._go(_Trigger.BDAT)
        if first:
            self._message_size = 0
            self._emit(DataStart())
        self._chunk_left = size
        self._chunk_last = last

    # Message content

    def _data_step(self) -> bool:
        dot = self._dot
        if dot is None:
            raise LocalProtocolError("DATA state without decoder")
        chunk = dot.step(self._buf)
        if chunk is None:
            return False
        too_large = dot.size > self._settings.max_message_size
        if chunk and not too_large and not dot.bare_line_ending:
            self._emit(MessageData(chunk))
        if dot.finished:
            self._dot = None
            if too_large:
                self._reject_message(_REPLY_TOO_LARGE)
            elif dot.bare_line_ending:
                self._reject_message(_REPLY_BARE_LINE_ENDING)
            else:
                self._end_message(dot.size)
        return True

    def _chunk_step(self) -> bool:
        if self._chunk_left:
            if not self._buf:
                return False
            n = min(self._chunk_left, len(self._buf))
            chunk = bytes(self._buf[:n])
            del self._buf[:n]
            self._chunk_left -= n
            self._message_size += n
            if self._message_size <= self._settings.max_message_size:
                self._emit(MessageData(chunk))
            return True
        if not self._chunk_last:
            self._go(_Trigger.CHUNK_DONE)
            self._send(Reply(250, "2.0.0", f"{self._message_size} octets received"))
        elif self._message_size > self._settings.max_message_size:
            self._reject_message(_REPLY_TOO_LARGE)
        else:
            self._end_message(self._message_size)
        return True

    def _end_message(self, size: int) -> None:
        self._reset_transaction()
        self._go(_Trigger.MESSAGE_DONE)
        self._decide(_Pending.MESSAGE, MessageEnd(size))

    def _reject_message(self, reply: Reply) -> None:
        self._reset_transaction()
        self._go(_Trigger.MESSAGE_DONE)
        self._send(reply)
        self._emit(MessageRejected(reply))

    # Authentication (RFC 4954)

    def _cmd_auth(self, args: str) -> None:
        s = self._settings
        if not s.submission:
            raise RemoteProtocolError(Reply(502, "5.5.1", "AUTH not available on this port"))
        if not self._tls:
            # RFC 4954 section 6 / RFC 5248: 538 5.7.11 Encryption required.
            raise RemoteProtocolError(
                Reply(538, "5.7.11", "encryption required for requested authentication mechanism")
            )
        if self._authenticated_as is not None:
            # RFC 4954 section 4: "After a successful AUTH command completes, a server
            # MUST reject any further AUTH commands with a 503 reply."
            raise _bad_sequence("already authenticated")
        if not self._extended:
            raise _bad_sequence("send EHLO first")
        mechanism, _, initial = args.partition(" ")
        mechanism = mechanism.upper()
        if mechanism not in MECHANISMS:
            raise RemoteProtocolError(Reply(504, "5.5.4", "unrecognized authentication type"))
        initial = initial.strip()
        response = _decode_sasl(initial) if initial else None
        self._go(_Trigger.AUTH_START)
        if mechanism == "PLAIN":
            self._auth_step = _AuthStep.PLAIN
        else:
            self._auth_step = _AuthStep.SCRAM_FIRST
            self._scram = ScramServer(self._scram_nonce())
        if response is None:
            # RFC 4954 section 4: no initial response: an empty challenge "334 ".
            self._send(Reply(334, None, ""))
            return
        self._auth_response(response)

    def _auth_line(self, raw: bytes) -> None:
        text = raw.decode("ascii", "replace")
        if text == "*":
            # RFC 4954 section 4: "*" cancels the exchange; the server replies 501.
            self._end_auth()
            raise RemoteProtocolError(_REPLY_AUTH_CANCELLED)
        try:
            response = _decode_sasl(text) if text else b""
        except RemoteProtocolError:
            self._end_auth()
            raise
        self._auth_response(response)

    def _auth_response(self, response: bytes) -> None:
        step = self._auth_step
        try:
            if step is _AuthStep.PLAIN:
                authzid, authcid, password = parse_plain(response)
                self._auth_username = authcid
                if authzid and authzid != authcid:
                    # No proxy authorization: acting as another user is refused.
                    self._finish_auth(False)
                    return
                self._plain_password = password
                self._decide(_Pending.AUTH, AuthCredentialsNeeded("PLAIN", authcid))
            elif step is _AuthStep.SCRAM_FIRST:
                if self._scram is None:
                    raise LocalProtocolError("no SCRAM exchange in progress")
                username = self._scram.client_first(response)
                self._auth_username = username
                self._decide(_Pending.AUTH, AuthCredentialsNeeded("SCRAM-SHA-256", username))
            elif step is _AuthStep.SCRAM_FINAL:
                if self._scram is None:
                    raise LocalProtocolError("no SCRAM exchange in progress")
                try:
                    server_final = self._scram.client_final(response)
                except ScramError:
                    self._finish_auth(False)
                    return
                # RFC 4954 section 4: additional data with success goes in a 334
                # challenge, answered by an empty response.
                self._send(Reply(334, None, base64.b64encode(server_final).decode("ascii")))
                self._auth_step = _AuthStep.SCRAM_DONE
            elif step is _AuthStep.SCRAM_DONE:
                if response:
                    self._end_auth()
                    raise syntax_error("expected an empty response")
                self._finish_auth(True)
            else:
                raise LocalProtocolError("AUTH response without an exchange")
        except SaslError as exc:
            # Our SASL error messages never contain the payload.
            self._end_auth()
            raise RemoteProtocolError(
                Reply(501, "5.5.2", f"malformed SASL response: {exc}")
            ) from None

    def _finish_auth(self, success: bool) -> None:
        username = self._auth_username
        self._end_auth()
        if success:
            self._authenticated_as = username
            self._send(_REPLY_AUTH_OK)
            self._emit(Authenticated(username))
        else:
            self._emit(AuthenticationFailed(username))
            self._error(_REPLY_AUTH_FAILED)

    def _end_auth(self) -> None:
        self._auth_step = None
        self._scram = None
        self._plain_password = ""
        self._auth_username = ""
        if self._state is _State.AUTH:
            self._go(_Trigger.AUTH_DONE)

    def _fake_credentials(self) -> ScramCredentials:
        """Stand-in credentials for an unknown user; no password can match them."""
        seed = f"{self._settings.hostname}\x00{self._auth_username}".encode()
        salt = hashlib.sha256(b"salt\x00" + seed).digest()[:16]
        unknowable = hashlib.sha256(b"key\x00" + seed + self._scram_nonce().encode()).digest()
        return ScramCredentials(salt, 4096, unknowable, unknowable)
