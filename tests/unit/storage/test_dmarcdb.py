"""storage/dmarcdb: evaluations to report (dmarceval.db) and received reports (dmarcrpt.db)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mailactors.protocol.dmarcrpt import (
    DkimAuth,
    Evaluation,
    Feedback,
    PolicyPublished,
    ReportMetadata,
    SpfAuth,
    parse_report,
    records_from_evaluations,
)
from mailactors.storage.db import DatabaseError
from mailactors.storage.dmarcdb import (
    DayTotals,
    EvaluationStore,
    PendingDomain,
    ReceivedReportStore,
    ReportNotFoundError,
    StoredEvaluation,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "dmarc"

POLICY = PolicyPublished("example.org", "r", "s", "quarantine", None, 50, "1")
EVALUATION = Evaluation(
    source_ip="2001:db8::1",
    disposition="quarantine",
    dkim_aligned="fail",
    spf_aligned="pass",
    reasons=(("local_policy", "é <note>"), ("other", None)),
    header_from="example.org",
    envelope_from="bounce.example.org",
    envelope_to=None,
    dkim=(
        DkimAuth("example.org", "sel", "fail", "bad body hash"),
        DkimAuth("x.example", None, "pass"),
    ),
    spf=(SpfAuth("bounce.example.org", "mfrom", "pass"), SpfAuth("mx.example", "helo", "none")),
)


def stored(at: int, domain: str = "example.org", ip: str = "192.0.2.1") -> StoredEvaluation:
    return StoredEvaluation(
        evaluated_at=at,
        policy=replace(POLICY, domain=domain),
        evaluation=replace(EVALUATION, source_ip=ip),
        rua=("mailto:dmarc@example.org!10m", "mailto:rua@thirdparty.example"),
    )


@pytest.fixture
def evaluations(tmp_path: Path, log: logging.Logger) -> Iterator[EvaluationStore]:
    store = EvaluationStore(tmp_path / "dmarceval.db", log)
    store.init()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def reports(tmp_path: Path, log: logging.Logger) -> Iterator[ReceivedReportStore]:
    store = ReceivedReportStore(tmp_path / "dmarcrpt.db", log)
    store.init()
    try:
        yield store
    finally:
        store.close()


# ---- EvaluationStore -----------------------------------------------------------------


def test_evaluation_round_trips_every_field(evaluations: EvaluationStore) -> None:
    evaluation = replace(stored(1000), evaluation=EVALUATION)
    new_id = evaluations.add(evaluation)
    assert new_id > 0
    (back,) = evaluations.evaluations("example.org", 0, 2000)
    assert back == replace(evaluation, id=new_id)
    assert back.policy_domain == "example.org"


def test_evaluations_window_is_half_open_and_per_domain(evaluations: EvaluationStore) -> None:
    for at in (999, 1000, 1500, 4599, 4600):
        evaluations.add(stored(at))
    evaluations.add(stored(1200, domain="other.example"))
    got = evaluations.evaluations("example.org", 1000, 4600)
    assert [e.evaluated_at for e in got] == [1000, 1500, 4599]
    assert [e.evaluated_at for e in evaluations.evaluations("other.example", 0, 10**9)] == [1200]
    assert evaluations.evaluations("nobody.example", 0, 10**9) == []


def test_domains_due_and_remove(evaluations: EvaluationStore) -> None:
    evaluations.add(stored(100, "b.example"))
    evaluations.add(stored(200, "a.example"))
    evaluations.add(stored(5000, "c.example"))
    assert evaluations.domains_due(3600) == ["a.example", "b.example"]
    assert evaluations.domains_due(100) == []
    assert evaluations.remove("a.example", 3600) == 1
    assert evaluations.remove("a.example", 3600) == 0
    assert evaluations.remove("c.example", 3600) == 0
    assert evaluations.domains_due(3600) == ["b.example"]
    assert evaluations.domains_due(10_000) == ["b.example", "c.example"]


def test_equal_stored_evaluations_group_into_one_record(evaluations: EvaluationStore) -> None:
    for at in (10, 20, 30):
        evaluations.add(stored(at))
    evaluations.add(stored(40, ip="192.0.2.99"))
    rows = evaluations.evaluations("example.org", 0, 3600)
    records = records_from_evaluations(e.evaluation for e in rows)
    assert [(r.source_ip, r.count) for r in records] == [("192.0.2.1", 3), ("192.0.2.99", 1)]


def test_pending_summarizes_per_domain(evaluations: EvaluationStore) -> None:
    assert evaluations.pending() == []
    evaluations.add(stored(300, "b.example"))
    evaluations.add(stored(100, "b.example"))
    evaluations.add(stored(200, "a.example"))
    assert evaluations.pending() == [
        PendingDomain("a.example", 1, 200, 200),
        PendingDomain("b.example", 2, 100, 300),
    ]


def test_evaluations_survive_reopen_and_readers_cannot_write(
    tmp_path: Path, log: logging.Logger
) -> None:
    path = tmp_path / "dmarceval.db"
    writer = EvaluationStore(path, log)
    writer.init()
    try:
        writer.add(stored(42))
        assert writer.db.schema_version() == 1
        reader = EvaluationStore(path, log, readonly=True)
        reader.init()
        try:
            assert [e.evaluated_at for e in reader.evaluations("example.org", 0, 100)] == [42]
            with pytest.raises(DatabaseError, match="read-only"):
                reader.add(stored(43))
        finally:
            reader.close()
    finally:
        writer.close()
    again = EvaluationStore(path, log)
    again.init()
    try:
        assert again.domains_due(100) == ["example.org"]
    finally:
        again.close()


# ---- ReceivedReportStore -------------------------------------------------------------


def feedback(org: str = "Receiver", report_id: str = "r1", begin: int = 1767225600) -> Feedback:
    records = records_from_evaluations(
        [
            EVALUATION,
            EVALUATION,
            replace(EVALUATION, disposition="none", dkim_aligned="pass", source_ip="192.0.2.5"),
            replace(EVALUATION, disposition="reject", spf_aligned="fail", source_ip="192.0.2.6"),
        ]
    )
    return Feedback(
        version="1.0",
        metadata=ReportMetadata(
            org, "noreply@receiver.example", "https://x", report_id, begin, begin + 86399, ("e1",)
        ),
        policy=POLICY,
        records=records,
    )


def test_report_is_stored_once_per_org_and_report_id(reports: ReceivedReportStore) -> None:
    first = reports.add(
        feedback(), from_addr="noreply@receiver.example", message_id="<m1@x>", received_at=5
    )
    assert first is not None
    assert reports.add(feedback(), from_addr="other@x", message_id="<m2@x>", received_at=6) is None
    second = reports.add(
        feedback(org="Other Receiver"), from_addr="a@b", message_id="<m3@x>", received_at=7
    )
    assert second is not None and second != first
    assert [r.id for r in reports.list()] == [second, first]


def test_get_returns_the_report_as_received(reports: ReceivedReportStore) -> None:
    ids = {}
    for path in sorted(DATA.glob("*.xml")):
        report = parse_report(path.read_bytes())
        ids[path.name] = (
            reports.add(report, from_addr="a@b", message_id=path.name, received_at=1),
            report,
        )
    ids["ours"] = (
        reports.add(feedback(), from_addr="a@b", message_id="ours", received_at=1),
        feedback(),
    )
    for new_id, report in ids.values():
        assert new_id is not None
        assert reports.get(new_id) == report
    with pytest.raises(ReportNotFoundError):
        reports.get(10_000)


def test_list_pages_newest_first(reports: ReceivedReportStore) -> None:
    for i in range(5):
        reports.add(
            feedback(report_id=f"r{i}"), from_addr="a@b", message_id=f"<m{i}>", received_at=100 + i
        )
    listed = reports.list(limit=2, offset=1)
    assert [r.report_id for r in listed] == ["r3", "r2"]
    first = reports.list(limit=1)[0]
    assert (first.org_name, first.policy_domain, first.messages) == ("Receiver", "example.org", 4)
    assert (first.received_at, first.message_id, first.from_addr) == (104, "<m4>", "a@b")
    assert (first.begin, first.end) == (1767225600, 1767225600 + 86399)
    assert reports.list(limit=10, offset=5) == []


def test_totals_per_day(reports: ReceivedReportStore) -> None:
    day1, day2 = 1767225600, 1767225600 + 86400  # 2026-01-01 and 2026-01-02, UTC
    reports.add(feedback(report_id="a", begin=day1), from_addr="a@b", message_id="1", received_at=1)
    reports.add(
        feedback(report_id="b", begin=day1 + 3600), from_addr="a@b", message_id="2", received_at=1
    )
    reports.add(feedback(report_id="c", begin=day2), from_addr="a@b", message_id="3", received_at=1)
    other = replace(
        feedback(report_id="d", begin=day2), policy=replace(POLICY, domain="other.example")
    )
    reports.add(other, from_addr="a@b", message_id="4", received_at=1)
    # Each report: 4 messages; DKIM aligned pass 1; SPF aligned pass 3;
    # dispositions: 2 quarantine, 1 none, 1 reject.
    one_report = DayTotals("", 1, 4, 1, 3, 3, 1, 1, 2, 1, 0)
    assert reports.totals_per_day("example.org") == [
        replace(
            one_report,
            day="2026-01-01",
            reports=2,
            messages=8,
            dkim_pass=2,
            dkim_fail=6,
            spf_pass=6,
            spf_fail=2,
            disposition_none=2,
            disposition_quarantine=4,
            disposition_reject=2,
        ),
        replace(one_report, day="2026-01-02"),
    ]
    all_days = reports.totals_per_day()
    assert [(t.day, t.reports, t.messages) for t in all_days] == [
        ("2026-01-01", 2, 8),
        ("2026-01-02", 2, 8),
    ]
    assert reports.totals_per_day("nobody.example") == []
    assert reports.domains() == ["example.org", "other.example"]


def test_totals_count_unknown_dispositions_apart(reports: ReceivedReportStore) -> None:
    report = parse_report((DATA / "rfc9990-sample.xml").read_bytes())
    reports.add(report, from_addr="a@b", message_id="1", received_at=1)
    (totals,) = reports.totals_per_day()
    assert (totals.messages, totals.disposition_other, totals.dkim_pass, totals.spf_fail) == (
        123,
        123,
        123,
        123,
    )
