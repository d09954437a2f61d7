"""DMARC databases: evaluations to report (dmarceval.db) and reports received (dmarcrpt.db).

Theory of operation. When an incoming message's From domain publishes a rua and
the message did not come from our own submission, its DMARC evaluation is stored
as one `StoredEvaluation` row in dmarceval.db, with everything its aggregate report
record needs and the rua addresses. Every hour the reporter asks `domains_due`,
reads each domain's `evaluations` of the past hour, groups them into records
(protocol.dmarcrpt.records_from_evaluations), sends the report and `remove`s what
it covered. Aggregate reports that others send us are stored whole in dmarcrpt.db,
once per (org_name, report_id) (RFC 7489 7.2.1.1: the Report-ID lets the Domain
Owner "identify and ignore duplicate reports"), with per-report totals so the
admin pages can show daily sums without reading every report.

Like every store, each class has one writing connection, owned by its StoreActor's
thread; readers open their own with readonly=True.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from mailactors.protocol.dmarcrpt import (
    DkimAuth,
    Evaluation,
    Feedback,
    PolicyPublished,
    ReportMetadata,
    ReportRecord,
    SpfAuth,
)
from mailactors.storage.db import DatabaseStore, Migration

__all__ = [
    "EVALUATION_MIGRATIONS",
    "REPORT_MIGRATIONS",
    "DayTotals",
    "EvaluationStore",
    "PendingDomain",
    "ReceivedReport",
    "ReceivedReportStore",
    "ReportNotFoundError",
    "StoredEvaluation",
]


EVALUATION_MIGRATIONS: list[Migration] = [
    # 0 -> 1: the initial schema. Lists (reasons, DKIM and SPF results, rua
    # addresses) are JSON arrays: they are only ever read back whole.
    """
    CREATE TABLE evaluation (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        evaluated_at INTEGER NOT NULL,
        policy_domain TEXT NOT NULL,
        adkim TEXT,
        aspf TEXT,
        p TEXT NOT NULL,
        sp TEXT,
        pct INTEGER,
        fo TEXT,
        source_ip TEXT NOT NULL,
        disposition TEXT NOT NULL,
        dkim_aligned TEXT NOT NULL,
        spf_aligned TEXT NOT NULL,
        reasons TEXT NOT NULL,
        header_from TEXT NOT NULL,
        envelope_from TEXT,
        envelope_to TEXT,
        dkim TEXT NOT NULL,
        spf TEXT NOT NULL,
        rua TEXT NOT NULL
    );
    CREATE INDEX evaluation_domain_time ON evaluation (policy_domain, evaluated_at);
    CREATE INDEX evaluation_time ON evaluation (evaluated_at);
    """,
]

REPORT_MIGRATIONS: list[Migration] = [
    # 0 -> 1: the initial schema. The report itself is JSON; the columns beside it
    # are what lists, deduplication and daily totals need.
    """
    CREATE TABLE report (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at INTEGER NOT NULL,
        from_addr TEXT NOT NULL,
        message_id TEXT NOT NULL,
        org_name TEXT NOT NULL,
        report_id TEXT NOT NULL,
        policy_domain TEXT NOT NULL,
        begin INTEGER NOT NULL,
        end INTEGER NOT NULL,
        day TEXT NOT NULL,
        messages INTEGER NOT NULL,
        dkim_pass INTEGER NOT NULL,
        dkim_fail INTEGER NOT NULL,
        spf_pass INTEGER NOT NULL,
        spf_fail INTEGER NOT NULL,
        disposition_none INTEGER NOT NULL,
        disposition_quarantine INTEGER NOT NULL,
        disposition_reject INTEGER NOT NULL,
        disposition_other INTEGER NOT NULL,
        feedback TEXT NOT NULL,
        UNIQUE (org_name, report_id)
    );
    CREATE INDEX report_domain_day ON report (policy_domain, day);
    CREATE INDEX report_day ON report (day);
    """,
]


# ---- JSON forms of the protocol model ------------------------------------------------


def _dkim_json(results: tuple[DkimAuth, ...]) -> str:
    return json.dumps([[r.domain, r.selector, r.result, r.human_result] for r in results])


def _dkim_from_json(text: str) -> tuple[DkimAuth, ...]:
    return tuple(
        DkimAuth(domain=d, selector=s, result=r, human_result=h) for d, s, r, h in json.loads(text)
    )


def _spf_json(results: tuple[SpfAuth, ...]) -> str:
    return json.dumps([[r.domain, r.scope, r.result] for r in results])


def _spf_from_json(text: str) -> tuple[SpfAuth, ...]:
    return tuple(SpfAuth(domain=d, scope=s, result=r) for d, s, r in json.loads(text))


def _reasons_json(reasons: tuple[tuple[str, str | None], ...]) -> str:
    return json.dumps([[kind, comment] for kind, comment in reasons])


def _reasons_from_json(text: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((kind, comment) for kind, comment in json.loads(text))


def _record_to_json(record: ReportRecord) -> list[Any]:
    return [
        record.source_ip,
        record.count,
        record.disposition,
        record.dkim_aligned,
        record.spf_aligned,
        [[kind, comment] for kind, comment in record.reasons],
        record.header_from,
        record.envelope_from,
        record.envelope_to,
        [[r.domain, r.selector, r.result, r.human_result] for r in record.dkim],
        [[r.domain, r.scope, r.result] for r in record.spf],
    ]


def _record_from_json(item: list[Any]) -> ReportRecord:
    ip, count, disposition, dkim_aligned, spf_aligned, reasons, hfrom, efrom, eto, dkim, spf = item
    return ReportRecord(
        source_ip=ip,
        count=count,
        disposition=disposition,
        dkim_aligned=dkim_aligned,
        spf_aligned=spf_aligned,
        reasons=tuple((kind, comment) for kind, comment in reasons),
        header_from=hfrom,
        envelope_from=efrom,
        envelope_to=eto,
        dkim=tuple(DkimAuth(d, s, r, h) for d, s, r, h in dkim),
        spf=tuple(SpfAuth(d, s, r) for d, s, r in spf),
    )


def _feedback_json(feedback: Feedback) -> str:
    meta, policy = feedback.metadata, feedback.policy
    return json.dumps(
        {
            "version": feedback.version,
            "metadata": [
                meta.org_name,
                meta.email,
                meta.extra_contact_info,
                meta.report_id,
                meta.begin,
                meta.end,
                list(meta.errors),
            ],
            "policy": [
                policy.domain,
                policy.adkim,
                policy.aspf,
                policy.p,
                policy.sp,
                policy.pct,
                policy.fo,
            ],
            "records": [_record_to_json(r) for r in feedback.records],
        }
    )


def _feedback_from_json(text: str) -> Feedback:
    data = json.loads(text)
    org_name, email, extra, report_id, begin, end, errors = data["metadata"]
    domain, adkim, aspf, p, sp, pct, fo = data["policy"]
    return Feedback(
        version=data["version"],
        metadata=ReportMetadata(
            org_name=org_name,
            email=email,
            extra_contact_info=extra,
            report_id=report_id,
            begin=begin,
            end=end,
            errors=tuple(errors),
        ),
        policy=PolicyPublished(domain=domain, adkim=adkim, aspf=aspf, p=p, sp=sp, pct=pct, fo=fo),
        records=tuple(_record_from_json(r) for r in data["records"]),
    )


# ---- dmarceval.db ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredEvaluation:
    """One evaluated incoming message, waiting to be reported to its policy domain.

    `evaluated_at` is seconds since the epoch; `rua` holds the report URIs of the
    DMARC record as published (e.g. "mailto:dmarc@example.com!10m"), so the reporter
    needs no second lookup. `id` is set by the store (0 before `add`).
    """

    evaluated_at: int
    policy: PolicyPublished
    evaluation: Evaluation
    rua: tuple[str, ...]
    id: int = 0

    @property
    def policy_domain(self) -> str:
        """The domain whose DMARC record was applied (and is reported to)."""
        return self.policy.domain


@dataclass(frozen=True, slots=True)
class PendingDomain:
    """Evaluations waiting for one policy domain (`mailactors dmarc evaluations`)."""

    policy_domain: str
    evaluations: int
    oldest: int
    newest: int


_SELECT_EVALUATIONS = (
    "SELECT id, evaluated_at, policy_domain, adkim, aspf, p, sp, pct, fo, source_ip,"
    " disposition, dkim_aligned, spf_aligned, reasons, header_from, envelope_from,"
    " envelope_to, dkim, spf, rua FROM evaluation"
    " WHERE policy_domain = ? AND evaluated_at >= ? AND evaluated_at < ?"
    " ORDER BY evaluated_at, id"
)
_INSERT_EVALUATION = (
    "INSERT INTO evaluation (evaluated_at, policy_domain, adkim, aspf, p, sp, pct, fo,"
    " source_ip, disposition, dkim_aligned, spf_aligned, reasons, header_from, envelope_from,"
    " envelope_to, dkim, spf, rua)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
)


def _evaluation_from_row(row: tuple[Any, ...]) -> StoredEvaluation:
    (
        id_,
        evaluated_at,
        policy_domain,
        adkim,
        aspf,
        p,
        sp,
        pct,
        fo,
        source_ip,
        disposition,
        dkim_aligned,
        spf_aligned,
        reasons,
        header_from,
        envelope_from,
        envelope_to,
        dkim,
        spf,
        rua,
    ) = row
    return StoredEvaluation(
        id=int(id_),
        evaluated_at=int(evaluated_at),
        policy=PolicyPublished(
            domain=str(policy_domain),
            adkim=adkim,
            aspf=aspf,
            p=str(p),
            sp=sp,
            pct=None if pct is None else int(pct),
            fo=fo,
        ),
        evaluation=Evaluation(
            source_ip=str(source_ip),
            disposition=str(disposition),
            dkim_aligned=dkim_aligned,
            spf_aligned=spf_aligned,
            reasons=_reasons_from_json(reasons),
            header_from=str(header_from),
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            dkim=_dkim_from_json(dkim),
            spf=_spf_from_json(spf),
        ),
        rua=tuple(json.loads(rua)),
    )


class EvaluationStore(DatabaseStore):
    """dmarceval.db: DMARC evaluations of incoming messages, until they are reported."""

    MIGRATIONS = EVALUATION_MIGRATIONS
    LOGGER = "mailactors.storage.dmarcdb"

    def add(self, evaluation: StoredEvaluation) -> int:
        """Store one evaluation; returns its id."""
        policy, e = evaluation.policy, evaluation.evaluation
        with self.db.transaction() as conn:
            row = conn.execute(
                _INSERT_EVALUATION,
                (
                    evaluation.evaluated_at,
                    policy.domain,
                    policy.adkim,
                    policy.aspf,
                    policy.p,
                    policy.sp,
                    policy.pct,
                    policy.fo,
                    e.source_ip,
                    e.disposition,
                    e.dkim_aligned,
                    e.spf_aligned,
                    _reasons_json(e.reasons),
                    e.header_from,
                    e.envelope_from,
                    e.envelope_to,
                    _dkim_json(e.dkim),
                    _spf_json(e.spf),
                    json.dumps(list(evaluation.rua)),
                ),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def domains_due(self, before: int) -> builtins.list[str]:
        """Policy domains with evaluations older than `before`, sorted."""
        rows = self.db.connection.execute(
            "SELECT DISTINCT policy_domain FROM evaluation WHERE evaluated_at < ?"
            " ORDER BY policy_domain",
            (before,),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def evaluations(self, domain: str, begin: int, end: int) -> builtins.list[StoredEvaluation]:
        """Evaluations for `domain` with begin <= evaluated_at < end, oldest first."""
        rows = self.db.connection.execute(_SELECT_EVALUATIONS, (domain, begin, end)).fetchall()
        return [_evaluation_from_row(r) for r in rows]

    def remove(self, domain: str, before: int) -> int:
        """Delete the evaluations for `domain` older than `before`; returns how many."""
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM evaluation WHERE policy_domain = ? AND evaluated_at < ?",
                (domain, before),
            )
            return int(conn.changes())

    def pending(self) -> builtins.list[PendingDomain]:
        """Per policy domain: how many evaluations wait, the oldest and newest time."""
        rows = self.db.connection.execute(
            "SELECT policy_domain, COUNT(*), MIN(evaluated_at), MAX(evaluated_at)"
            " FROM evaluation GROUP BY policy_domain ORDER BY policy_domain"
        ).fetchall()
        return [PendingDomain(str(d), _int(n), _int(lo), _int(hi)) for d, n, lo, hi in rows]


# ---- dmarcrpt.db ---------------------------------------------------------------------


class ReportNotFoundError(KeyError):
    """No received report has this id."""


@dataclass(frozen=True, slots=True)
class ReceivedReport:
    """A received report as listed: where it came from and what it covers."""

    id: int
    received_at: int
    from_addr: str
    message_id: str
    org_name: str
    report_id: str
    policy_domain: str
    begin: int
    end: int
    messages: int


@dataclass(frozen=True, slots=True)
class DayTotals:
    """Sums over the received reports whose period begins on `day` (UTC, "YYYY-MM-DD")."""

    day: str
    reports: int
    messages: int
    dkim_pass: int  # messages whose DKIM result was DMARC-aligned pass
    dkim_fail: int
    spf_pass: int
    spf_fail: int
    disposition_none: int
    disposition_quarantine: int
    disposition_reject: int
    disposition_other: int  # e.g. RFC 9990's "pass", or unknown words


def _totals(feedback: Feedback) -> tuple[int, ...]:
    messages = dkim_pass = dkim_fail = spf_pass = spf_fail = 0
    dispositions = {"none": 0, "quarantine": 0, "reject": 0}
    other = 0
    for record in feedback.records:
        n = record.count
        messages += n
        if record.dkim_aligned == "pass":
            dkim_pass += n
        else:
            dkim_fail += n
        if record.spf_aligned == "pass":
            spf_pass += n
        else:
            spf_fail += n
        if record.disposition in dispositions:
            dispositions[record.disposition] += n
        else:
            other += n
    return (
        messages,
        dkim_pass,
        dkim_fail,
        spf_pass,
        spf_fail,
        dispositions["none"],
        dispositions["quarantine"],
        dispositions["reject"],
        other,
    )


def _int(value: object) -> int:
    """An INTEGER column's value."""
    assert isinstance(value, int), value
    return value


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


