"""InboundChecker: SPF, DKIM and DMARC of incoming messages, off the sessions' threads.

A check is a chain of DNS lookups, so it runs on a small thread pool; the result is
told back to the session as InboundChecked. Reports sent to our DMARC and TLS
reporting addresses are parsed here too, and stored by the session through the
report DatabaseActors (each database keeps its one writer).
"""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailactors.actors.tell import tell_urn
from mailactors.net.resolver import DnsCacheMiss
from mailactors.protocol.dmarcrpt import DmarcReportError, Feedback, find_report, parse_report
from mailactors.protocol.dns import Resolver
from mailactors.protocol.msgauth import authenticate_inbound
from mailactors.protocol.tlsrpt import Report, TlsReportError
from mailactors.protocol.tlsrpt import find_report as find_tls_report
from mailactors.protocol.tlsrpt import parse_report as parse_tls_report
from mailactors.storage.dmarcdb import EvaluationStore, ReceivedReportStore, StoredEvaluation
from mailactors.storage.files import open_file
from mailactors.storage.tlsrptdb import ReceivedTlsReportStore, Via

# Messages larger than this are not read into memory for DKIM (their signatures
# are reported as not checked); the SMTP size limit is usually below it.
MAX_CHECKED_SIZE = 64 * 1024 * 1024
WORKERS = 16


@dataclass(frozen=True, slots=True)
class InboundJob:
    serial: int  # the session's transaction number
    spool_path: str
    data: bytes | None  # the message when the session kept a copy, else read from the path
    ip: str
    helo: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    dmarc_report: bool  # sent to one of our DMARC reporting addresses
    tls_report: bool


@dataclass(frozen=True, slots=True)
class InboundChecked:
    """The verdict, told to the session."""

    serial: int
    header: bytes
    disposition: str  # "none", "quarantine" or "reject"
    reason: str
    evaluation: StoredEvaluation | None
    dmarc_report: Feedback | None
    tls_report: Report | None


# --- writes for the report DatabaseActors --------------------------------------------


@dataclass(frozen=True, slots=True)
class AddEvaluation:
    evaluation: StoredEvaluation

    def apply(self, store: EvaluationStore) -> int:
        return store.add(self.evaluation)


@dataclass(frozen=True, slots=True)
class AddDmarcReport:
    feedback: Feedback
    from_addr: str
    message_id: str
    received_at: int

    def apply(self, store: ReceivedReportStore) -> int | None:
        return store.add(
            self.feedback,
            from_addr=self.from_addr,
            message_id=self.message_id,
            received_at=self.received_at,
        )


@dataclass(frozen=True, slots=True)
class AddTlsReport:
    """A received TLS report for tlsrpt.db: by mail, or POSTed over HTTPS."""

    report: Report
    from_addr: str
    received_at: int
    via: Via = "mail"

    def apply(self, store: ReceivedTlsReportStore) -> int | None:
        when = datetime.fromtimestamp(self.received_at, UTC)
        return store.add(self.report, from_addr=self.from_addr, received_at=when, via=self.via)


class InboundChecker:
    def __init__(self, resolver: Resolver, authserv_id: str, log: logging.Logger) -> None:
        self.resolver = resolver
        self.authserv_id = authserv_id
        self.log = log
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="inbound")

    def submit(self, job: InboundJob, reply_to: str) -> None:
        self.pool.submit(self._run, job, reply_to)

    def try_inline(self, job: InboundJob) -> InboundChecked | None:
        """The verdict at once when every DNS answer it needs is cached (no thread hop,
        nothing blocks); None when a lookup would go to the network: submit() then."""
        cached_only = getattr(self.resolver, "cached_only", None)
        if cached_only is None or job.data is None:
            return None
        try:
            return self.check(job, cached_only())
        except DnsCacheMiss:
            return None

    def stop(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: InboundJob, reply_to: str) -> None:
        try:
            result = self.check(job)
        except Exception as exc:
            # A bug in a check must not lose the message: deliver it, say so in the header.
            self.log.exception("inbound check failed")
            header = (
                f"Authentication-Results: {self.authserv_id}; none"
                f" (internal error: {type(exc).__name__})\r\n"
            ).encode()
            result = InboundChecked(job.serial, header, "none", "", None, None, None)
        tell_urn(reply_to, result, self.log)

    def check(self, job: InboundJob, resolver: Resolver | None = None) -> InboundChecked:
        data = job.data
        if data is None:
            with open_file(Path(job.spool_path), "rb") as f:
                data = f.read(MAX_CHECKED_SIZE)
        now = datetime.now(UTC)
        auth = authenticate_inbound(
            resolver or self.resolver,
            message=data,
            ip=job.ip,
            helo=job.helo,
            mail_from=job.mail_from,
            rcpt_to=job.rcpt_to[0] if job.rcpt_to else None,
            authserv_id=self.authserv_id,
            now=now,
            pct_draw=random.randrange(100),  # RFC 7489 6.6.4 sampling, not a secret
        )
        evaluation = None
        # RFC 7489 7.2 reports on messages from domains asking for them; messages to our
        # reporting addresses are left out, so reports never cause reports (no loops).
        if (
            auth.report_policy is not None
            and auth.report_evaluation is not None
            and not job.dmarc_report
            and not job.tls_report
        ):
            evaluation = StoredEvaluation(
                evaluated_at=int(now.timestamp()),
                policy=auth.report_policy,
                evaluation=auth.report_evaluation,
                rua=auth.rua,
            )
        feedback = None
        if job.dmarc_report:
            attachment = find_report(data)
            if attachment is not None:
                try:
                    feedback = parse_report(attachment)
                except DmarcReportError as exc:
                    self.log.info("unusable DMARC report", extra={"err": str(exc)})
        tls_report = None
        if job.tls_report:
            attachment = find_tls_report(data)
            if attachment is not None:
                try:
                    tls_report = parse_tls_report(attachment)
                except TlsReportError as exc:
                    self.log.info("unusable TLS report", extra={"err": str(exc)})
        reason = ""
        if auth.dmarc is not None and auth.disposition != "none":
            reason = f"DMARC policy of {auth.dmarc.from_domain}"
        return InboundChecked(
            job.serial, auth.header, auth.disposition, reason, evaluation, feedback, tls_report
        )
