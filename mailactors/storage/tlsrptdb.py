"""TLS reporting databases: results of our deliveries, and reports we received.

tlsrptresult.db (`ResultStore`): every outgoing delivery attempt records its TLS
outcome (RFC 8460 4.3) here, added up per UTC day, policy domain, policy (type,
policy strings, MX host patterns), recipient domain, whether it is a per-host DANE
result, and whether it may be reported. The policy domain is the recipient domain
for MTA-STS results and the MX host for DANE results, so those become separate
reports. Once a day the reporter asks `days_due(today)`, reads each day's
`results`, sends the report and `remove`s the day.

Results with send_report False are counted (the `tlsrpt results` command shows
them) but never reported: RFC 8460 5.3 says a sender "SHOULD NOT include this
SMTP session in the next report" for the delivery of a report message, and
deliveries to our own domains need no report. They are a separate row, so one
such delivery never hides the others of the day.

tlsrpt.db (`ReceivedTlsReportStore`): reports others sent us, by mail or HTTPS
POST, stored once per (organization-name, report-id).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import apsw

from mailactors.protocol.tlsrpt import (
    MAX_SESSION_COUNT,
    FailureDetails,
    Policy,
    PolicyType,
    Report,
    ResultType,
    TlsResult,
    parse_report,
    report_json,
)
from mailactors.storage.db import DatabaseError, DatabaseStore, Migration

__all__ = [
    "DayTotals",
    "ReceivedReport",
    "ReceivedReportInfo",
    "ReceivedTlsReportStore",
    "ResultEntry",
    "ResultStore",
]


# Optional failure-detail fields are stored as "" when absent, so the UNIQUE
# constraint that adds up equal details sees them as equal (NULLs never are).
_DETAIL_COLUMNS = (
    "result_type",
    "sending_mta_ip",
    "receiving_mx_hostname",
    "receiving_mx_helo",
    "receiving_ip",
    "additional_information",
    "failure_reason_code",
)

RESULT_MIGRATIONS: list[Migration] = [
    # 0 -> 1: the initial schema.
    """
    CREATE TABLE result (
        id INTEGER PRIMARY KEY,
        day TEXT NOT NULL,               -- UTC day, YYYY-MM-DD
        policy_domain TEXT NOT NULL,
        policy_type TEXT NOT NULL,
        policy_strings TEXT NOT NULL,    -- JSON array of strings
        mx_hosts TEXT NOT NULL,          -- JSON array of strings
        recipient_domain TEXT NOT NULL,
        is_host INTEGER NOT NULL,
        send_report INTEGER NOT NULL,
        successful INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        UNIQUE (policy_domain, day, policy_type, policy_strings, mx_hosts,
                recipient_domain, is_host, send_report)
    );
    CREATE INDEX result_day ON result (day);
    CREATE TABLE failure (
        result_id INTEGER NOT NULL REFERENCES result(id) ON DELETE CASCADE,
        result_type TEXT NOT NULL,
        sending_mta_ip TEXT NOT NULL,
        receiving_mx_hostname TEXT NOT NULL,
        receiving_mx_helo TEXT NOT NULL,
        receiving_ip TEXT NOT NULL,
        additional_information TEXT NOT NULL,
        failure_reason_code TEXT NOT NULL,
        failed INTEGER NOT NULL,
        UNIQUE (result_id, result_type, sending_mta_ip, receiving_mx_hostname,
                receiving_mx_helo, receiving_ip, additional_information, failure_reason_code)
    );
    """,
]

RECEIVED_MIGRATIONS: list[Migration] = [
    # 0 -> 1: the initial schema.
    """
    CREATE TABLE report (
        id INTEGER PRIMARY KEY,
        organization TEXT NOT NULL,
        report_id TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        day TEXT NOT NULL,               -- UTC day of start-datetime, YYYY-MM-DD
        from_addr TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        via TEXT NOT NULL CHECK (via IN ('mail', 'https')),
        successful INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        report BLOB NOT NULL,            -- protocol.tlsrpt.report_json
        UNIQUE (organization, report_id)
    );
    CREATE INDEX report_day ON report (day);
    CREATE TABLE report_policy (
        report INTEGER NOT NULL REFERENCES report(id) ON DELETE CASCADE,
        policy_domain TEXT NOT NULL,
        policy_type TEXT NOT NULL,
        successful INTEGER NOT NULL,
        failed INTEGER NOT NULL
    );
    CREATE INDEX report_policy_report ON report_policy (report);
    CREATE INDEX report_policy_domain ON report_policy (policy_domain);
    """,
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    return (value - _EPOCH) // _MS


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, not {value!r}")
    if value > MAX_SESSION_COUNT:
        raise ValueError(f"{what} {value} exceeds {MAX_SESSION_COUNT}")


# Sums saturate at MAX_SESSION_COUNT (RFC 8259 6 interoperable integers) instead of
# overflowing into SQLite REAL values.
_CAP = str(MAX_SESSION_COUNT)


@dataclass(frozen=True, slots=True)
class ResultEntry:
    """TLS outcomes of deliveries on one UTC day under one policy (RFC 8460 4.3).

    `result.policy.policy_domain` is the policy domain the report goes to.
    `is_host`: a DANE result for the MX host's own report (its TLSRPT record).
    `send_report`: False for deliveries that are counted but never reported.
    """

    day: date
    recipient_domain: str
    is_host: bool
    send_report: bool
    result: TlsResult

    @property
    def policy_domain(self) -> str:
        """The domain the result is reported to."""
        return self.result.policy.policy_domain


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


def _str_tuple(text: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in json.loads(str(text)))


def _result_type(text: str) -> str:
    try:
        return ResultType(text)
    except ValueError:
        return text


class ResultStore(DatabaseStore):
    """tlsrptresult.db: our deliveries' TLS results, added up per day and policy.

    With readonly=True it opens its own read-only connection (the CLI); writing
    methods then raise DatabaseError.
    """

    MIGRATIONS = RESULT_MIGRATIONS
    LOGGER = "mailactors.storage.tlsrptdb"

    @property
    def _conn(self) -> apsw.Connection:
        return self.db.connection

    def add(self, entry: ResultEntry) -> None:
        """Add one delivery attempt's outcome (or added-up counts) to its day's row."""
        self.add_many([entry])

    def add_many(self, entries: Iterable[ResultEntry]) -> None:
        """Add several entries in one transaction."""
        entries = list(entries)
        for entry in entries:
            _check_count(entry.result.successful, "successful count")
            _check_count(entry.result.failed, "failed count")
            for detail in entry.result.failure_details:
                _check_count(detail.failed_session_count, "failed-session-count")
        with self.db.transaction() as conn:
            for entry in entries:
                self._add(conn, entry)

    def _add(self, conn: apsw.Connection, entry: ResultEntry) -> None:
        policy = entry.result.policy
        row = conn.execute(
            "INSERT INTO result (day, policy_domain, policy_type, policy_strings, mx_hosts,"
            " recipient_domain, is_host, send_report, successful, failed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (policy_domain, day, policy_type, policy_strings, mx_hosts,"
            " recipient_domain, is_host, send_report) DO UPDATE SET"
            f" successful = min(successful + excluded.successful, {_CAP}),"
            f" failed = min(failed + excluded.failed, {_CAP})"
            " RETURNING id",
            (
                entry.day.isoformat(),
                policy.policy_domain,
                str(policy.policy_type),
                _json_list(policy.policy_strings),
                _json_list(policy.mx_hosts),
                entry.recipient_domain,
                int(entry.is_host),
                int(entry.send_report),
                entry.result.successful,
                entry.result.failed,
            ),
        ).fetchone()
        assert row is not None
        result_id = int(row[0])
        for detail in entry.result.failure_details:
            conn.execute(
                f"INSERT INTO failure (result_id, {', '.join(_DETAIL_COLUMNS)}, failed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT (result_id, {', '.join(_DETAIL_COLUMNS)}) DO UPDATE SET"
                f" failed = min(failed + excluded.failed, {_CAP})",
                (result_id, *detail.key(), detail.failed_session_count),
            )

    def days_due(self, before_day: date) -> list[tuple[str, date]]:
        """(policy domain, day) pairs with results from days before `before_day`,
        oldest first; reported or not, each is due for sending and removal."""
        rows = self._conn.execute(
            "SELECT DISTINCT policy_domain, day FROM result WHERE day < ?"
            " ORDER BY day, policy_domain",
            (before_day.isoformat(),),
        ).fetchall()
        return [(str(domain), date.fromisoformat(str(day))) for domain, day in rows]

    def results(
        self, policy_domain: str, day: date, *, include_unreported: bool = False
    ) -> list[ResultEntry]:
        """The entries of one policy domain and day; only reportable ones unless asked."""
        where = "policy_domain = ? AND day = ?"
        args: tuple[Any, ...] = (policy_domain, day.isoformat())
        if not include_unreported:
            where += " AND send_report = 1"
        return self._entries(where, args)

    def pending(self) -> list[ResultEntry]:
        """Every entry not yet removed, by day and policy domain."""
        return self._entries("1", ())

    def remove(self, policy_domain: str, day: date) -> int:
        """Remove one policy domain's day (after its report went out); rows removed."""
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM result WHERE policy_domain = ? AND day = ?",
                (policy_domain, day.isoformat()),
            )
            return int(conn.changes())

    def _entries(self, where: str, args: tuple[Any, ...]) -> list[ResultEntry]:
        with self.db.read_transaction() as conn:
            rows = conn.execute(
                "SELECT id, day, policy_domain, policy_type, policy_strings, mx_hosts,"
                " recipient_domain, is_host, send_report, successful, failed"
                f" FROM result WHERE {where}"
                " ORDER BY day, policy_domain, recipient_domain, id",
                args,
            ).fetchall()
            entries = []
            for row in rows:
                values: tuple[Any, ...] = tuple(row)
                (rid, day, domain, ptype, strings, mx_hosts, recipient, is_host, send, ok, bad) = (
                    values
                )
                details = tuple(
                    FailureDetails(
                        result_type=_result_type(str(d[0])),
                        failed_session_count=int(d[7]),
                        sending_mta_ip=str(d[1]) or None,
                        receiving_mx_hostname=str(d[2]) or None,
                        receiving_mx_helo=str(d[3]) or None,
                        receiving_ip=str(d[4]) or None,
                        additional_information=str(d[5]) or None,
                        failure_reason_code=str(d[6]) or None,
                    )
                    for d in conn.execute(
                        f"SELECT {', '.join(_DETAIL_COLUMNS)}, failed FROM failure"
                        " WHERE result_id = ? ORDER BY rowid",
                        (rid,),
                    )
                )
                policy = Policy(
                    PolicyType(str(ptype)), str(domain), _str_tuple(strings), _str_tuple(mx_hosts)
                )
                entries.append(
                    ResultEntry(
                        day=date.fromisoformat(str(day)),
                        recipient_domain=str(recipient),
                        is_host=bool(is_host),
                        send_report=bool(send),
                        result=TlsResult(policy, int(ok), int(bad), details),
                    )
                )
            return entries


