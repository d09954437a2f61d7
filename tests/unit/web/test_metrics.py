"""The metrics API and its Prometheus text exposition."""

from __future__ import annotations

import re

from mailactors import metrics


def value(text: bytes, series: str) -> float:
    found = re.search(rb"^" + re.escape(series.encode()) + rb" (\S+)$", text, re.MULTILINE)
    assert found is not None, series
    return float(found.group(1))


def test_module_functions_count_on_the_current_registry() -> None:
    before = metrics.current().exposition()
    metrics.message_received("smtp")
    metrics.message_delivered(2)
    metrics.delivery_failed()
    metrics.report_sent("tls")
    metrics.tls_result("sts-webpki-invalid", 3)
    metrics.session_started("imap")
    metrics.session_started("imap")
    metrics.session_ended("imap")
    after = metrics.current().exposition(queue_messages=7)

    def grew(series: str) -> float:
        old = value(before, series) if series.encode() in before else 0.0
        return value(after, series) - old

    assert grew('mailactors_messages_received_total{service="smtp"}') == 1
    assert grew("mailactors_messages_delivered_total") == 2
    assert grew("mailactors_deliveries_failed_total") == 1
    assert grew('mailactors_reports_sent_total{kind="tls"}') == 1
    assert grew('mailactors_tls_results_total{result="sts-webpki-invalid"}') == 3
    assert grew('mailactors_sessions{service="imap"}') == 1
    assert value(after, "mailactors_queue_messages") == 7
    assert b"_created" not in after
    metrics.session_ended("imap")


def test_each_metrics_has_its_own_registry() -> None:
    one, two = metrics.Metrics(), metrics.Metrics()
    one.messages_received.labels(service="submission").inc()
    assert b'service="submission"' in one.exposition()
    assert b'service="submission"' not in two.exposition()
    assert metrics.CONTENT_TYPE.startswith("text/plain")
