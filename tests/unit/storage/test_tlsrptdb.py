"""tlsrptresult.db (our delivery results) and tlsrpt.db (received reports)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import apsw
import pytest

from mailactors.protocol.tlsrpt import (
    MAX_SESSION_COUNT,
    FailureDetails,
    Policy,
    PolicyType,
    Report,
    ResultType,
    TlsResult,
    build_report,
    parse_report,
)
from mailactors.storage.db import DatabaseError
from mailactors.storage.tlsrptdb import (
    DayTotals,
    ReceivedTlsReportStore,
    ResultEntry,
    ResultStore,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "tlsrpt"

DAY = date(2026, 11, 23)
STS = Policy(
    PolicyType.STS,
    "example.com",
    ("version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"),
    ("mx.example.com",),
)
DANE = Policy(PolicyType.TLSA, "mx.example.com", ("3 1 1 aabb",), ("mx.example.com",))
EXPIRED = FailureDetails(
    ResultType.CERTIFICATE_EXPIRED,
    sending_mta_ip="192.0.2.1",
    receiving_mx_hostname="mx.example.com",
    receiving_ip="198.51.100.1",
)


@pytest.fixture
def results(tmp_path: Path, log: logging.Logger) -> Iterator[ResultStore]:
    store = ResultStore(tmp_path / "tlsrptresult.db", log)
    store.init()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def received(tmp_path: Path, log: logging.Logger) -> Iterator[ReceivedTlsReportStore]:
    store = ReceivedTlsReportStore(tmp_path / "tlsrpt.db", log)
    store.init()
    try:
        yield store
    finally:
        store.close()


def _entry(
    result: TlsResult,
    *,
    day: date = DAY,
    recipient: str = "example.com",
    is_host: bool = False,
    send_report: bool = True,
) -> ResultEntry:
    return ResultEntry(day, recipient, is_host, send_report, result)


# ---- results of our deliveries ---------------------------------------------------------


def test_attempts_add_up_per_day_and_policy(results: ResultStore) -> None:
    results.add(_entry(TlsResult.success(STS)))
    results.add(_entry(TlsResult.success(STS)))
    results.add(_entry(TlsResult.failure(STS, EXPIRED)))
    results.add(_entry(TlsResult.failure(STS, EXPIRED)))
    other = FailureDetails(ResultType.STS_POLICY_FETCH_ERROR, failure_reason_code="404")
    results.add(_entry(TlsResult.failure(STS, other)))
    (entry,) = results.results("example.com", DAY)
    assert entry.policy_domain == "example.com"
    assert entry.result == TlsResult(
        STS,
        successful=2,
        failed=3,
        failure_details=(
            FailureDetails(
                ResultType.CERTIFICATE_EXPIRED,
                2,
                sending_mta_ip="192.0.2.1",
                receiving_mx_hostname="mx.example.com",
                receiving_ip="198.51.100.1",
            ),
            FailureDetails(ResultType.STS_POLICY_FETCH_ERROR, 1, failure_reason_code="404"),
        ),
    )


def test_separate_rows_for_policies_days_hosts_and_recipients(results: ResultStore) -> None:
    changed = Policy(PolicyType.STS, "example.com", ("version: STSv1", "mode: testing"))
    results.add_many(
        [
            _entry(TlsResult.success(STS)),
            _entry(TlsResult.success(changed)),
            _entry(TlsResult.success(STS), day=date(2026, 11, 22)),
            _entry(TlsResult.success(DANE), is_host=True),
            _entry(TlsResult.success(DANE), is_host=True, recipient="other.example"),
        ]
    )
    assert [e.result.policy for e in results.results("example.com", DAY)] == [STS, changed]
    dane = results.results("mx.example.com", DAY)
    assert [(e.recipient_domain, e.is_host) for e in dane] == [
        ("example.com", True),
        ("other.example", True),
    ]
    assert results.days_due(date(2026, 11, 24)) == [
        ("example.com", date(2026, 11, 22)),
        ("example.com", DAY),
        ("mx.example.com", DAY),
    ]
    assert results.days_due(DAY) == [("example.com", date(2026, 11, 22))]
    assert len(results.pending()) == 5


def test_unreported_results_are_kept_apart(results: ResultStore) -> None:
    # The delivery of a report message itself (RFC 8460 5.3) is counted, never reported.
    results.add(_entry(TlsResult.failure(STS, EXPIRED), send_report=False))
    results.add(_entry(TlsResult.success(STS)))
    (reported,) = results.results("example.com", DAY)
    assert (reported.result.successful, reported.result.failed) == (1, 0)
    both = results.results("example.com", DAY, include_unreported=True)
    assert sorted(e.send_report for e in both) == [False, True]
    results.add(_entry(TlsResult.success(STS), day=DAY.replace(day=20), send_report=False))
    assert results.results("example.com", DAY.replace(day=20)) == []
    assert ("example.com", DAY.replace(day=20)) in results.days_due(date(2026, 11, 24))


def test_remove_a_day(results: ResultStore) -> None:
    results.add(_entry(TlsResult.failure(STS, EXPIRED)))
    results.add(_entry(TlsResult.success(STS), day=date(2026, 11, 24)))
    results.add(_entry(TlsResult.success(DANE), is_host=True))
    assert results.remove("example.com", DAY) == 1
    assert results.remove("example.com", DAY) == 0
    assert [(e.policy_domain, e.day) for e in results.pending()] == [
        ("mx.example.com", DAY),
        ("example.com", date(2026, 11, 24)),
    ]
    # The failure rows went with their result (ON DELETE CASCADE).
    conn = results.db.connection
    assert conn.execute("SELECT count(*) FROM failure").fetchone() == (0,)


def test_counts_are_validated_and_saturate(results: ResultStore) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        results.add(_entry(TlsResult(STS, successful=-1)))
    with pytest.raises(ValueError, match="exceeds"):
        results.add(_entry(TlsResult(STS, failed=MAX_SESSION_COUNT + 1)))
    big = TlsResult(STS, MAX_SESSION_COUNT, 0)
    results.add(_entry(big))
    results.add(_entry(big))
    (entry,) = results.results("example.com", DAY)
    assert entry.result.successful == MAX_SESSION_COUNT


def test_unknown_result_types_survive(results: ResultStore) -> None:
    odd = FailureDetails("future-failure", 4)
    results.add(_entry(TlsResult(STS, 0, 4, (odd,))))
    (entry,) = results.results("example.com", DAY)
    assert entry.result.failure_details == (odd,)


def test_readonly_result_store(tmp_path: Path, log: logging.Logger) -> None:
    writer = ResultStore(tmp_path / "r.db", log)
    writer.init()
    try:
        writer.add(_entry(TlsResult.success(STS)))
        reader = ResultStore(tmp_path / "r.db", log, readonly=True)
        reader.init()
        try:
            assert len(reader.pending()) == 1
            with pytest.raises(DatabaseError, match="read-only"):
                reader.add(_entry(TlsResult.success(STS)))
        finally:
            reader.close()
    finally:
        writer.close()


def test_result_store_survives_reopen(tmp_path: Path, log: logging.Logger) -> None:
    store = ResultStore(tmp_path / "r.db", log)
    store.init()
    store.add(_entry(TlsResult.failure(DANE, EXPIRED), is_host=True))
    store.close()
    store = ResultStore(tmp_path / "r.db", log)
    store.init()
    try:
        (entry,) = store.pending()
        assert entry.is_host and entry.result.policy == DANE
        assert store.db.schema_version() == 1
        assert store.db.integrity_check() == []
    finally:
        store.close()


# ---- received reports ------------------------------------------------------------------

RECEIVED_AT = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)


def _rfc_example() -> Report:
    return parse_report((DATA / "rfc8460-example.json").read_bytes())


def _report(report_id: str, day: date, *results: TlsResult, org: str = "Sender Inc") -> Report:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return build_report(
        results,
        organization=org,
        contact="tls@sender.example",
        report_id=report_id,
        day_start=start,
        day_end=start.replace(hour=23, minute=59, second=59),
    )


def test_add_get_and_dedupe(received: ReceivedTlsReportStore) -> None:
    report = _rfc_example()
    row = received.add(
        report, from_addr="reports@company-x.example", received_at=RECEIVED_AT, via="mail"
    )
    assert row is not None
    again = received.add(
        report, from_addr="other@company-x.example", received_at=RECEIVED_AT, via="https"
    )
    assert again is None
    got = received.get(row)
    assert got is not None
    assert got.report == report
    assert got.info.organization == "Company-X"
    assert got.info.report_id == "5065427c-23d3-47ca-b6e0-946ea0e8c4be"
    assert got.info.via == "mail"
    assert got.info.received_at == RECEIVED_AT
    assert got.info.start == datetime(2016, 4, 1, tzinfo=UTC)
    assert (got.info.successful, got.info.failed) == (5326, 303)
    assert got.info.policy_domains == ("company-y.example",)
    assert received.get(row + 1) is None
    # The same report-id from another organization is another report.
    other = Report("Company-Z", report.start, report.end, "", report.report_id, report.policies)
    assert received.add(other, from_addr="z@z.example", received_at=RECEIVED_AT, via="https")


def test_list_filters_and_order(received: ReceivedTlsReportStore) -> None:
    a = _report("a@s", date(2026, 11, 20), TlsResult.success(STS))
    b = _report("b@s", date(2026, 11, 21), TlsResult.success(DANE), TlsResult.success(STS))
    c = _report("c@s", date(2026, 11, 22), TlsResult.success(DANE))
    for report in (a, b, c):
        received.add(report, from_addr="r@s", received_at=RECEIVED_AT, via="mail")
    assert [i.report_id for i in received.list_reports()] == ["c@s", "b@s", "a@s"]
    by_domain = received.list_reports(policy_domain="example.com")
    assert [i.report_id for i in by_domain] == ["b@s", "a@s"]
    assert by_domain[0].policy_domains == ("example.com", "mx.example.com")
    assert [i.report_id for i in received.list_reports(since=date(2026, 11, 21))] == [
        "c@s",
        "b@s",
    ]


def test_totals_per_day(received: ReceivedTlsReportStore) -> None:
    day = date(2026, 11, 20)
    received.add(
        _report("1", day, TlsResult(STS, 10, 2), TlsResult(DANE, 5, 0)),
        from_addr="r@s",
        received_at=RECEIVED_AT,
        via="mail",
    )
    received.add(
        _report("2", day, TlsResult(STS, 1, 1), org="Other"),
        from_addr="r@o",
        received_at=RECEIVED_AT,
        via="https",
    )
    received.add(
        _report("3", date(2026, 11, 21), TlsResult(STS, 7, 0)),
        from_addr="r@s",
        received_at=RECEIVED_AT,
        via="mail",
    )
    assert received.totals_per_day() == [
        DayTotals(day, "example.com", 11, 3, 2),
        DayTotals(day, "mx.example.com", 5, 0, 1),
        DayTotals(date(2026, 11, 21), "example.com", 7, 0, 1),
    ]
    assert received.totals_per_day(policy_domain="mx.example.com") == [
        DayTotals(day, "mx.example.com", 5, 0, 1)
    ]


def test_remove_report(received: ReceivedTlsReportStore) -> None:
    row = received.add(_rfc_example(), from_addr="r@x", received_at=RECEIVED_AT, via="mail")
    assert row is not None
    assert received.remove(row)
    assert not received.remove(row)
    assert received.list_reports() == []
    assert received.totals_per_day() == []
    # After removal the same report may be stored again.
    assert received.add(_rfc_example(), from_addr="r@x", received_at=RECEIVED_AT, via="mail")


def test_bad_arguments(received: ReceivedTlsReportStore) -> None:
    with pytest.raises(ValueError, match="via"):
        received.add(_rfc_example(), from_addr="r@x", received_at=RECEIVED_AT, via="ftp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        received.add(_rfc_example(), from_addr="r@x", received_at=datetime(2026, 1, 1), via="mail")
    assert received.list_reports() == []


def test_corrupt_stored_report_is_a_database_error(received: ReceivedTlsReportStore) -> None:
    row = received.add(_rfc_example(), from_addr="r@x", received_at=RECEIVED_AT, via="mail")
    with received.db.transaction() as conn:
        conn.execute("UPDATE report SET report = ? WHERE id = ?", (b"{not json", row))
    assert row is not None
    with pytest.raises(DatabaseError, match="unreadable"):
        received.get(row)


def test_large_received_report_round_trips(received: ReceivedTlsReportStore) -> None:
    # 20,000 failure details and 10 KB of policy strings per policy: a few MB of JSON.
    details = tuple(
        FailureDetails(ResultType.VALIDATION_FAILURE, 1, sending_mta_ip=f"192.0.2.{i % 250}")
        for i in range(20_000)
    )
    policy = Policy(PolicyType.STS, "example.com", ("x" * 200,) * 50)
    report = Report(
        "Big",
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 2, tzinfo=UTC),
        "",
        "big@x",
        (TlsResult(policy, 0, 20_000, details),),
    )
    row = received.add(report, from_addr="r@x", received_at=RECEIVED_AT, via="https")
    assert row is not None
    got = received.get(row)
    assert got is not None and got.report == report


def test_schema_is_versioned(received: ReceivedTlsReportStore) -> None:
    assert received.db.schema_version() == 1
    with pytest.raises(apsw.ConstraintError):
        with received.db.transaction() as conn:
            conn.execute(
                "INSERT INTO report (organization, report_id, start_ms, end_ms, day,"
                " from_addr, received_ms, via, successful, failed, report)"
                " VALUES ('o', 'r', 0, 0, '1970-01-01', '', 0, 'pigeon', 0, 0, x'')"
            )