# ---- received reports ------------------------------------------------------------------

Via = Literal["mail", "https"]


@dataclass(frozen=True, slots=True)
class ReceivedReportInfo:
    """What a list of received reports shows."""

    id: int
    organization: str
    report_id: str
    start: datetime
    end: datetime
    from_addr: str
    received_at: datetime
    via: Via
    successful: int
    failed: int
    policy_domains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReceivedReport:
    """A stored report with what we know about its arrival."""

    info: ReceivedReportInfo
    report: Report


@dataclass(frozen=True, slots=True)
class DayTotals:
    """Sessions per UTC day (of the reports' start) and policy domain."""

    day: date
    policy_domain: str
    successful: int
    failed: int
    reports: int


_INFO_SELECT = (
    "SELECT r.id, r.organization, r.report_id, r.start_ms, r.end_ms, r.from_addr,"
    " r.received_ms, r.via, r.successful, r.failed"
    " FROM report r"
)


def _info(conn: apsw.Connection, row: Sequence[Any]) -> ReceivedReportInfo:
    via = str(row[7])
    assert via in ("mail", "https")
    domains = conn.execute(
        "SELECT DISTINCT policy_domain FROM report_policy WHERE report = ? ORDER BY policy_domain",
        (row[0],),
    ).fetchall()
    return ReceivedReportInfo(
        id=int(row[0]),
        organization=str(row[1]),
        report_id=str(row[2]),
        start=_from_ms(int(row[3])),
        end=_from_ms(int(row[4])),
        from_addr=str(row[5]),
        received_at=_from_ms(int(row[6])),
        via="mail" if via == "mail" else "https",
        successful=int(row[8]),
        failed=int(row[9]),
        policy_domains=tuple(str(d[0]) for d in domains),
    )


