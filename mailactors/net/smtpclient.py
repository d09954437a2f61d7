"""Deliver messages to one SMTP server over one connection, blocking (runs on a worker thread).

`deliver` connects to an (ip, port), drives the sans-IO SmtpClient
(mailactors.protocol.smtp.client), optionally upgrades with STARTTLS through an
ssl.SSLContext, runs each transaction and returns a SessionResult: a reply for every
recipient (from the server, or made up by us when the session failed before the
server answered), what TLS was used, the certificate chain the server presented (DER,
for DANE), and when the session broke, a SessionFailure saying why.

Policy stays with the caller: which TLS context (PKIX, DANE, none), whether TLS is
required (MTA-STS enforce, DANE, REQUIRETLS), and what to do after a failure (try the
next MX, retry later, bounce).
"""

from __future__ import annotations

import enum
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from mailactors.net.https import peer_chain_der
from mailactors.protocol.smtp.client import (
    NEED_DATA,
    Capabilities,
    Closed,
    DataAccepted,
    DataReady,
    DataRejected,
    EhloDone,
    GreetingReceived,
    HelloRejected,
    LocalProtocolError,
    MailRejected,
    RecipientResult,
    RecipientsRejected,
    RemoteProtocolError,
    Reply,
    SmtpClient,
    StartTlsReady,
    StartTlsRejected,
    Timeouts,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "FailureKind",
    "RecipientOutcome",
    "SessionFailure",
    "SessionResult",
    "TlsInfo",
    "Transaction",
    "TransactionOutcome",
    "deliver",
]

# RFC 5321 4.5.3.2 sets no connect timeout; 30 seconds before trying the next address.
DEFAULT_CONNECT_TIMEOUT = 30.0
_READ_SIZE = 64 * 1024
_BODY_CHUNK = 64 * 1024


class FailureKind(enum.Enum):
    CONNECT_REFUSED = "connection refused"
    CONNECT_FAILED = "connection failed"
    TIMEOUT = "timeout"
    STARTTLS_MISSING = "STARTTLS required but not available"
    TLS_HANDSHAKE = "TLS handshake failed"
    PROTOCOL = "protocol violation"
    CLOSED = "connection closed"
    GREETING_REJECTED = "greeting rejected"
    HELLO_REJECTED = "EHLO/HELO rejected"


@dataclass(frozen=True, slots=True)
class SessionFailure:
    """Why the session ended early; `reply` is the server's when it gave one."""

    kind: FailureKind
    detail: str
    reply: Reply | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """One message for some recipients. `message` is bytes or a binary file at its start.

    needs_8bit None: detected by reading the message.
    """

    mail_from: str
    recipients: tuple[str, ...]
    message: bytes | BinaryIO
    needs_8bit: bool | None = None
    needs_smtputf8: bool = False
    requiretls: bool = False


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """The final reply for one recipient; `local` when we made it up (no server reply)."""

    recipient: str
    reply: Reply
    local: bool = False

    @property
    def delivered(self) -> bool:
        return self.reply.code < 300

    @property
    def permanent(self) -> bool:
        return self.reply.code >= 500

    @property
    def code(self) -> int:
        return self.reply.code

    @property
    def enhanced(self) -> str | None:
        return self.reply.enhanced

    @property
    def text(self) -> str:
        return "\n".join(self.reply.lines)


@dataclass(frozen=True, slots=True)
class TransactionOutcome:
    recipients: tuple[RecipientOutcome, ...]

    @property
    def delivered(self) -> tuple[str, ...]:
        return tuple(r.recipient for r in self.recipients if r.delivered)


@dataclass(frozen=True, slots=True)
class TlsInfo:
    version: str  # e.g. "TLSv1.3"
    cipher: str
    peer_chain_der: tuple[bytes, ...]  # leaf first, as the server sent it (unverified)


