"""actors/reports.py: which DMARC aggregate reports are made, for whom, and what they hold."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from pathlib import Path

import pytest

from mailactors.actors.dkimsign import DkimSigner
from mailactors.actors.localserve import ensure_localserve_files
from mailactors.actors.reports import dmarc_reports, dry_run_name
from mailactors.conf import Config, load_config
from mailactors.protocol.dmarcrpt import (
    DkimAuth,
    Evaluation,
    PolicyPublished,
    SpfAuth,
    parse_report,
)
from mailactors.protocol.dns import InMemoryResolver
from mailactors.storage.dmarcdb import EvaluationStore, StoredEvaluation

log = logging.getLogger("test.reports")
HOUR = 3600
T0 = 1_795_500_000 // HOUR * HOUR  # an hour boundary in 2026


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EvaluationStore]:
    s = EvaluationStore(tmp_path / "dmarceval.db")
    s.init()
    try:
        yield s
    finally:
        s.close()


def _evaluation(ip: str = "192.0.2.1", disposition: str = "none") -> Evaluation:
    return Evaluation(
        source_ip=ip,
        disposition=disposition,
        dkim_aligned="pass",
        spf_aligned="fail",
        reasons=(),
        header_from="example.org",
        envelope_from="example.org",
        envelope_to="localhost",
        dkim=(DkimAuth("example.org", "sel", "pass"),),
        spf=(SpfAuth("example.org", "mfrom", "softfail"),),
    )


def _add(
    store: EvaluationStore, at: int, rua: tuple[str, ...], domain: str = "example.org", **kw: str
) -> None:
    store.add(
        StoredEvaluation(
            evaluated_at=at,
            policy=PolicyPublished(domain, "r", "r", "reject", None, 100, "0"),
            evaluation=_evaluation(**kw),
            rua=rua,
        )
    )


def _feedback(message: bytes):  # type: ignore[no-untyped-def]
    msg = message_from_bytes(message)
    for part in msg.walk():
        if part.get_filename():
            return parse_report(part.get_payload(decode=True)), part.get_filename()
    raise AssertionError("no attachment")


def test_one_report_per_domain_and_hour(config: Config, store: EvaluationStore) -> None:
    rua = ("mailto:dmarc@example.org",)
    _add(store, T0 + 10, rua)
    _add(store, T0 + 20, rua)
    _add(store, T0 + 30, rua, ip="198.51.100.9", disposition="reject")
    _add(store, T0 + HOUR + 5, rua)  # the next hour
    _add(store, T0 + 2 * HOUR + 5, rua)  # the current hour: not yet
    now = datetime.fromtimestamp(T0 + 2 * HOUR + 100, UTC)
    reports = dmarc_reports(
        config, store, InMemoryResolver(), DkimSigner(config.domains), now=now, log=log
    )
    assert [(r.policy_domain, r.begin, r.end) for r in reports] == [
        ("example.org", T0, T0 + HOUR),
        ("example.org", T0 + HOUR, T0 + 2 * HOUR),
    ]
    first = reports[0]
    assert first.recipients == ("dmarc@example.org",) and first.kind == "dmarc-report"
    assert first.sender == "postmaster@localhost"
    feedback, filename = _feedback(first.message)
    assert filename == f"localhost!example.org!{T0}!{T0 + HOUR - 1}.xml.gz"
    counts = sorted((r.source_ip, r.disposition, r.count) for r in feedback.records)
    assert counts == [("192.0.2.1", "none", 2), ("198.51.100.9", "reject", 1)]
    assert feedback.metadata.begin == T0 and feedback.metadata.end == T0 + HOUR - 1
    subject = re.sub(r"\r?\n(?=[ \t])", "", str(message_from_bytes(first.message)["Subject"]))
    assert (
        subject == f"Report Domain: example.org Submitter: localhost Report-ID: <example.org.{T0}>"
    )
    # With the current hour included (dry runs), three reports.
    assert (
        len(
            dmarc_reports(
                config,
                store,
                InMemoryResolver(),
                DkimSigner(config.domains),
                now=now,
                include_current=True,
                log=log,
            )
        )
        == 3
    )
    assert dry_run_name(first) == f"dmarc-report-example.org-{T0}.eml"


def test_external_destinations_need_consent(config: Config, store: EvaluationStore) -> None:
    rua = ("mailto:agg@reports.example.net", "mailto:dmarc@example.org", "https://x.example/")
    _add(store, T0 + 1, rua)
    now = datetime.fromtimestamp(T0 + HOUR + 1, UTC)
    signer = DkimSigner(config.domains)
    # RFC 7489 7.1: reports.example.net has not agreed to get example.org's reports.
    (report,) = dmarc_reports(config, store, InMemoryResolver(), signer, now=now, log=log)
    assert report.recipients == ("dmarc@example.org",)
    assert any("did not agree" in p for p in report.problems)
    assert any("only mailto" in p for p in report.problems)
    resolver = InMemoryResolver(
        records={("example.org._report._dmarc.reports.example.net", "TXT"): ["v=DMARC1"]}
    )
    (report,) = dmarc_reports(config, store, resolver, signer, now=now, log=log)
    assert report.recipients == ("agg@reports.example.net", "dmarc@example.org")


def test_size_limits_are_honoured(config: Config, store: EvaluationStore) -> None:
    # RFC 7489 6.2 / 7.2.1.1: "!" gives the largest report the destination accepts.
    rua = ("mailto:small@example.org!1k", "mailto:big@example.org!10m")
    for i in range(200):
        _add(store, T0 + 1, rua, ip=f"10.0.{i // 250}.{i % 250}")
    now = datetime.fromtimestamp(T0 + HOUR + 1, UTC)
    (report,) = dmarc_reports(
        config, store, InMemoryResolver(), DkimSigner(config.domains), now=now, log=log
    )
    assert report.recipients == ("big@example.org",)
    assert any("small@example.org" in p and "size limit" in p for p in report.problems)
    assert len(report.message) > 1024
    feedback, _ = _feedback(report.message)
    assert sum(r.count for r in feedback.records) == 200


def test_temporary_dns_failure_leaves_the_destination_out(
    config: Config, store: EvaluationStore
) -> None:
    _add(store, T0 + 1, ("mailto:agg@reports.example.net",))
    resolver = InMemoryResolver(
        temporary=frozenset({("example.org._report._dmarc.reports.example.net", "TXT")})
    )
    now = datetime.fromtimestamp(T0 + HOUR + 1, UTC)
    (report,) = dmarc_reports(config, store, resolver, DkimSigner(config.domains), now=now, log=log)
    assert report.recipients == ()
    assert any("temporarily" in p for p in report.problems)
