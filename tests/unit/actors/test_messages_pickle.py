"""Actor messages pickle: an actor can move to another process without changing callers."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, date, datetime

import pytest

from mailactors.actors import messages
from mailactors.actors.inbound import (
    AddDmarcReport,
    AddEvaluation,
    AddTlsReport,
    InboundChecked,
    InboundJob,
)
from mailactors.actors.queue import DeliveryJob
from mailactors.actors.reportdbs import AddTlsResults, GetPolicy, PutPolicy, TouchPolicy
from mailactors.actors.reporter import (
    DeleteNonePolicy,
    RemoveEvaluations,
    RemoveTlsResults,
    ReporterTick,
    SendReports,
)
from mailactors.protocol.dmarcrpt import (
    Evaluation,
    Feedback,
    PolicyPublished,
    ReportMetadata,
    SpfAuth,
    records_from_evaluations,
)
from mailactors.protocol.tlsrpt import FailureDetails, Policy, PolicyType, TlsResult, build_report
from mailactors.storage.dmarcdb import StoredEvaluation
from mailactors.storage.queue import QueuedMessage, QueuedRecipient
from mailactors.storage.tlsrptdb import ResultEntry

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
POLICY = PolicyPublished("example.org", "r", "r", "reject", None, 100, "0")
EVALUATION = Evaluation(
    "192.0.2.1",
    "none",
    "pass",
    "pass",
    (),
    "example.org",
    "example.org",
    "localhost",
    (),
    (SpfAuth("example.org", "mfrom", "pass"),),
)
FEEDBACK = Feedback(
    "1.0",
    ReportMetadata("org", "a@b.example", None, "id", 1, 2),
    POLICY,
    records_from_evaluations([EVALUATION]),
)
TLS = TlsResult.failure(
    Policy(PolicyType.STS, "example.org", ("version: STSv1",), ("mx.example.org",)),
    FailureDetails("certificate-expired", receiving_mx_hostname="mx.example.org"),
)
REPORT = build_report(
    [TLS], organization="o", contact="c@o.example", report_id="r@o", day_start=NOW, day_end=NOW
)
STORED = StoredEvaluation(1, POLICY, EVALUATION, ("mailto:d@example.org",))
QMSG = QueuedMessage(1, 0, "a@b.example", 10, "mail", None, False, False, False, False, None)
QRCPT = QueuedRecipient(2, 1, "c@d.example", "d.example", 0, 0, None, None, False, False)

SAMPLES = [
    messages.QueueMessage(1, "/tmp/x", "a@b.example", ("c@d.example",), "urn:x"),
    messages.Queued(1, 5),
    messages.QueueTick(),
    messages.RecipientOutcome(2, "delivered", 250, "2.0.0", "ok", "mx"),
    messages.DeliveryAttempted(3, (messages.RecipientOutcome(2, "temporary"),)),
    messages.QueueControl("kick", (1, 2)),
    DeliveryJob(1, QMSG, (QRCPT,), "/tmp/q", "d.example"),
    InboundJob(1, "", b"data", "192.0.2.1", "helo", "a@b.example", ("c@d.example",), False, True),
    InboundChecked(1, b"Authentication-Results: x; none\r\n", "none", "", STORED, FEEDBACK, REPORT),
    AddEvaluation(STORED),
    AddDmarcReport(FEEDBACK, "a@b.example", "id", 1),
    AddTlsReport(REPORT, "a@b.example", 1),
    AddTlsResults((ResultEntry(date(2026, 11, 24), "example.org", False, True, TLS),)),
    GetPolicy("example.org"),
    PutPolicy("example.org", "id1", b"version: STSv1\r\n", NOW),
    TouchPolicy("example.org", NOW),
    RemoveEvaluations("example.org", 10),
    RemoveTlsResults("example.org", date(2026, 11, 24)),
    DeleteNonePolicy("example.org"),
    ReporterTick(),
    SendReports("dmarc"),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: object) -> None:
    assert dataclasses.is_dataclass(message)
    assert type(message).__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(message)) == message
