"""ReporterActor: the timers that send reports and tidy the MTA-STS cache.

Theory of operation. A timer tells ReporterTick every `tick_interval` seconds. Once
an hour has ended (plus a random start delay of a few minutes), the DMARC job
builds one aggregate report per policy domain and hour (actors/reports.py) and
spreads them over the following minutes: each is queued (kind "dmarc-report",
DKIM-signed) when its turn comes, and only then are its evaluations removed
(RFC 7489 7.2). Once a UTC day has ended, the TLS job does the same with the TLS
results of that day (RFC 8460 4.1) and also POSTs reports to https: destinations.
Every hour, cached MTA-STS policies of mode none whose _mta-sts record is gone are
deleted (RFC 8461 8.3 describes mode none as the way to remove a policy), and
policies that expire within a day are fetched again while their domain still
publishes a record (RFC 8461 10.2: refresh before expiry, so that a policy does
not lapse between deliveries); a failed refresh keeps the cached policy.
`SendReports` (the control socket's `dmarc sendreports` / `tlsrpt sendreports`)
runs a job at once for the periods that have ended, without spreading.

The reporter's work is blocking (DNS lookups, HTTPS POSTs); its inbox only holds
its own ticks and commands, so that blocks nobody else.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pykka

from mailactors import metrics
from mailactors.actors.dkimsign import DkimSigner
from mailactors.actors.messages import Ping, Queued, QueueMessage
from mailactors.actors.reportdbs import PutPolicy
from mailactors.actors.reports import OutgoingReport, pending_reports, report_day
from mailactors.actors.services import Services, UpdateServices
from mailactors.conf import Config
from mailactors.net.https import PolicyFetchError, fetch_policy, post_report
from mailactors.net.tlstrust import TrustError, TrustStore, load_trust
from mailactors.protocol.dns import DnsError, Resolver
from mailactors.protocol.mtasts import RecordStatus, StsPolicyError, lookup_record, parse_policy
from mailactors.storage.db import reading
from mailactors.storage.dmarcdb import EvaluationStore
from mailactors.storage.files import create_spool_file
from mailactors.storage.mtastsdb import PolicyCache
from mailactors.storage.tlsrptdb import ResultStore

TICK_INTERVAL = 60.0
HOUR = 3600
DAY = 86400
# Jobs start a little after the period ended, at a random moment, so that not every
# server on the internet sends at the full hour.
MAX_START_DELAY = 600
# Reports of one run are queued this far apart at most (and spread over half an hour).
MAX_SPACING = 300
SPREAD_WINDOW = 1800
ASK_TIMEOUT = 30.0
# RFC 8461 10.2: cached policies are refreshed ahead of their expiry; those that
# run out within this time are fetched again by the hourly MTA-STS step.
STS_REFRESH_WITHIN = timedelta(days=1)
# One policy fetch (connect, TLS, request, response); RFC 8461 3.3 leaves it to us.
STS_FETCH_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class ReporterTick:
    """Told by the reporter's timer (and by tests)."""


@dataclass(frozen=True, slots=True)
class SendReports:
    """Asked by the control socket: run a job now; answered with a summary dict."""

    kind: str  # "dmarc" or "tls"


# --- writes for the report DatabaseActors ---------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoveEvaluations:
    domain: str
    before: int

    def apply(self, store: EvaluationStore) -> int:
        return store.remove(self.domain, self.before)


@dataclass(frozen=True, slots=True)
class RemoveTlsResults:
    domain: str
    day: date

    def apply(self, store: ResultStore) -> int:
        return store.remove(self.domain, self.day)


@dataclass(frozen=True, slots=True)
class DeleteNonePolicy:
    domain: str

    def apply(self, store: PolicyCache) -> Any:
        return store.delete(self.domain, only_mode_none=True)


@dataclass(frozen=True, slots=True)
class SetPolicyError:
    """A refresh failed: note why; the cached policy stays in force."""

    domain: str
    error: str

    def apply(self, store: PolicyCache) -> None:
        store.set_error(self.domain, self.error)