class ReceivedReportStore(DatabaseStore):
    """dmarcrpt.db: aggregate reports others sent us, one row per report."""

    MIGRATIONS = REPORT_MIGRATIONS
    LOGGER = "mailactors.storage.dmarcdb"

    def add(
        self, feedback: Feedback, *, from_addr: str, message_id: str, received_at: int
    ) -> int | None:
        """Store a report; returns its id, or None if this org's report id is stored already."""
        meta = feedback.metadata
        totals = _totals(feedback)
        with self.db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO report (received_at, from_addr, message_id, org_name, report_id,"
                " policy_domain, begin, end, day, messages, dkim_pass, dkim_fail, spf_pass,"
                " spf_fail, disposition_none, disposition_quarantine, disposition_reject,"
                " disposition_other, feedback)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (org_name, report_id) DO NOTHING RETURNING id",
                (
                    received_at,
                    from_addr,
                    message_id,
                    meta.org_name,
                    meta.report_id,
                    feedback.policy.domain,
                    meta.begin,
                    meta.end,
                    _day(meta.begin),
                    *totals,
                    _feedback_json(feedback),
                ),
            ).fetchone()
        return None if row is None else _int(row[0])

    def list(self, limit: int = 100, offset: int = 0) -> builtins.list[ReceivedReport]:
        """Reports, newest first (by id), `limit` of them from `offset`."""
        rows = self.db.connection.execute(
            "SELECT id, received_at, from_addr, message_id, org_name, report_id, policy_domain,"
            " begin, end, messages FROM report ORDER BY id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        return [
            ReceivedReport(
                id=_int(r[0]),
                received_at=_int(r[1]),
                from_addr=str(r[2]),
                message_id=str(r[3]),
                org_name=str(r[4]),
                report_id=str(r[5]),
                policy_domain=str(r[6]),
                begin=_int(r[7]),
                end=_int(r[8]),
                messages=_int(r[9]),
            )
            for r in rows
        ]

    def get(self, id: int) -> Feedback:
        """The report with this id; raises ReportNotFoundError."""
        row = self.db.connection.execute(
            "SELECT feedback FROM report WHERE id = ?", (id,)
        ).fetchone()
        if row is None:
            raise ReportNotFoundError(id)
        return _feedback_from_json(cast(str, row[0]))

    def totals_per_day(self, domain: str | None = None) -> builtins.list[DayTotals]:
        """Daily sums over all reports, or over the reports about `domain`, by day."""
        rows = self.db.connection.execute(
            "SELECT day, COUNT(*), SUM(messages), SUM(dkim_pass), SUM(dkim_fail),"
            " SUM(spf_pass), SUM(spf_fail), SUM(disposition_none),"
            " SUM(disposition_quarantine), SUM(disposition_reject), SUM(disposition_other)"
            " FROM report WHERE ?1 IS NULL OR policy_domain = ?1 GROUP BY day ORDER BY day",
            (domain,),
        ).fetchall()
        return [DayTotals(str(r[0]), *(_int(v) for v in r[1:])) for r in rows]

    def domains(self) -> builtins.list[str]:
        """Policy domains that reports were received about, sorted."""
        rows = self.db.connection.execute(
            "SELECT DISTINCT policy_domain FROM report ORDER BY policy_domain"
        ).fetchall()
        return [str(r[0]) for r in rows]
