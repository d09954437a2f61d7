"""SessionActor for SMTP and submission: glue between a Connection and SmtpServer.

Theory of operation: the actor's inbox hands it SocketData; the actor feeds plaintext to
the sans-IO SmtpServer and handles its events until it needs data or waits for a
decision. Decisions that need another actor (credentials, deliveries) are asked down
the hierarchy (session -> store, with a timeout) or told with a reply message
(DeliverMessages -> DeliveryResult), so the actor's inbox keeps flowing. A message is
answered 250 only after every store reported it committed.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykka

from mailactors import metrics
from mailactors.actors.connection import TlsError
from mailactors.actors.inbound import (
    AddDmarcReport,
    AddEvaluation,
    AddTlsReport,
    InboundChecked,
    InboundJob,
)
from mailactors.actors.localserve_errors import localserve_reply
from mailactors.actors.messages import (
    AuthFailed,
    AuthSucceeded,
    DeliverMessages,
    Delivery,
    DeliveryResult,
    Queued,
    QueueMessage,
    Shutdown,
    SocketData,
    SocketError,
    SocketTimeout,
)
from mailactors.actors.services import Services, UpdateServices
from mailactors.actors.sessionbase import ConnectionSession, CredentialsUnavailable
from mailactors.protocol.address import AddressError, parse_address
from mailactors.protocol.message import summarize
from mailactors.protocol.sasl.scram import ScramCredentials
from mailactors.protocol.smtp import server as smtp
from mailactors.protocol.smtp.received import received_header
from mailactors.protocol.smtp.reply import Reply
from mailactors.storage.files import SpoolFile, create_spool_file, open_file, write_spool_file

# RFC 5321 4.5.3.2.7: a server SHOULD wait at least 5 minutes for the next command.
SMTP_IDLE_TIMEOUT = 300.0
# Messages up to this size are summarized by the session; larger ones by the store.
SUMMARY_IN_SESSION_MAX = 1 << 20
# How much of a message is searched for header fields the session itself looks at.
HEADER_SCAN = 64 * 1024
# tx.waiting's name for the queue.
QUEUE = "\x00queue"


@dataclass(frozen=True, slots=True)
class SmtpListenerSettings:
    """What kind of SMTP service a listener offers."""

    kind: str  # "smtp", "submission" or "submissions"
    hostname: str
    tls: str | None  # name of the TLS key/cert, None without TLS
    max_message_size: int
    max_recipients: int


@dataclass(slots=True)
class Recipient:
    address: str
    account: str
    mailbox: str
    data_reply: Reply | None = None  # localserve: the error to give at the end of DATA


@dataclass(slots=True)
class Transaction:
    serial: int = 0
    mail_from: str = ""
    smtputf8: bool = False
    requiretls: bool = False
    body_8bit: bool = False
    recipients: list[Recipient] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)  # recipients for the queue
    checking: bool = False  # waiting for the InboundChecker's verdict
    quarantine: bool = False
    spool: SpoolFile | None = None
    spool_failed: bool = False
    # A copy of a small message as written, so the session (not the store's single
    # thread) makes the summary IMAP serves ENVELOPE/BODYSTRUCTURE from.
    copy: bytearray | None = None
    waiting: dict[int, str] = field(default_factory=dict)  # request id -> account or QUEUE
    results: list[DeliveryResult | Queued] = field(default_factory=list)


class SmtpSessionActor(ConnectionSession):
    """One SMTP connection (port 25 style, submission, or submissions)."""

    def __init__(
        self,
        sock: socket.socket,
        peer_ip: str,
        cid: str,
        settings: SmtpListenerSettings,
        services: Services,
        listener_urn: str,
        log: logging.Logger,
    ) -> None:
        super().__init__(sock, peer_ip, cid, services, listener_urn, log)
        self.settings = settings
        self.smtp: smtp.SmtpServer | None = None
        self.helo = ""
        self.account: str | None = None  # after AUTH
        self.tx = Transaction()
        self.request_ids = iter(range(1, 1 << 62))
        self.serials = iter(range(1, 1 << 62))
        # Input handled while a decision was pending: read on only after it.
        self.input_held = False

    # --- lifecycle ------------------------------------------------------------------

    def on_start(self) -> None:
        s = self.settings
        tls_ctx = self.services.tls_contexts.get(s.tls) if s.tls else None
        self.smtp = smtp.SmtpServer(
            smtp.ServerSettings(
                hostname=s.hostname,
                submission=s.kind in ("submission", "submissions"),
                implicit_tls=s.kind == "submissions",
                starttls_available=tls_ctx is not None and s.kind != "submissions",
                max_message_size=s.max_message_size,
                max_recipients=s.max_recipients,
            )
        )
        self.handlers = self._handlers()
        implicit = s.kind == "submissions"
        if implicit and tls_ctx is None:
            raise RuntimeError("submissions listener without a TLS certificate")
        conn = self._open_connection(s.kind, SMTP_IDLE_TIMEOUT, tls_ctx if implicit else None)
        if not implicit:
            self.smtp.greeting()
            self._flush()
        conn.start_reading()

    def on_stop(self) -> None:
        self._end_transaction()
        self._end_connection()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        goodbye = Reply(421, "4.3.0", "internal server error, closing").to_bytes()
        self._crashed(goodbye, (exception_type, exception_value, traceback))
        self.on_stop()

    # --- inbox --------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if self.closing:
            return None
        assert self.conn is not None and self.smtp is not None
        if isinstance(message, SocketData):
            self._on_socket_data(message.data)
        elif isinstance(message, (DeliveryResult, Queued)):
            self._on_delivery_result(message)
        elif isinstance(message, InboundChecked):
            self._on_inbound_checked(message)
        elif isinstance(message, SocketTimeout):
            self.log.info("idle timeout")
            self._send_and_close(Reply(421, "4.4.2", f"{self.settings.hostname} timeout, closing"))
        elif isinstance(message, SocketError):
            self.log.info("connection error", extra={"err": message.error})
            self._close()
        elif isinstance(message, Shutdown):
            self._send_and_close(Reply(421, "4.3.2", f"{self.settings.hostname} shutting down"))
        elif isinstance(message, UpdateServices):
            self.services = message.services
        else:
            raise TypeError(f"SmtpSessionActor: unexpected message {type(message).__name__}")
        return None

    def _send_and_close(self, reply: Reply) -> None:
        assert self.conn is not None
        try:
            self.conn.send(reply.to_bytes())
        except (OSError, TlsError) as exc:
            self.log.debug("sending final reply failed", extra={"err": str(exc)})
        self._close()

    def _on_socket_data(self, data: bytes) -> None:
        assert self.conn is not None and self.smtp is not None
        received = self._receive(data)
        if received is None:
            return
        plain, eof, handshake_done = received
        if handshake_done:
            self.log.debug("tls established", extra={"tls": self.conn.tls_description()})
            if self.settings.kind == "submissions":
                self.smtp.greeting()
            else:
                self.smtp.tls_started()
        if plain:
            self.smtp.receive_data(plain)
        if eof:
            self.smtp.receive_data(b"")
        self._pump()
        if not eof and not self.closing:
            if self.tx.waiting or self.tx.checking:
                self.input_held = True
            else:
                self.conn.want_more()

    def _pump(self) -> None:
        """Handle protocol events until it needs data or a pending decision."""
        assert self.smtp is not None
        while not self.closing:
            event = self.smtp.next_event()
            if event is smtp.NEED_DATA or event is smtp.PAUSED:
                break
            handler = self.handlers.get(type(event))
            if handler is None:
                raise TypeError(f"unhandled SMTP event {type(event).__name__}")
            handler(event)
        self._flush()

    def _handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            smtp.Hello: self._on_hello,
            smtp.MailFrom: self._on_mail_from,
            smtp.RcptTo: self._on_rcpt_to,
            smtp.Reset: self._on_reset,
            smtp.StartTls: self._on_starttls,
            smtp.AuthCredentialsNeeded: self._on_auth_credentials,
            smtp.Authenticated: self._on_authenticated,
            smtp.AuthenticationFailed: self._on_auth_failed,
            smtp.DataStart: self._on_data_start,
            smtp.MessageData: self._on_message_data,
            smtp.MessageEnd: self._on_message_end,
            smtp.MessageRejected: self._on_message_rejected,
            smtp.Quit: self._on_quit,
            smtp.ConnectionClosed: self._on_connection_closed,
        }

    def _flush(self) -> None:
        assert self.smtp is not None and self.conn is not None
        out = self.smtp.data_to_send()
        if out:
            try:
                self.conn.send(out)
            except (OSError, TlsError) as exc:
                self.log.info("write failed", extra={"err": str(exc)})
                self._close()

    # --- events ---------------------------------------------------------------------

    def _on_hello(self, event: smtp.Hello) -> None:
        self.helo = event.domain

    def _on_reset(self, event: smtp.Reset) -> None:
        self._end_transaction()

    def _on_mail_from(self, event: smtp.MailFrom) -> None:
        assert self.smtp is not None
        self._end_transaction()
        sender = event.address
        if self.localserve and sender:
            localpart = sender.rsplit("@", 1)[0]
            reply = localserve_reply(localpart, "mailfrom")
            if reply is not None:
                self.smtp.respond(reply)
                return
        if self._is_submission() and not self.localserve:
            if not self._may_send_as(sender):
                self.log.info("sender not allowed", extra={"account": self.account})
                self.smtp.respond(Reply(550, "5.7.1", "not allowed to send as this address"))
                return
        self.tx.mail_from = sender
        self.tx.smtputf8 = event.smtputf8
        self.tx.requiretls = event.requiretls
        self.tx.body_8bit = (event.body or "").upper() in ("8BITMIME", "BINARYMIME")
        self.smtp.respond(None)

    def _may_send_as(self, sender: str) -> bool:
        if self.account is None or not sender:
            return False
        found = self.services.config.domains.account_for_address(sender)
        return found is not None and found[0].name == self.account

    def _is_submission(self) -> bool:
        return self.settings.kind in ("submission", "submissions")

    def _on_rcpt_to(self, event: smtp.RcptTo) -> None:
        assert self.smtp is not None
        address = event.address
        try:
            parsed = parse_address(address, smtputf8=True)
        except AddressError:
            self.smtp.respond(Reply(501, "5.1.3", "bad recipient address syntax"))
            return
        data_reply: Reply | None = None
        if self.localserve:
            reply = localserve_reply(parsed.localpart, "rcptto")
            if reply is not None:
                self.smtp.respond(reply)
                return
            data_reply = localserve_reply(parsed.localpart, None)
        domains = self.services.config.domains
        found = domains.account_for_address(str(parsed))
        if found is None:
            found = self.services.config.host_tlsrpt_destination(str(parsed))
        if found is not None:
            account, destination = found
            recipient = Recipient(str(parsed), account.name, destination.mailbox, data_reply)
        elif self._is_submission() and parsed.domain not in domains.domains:
            # Submitted mail for other domains goes to the queue (localserve's queue
            # delivers it to its own SMTP listener unless deliver_to_mx is set).
            if self.services.queue is None:
                self.smtp.respond(Reply(451, "4.3.0", "outgoing queue unavailable"))
                return
            self.tx.remote.append(str(parsed))
            self.smtp.respond(None)
            return
        elif self.localserve:
            # localserve delivers mail for any other recipient to its one account.
            name = next(iter(domains.accounts))
            recipient = Recipient(str(parsed), name, "Inbox", data_reply)
        elif parsed.domain in domains.domains:
            self.smtp.respond(Reply(550, "5.1.1", "no such user"))
            return
        else:
            # Never an open relay (RFC 5321 3.6.1, RFC 2505): only our own domains.
            self.smtp.respond(Reply(550, "5.7.1", "relaying denied: not a local domain"))
            return
        if self.services.store_for(recipient.account) is None:
            self.smtp.respond(Reply(451, "4.3.0", "mailbox temporarily unavailable"))
            return
        self.tx.recipients.append(recipient)
        self.smtp.respond(None)

    def _on_starttls(self, event: smtp.StartTls) -> None:
        assert self.conn is not None and self.smtp is not None and self.settings.tls
        self._flush()  # the 220 goes out in plaintext
        self.conn.start_tls(self.services.tls_contexts[self.settings.tls])

    def _on_auth_credentials(self, event: smtp.AuthCredentialsNeeded) -> None:
        assert self.smtp is not None
        if not self._auth_allowed():
            self.log.info("auth refused: too many failures", extra={"remote": self.peer_ip})
            self.smtp.auth_refused(
                Reply(454, "4.7.0", "too many authentication failures, try again later")
            )
            return
        account = self._account_for_login(event.username)
        creds: ScramCredentials | None = None
        if account is not None:
            try:
                creds = self._stored_credentials(account)
            except CredentialsUnavailable:
                creds = None
            except (pykka.ActorDeadError, pykka.Timeout):
                self.smtp.auth_refused(Reply(454, "4.7.0", "temporary authentication failure"))
                return
        self.smtp.auth_credentials(
            creds, accept_any_password=self.localserve and account is not None
        )

    def _on_authenticated(self, event: smtp.Authenticated) -> None:
        self.account = self._account_for_login(event.username)
        self.log.info("authenticated", extra={"account": self.account})
        self.services.limiter.tell(AuthSucceeded(self.peer_ip))

    def _on_auth_failed(self, event: smtp.AuthenticationFailed) -> None:
        self.log.info("authentication failed", extra={"remote": self.peer_ip})
        self.services.limiter.tell(AuthFailed(self.peer_ip))

    def _on_data_start(self, event: smtp.DataStart) -> None:
        # Messages up to SUMMARY_IN_SESSION_MAX stay in memory and are written once, at
        # the end, with the fields we prepend; larger ones spill into a spool file.
        self.tx.spool_failed = False
        self.tx.copy = bytearray(self._received_header())

    def _received_header(self) -> bytes:
        assert self.conn is not None
        tls = self.conn.tls_description()
        proto = "ESMTP"
        if tls:
            proto += "S"
        if self.account is not None:
            proto += "A"
        recipient = self.tx.recipients[0].address if len(self.tx.recipients) == 1 else None
        return received_header(
            helo=self.helo or "unknown",
            remote_ip=self.peer_ip,
            by_host=self.settings.hostname,
            protocol=proto,
            queue_id=f"{random.getrandbits(64):016x}",  # unique, not secret
            recipient=recipient,
            tls=tls,
            when=datetime.now(UTC),
        )

    def _spool_failed(self, exc: OSError) -> None:
        self.log.error("writing message failed", extra={"err": str(exc)})
        self.tx.spool_failed = True
        self.tx.copy = None
        if self.tx.spool is not None:
            self.tx.spool.discard()
            self.tx.spool = None

    def _refuse_unstored(self, exc: OSError | None = None) -> None:
        """Answer a message that is not on disk (after `exc`, when given). RFC 5321
        4.5.3.1.10 / RFC 3463: out of space is transient: 452 4.3.1."""
        assert self.smtp is not None
        if exc is not None:
            self._spool_failed(exc)
        self.smtp.respond(Reply(452, "4.3.1", "insufficient system storage"))

    def _on_message_data(self, event: smtp.MessageData) -> None:
        tx = self.tx
        if tx.spool_failed:
            return
        copy = tx.copy
        if copy is not None and len(copy) + len(event.data) <= SUMMARY_IN_SESSION_MAX:
            copy += event.data
            return
        try:
            if tx.spool is None:
                tx.spool = create_spool_file(self.services.spool_dir, prefix="smtp-")
                tx.spool.write(bytes(copy or b""))
                tx.copy = None
            tx.spool.write(event.data)
        except OSError as exc:
            self._spool_failed(exc)

    def _on_message_rejected(self, event: smtp.MessageRejected) -> None:
        self.log.info("message rejected", extra={"code": event.reply.code})
        self._discard_spool()

    def _on_message_end(self, event: smtp.MessageEnd) -> None:
        assert self.smtp is not None
        tx = self.tx
        if tx.spool_failed or (tx.spool is None and tx.copy is None):
            self._refuse_unstored()
            return
        for rcpt in tx.recipients:
            if rcpt.data_reply is not None:
                self._discard_spool()
                self.smtp.respond(rcpt.data_reply)
                return
        if tx.spool is not None:
            try:
                tx.spool.finish()
            except OSError as exc:
                self._refuse_unstored(exc)
                return
        self.log.debug("message received", extra={"size": event.size})
        if self._check_inbound():
            return
        prefix = b""
        if self._is_submission() and self.services.dkim is not None:
            message = self._message_bytes()
            prefix = self.services.dkim.sign(message, int(datetime.now(UTC).timestamp()))
        if self._prepend(prefix):
            self._dispatch()

    def _check_inbound(self) -> bool:
        """Start SPF/DKIM/DMARC checks of mail from other servers; True when started."""
        tx = self.tx
        checker = self.services.inbound
        if checker is None or self._is_submission() or self.account is not None:
            return False
        tx.serial = next(self.serials)
        domains = self.services.config.domains
        dmarc_report = tls_report = False
        for rcpt in tx.recipients:
            localpart, _, domain = rcpt.address.rpartition("@")
            config = domains.domains.get(domain.lower())
            if config is None:
                continue
            dmarc_report |= config.dmarc is not None and config.dmarc.localpart == localpart
            tls_report |= config.tlsrpt is not None and config.tlsrpt.localpart == localpart
        host = self.services.config.static.host_tlsrpt
        if host is not None:
            tls_report |= any(
                r.address == f"{host.localpart}@{self.settings.hostname}" for r in tx.recipients
            )
        job = InboundJob(
            serial=tx.serial,
            spool_path=str(tx.spool.path) if tx.spool is not None else "",
            data=bytes(tx.copy) if tx.copy is not None else None,
            ip=self.peer_ip,
            helo=self.helo or "unknown",
            mail_from=tx.mail_from,
            rcpt_to=tuple(r.address for r in tx.recipients),
            dmarc_report=dmarc_report,
            tls_report=tls_report,
        )
        verdict = checker.try_inline(job)
        if verdict is not None:
            self._apply_verdict(verdict)
            return True
        tx.checking = True
        checker.submit(job, self.actor_urn)
        return True

    def _on_inbound_checked(self, result: InboundChecked) -> None:
        tx = self.tx
        if not tx.checking or result.serial != tx.serial:
            self.log.debug("late inbound verdict", extra={"serial": result.serial})
            return
        tx.checking = False
        self._apply_verdict(result)
        self._resume()

    def _apply_verdict(self, result: InboundChecked) -> None:
        """Store what the checks found, then refuse, or deliver with their header."""
        tx = self.tx
        assert self.smtp is not None
        databases = self.services.databases
        if result.evaluation is not None and "dmarceval" in databases:
            databases["dmarceval"].tell(AddEvaluation(result.evaluation))
        if result.dmarc_report is not None and "dmarcrpt" in databases:
            databases["dmarcrpt"].tell(
                AddDmarcReport(
                    result.dmarc_report,
                    tx.mail_from,
                    "",
                    int(datetime.now(UTC).timestamp()),
                )
            )
        if result.tls_report is not None and "tlsrpt" in databases:
            databases["tlsrpt"].tell(
                AddTlsReport(result.tls_report, tx.mail_from, int(datetime.now(UTC).timestamp()))
            )
        if result.disposition == "reject":
            # RFC 7489 6.7: a rejection should use 550 5.7.1.
            self.log.info("message rejected by DMARC policy", extra={"reason": result.reason})
            self._discard_spool()
            self.smtp.respond(Reply(550, "5.7.1", f"rejected by {result.reason}"))
            return
        tx.quarantine = result.disposition == "quarantine"
        if self._prepend(result.header):
            self._dispatch()

    def _message_bytes(self) -> bytes:
        """The received message (Received field included) as bytes."""
        tx = self.tx
        if tx.copy is not None:
            return bytes(tx.copy)
        assert tx.spool is not None
        with open_file(tx.spool.path, "rb") as f:
            return f.read()

    def _prepend(self, header: bytes) -> bool:
        """Write the message, starting with `header`, to its final spool file (fsynced);
        False (and a 452) when that fails."""
        tx = self.tx
        assert self.smtp is not None
        old = tx.spool
        if old is not None and not header:
            return True  # a large message already spooled and fsynced, unchanged
        if tx.copy is not None:
            try:
                tx.spool = write_spool_file(
                    self.services.spool_dir, "smtp-", (header, tx.copy) if header else (tx.copy,)
                )
            except OSError as exc:
                self._refuse_unstored(exc)
                return False
            tx.copy[:0] = header
            return True
        try:
            new = create_spool_file(self.services.spool_dir, prefix="smtp-")
        except OSError as exc:
            self._refuse_unstored(exc)
            return False
        assert old is not None
        try:
            new.write(header)
            with open_file(old.path, "rb") as f:
                while chunk := f.read(1 << 20):
                    new.write(chunk)
            new.finish()
        except OSError as exc:
            new.discard()
            self._refuse_unstored(exc)
            return False
        old.discard()
        tx.spool = new
        return True

    def _dispatch(self) -> None:
        """Hand the message to the stores of local recipients and to the queue."""
        assert self.smtp is not None
        tx = self.tx
        assert tx.spool is not None
        now = datetime.now(UTC)
        head = bytes(tx.copy[:HEADER_SCAN]) if tx.copy is not None else None
        summary = summarize(bytes(tx.copy)) if tx.copy is not None else None
        tx.copy = None
        by_account: dict[str, list[Delivery]] = {}
        for rcpt in tx.recipients:
            # RFC 7489 6.6.4 / 6.7: quarantined mail goes to the Junk folder.
            mailbox = "Junk" if tx.quarantine else rcpt.mailbox
            by_account.setdefault(rcpt.account, []).append(
                Delivery(
                    mailbox=mailbox,
                    source=str(tx.spool.path),
                    received=now,
                    summary=summary,
                    size=tx.spool.size,
                )
            )
        expected = len(by_account) + (1 if tx.remote else 0)
        for account, deliveries in by_account.items():
            store = self.services.store_for(account)
            request_id = next(self.request_ids)
            if store is None:
                continue
            tx.waiting[request_id] = account
            try:
                store.tell(DeliverMessages(request_id, tuple(deliveries), self.actor_urn))
            except pykka.ActorDeadError:
                del tx.waiting[request_id]
        if tx.remote and self.services.queue is not None:
            request_id = next(self.request_ids)
            tx.waiting[request_id] = QUEUE
            request = QueueMessage(
                request_id=request_id,
                source=str(tx.spool.path),
                sender=tx.mail_from,
                recipients=tuple(tx.remote),
                reply_to=self.actor_urn,
                account=self.account,
                smtputf8=tx.smtputf8,
                has_8bit=tx.body_8bit,
                requiretls=tx.requiretls,
                tls_required_no=_tls_required_no(head or _read_head(tx.spool.path)),
            )
            try:
                self.services.queue.tell(request)
            except pykka.ActorDeadError:
                del tx.waiting[request_id]
        if len(tx.waiting) != expected:
            self._abort_delivery(Reply(451, "4.3.0", "mailbox temporarily unavailable"))

    def _abort_delivery(self, reply: Reply) -> None:
        assert self.smtp is not None
        self.tx.waiting.clear()
        self.tx.results.clear()
        self._discard_spool()
        self.smtp.respond(reply)

    def _on_delivery_result(self, result: DeliveryResult | Queued) -> None:
        tx = self.tx
        if result.request_id not in tx.waiting:
            self.log.debug("late delivery result", extra={"request": result.request_id})
            return
        del tx.waiting[result.request_id]
        tx.results.append(result)
        if tx.waiting:
            return
        results, tx.results = tx.results, []
        failed = [r for r in results if _failed(r)]
        assert self.smtp is not None and self.conn is not None
        if failed:
            # Some stores may have committed; the client retries the whole message,
            # which may duplicate it for those recipients (RFC 5321 6.1 prefers
            # duplicates to loss).
            if any(r.storage_full for r in failed):
                reply = Reply(452, "4.3.1", "insufficient system storage")
            else:
                reply = Reply(451, "4.3.0", "local error in processing")
        else:
            reply = Reply(250, "2.0.0", "message accepted")
            metrics.message_received(self.settings.kind)
        # The reply goes out first; logging and removing the spool are not the
        # client's wait.
        spool, self.tx.spool = self.tx.spool, None
        self.smtp.respond(reply)
        self._resume()
        if failed:
            self.log.error("delivery failed", extra={"errors": str([_errors(r) for r in failed])})
        else:
            uids = ",".join(
                f"{r.account}/{d.mailbox}/{d.uid}"
                for r in results
                if isinstance(r, DeliveryResult)
                for d in r.delivered
                if d
            )
            queued = [r.message_id for r in results if isinstance(r, Queued)]
            self.log.info("message delivered", extra={"to": uids, "queued": queued})
        if spool is not None:
            spool.discard()  # close first, then remove (Windows semantics)

    def _resume(self) -> None:
        """After a decision: handle pipelined input, then read again."""
        assert self.conn is not None
        self._pump()
        if self.input_held and not self.closing:
            self.input_held = False
            self.conn.want_more()

    def _on_quit(self, event: smtp.Quit) -> None:
        self._flush()
        self._close()

    def _on_connection_closed(self, event: smtp.ConnectionClosed) -> None:
        self.log.debug("connection closing", extra={"reason": event.reason})
        self._flush()
        self._close()

    # --- helpers --------------------------------------------------------------------

    def _discard_spool(self) -> None:
        if self.tx.spool is not None:
            self.tx.spool.discard()  # close first, then remove (Windows semantics)
            self.tx.spool = None

    def _end_transaction(self) -> None:
        self._discard_spool()
        self.tx = Transaction()


def _failed(result: DeliveryResult | Queued) -> bool:
    if isinstance(result, Queued):
        return result.message_id is None
    return any(e is not None for e in result.errors)


def _errors(result: DeliveryResult | Queued) -> object:
    return result.error if isinstance(result, Queued) else result.errors


def _read_head(path: Path) -> bytes:
    with open_file(path, "rb") as f:
        return f.read(HEADER_SCAN)


def _tls_required_no(head: bytes) -> bool:
    """Whether the message header has "TLS-Required: No" (RFC 8689 section 5)."""
    header = head.split(b"\r\n\r\n", 1)[0]
    for line in header.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"tls-required" and value.strip().lower() == b"no":
            return True
    return False