class ReporterActor(pykka.ThreadingActor):
    def __init__(
        self,
        config: Config,
        services: Services,
        resolver: Resolver,
        signer: DkimSigner,
        log: logging.Logger,
        *,
        clock: Callable[[], float] = time.time,
        tick_interval: float | None = TICK_INTERVAL,
        https_post: Callable[[str, bytes], None] | None = None,
        mtasts_port: int = 443,
    ) -> None:
        super().__init__()
        self.config = config
        self.services = services
        self.resolver = resolver
        self.signer = signer
        self.log = log
        self.clock = clock
        self.tick_interval = tick_interval
        self.https_post = https_post or self._post_report
        # Where MTA-STS policy hosts listen (RFC 8461 3.3: HTTPS, 443); tests use others.
        self.mtasts_port = mtasts_port
        self._trust: TrustStore | None = None
        data = config.static.data_dir
        self.paths = {"mtasts": data / "mtasts.db"}
        now = self.clock()
        self.next_dmarc = self._after(now, HOUR)
        self.next_tls = self._after(now, DAY)
        self.next_sts_cleanup = now + HOUR
        self.pending: list[tuple[float, OutgoingReport]] = []
        self._timer_stop = threading.Event()
        self._timer: threading.Thread | None = None

    @staticmethod
    def _after(now: float, period: int) -> float:
        """A random moment shortly after the current period ends."""
        return (int(now) // period + 1) * period + secrets.randbelow(MAX_START_DELAY)

    def on_start(self) -> None:
        if self.tick_interval is not None:
            self._timer = threading.Thread(
                target=self._tick_loop, name="reporter-timer", daemon=True
            )
            self._timer.start()

    def on_stop(self) -> None:
        self._timer_stop.set()
        if self._timer is not None:
            self._timer.join(timeout=5)

    def _tick_loop(self) -> None:
        assert self.tick_interval is not None
        while not self._timer_stop.wait(self.tick_interval):
            try:
                self.actor_ref.tell(ReporterTick())
            except pykka.ActorDeadError:
                return

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ReporterTick):
            self._tick()
            return None
        if isinstance(message, SendReports):
            return self._send_now(message.kind)
        if isinstance(message, UpdateServices):
            self.services = message.services
            return None
        if isinstance(message, Ping):
            return True
        raise TypeError(f"ReporterActor: unexpected message {type(message).__name__}")

    # --- jobs ---------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.clock()
        static = self.config.static
        if now >= self.next_dmarc:
            self.next_dmarc = self._after(now, HOUR)
            if not static.no_outgoing_dmarc_reports:
                self._schedule(self._reports("dmarc", now), now)
        if now >= self.next_tls:
            self.next_tls = self._after(now, DAY)
            if not static.no_outgoing_tls_reports:
                self._schedule(self._reports("tls", now), now)
        if now >= self.next_sts_cleanup:
            self.next_sts_cleanup = now + HOUR
            self._cleanup_sts()
            self._refresh_sts(now)
        due = [p for p in self.pending if p[0] <= now]
        self.pending = [p for p in self.pending if p[0] > now]
        for _, report in due:
            self._send(report)

    def _schedule(self, reports: list[OutgoingReport], now: float) -> None:
        if not reports:
            return
        spacing = min(MAX_SPACING, SPREAD_WINDOW / len(reports))
        for i, report in enumerate(reports):
            self.pending.append((now + i * spacing, report))

    def _send_now(self, kind: str) -> dict[str, Any]:
        reports = self._reports(kind, self.clock())
        # Reports of the same periods waiting for their turn are sent now instead.
        keys = {(r.kind, r.policy_domain, r.begin) for r in reports}
        self.pending = [
            p for p in self.pending if (p[1].kind, p[1].policy_domain, p[1].begin) not in keys
        ]
        sent = [self._send(r) for r in reports]
        return {
            "reports": [
                {
                    "domain": r.policy_domain,
                    "begin": r.begin,
                    "recipients": list(r.recipients) + list(r.https),
                    "queued": ok,
                    "problems": list(r.problems),
                }
                for r, ok in zip(reports, sent, strict=True)
            ]
        }

    def _reports(self, kind: str, now: float) -> list[OutgoingReport]:
        when = datetime.fromtimestamp(now, UTC)
        return pending_reports(
            self.config, kind, self.resolver, self.signer, now=when, log=self.log
        )

    def _send(self, report: OutgoingReport) -> bool:
        """Queue (and POST) one report; then forget what it reported. False if it must wait."""
        delivered = True
        if report.recipients:
            delivered = self._queue(report)
        for url in report.https:
            try:
                self.https_post(url, report.gzip_body)
                self.log.info(
                    "tls report posted", extra={"domain": report.policy_domain, "url": url}
                )
            except Exception as exc:
                self.log.info("tls report post failed", extra={"url": url, "err": str(exc)})
        if not delivered:
            return False
        dbs = self.services.databases
        if report.kind == "dmarc-report":
            dbs["dmarceval"].ask(
                RemoveEvaluations(report.policy_domain, report.end), timeout=ASK_TIMEOUT
            )
        else:
            dbs["tlsrptresult"].ask(
                RemoveTlsResults(report.policy_domain, report_day(report)), timeout=ASK_TIMEOUT
            )
        return True

    def _queue(self, report: OutgoingReport) -> bool:
        queue = self.services.queue
        if queue is None:
            self.log.error("no queue for reports")
            return False
        spool = create_spool_file(self.services.spool_dir, prefix="report-")
        try:
            spool.write(report.message)
            spool.finish()
            result = queue.ask(
                QueueMessage(
                    request_id=0,
                    source=str(spool.path),
                    sender=report.sender,
                    recipients=report.recipients,
                    kind=report.kind,
                    tls_required_no=report.tls_required_no,
                ),
                timeout=ASK_TIMEOUT,
            )
        except (pykka.ActorDeadError, pykka.Timeout, OSError) as exc:
            self.log.error(
                "queueing report failed", extra={"domain": report.policy_domain, "err": str(exc)}
            )
            return False
        finally:
            spool.discard()
        ok = isinstance(result, Queued) and result.message_id is not None
        if ok:
            metrics.report_sent("dmarc" if report.kind == "dmarc-report" else "tls")
            self.log.info(
                "report queued",
                extra={
                    "kind": report.kind,
                    "domain": report.policy_domain,
                    "to": ",".join(report.recipients),
                },
            )
        return ok

    def _trust_store(self) -> TrustStore:
        """The system CAs plus tls.ca_certs, read once (for policy fetches and POSTs)."""
        if self._trust is None:
            self._trust = load_trust(self.config.static.tls_ca_certs)
        return self._trust

    def _post_report(self, url: str, gzip_body: bytes) -> None:
        """POST a report, trusting the system CAs and the configured tls.ca_certs."""
        post_report(url, gzip_body, context=self._trust_store().client_context())

    def _refresh_sts(self, now: float) -> None:
        """Fetch again the cached policies that expire within STS_REFRESH_WITHIN."""
        when = datetime.fromtimestamp(now, UTC)
        with reading(PolicyCache, self.paths["mtasts"], self.log) as cache:
            if cache is None:
                return
            domains = cache.domains_to_refresh(when, STS_REFRESH_WITHIN)
        db = self.services.databases["mtasts"]
        for domain in domains:
            found = lookup_record(self.resolver, domain)
            if found.record is None:
                # No record (or no answer): nothing to refresh to. A policy of mode
                # none is dropped by _cleanup_sts; others run out at max_age
                # (RFC 8461 5.1: a cached policy stays in force until then).
                continue
            try:
                text = fetch_policy(
                    domain,
                    resolver=self.resolver,
                    trust=self._trust_store(),
                    port=self.mtasts_port,
                    timeout=STS_FETCH_TIMEOUT,
                    now=when,
                )
                parse_policy(text)
            except (PolicyFetchError, StsPolicyError, TrustError) as exc:
                db.ask(SetPolicyError(domain, str(exc)), timeout=ASK_TIMEOUT)
                self.log.info(
                    "refreshing MTA-STS policy failed, keeping the cached one",
                    extra={"domain": domain, "err": str(exc)},
                )
                continue
            db.ask(PutPolicy(domain, found.record.id, text, when), timeout=ASK_TIMEOUT)
            self.log.info("refreshed MTA-STS policy", extra={"domain": domain})

    def _cleanup_sts(self) -> None:
        with reading(PolicyCache, self.paths["mtasts"], self.log) as cache:
            if cache is None:
                return
            domains = cache.none_mode_domains()
        for domain in domains:
            try:
                found = lookup_record(self.resolver, domain)
            except DnsError:
                continue
            if found.status == RecordStatus.NONE:
                self.services.databases["mtasts"].ask(DeleteNonePolicy(domain), timeout=ASK_TIMEOUT)
                self.log.info(
                    "dropped cached MTA-STS policy of mode none", extra={"domain": domain}
                )
