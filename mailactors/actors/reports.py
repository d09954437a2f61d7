"""Outgoing reports: the hourly DMARC aggregate reports and the daily TLS reports.

`dmarc_reports` and `tls_reports` read what is waiting (evaluations, TLS results),
look up where it may go (DMARC rua with RFC 7489 7.1 external destination checks,
TLSRPT rua) and compose the signed messages. They change nothing: the
ReporterActor queues what they return and then removes what was reported, and
`sendreports --dry-run` writes them as .eml files instead.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from mailactors.actors.dkimsign import DkimSigner
from mailactors.conf import Config
from mailactors.protocol import dmarc
from mailactors.protocol.dmarcrpt import (
    Feedback,
    ReportMetadata,
    compose_report_message,
    records_from_evaluations,
    report_fits,
)
from mailactors.protocol.dns import DnsError, DnsTemporaryError, Resolver
from mailactors.protocol.tlsrpt import (
    build_report,
    day_bounds,
    mailto_address,
    make_report_id,
    report_gzip,
)
from mailactors.protocol.tlsrpt import (
    compose_report_message as compose_tls_message,
)
from mailactors.protocol.tlsrpt import (
    lookup as lookup_tlsrpt,
)
from mailactors.storage.db import reading
from mailactors.storage.dmarcdb import EvaluationStore, StoredEvaluation
from mailactors.storage.tlsrptdb import ResultStore

HOUR = 3600


@dataclass(frozen=True, slots=True)
class OutgoingReport:
    """One report ready to queue: a signed message and its envelope."""

    kind: str  # "dmarc-report" or "tls-report"
    policy_domain: str
    begin: int  # seconds since the epoch (DMARC hour start, TLS day start)
    end: int  # exclusive for DMARC; the day's last second for TLS
    sender: str
    recipients: tuple[str, ...]  # mailto: destinations
    message: bytes
    https: tuple[str, ...] = ()  # TLSRPT https: destinations (RFC 8460 3): POSTed
    gzip_body: bytes = b""  # the report itself, for https
    tls_required_no: bool = False
    problems: tuple[str, ...] = ()  # destinations left out, and why


def report_sender(config: Config) -> str:
    """Reports go out from postmaster at our host name."""
    return f"postmaster@{config.static.hostname}"


def signing_domain(config: Config, signer: DkimSigner) -> str | None:
    """Our configured domain the host name belongs to (for DKIM d=, aligned with From)."""
    host = config.static.hostname
    candidates = [d for d in signer.keys if host == d or host.endswith("." + d)]
    return max(candidates, key=len) if candidates else None


def _message_id(config: Config, *parts: object) -> str:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:24]
    return f"{digest}@{config.static.hostname}"


def _sign(config: Config, signer: DkimSigner, message: bytes, now: datetime) -> bytes:
    domain = signing_domain(config, signer)
    if domain is None:
        return message
    return signer.sign(message, int(now.timestamp()), domain=domain) + message


def _rua_destinations(
    resolver: Resolver, policy_domain: str, rua: Sequence[str], size: int
) -> tuple[list[str], list[str]]:
    """Addresses that may get the report (RFC 7489 7.1 and the "!" size limit)."""
    good: list[str] = []
    problems: list[str] = []
    for text in rua:
        try:
            uri = dmarc.parse_record(f"v=DMARC1; p=none; rua={text}").rua[0]
        except (dmarc.DmarcSyntaxError, IndexError):
            problems.append(f"{text}: not a valid report URI")
            continue
        if uri.address is None:
            problems.append(f"{text}: only mailto: URIs are supported (RFC 7489 6.2)")
            continue
        domain = uri.address.rpartition("@")[2]
        try:
            allowed = dmarc.verify_external_destination(resolver, policy_domain, domain)
        except DnsTemporaryError as exc:
            problems.append(f"{text}: external destination check failed temporarily: {exc}")
            continue
        if not allowed:
            problems.append(f"{text}: {domain} did not agree to receive reports (RFC 7489 7.1)")
            continue
        if not report_fits(size, uri.max_size):
            problems.append(f"{text}: report of {size} bytes exceeds the size limit")
            continue
        if uri.address not in good:
            good.append(uri.address)
    return good, problems


def _hours(evaluations: Sequence[StoredEvaluation]) -> list[int]:
    return sorted({e.evaluated_at - e.evaluated_at % HOUR for e in evaluations})


def _compose_dmarc(
    config: Config, signer: DkimSigner, feedback: Feedback, to: Sequence[str], now: datetime
) -> bytes:
    meta = feedback.metadata
    message = compose_report_message(
        feedback,
        from_addr=report_sender(config),
        to_addrs=to,
        submitter=config.static.hostname,
        message_id=_message_id(config, "dmarc", feedback.policy.domain, meta.begin),
        now=now,
    )
    return _sign(config, signer, message, now)


def dmarc_reports(
    config: Config,
    store: EvaluationStore,
    resolver: Resolver,
    signer: DkimSigner,
    *,
    now: datetime,
    include_current: bool = False,
    log: logging.Logger,
) -> list[OutgoingReport]:
    """One aggregate report per policy domain and ended hour (and the current one if asked)."""
    current_hour = int(now.timestamp()) // HOUR * HOUR
    limit = current_hour + HOUR if include_current else current_hour
    out: list[OutgoingReport] = []
    sender = report_sender(config)
    for domain in store.domains_due(limit):
        evaluations = store.evaluations(domain, 0, limit)
        for hour in _hours(evaluations):
            in_hour = [e for e in evaluations if hour <= e.evaluated_at < hour + HOUR]
            latest = in_hour[-1]
            metadata = ReportMetadata(
                org_name=config.static.hostname,
                email=sender,
                extra_contact_info=None,
                report_id=f"{domain}.{hour}",
                begin=hour,
                end=hour + HOUR - 1,
            )
            feedback = Feedback(
                version="1.0",
                metadata=metadata,
                policy=latest.policy,
                records=records_from_evaluations(e.evaluation for e in in_hour),
            )

            probe = _compose_dmarc(config, signer, feedback, [sender], now)
            rua = sorted({r for e in in_hour for r in e.rua})
            recipients, problems = _rua_destinations(resolver, domain, rua, len(probe))
            for problem in problems:
                log.info(
                    "dmarc report destination skipped", extra={"domain": domain, "why": problem}
                )
            out.append(
                OutgoingReport(
                    kind="dmarc-report",
                    policy_domain=domain,
                    begin=hour,
                    end=hour + HOUR,
                    sender=sender,
                    recipients=tuple(recipients),
                    message=_compose_dmarc(config, signer, feedback, recipients or [sender], now),
                    problems=tuple(problems),
                )
            )
    return out


def tls_reports(
    config: Config,
    store: ResultStore,
    resolver: Resolver,
    signer: DkimSigner,
    *,
    now: datetime,
    include_current: bool = False,
    log: logging.Logger,
) -> list[OutgoingReport]:
    """One TLS report per policy domain and ended UTC day with reportable results."""
    today = now.astimezone(UTC).date()
    before = today + timedelta(days=1) if include_current else today
    sender = report_sender(config)
    out: list[OutgoingReport] = []
    for domain, day in store.days_due(before):
        entries = store.results(domain, day)
        if not entries:
            continue  # only unreported results (our own domains, report messages)
        start, end = day_bounds(day)
        report = build_report(
            [e.result for e in entries],
            organization=config.static.hostname,
            contact=sender,
            report_id=make_report_id(day, domain, config.static.hostname),
            day_start=start,
            day_end=end,
        )
        problems: list[str] = []
        try:
            record = lookup_tlsrpt(resolver, domain)
        except DnsError as exc:
            problems.append(f"TLSRPT lookup failed: {exc}")
            record = None
        mailto: list[str] = []
        https: list[str] = []
        if record is None and not problems:
            problems.append(f"no TLSRPT record at _smtp._tls.{domain}")
        for uri in record.rua if record is not None else ():
            address = mailto_address(uri)
            if address is not None:
                mailto.append(address)
            elif uri.lower().startswith("https:"):
                https.append(uri)
        message = compose_tls_message(
            report,
            policy_domain=domain,
            from_addr=sender,
            to_addrs=mailto or [sender],
            submitter=config.static.hostname,
            message_id=_message_id(config, "tlsrpt", domain, day),
            now=now,
        )
        for problem in problems:
            log.info("tls report not sent", extra={"domain": domain, "why": problem})
        out.append(
            OutgoingReport(
                kind="tls-report",
                policy_domain=domain,
                begin=int(start.timestamp()),
                end=int(end.timestamp()),
                sender=sender,
                recipients=tuple(mailto),
                message=_sign(config, signer, message, now),
                https=tuple(https),
                gzip_body=report_gzip(report),
                tls_required_no=True,
                problems=tuple(problems),
            )
        )
    return out


def report_day(report: OutgoingReport) -> date:
    return datetime.fromtimestamp(report.begin, UTC).date()


def dry_run_name(report: OutgoingReport) -> str:
    """File name of a report preview: kind, domain and period."""
    safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in report.policy_domain)
    return f"{report.kind}-{safe}-{report.begin}.eml"


def pending_reports(
    config: Config,
    kind: str,
    resolver: Resolver,
    signer: DkimSigner,
    *,
    now: datetime,
    include_current: bool = False,
    log: logging.Logger,
) -> list[OutgoingReport]:
    """The reports of `kind` ("dmarc" or "tls") due now, read from the data directory
    (read-only); none before the database exists."""
    data = config.static.data_dir
    if kind == "dmarc":
        with reading(EvaluationStore, data / "dmarceval.db", log) as evaluations:
            if evaluations is None:
                return []
            return dmarc_reports(
                config,
                evaluations,
                resolver,
                signer,
                now=now,
                include_current=include_current,
                log=log,
            )
    if kind == "tls":
        with reading(ResultStore, data / "tlsrptresult.db", log) as results:
            if results is None:
                return []
            return tls_reports(
                config,
                results,
                resolver,
                signer,
                now=now,
                include_current=include_current,
                log=log,
            )
    raise ValueError(f"unknown report kind {kind!r}")
