"""The data of each admin page, read through read-only stores opened per request.

Each function opens the store it needs with readonly=True and closes it before
returning, so the page never holds a connection and never writes (the
DatabaseActors and the queue stay the only writers). A database that does not
exist yet reads as empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mailactors.actors.dnscheck import check_domain
from mailactors.conf import Config
from mailactors.conf.dnsrecords import DnsRecordsError, records_for
from mailactors.protocol.dns import Resolver
from mailactors.storage.db import DatabaseError
from mailactors.storage.dmarcdb import ReceivedReportStore, ReportNotFoundError
from mailactors.storage.queue import QueueStore
from mailactors.storage.tlsrptdb import ReceivedTlsReportStore, ResultStore

__all__ = [
    "dmarc_report",
    "dmarc_reports",
    "dns_check",
    "dns_records",
    "overview",
    "queue",
    "queue_size",
    "tls_report",
    "tls_reports",
    "tls_results",
]

# Received DMARC reports listed on one page.
DMARC_LIST_LIMIT = 500


class _Store(Protocol):
    def init(self) -> None: ...

    def close(self) -> None: ...


S = TypeVar("S", bound=_Store)


@contextmanager
def _opened(make: Callable[[], S]) -> Iterator[S | None]:
    """A read-only store, or None when its database does not exist (yet)."""
    store = make()
    try:
        store.init()
    except DatabaseError:
        yield None
        return
    try:
        yield store
    finally:
        store.close()


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when_ms(milliseconds: int) -> str:
    """The queue's times are milliseconds since the epoch."""
    return _when(milliseconds // 1000)


def _dt(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def queue_size(data_dir: Path, log: logging.Logger) -> int:
    """Messages in the outgoing queue (0 without a queue database)."""
    with _opened(lambda: QueueStore(data_dir / "queue", log, readonly=True)) as store:
        return 0 if store is None else len(store.messages())


def overview(config: Config, log: logging.Logger) -> dict[str, object]:
    domains = [
        {"name": name, "description": d.description or "", "mta_sts": d.mta_sts is not None}
        for name, d in sorted(config.domains.domains.items())
    ]
    return {
        "domains": domains,
        "accounts": len(config.domains.accounts),
        "queue_size": queue_size(config.static.data_dir, log),
    }


def dns_records(config: Config, domain: str) -> dict[str, object] | None:
    """The records `domain` should publish; None for a domain we do not have."""
    if domain not in config.domains.domains:
        return None
    try:
        records = records_for(config, domain)
    except DnsRecordsError as exc:
        return {"domain": domain, "records": [], "error": str(exc)}
    return {"domain": domain, "records": records, "error": ""}


def dns_check(config: Config, domain: str, resolver: Resolver) -> dict[str, object] | None:
    """Each record `domain` should publish, looked up: ok, missing, wrong or error."""
    if domain not in config.domains.domains:
        return None
    try:
        checks = check_domain(config, domain, resolver)
    except DnsRecordsError as exc:
        return {"domain": domain, "checks": [], "error": str(exc)}
    return {"domain": domain, "checks": checks, "error": ""}


def dmarc_reports(data_dir: Path, log: logging.Logger) -> dict[str, object]:
    path = data_dir / "dmarcrpt.db"
    with _opened(lambda: ReceivedReportStore(path, log, readonly=True)) as store:
        if store is None:
            return {"reports": [], "totals": []}
        reports = [
            {
                "id": r.id,
                "org_name": r.org_name,
                "report_id": r.report_id,
                "domain": r.policy_domain,
                "begin": _when(r.begin),
                "end": _when(r.end),
                "messages": r.messages,
                "from_addr": r.from_addr,
            }
            for r in store.list(limit=DMARC_LIST_LIMIT)
        ]
        return {"reports": reports, "totals": store.totals_per_day()}


def dmarc_report(data_dir: Path, report_id: int, log: logging.Logger) -> dict[str, object] | None:
    path = data_dir / "dmarcrpt.db"
    with _opened(lambda: ReceivedReportStore(path, log, readonly=True)) as store:
        if store is None:
            return None
        try:
            feedback = store.get(report_id)
        except ReportNotFoundError:
            return None
        meta = feedback.metadata
        return {
            "id": report_id,
            "feedback": feedback,
            "begin": _when(meta.begin),
            "end": _when(meta.end),
        }


def tls_reports(data_dir: Path, log: logging.Logger) -> dict[str, object]:
    path = data_dir / "tlsrpt.db"
    with _opened(lambda: ReceivedTlsReportStore(path, log, readonly=True)) as store:
        if store is None:
            return {"reports": [], "totals": []}
        reports = [
            {
                "id": r.id,
                "organization": r.organization,
                "report_id": r.report_id,
                "start": _dt(r.start),
                "end": _dt(r.end),
                "received": _dt(r.received_at),
                "via": r.via,
                "from_addr": r.from_addr,
                "successful": r.successful,
                "failed": r.failed,
                "policy_domains": ", ".join(r.policy_domains),
            }
            for r in store.list_reports()
        ]
        return {"reports": reports, "totals": store.totals_per_day()}


def tls_report(data_dir: Path, report_id: int, log: logging.Logger) -> dict[str, object] | None:
    path = data_dir / "tlsrpt.db"
    with _opened(lambda: ReceivedTlsReportStore(path, log, readonly=True)) as store:
        if store is None:
            return None
        stored = store.get(report_id)
        if stored is None:
            return None
        info = stored.info
        return {
            "id": report_id,
            "info": info,
            "report": stored.report,
            "start": _dt(info.start),
            "end": _dt(info.end),
            "received": _dt(info.received_at),
        }


def tls_results(data_dir: Path, log: logging.Logger) -> dict[str, object]:
    """The TLS results of our deliveries collected for the outgoing reports."""
    path = data_dir / "tlsrptresult.db"
    with _opened(lambda: ResultStore(path, log, readonly=True)) as store:
        return {"entries": [] if store is None else store.pending()}


def queue(data_dir: Path, log: logging.Logger, done: str) -> dict[str, object]:
    with _opened(lambda: QueueStore(data_dir / "queue", log, readonly=True)) as store:
        messages: list[dict[str, Any]] = []
        if store is not None:
            for m in store.messages():
                messages.append(
                    {
                        "id": m.id,
                        "queued": _when_ms(m.queued_at),
                        "sender": m.sender or "<>",
                        "size": m.size,
                        "kind": m.kind,
                        "recipients": [
                            {
                                "id": r.id,
                                "address": r.address,
                                "attempts": r.attempts,
                                "next_attempt": _when_ms(r.next_attempt),
                                "last_error": r.last_error or "",
                                "held": r.held,
                            }
                            for r in store.recipients(m.id)
                        ],
                    }
                )
        return {"messages": messages, "done": done}