@dataclass(frozen=True, slots=True)
class SessionResult:
    """One outcome per transaction (same order), whatever happened."""

    transactions: tuple[TransactionOutcome, ...]
    tls: TlsInfo | None
    failure: SessionFailure | None
    greeting: Reply | None
    capabilities: Capabilities | None


# Replies we record when the server gave none (RFC 3463 codes; all temporary: RFC 5321
# 4.2.5 / 6.1: a broken connection is treated as if a 451 had been received).
def _local_reply(kind: FailureKind, detail: str) -> Reply:
    status = {
        FailureKind.CONNECT_REFUSED: "4.4.1",  # X.4.1 No answer from host
        FailureKind.CONNECT_FAILED: "4.4.1",
        FailureKind.TIMEOUT: "4.4.2",  # X.4.2 Bad connection
        FailureKind.CLOSED: "4.4.2",
        FailureKind.STARTTLS_MISSING: "4.7.0",  # X.7.0 Other security status
        FailureKind.TLS_HANDSHAKE: "4.7.5",  # X.7.5 Cryptographic failure
        FailureKind.PROTOCOL: "4.5.0",  # X.5.0 Other protocol status
        FailureKind.GREETING_REJECTED: "4.4.0",
        FailureKind.HELLO_REJECTED: "4.5.0",
    }[kind]
    text = " ".join(f"{kind.value}: {detail}".split())
    return Reply(451, status, text)


class _Message:
    """Size, 8-bit check and chunks of a transaction's message."""

    def __init__(self, message: bytes | BinaryIO) -> None:
        self._message = message
        if isinstance(message, bytes):
            self._start = 0
            self.size = len(message)
        else:
            self._start = message.tell()
            self.size = message.seek(0, 2) - self._start
            message.seek(self._start)

    def chunks(self) -> Iterator[bytes]:
        message = self._message
        if isinstance(message, bytes):
            for i in range(0, len(message), _BODY_CHUNK):
                yield message[i : i + _BODY_CHUNK]
            return
        message.seek(self._start)
        while chunk := message.read(_BODY_CHUNK):
            yield chunk

    def has_8bit(self) -> bool:
        return any(not chunk.isascii() for chunk in self.chunks())


