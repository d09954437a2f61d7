"""Prometheus metrics of a server (prometheus-client), scraped at /metrics.

Each `Metrics` has its own CollectorRegistry. The module-level functions update
the process's current one (`current()`), so session, queue and reporter code
counts with one call, e.g. `metrics.message_received("smtp")`; the counters are
thread-safe. The queue gauge is read from the queue at scrape time.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = [
    "CONTENT_TYPE",
    "Metrics",
    "current",
    "delivery_failed",
    "message_delivered",
    "message_received",
    "report_sent",
    "session_ended",
    "session_started",
    "tls_result",
]

# The *_created series only repeat the start time; leave them out.
disable_created_metrics()  # type: ignore[no-untyped-call]

# The Prometheus text exposition format, version 0.0.4.
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The counters and gauges of one server, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_received = Counter(
            "mailactors_messages_received",
            "Messages accepted from clients, by service (smtp, submission, submissions).",
            ["service"],
            registry=r,
        )
        self.messages_delivered = Counter(
            "mailactors_messages_delivered",
            "Recipients delivered by the outgoing queue.",
            registry=r,
        )
        self.deliveries_failed = Counter(
            "mailactors_deliveries_failed",
            "Recipients whose delivery failed permanently (a DSN was sent).",
            registry=r,
        )
        self.sessions = Gauge(
            "mailactors_sessions", "Open connections, by service.", ["service"], registry=r
        )
        self.queue_messages = Gauge(
            "mailactors_queue_messages", "Messages in the outgoing queue.", registry=r
        )
        self.reports_sent = Counter(
            "mailactors_reports_sent",
            "Reports queued for sending, by kind (dmarc, tls).",
            ["kind"],
            registry=r,
        )
        self.tls_results = Counter(
            "mailactors_tls_results",
            "TLS outcomes of outgoing deliveries (RFC 8460 result types, or success).",
            ["result"],
            registry=r,
        )

    def exposition(self, queue_messages: int | None = None) -> bytes:
        """The Prometheus text format of every metric; sets the queue gauge first."""
        if queue_messages is not None:
            self.queue_messages.set(queue_messages)
        return generate_latest(self.registry)


_current = Metrics()


def current() -> Metrics:
    """The metrics of the server running in this process."""
    return _current


def message_received(service: str) -> None:
    _current.messages_received.labels(service=service).inc()


def message_delivered(count: int = 1) -> None:
    _current.messages_delivered.inc(count)


def delivery_failed(count: int = 1) -> None:
    _current.deliveries_failed.inc(count)


def session_started(service: str) -> None:
    _current.sessions.labels(service=service).inc()


def session_ended(service: str) -> None:
    _current.sessions.labels(service=service).dec()


def report_sent(kind: str) -> None:
    _current.reports_sent.labels(kind=kind).inc()


def tls_result(result: str, count: int = 1) -> None:
    _current.tls_results.labels(result=result).inc(count)
