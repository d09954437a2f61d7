"""gentestdata: write a deterministic data directory for upgrade and backup tests.

Accounts with mailboxes and messages (flagged, expunged, copied), queued messages,
DMARC evaluations and received DMARC reports, TLS results and received TLS
reports, a cached MTA-STS policy. Each kind of database has its own generator in
GENERATORS, called in order with the data directory; running them twice gives the same accounts, mailboxes,
uids, flags, modseqs and message bytes. Clock-derived values (UIDVALIDITY) are
pinned so they too are the same every time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from mailactors.protocol.dmarcrpt import (
    DkimAuth,
    Evaluation,
    Feedback,
    PolicyPublished,
    ReportMetadata,
    ReportRecord,
    SpfAuth,
)
from mailactors.protocol.sasl.scram import derive_credentials
from mailactors.protocol.tlsrpt import FailureDetails, PolicyType, Report, TlsResult
from mailactors.protocol.tlsrpt import Policy as TlsPolicy
from mailactors.storage.account import INBOX, AccountStore, DeliveryRequest
from mailactors.storage.dmarcdb import EvaluationStore, ReceivedReportStore, StoredEvaluation
from mailactors.storage.files import create_spool_file
from mailactors.storage.mtastsdb import PolicyCache
from mailactors.storage.queue import QueueRequest, QueueStore
from mailactors.storage.tlsrptdb import ReceivedTlsReportStore, ResultEntry, ResultStore

# The localserve account comes first, so `localserve` can serve a generated directory.
TEST_ACCOUNTS = ("mailactors", "alice", "bob")

# The password every generated account gets (SCRAM-SHA-256 hash, fixed salt).
TEST_PASSWORD = "mailactors"

# The received time of the first generated message; each next one is a minute later.
_FIRST_RECEIVED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

# UIDVALIDITY normally comes from the clock (see AccountStore.init); pinned here.
_FIRST_UIDVALIDITY = 1000

Generator = Callable[[Path, logging.Logger], None]


class GenTestDataError(Exception):
    """The target directory cannot be used (it exists and is not empty)."""


@dataclass(frozen=True, slots=True)
class _Planned:
    mailbox: str
    subject: str
    body_lines: int
    flags: tuple[str, ...] = ()


def sample_message(account: str, index: int, subject: str, body_lines: int) -> bytes:
    """A small, deterministic RFC 5322 message."""
    date = (_FIRST_RECEIVED + timedelta(minutes=index)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    head = (
        f"From: Sender {index} <sender{index}@example.org>\r\n"
        f"To: {account}@localhost\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <{account}.{index}@gentestdata.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
    )
    body = "".join(f"line {n} of message {index} for {account}\r\n" for n in range(body_lines))
    return (head + body).encode()


def _plan(account: str) -> list[_Planned]:
    planned = [
        _Planned(INBOX, "hello", 3),
        _Planned(INBOX, "flagged one", 10, ("\\Flagged",)),
        _Planned(INBOX, "read one", 1, ("\\Seen",)),
        _Planned(INBOX, "to be expunged", 5, ("\\Deleted",)),
        _Planned(INBOX, "answered and keyword", 40, ("\\Answered", "$Important")),
        _Planned("Archive", "archived", 7, ("\\Seen",)),
        _Planned("Lists/Python", "a list message", 200),
        _Planned("Lists/Python", "another, expunged", 2, ("\\Deleted", "\\Seen")),
    ]
    if account == TEST_ACCOUNTS[0]:
        planned += [_Planned(INBOX, f"bulk {n}", n % 13, ("\\Flagged",) if n % 4 == 0 else ())
                    for n in range(12)]
    return planned


def generate_accounts(data_dir: Path, log: logging.Logger) -> None:
    """accounts/<name>/: default mailboxes plus Lists/Python, messages with flags,
    expunged messages, a COPY (two rows sharing a hard-linked file), a password."""
    spool_dir = data_dir / "tmp"
    spool_dir.mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(TEST_ACCOUNTS):
        store = AccountStore(data_dir / "accounts" / name, log)
        store.init()
        try:
            with store.db.transaction() as conn:
                conn.execute("UPDATE uidvalidity SET next = ?", (_FIRST_UIDVALIDITY + 100 * n,))
            store.ensure_default_mailboxes()
            store.create_mailbox("Lists/Python")
            store.subscribe("Lists/Python")
            for index, planned in enumerate(_plan(name)):
                data = sample_message(name, index, planned.subject, planned.body_lines)
                with create_spool_file(spool_dir) as spool:
                    spool.write(data)
                    spool.finish()
                    request = DeliveryRequest(
                        planned.mailbox,
                        spool.path,
                        _FIRST_RECEIVED + timedelta(minutes=index),
                        planned.flags,
                    )
                    outcome = store.deliver(request)
                if outcome.error is not None:
                    raise GenTestDataError(f"{name}: delivery failed: {outcome.error}")
            inbox = store.mailbox(INBOX)
            assert inbox is not None
            store.copy_messages(inbox.id, [1, 2], "Archive")
            for mailbox in store.list_mailboxes():
                store.expunge(mailbox.id)
            creds = derive_credentials(TEST_PASSWORD, f"gentestdata-{name}".encode(), 4096)
            store.set_password_credentials(
                creds.salt, creds.iterations, creds.stored_key, creds.server_key
            )
        finally:
            store.close()


def _ms(dt: datetime) -> int:
    return int(dt.timestamp()) * 1000


def generate_queue(data_dir: Path, log: logging.Logger) -> None:
    """queue/: outgoing messages, one with a failed attempt, one DSN, one held."""
    spool_dir = data_dir / "tmp"
    spool_dir.mkdir(parents=True, exist_ok=True)
    store = QueueStore(data_dir / "queue", log)
    store.init()
    try:
        requests = [
            QueueRequest("mailactors@localhost", ("rcpt0@example.net", "rcpt1@example.com"),
                         account="mailactors"),
            QueueRequest("alice@localhost", ("someone@example.org",), account="alice",
                         envelope_id="gentestdata-1"),
            QueueRequest("", ("bounced@example.net",), kind="dsn"),
        ]
        ids = []
        for n, request in enumerate(requests):
            data = sample_message("queue", n, f"queued {n}", 4 + n)
            with create_spool_file(spool_dir) as spool:
                spool.write(data)
                spool.finish()
                ids.append(store.enqueue(spool.path, request, _ms(_FIRST_RECEIVED) + n * 60_000))
        first = store.recipients(ids[0])
        store.record_failure(
            [first[0].id],
            now=_ms(_FIRST_RECEIVED) + 300_000,
            next_attempt=_ms(_FIRST_RECEIVED) + 900_000,
            error="451 4.3.0 try again later",
        )
        store.hold([r.id for r in store.recipients(ids[1])])
    finally:
        store.close()


def _sample_policy(domain: str) -> PolicyPublished:
    return PolicyPublished(domain=domain, adkim="r", aspf="s", p="reject", sp=None, pct=100,
                           fo="0")


def generate_dmarc(data_dir: Path, log: logging.Logger) -> None:
    """dmarceval.db: evaluations waiting to be reported; dmarcrpt.db: a received report."""
    start = int(_FIRST_RECEIVED.timestamp())
    evaluations = EvaluationStore(data_dir / "dmarceval.db", log)
    evaluations.init()
    try:
        for n, (domain, aligned) in enumerate(
            [("example.org", "pass"), ("example.org", "fail"), ("example.com", "pass")]
        ):
            evaluations.add(
                StoredEvaluation(
                    evaluated_at=start + 60 * n,
                    policy=_sample_policy(domain),
                    evaluation=Evaluation(
                        source_ip=f"192.0.2.{n + 1}",
                        disposition="none" if aligned == "pass" else "reject",
                        dkim_aligned="pass" if aligned == "pass" else "fail",
                        spf_aligned="fail",
                        reasons=(),
                        header_from=domain,
                        envelope_from=domain,
                        envelope_to="localhost",
                        dkim=(DkimAuth(domain, "sel1", aligned),),
                        spf=(SpfAuth(domain, "mfrom", "softfail"),),
                    ),
                    rua=(f"mailto:dmarc@{domain}",),
                )
            )
    finally:
        evaluations.close()
    reports = ReceivedReportStore(data_dir / "dmarcrpt.db", log)
    reports.init()
    try:
        feedback = Feedback(
            version="1.0",
            metadata=ReportMetadata(
                org_name="example.net", email="dmarc-reports@example.net",
                extra_contact_info=None, report_id="gentestdata-1", begin=start - 86400,
                end=start,
            ),
            policy=_sample_policy("localhost"),
            records=(
                ReportRecord(
                    source_ip="198.51.100.7", count=3, disposition="none", dkim_aligned="pass",
                    spf_aligned="pass", reasons=(), header_from="localhost",
                    envelope_from="localhost", envelope_to="example.net",
                    dkim=(DkimAuth("localhost", "mailactors", "pass"),),
                    spf=(SpfAuth("localhost", "mfrom", "pass"),),
                ),
            ),
        )
        reports.add(feedback, from_addr="dmarc-reports@example.net",
                    message_id="<dmarc.1@example.net>", received_at=start + 3600)
    finally:
        reports.close()


def generate_tls(data_dir: Path, log: logging.Logger) -> None:
    """tlsrptresult.db: results of our deliveries; tlsrpt.db: a received report;
    mtasts.db: a cached MTA-STS policy."""
    day = _FIRST_RECEIVED.date()
    sts = TlsPolicy(PolicyType.STS, "example.net", ("version: STSv1", "mode: enforce",
                    "mx: mx.example.net", "max_age: 86400"), ("mx.example.net",))
    results = ResultStore(data_dir / "tlsrptresult.db", log)
    results.init()
    try:
        results.add(ResultEntry(day, "example.net", False, True, TlsResult(sts, successful=4)))
        results.add(
            ResultEntry(
                day, "example.com", False, True,
                TlsResult(
                    TlsPolicy(PolicyType.NO_POLICY_FOUND, "example.com"),
                    failed=1,
                    failure_details=(
                        FailureDetails("starttls-not-supported",
                                       receiving_mx_hostname="mx.example.com"),
                    ),
                ),
            )
        )
    finally:
        results.close()
    received = ReceivedTlsReportStore(data_dir / "tlsrpt.db", log)
    received.init()
    try:
        start, end = datetime.combine(day, datetime.min.time(), UTC), _FIRST_RECEIVED
        report = Report(
            organization_name="example.net",
            start=start - timedelta(days=1),
            end=start,
            contact_info="tlsrpt@example.net",
            report_id="gentestdata-tls-1",
            policies=(TlsResult(TlsPolicy(PolicyType.NO_POLICY_FOUND, "localhost"),
                                successful=7),),
        )
        received.add(report, from_addr="tlsrpt@example.net", received_at=end, via="mail")
    finally:
        received.close()
    cache = PolicyCache(data_dir / "mtasts.db", log)
    cache.init()
    try:
        cache.put(
            "example.net",
            "20240102T000000",
            b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.net\r\nmax_age: 86400\r\n",
            fetched_at=_FIRST_RECEIVED,
        )
    finally:
        cache.close()


# One generator per kind of database, in the order they run. A module adding a
# database adds its own.
GENERATORS: tuple[Generator, ...] = (generate_accounts, generate_queue, generate_dmarc, generate_tls)


def generate_test_data(data_dir: Path, log: logging.Logger) -> None:
    """Write the test data directory; refuses a directory that is not empty."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise GenTestDataError(f"{data_dir} exists and is not an empty directory")
    data_dir.mkdir(parents=True, exist_ok=True)
    for generate in GENERATORS:
        generate(data_dir, log)


def run_gentestdata(data_dir: Path, stdout: TextIO, stderr: TextIO) -> int:
    """The `gentestdata DIR` command: returns the exit code."""
    try:
        generate_test_data(data_dir, logging.getLogger("mailactors.gentestdata"))
    except (GenTestDataError, OSError) as exc:
        print(f"gentestdata: {exc}", file=stderr)
        return 1
    print(f"test data written to {data_dir}", file=stdout)
    return 0