class _Session:
    def __init__(
        self,
        sock: socket.socket,
        *,
        ehlo_name: str,
        tls_context: ssl.SSLContext | None,
        server_hostname: str | None,
        tls_required: bool,
        transactions: Sequence[Transaction],
        timeouts: Timeouts,
    ) -> None:
        self.sock = sock
        self.tls_context = tls_context
        self.server_hostname = server_hostname
        self.tls_required = tls_required
        self.transactions = list(transactions)
        self.timeouts = timeouts
        self.client = SmtpClient(
            ehlo_name, want_starttls=tls_context is not None, timeouts=timeouts
        )
        self.outcomes: list[TransactionOutcome] = []
        self.current: dict[str, Reply] = {}  # replies of the current transaction so far
        self.message: _Message | None = None  # the message of the current transaction
        self.failure: SessionFailure | None = None
        self.tls: TlsInfo | None = None
        self.greeting: Reply | None = None

    # -- helpers -----------------------------------------------------------------------

    def flush(self) -> None:
        data = self.client.data_to_send()
        if data:
            self.sock.settimeout(self.timeouts.other)
            self.sock.sendall(data)

    def fail(self, kind: FailureKind, detail: str, reply: Reply | None = None) -> None:
        if self.failure is None:
            self.failure = SessionFailure(kind, detail, reply)

    def finish_transaction(self, final: Reply | None = None, *, local: bool = False) -> None:
        """Record the current transaction.

        Recipients refused at RCPT keep that reply; `final` (the DATA result, the MAIL
        refusal or the session failure) goes to the accepted ones and to those that got
        no reply at all.
        """
        tx = self.transactions[len(self.outcomes)]
        out = []
        for rcpt in tx.recipients:
            got = self.current.get(rcpt)
            if got is None or (got.code < 300 and final is not None):
                reply = final or _local_reply(FailureKind.PROTOCOL, "no reply for recipient")
                out.append(RecipientOutcome(rcpt, reply, local=local or final is None))
            else:
                out.append(RecipientOutcome(rcpt, got))
        self.outcomes.append(TransactionOutcome(tuple(out)))
        self.current = {}

    def next_transaction(self) -> None:
        """Start the next transaction, or QUIT when none is left."""
        client = self.client
        while len(self.outcomes) < len(self.transactions):
            tx = self.transactions[len(self.outcomes)]
            message = self.message = _Message(tx.message)
            needs_8bit = message.has_8bit() if tx.needs_8bit is None else tx.needs_8bit
            try:
                client.send_mail(
                    tx.mail_from,
                    tx.recipients,
                    message.size,
                    needs_8bit=needs_8bit,
                    needs_smtputf8=tx.needs_smtputf8,
                    requiretls=tx.requiretls,
                )
            except LocalProtocolError as exc:
                # A malformed address from the queue: refuse it, not the session.
                self.finish_transaction(Reply(553, "5.1.3", f"bad address: {exc}"), local=True)
                continue
            return
        client.quit()

    def send_body(self) -> None:
        if self.message is None:
            raise LocalProtocolError("DataReady without a transaction")
        self.sock.settimeout(self.timeouts.data_block)
        for chunk in self.message.chunks():
            self.client.send_body(chunk, end=False)
            self.sock.sendall(self.client.data_to_send())
        self.client.send_body(b"", end=True)
        self.sock.sendall(self.client.data_to_send())

    def start_tls(self) -> bool:
        context = self.tls_context
        if context is None:
            raise LocalProtocolError("StartTlsReady without a TLS context")
        self.sock.settimeout(self.timeouts.other)
        try:
            tls_sock = context.wrap_socket(self.sock, server_hostname=self.server_hostname)
        except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
            self.fail(FailureKind.TLS_HANDSHAKE, str(exc))
            return False
        self.sock = tls_sock
        cipher = tls_sock.cipher()
        self.tls = TlsInfo(
            version=tls_sock.version() or "",
            cipher=cipher[0] if cipher else "",
            peer_chain_der=tuple(peer_chain_der(tls_sock)),
        )
        self.client.tls_started()
        return True

    # -- the event loop ----------------------------------------------------------------

    def run(self) -> None:
        client = self.client
        while True:
            try:
                event = client.next_event()
            except RemoteProtocolError as exc:
                self.fail(FailureKind.PROTOCOL, str(exc), None)
                return
            if event is NEED_DATA:
                self.flush()
                if client.closed:
                    return
                timeout = client.timeout
                if timeout is None:
                    raise LocalProtocolError("client waits for nothing but is not done")
                self.sock.settimeout(timeout)
                client.receive_data(self.sock.recv(_READ_SIZE))
                continue
            if isinstance(event, GreetingReceived):
                self.greeting = event.reply
                if event.reply.code != 220:
                    self.fail(
                        FailureKind.GREETING_REJECTED, "server refused the session", event.reply
                    )
            elif isinstance(event, HelloRejected):
                self.fail(FailureKind.HELLO_REJECTED, "EHLO and HELO refused", event.reply)
            elif isinstance(event, EhloDone):
                if client.ready:
                    if self.tls_required and not client.tls_active:
                        self.fail(FailureKind.STARTTLS_MISSING, "server does not offer STARTTLS")
                        client.quit()
                    else:
                        self.next_transaction()
            elif isinstance(event, StartTlsReady):
                self.flush()
                if not self.start_tls():
                    return
            elif isinstance(event, StartTlsRejected):
                if self.tls_required:
                    self.fail(FailureKind.STARTTLS_MISSING, "STARTTLS refused", event.reply)
                    client.quit()
                else:
                    self.next_transaction()
            elif isinstance(event, RecipientResult):
                self.current[event.recipient] = event.reply
            elif isinstance(event, MailRejected):
                self.current = {}
                self.finish_transaction(event.reply, local=event.local)
                self.next_transaction()
            elif isinstance(event, RecipientsRejected):
                self.finish_transaction()
                self.next_transaction()
            elif isinstance(event, DataReady):
                self.send_body()
            elif isinstance(event, DataAccepted | DataRejected):
                self.finish_transaction(event.reply)
                self.next_transaction()
            elif isinstance(event, Closed):
                if len(self.outcomes) < len(self.transactions) and self.failure is None:
                    self.fail(FailureKind.CLOSED, event.reason, event.reply)
                return
            self.flush()

    def result(self) -> SessionResult:
        failure = self.failure
        if len(self.outcomes) < len(self.transactions):
            if failure is None:
                failure = SessionFailure(FailureKind.CLOSED, "session ended early")
            final = (
                failure.reply if failure.reply is not None and failure.reply.code >= 400 else None
            )
            local = final is None
            reply = final or _local_reply(failure.kind, failure.detail)
            while len(self.outcomes) < len(self.transactions):
                self.finish_transaction(reply, local=local)
        return SessionResult(
            tuple(self.outcomes),
            self.tls,
            failure,
            self.greeting,
            self.client.capabilities,
        )