class ReceivedTlsReportStore(DatabaseStore):
    """tlsrpt.db: TLS reports we received, one row per (organization, report-id)."""

    MIGRATIONS = RECEIVED_MIGRATIONS
    LOGGER = "mailactors.storage.tlsrptdb"

    def add(self, report: Report, *, from_addr: str, received_at: datetime, via: Via) -> int | None:
        """Store a received report; its id, or None if this organization already sent
        a report with this report-id (a resend, or a duplicate via mail and HTTPS)."""
        if via not in ("mail", "https"):
            raise ValueError(f"via must be 'mail' or 'https', not {via!r}")
        received_ms = _ms(received_at)
        # Sums over a report can exceed what one field may hold; saturate as the
        # result store does.
        successful = min(report.successful, MAX_SESSION_COUNT)
        failed = min(report.failed, MAX_SESSION_COUNT)
        with self.db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO report (organization, report_id, start_ms, end_ms, day, from_addr,"
                " received_ms, via, successful, failed, report)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (organization, report_id) DO NOTHING RETURNING id",
                (
                    report.organization_name,
                    report.report_id,
                    _ms(report.start),
                    _ms(report.end),
                    report.start.astimezone(UTC).date().isoformat(),
                    from_addr,
                    received_ms,
                    via,
                    successful,
                    failed,
                    report_json(report),
                ),
            ).fetchone()
            if row is None:
                return None
            report_row = int(row[0])
            for policy in report.policies:
                conn.execute(
                    "INSERT INTO report_policy (report, policy_domain, policy_type,"
                    " successful, failed) VALUES (?, ?, ?, ?, ?)",
                    (
                        report_row,
                        policy.policy.policy_domain,
                        str(policy.policy.policy_type),
                        policy.successful,
                        policy.failed,
                    ),
                )
            return report_row

    def list_reports(
        self, *, policy_domain: str | None = None, since: date | None = None
    ) -> list[ReceivedReportInfo]:
        """Received reports, newest period first; optionally only those about
        `policy_domain`, or starting on or after the UTC day `since`."""
        where = []
        args: list[Any] = []
        if policy_domain is not None:
            where.append(
                "EXISTS (SELECT 1 FROM report_policy p WHERE p.report = r.id"
                " AND p.policy_domain = ?)"
            )
            args.append(policy_domain)
        if since is not None:
            where.append("r.day >= ?")
            args.append(since.isoformat())
        sql = _INFO_SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.start_ms DESC, r.id DESC"
        with self.db.read_transaction() as conn:
            return [_info(conn, row) for row in conn.execute(sql, tuple(args)).fetchall()]

    def get(self, report_row: int) -> ReceivedReport | None:
        """One stored report with its details, or None."""
        with self.db.read_transaction() as conn:
            row = conn.execute(_INFO_SELECT + " WHERE r.id = ?", (report_row,)).fetchone()
            if row is None:
                return None
            info = _info(conn, row)
            data = conn.execute("SELECT report FROM report WHERE id = ?", (report_row,)).fetchone()
        assert data is not None
        raw = bytes(data[0])
        try:
            report = parse_report(raw, max_size=len(raw))
        except ValueError as exc:
            raise DatabaseError(f"{self.path}: stored report {report_row} is unreadable") from exc
        return ReceivedReport(info, report)

    def remove(self, report_row: int) -> bool:
        """Remove one report; whether it existed."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM report WHERE id = ?", (report_row,))
            return bool(conn.changes())

    def totals_per_day(self, *, policy_domain: str | None = None) -> list[DayTotals]:
        """Successful and failed sessions per day and policy domain, oldest first."""
        sql = (
            # total() adds up as REAL, so huge counts from many reports cannot
            # overflow (sum() would raise); below 2**53 the result is exact.
            "SELECT r.day, p.policy_domain, total(p.successful), total(p.failed),"
            " count(DISTINCT r.id)"
            " FROM report r JOIN report_policy p ON p.report = r.id"
        )
        args: tuple[Any, ...] = ()
        if policy_domain is not None:
            sql += " WHERE p.policy_domain = ?"
            args = (policy_domain,)
        sql += " GROUP BY r.day, p.policy_domain ORDER BY r.day, p.policy_domain"
        with self.db.read_transaction() as conn:
            return [
                DayTotals(date.fromisoformat(str(day)), str(domain), int(ok), int(bad), int(n))
                for day, domain, ok, bad, n in conn.execute(sql, args)
            ]