def deliver(
    address: tuple[str, int],
    *,
    ehlo_name: str,
    transactions: Sequence[Transaction],
    tls_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    tls_required: bool = False,
    timeouts: Timeouts | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    source_ip: str | None = None,
) -> SessionResult:
    """Connect to address (ip, port) and run the transactions over one SMTP session.

    With `tls_context`, STARTTLS is used when offered (server_hostname is sent as SNI
    and checked when the context checks host names); `tls_required` fails the session
    when TLS cannot be established. Without transactions the session only greets,
    says EHLO, does STARTTLS and quits: a probe (`dane dialmx`). Never raises for
    network or server trouble: the result says what happened.
    """
    if tls_required and tls_context is None:
        raise ValueError("tls_required needs a tls_context")
    timeouts = timeouts or Timeouts()
    host, port = address
    try:
        sock = socket.create_connection(
            (host, port),
            timeout=connect_timeout,
            source_address=(source_ip, 0) if source_ip else None,
        )
    except ConnectionRefusedError as exc:
        return _failed(transactions, FailureKind.CONNECT_REFUSED, str(exc))
    except TimeoutError as exc:
        return _failed(transactions, FailureKind.TIMEOUT, f"connecting: {exc}")
    except OSError as exc:
        return _failed(transactions, FailureKind.CONNECT_FAILED, str(exc))
    session = _Session(
        sock,
        ehlo_name=ehlo_name,
        tls_context=tls_context,
        server_hostname=server_hostname,
        tls_required=tls_required,
        transactions=transactions,
        timeouts=timeouts,
    )
    try:
        session.run()
    except TimeoutError as exc:
        session.fail(FailureKind.TIMEOUT, f"waiting for the server: {exc}")
    except ssl.SSLError as exc:
        session.fail(
            FailureKind.TLS_HANDSHAKE if session.tls is None else FailureKind.CLOSED, str(exc)
        )
    except OSError as exc:
        session.fail(FailureKind.CLOSED, str(exc))
    finally:
        _close(session.sock)
    return session.result()


def _failed(transactions: Sequence[Transaction], kind: FailureKind, detail: str) -> SessionResult:
    reply = _local_reply(kind, detail)
    outcomes = tuple(
        TransactionOutcome(tuple(RecipientOutcome(r, reply, local=True) for r in tx.recipients))
        for tx in transactions
    )
    return SessionResult(outcomes, None, SessionFailure(kind, detail), None, None)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already disconnected
    sock.close()
