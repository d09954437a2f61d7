"""TLS reporting on a running server (clock injected): deliveries record TLS results,
the day after, the reporter sends one DKIM-signed report per policy domain to its TLSRPT
rua (mailto: to a test SMTP server, https: as a POST) that parsedmarc reads; a report
that cannot be delivered ends quietly in Postmaster/tlsrpt; reports received by mail
are stored and delivered.

The world: a test CA (tls.ca_certs), FakeSmtp MX hosts on 127.0.0.2-4 sharing the
queue's delivery port, a DNS test server with the MX, TLSRPT and MTA-STS records, and an
HTTPS server on 127.0.0.1 taking report POSTs.
"""

from __future__ import annotations

import gzip
import json
import os
import smtplib
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_outbound_e2e import SENDER, Outbound, outbound_server, wait_for  # type: ignore[import-not-found]
from unit.actors.test_delivery import (  # type: ignore[import-not-found]
    DAY,
    NOW,
    Behavior,
    FakeSmtp,
    Received,
    Servers,
    make_cert,
    server_context,
)
from unit.actors.test_reporter import PolicyHttpsServer  # type: ignore[import-not-found]
from unit.protocol.test_pkix import Issued  # type: ignore[import-not-found]

from mailactors.actors.messages import Queued, QueueMessage
from mailactors.actors.queue import DELAY_NOTIFY_ATTEMPTS
from mailactors.actors.reportdbs import PutPolicy
from mailactors.actors.reporter import ReporterTick
from mailactors.net.control import control_request
from mailactors.net.resolver import DnsResolver
from mailactors.protocol import dkim
from mailactors.protocol.dsn import parse_dsn
from mailactors.protocol.tlsrpt import (
    FailureDetails,
    Policy,
    PolicyType,
    TlsResult,
    build_report,
    compose_report_message,
)
from mailactors.storage.files import create_spool_file
from mailactors.storage.tlsrptdb import ReceivedTlsReportStore, ResultEntry, ResultStore

PKIX_IP, STS_IP, REPORTS_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
STS_POLICY = b"version: STSv1\r\nmode: testing\r\nmx: mx.sts.example\r\nmax_age: 604800\r\n"
REPORT_KEY_PEM = dkim.generate_private_key("ed25519")
REPORT_KEY = dkim.load_private_key(REPORT_KEY_PEM)


def _parsedmarc() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parsedmarc

    return parsedmarc


def _zone(https_port: int) -> str:
    return f"""
pkix.example. MX 10 mx.pkix.example.
mx.pkix.example. A {PKIX_IP}
_smtp._tls.pkix.example. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example"
fail.example. MX 10 mx.pkix.example.
_smtp._tls.fail.example. TXT "v=TLSRPTv1; rua=mailto:refuse@reports.example"
slow.example. MX 10 mx.pkix.example.
_smtp._tls.slow.example. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@dead.example"
dead.example. MX 10 mx.dead.example.
mx.dead.example. A 127.0.0.77
sts.example. MX 10 mx.sts.example.
mx.sts.example. A {STS_IP}
_mta-sts.sts.example. TXT "v=STSv1; id=20261124"
_smtp._tls.sts.example. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example,https://localhost:{https_port}/tlsrpt"
reports.example. MX 10 mx.reports.example.
mx.reports.example. A {REPORTS_IP}
localhost. MX 10 mx.reports.example.
_smtp._tls.localhost. TXT "v=TLSRPTv1; rua=mailto:tlsrpt@reports.example"
rep._domainkey.localhost. TXT "{dkim.dns_txt_record(REPORT_KEY)}"
"""


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_cert("TLSRPT E2E CA", ca=True, not_before=NOW - 400 * DAY)


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.close()


def _results(world: Outbound) -> list[ResultEntry]:
    store = ResultStore(world.data_dir / "tlsrptresult.db", readonly=True)
    store.init()
    try:
        return store.pending()
    finally:
        store.close()


def _queue_local_domain_message(world: Outbound) -> None:
    """A message for our own domain through the queue (as a forward would be): the
    Deliverer reaches localhost's MX like any other, but reports nothing about it."""
    spool = create_spool_file(world.data_dir / "tmp", prefix="test-")
    try:
        spool.write(b"From: <mailactors@localhost>\r\nSubject: to ourselves\r\n\r\nhi\r\n")
        spool.finish()
        queued = world.server.actor("queue").ask(
            QueueMessage(0, str(spool.path), SENDER, ("x@localhost",)), timeout=30
        )
    finally:
        spool.discard()
    assert isinstance(queued, Queued) and queued.message_id is not None


def _reports(server: FakeSmtp) -> dict[str, Received]:
    out = {}
    for received in server.received:
        for line in received.data.split(b"\r\n"):
            if line.startswith(b"TLS-Report-Domain: "):
                out[line.split(b": ", 1)[1].decode()] = received
    return out


def _cli(world: Outbound, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailactors", "-config", str(world.config.path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "MAILACTORS_CONF"},
    )


def test_tls_results_reported_the_next_day(tmp_path: Path, ca: Issued, servers: Servers) -> None:
    pkix = servers.start(
        PKIX_IP, Behavior(tls=server_context(tmp_path, make_cert("mx.pkix.example", issuer=ca)))
    )
    expired = make_cert("mx.sts.example", issuer=ca, not_before=NOW - 90 * DAY, not_after=NOW - DAY)
    sts = servers.start(STS_IP, Behavior(tls=server_context(tmp_path, expired)))

    def rcpt(address: str) -> str:
        return "550 5.1.1 no such mailbox" if address.startswith("refuse@") else "250 2.1.5 ok"

    reports = servers.start(REPORTS_IP, Behavior(rcpt=rcpt))
    https = PolicyHttpsServer(server_context(tmp_path, make_cert("localhost", issuer=ca)))
    try:
        with outbound_server(
            tmp_path / "ls",
            _zone(https.port),
            delivery_port=servers.port,
            ca=ca,
            dkim_pem=REPORT_KEY_PEM,
            tls_reports=True,
        ) as world:
            _deliver_report_and_check(world, pkix, sts, reports, https)
    finally:
        https.close()


def _deliver_report_and_check(
    world: Outbound, pkix: FakeSmtp, sts: FakeSmtp, reports: FakeSmtp, https: PolicyHttpsServer
) -> None:
    start = world.clock()
    # sts.example's MTA-STS policy (mode testing) is in the cache, fetched just now.
    world.server.actor("db:mtasts").ask(
        PutPolicy("sts.example", "20261124", STS_POLICY, datetime.fromtimestamp(start, UTC)),
        timeout=30,
    )
    world.submit(
        ["a@pkix.example", "b@sts.example", "c@fail.example", "d@slow.example"], "tls results"
    )
    _queue_local_domain_message(world)
    wait_for(lambda: len(pkix.received) == 3 and len(sts.received) == 1, "the deliveries")
    wait_for(lambda: len(reports.received) == 1, "the delivery to localhost's MX")
    assert all(r.tls for r in pkix.received + sts.received)
    assert not reports.received[0].tls
    wait_for(lambda: world.queue() == [], "an empty queue")

    # The results, one per policy domain; localhost is ours: recorded, not reported.
    entries = wait_for(lambda: len(_results(world)) == 5 and _results(world), "the TLS results")
    by_domain = {e.policy_domain: e for e in entries}
    assert sorted(by_domain) == [
        "fail.example",
        "localhost",
        "pkix.example",
        "slow.example",
        "sts.example",
    ]
    assert not by_domain["localhost"].send_report
    assert by_domain["sts.example"].result.policy.policy_type is PolicyType.STS
    shown = _cli(world, "tlsrpt", "results")
    assert shown.returncode == 0, shown.stderr
    day = datetime.fromtimestamp(start, UTC).date()
    lines = shown.stdout.splitlines()
    assert f"{day} pkix.example no-policy-found: 1 successful, 0 failed" in lines
    assert f"{day} sts.example sts: 0 successful, 1 failed" in lines
    assert f"  certificate-expired x1 mx=mx.sts.example ip={STS_IP}" in lines
    assert f"{day} localhost no-policy-found: 0 successful, 1 failed (not reported)" in lines

    # The next UTC day (after the random start delay), the reporter's ticks send one
    # report per reported domain, spread a few minutes apart.
    next_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    world.clock.set(next_day.timestamp() + 601)
    reporter = world.server.actor("reporter")
    for _ in range(4):
        reporter.ask(ReporterTick(), timeout=60)
        world.clock.offset += 301
    got = wait_for(lambda: len(_reports(reports)) == 2 and _reports(reports), "two reports")
    assert sorted(got) == ["pkix.example", "sts.example"]
    assert all(r.recipients == ["tlsrpt@reports.example"] for r in got.values())
    # The report for fail.example was refused: its DSN is kept quietly for the postmaster.
    (dsn_info, dsn_data), *_ = wait_for(
        lambda: world.mailbox("Postmaster/tlsrpt"), "the failed report's DSN"
    )
    assert "\\Seen" in dsn_info.flags
    dsn = parse_dsn(dsn_data)
    assert [(r.address, r.action, r.status) for r in dsn.recipients] == [
        ("refuse@reports.example", "failed", "5.1.1")
    ]
    assert [m["kind"] for m in world.queue()] == ["tls-report"]
    # The report for slow.example waits for a dead host: retried, but nobody hears of
    # the delay (only a failure DSN would come, quietly, after 4 days).
    for attempts in range(2, DELAY_NOTIFY_ATTEMPTS + 2):
        control_request(world.data_dir, "queue.kick")
        wait_for(
            lambda a=attempts: [m["recipients"][0]["attempts"] for m in world.queue()] == [a],
            f"report delivery attempt {attempts}",
        )
    (waiting,) = world.queue()
    assert waiting["kind"] == "tls-report"
    assert waiting["recipients"][0]["address"] == "tlsrpt@dead.example"
    time.sleep(0.3)
    assert len(world.mailbox("Postmaster/tlsrpt")) == 1
    assert not any(b"delivery-status" in d for _, d in world.mailbox("Inbox"))
    # The https: destination got the same report as a POST.
    wait_for(lambda: https.posts, "the POST")
    ((path, content_type, body),) = https.posts
    assert (path, content_type) == ("/tlsrpt", "application/tlsrpt+gzip")
    posted = json.loads(gzip.decompress(body))
    assert [p["policy"]["policy-domain"] for p in posted["policies"]] == ["sts.example"]
    # RFC 8460 4.3 "mx-host": the policy's MX patterns (parsedmarc reads an older name).
    assert posted["policies"][0]["policy"]["mx-host"] == ["mx.sts.example"]
    assert "certificate-expired" in json.dumps(posted["policies"][0]["failure-details"])

    # What was reported is gone. What is left was never to be reported: our own domain,
    # and the sessions that delivered the reports (RFC 8460 5.3 "not reported"), except
    # fail.example's and slow.example's results: their reports were queued, which is
    # what counts (the queue, not the reporter, retries them).
    def leftover() -> list[ResultEntry] | None:
        entries = _results(world)
        domains = {e.policy_domain for e in entries}
        reported = {"pkix.example", "sts.example", "fail.example", "slow.example"}
        return None if domains & reported else entries

    remaining = wait_for(leftover, "reported results removed")
    assert {e.policy_domain for e in remaining} == {"localhost", "reports.example"}
    assert not any(e.send_report for e in remaining)

    # Every report is DKIM-signed by the host's domain.
    resolver = DnsResolver([world.dns.nameserver])
    for received in got.values():
        data = received.data
        header = data[: data.index(b"\r\n\r\n")]
        assert b"\r\nTLS-Required: No\r\n" in header
        assert b"\r\nTLS-Report-Submitter: localhost\r\n" in header
        signed = data[data.index(b"DKIM-Signature:") :]
        verdicts = dkim.verify(signed, resolver, now=int(time.time()))
        assert [(v.status, v.domain, v.selector) for v in verdicts] == [
            ("pass", "localhost", "rep")
        ]
    _check_parsed(got, day)


def _check_parsed(got: dict[str, Received], day: Any) -> None:
    parsedmarc = _parsedmarc()
    pkix = parsedmarc.parse_report_email(got["pkix.example"].data, offline=True)
    assert pkix["report_type"] == "smtp_tls"
    report = pkix["report"]
    assert report["organization_name"] == "localhost"
    assert report["contact_info"] == "postmaster@localhost"
    assert report["begin_date"].startswith(day.isoformat())
    (policy,) = report["policies"]
    assert policy["policy_domain"] == "pkix.example"
    assert policy["policy_type"] == "no-policy-found"
    assert (policy["successful_session_count"], policy["failed_session_count"]) == (1, 0)
    assert policy.get("failure_details", []) == []

    sts = parsedmarc.parse_report_email(got["sts.example"].data, offline=True)["report"]
    (policy,) = sts["policies"]
    assert policy["policy_domain"] == "sts.example"
    assert policy["policy_type"] == "sts"
    assert "mode: testing" in policy["policy_strings"]
    assert (policy["successful_session_count"], policy["failed_session_count"]) == (0, 1)
    (detail,) = policy["failure_details"]
    assert detail["result_type"] == "certificate-expired"
    assert detail["failed_session_count"] == 1
    assert detail["receiving_mx_hostname"] == "mx.sts.example"
    assert detail["receiving_ip"] == STS_IP


# --- reports we receive ---------------------------------------------------------------------


def test_incoming_report_is_stored_and_delivered(tmp_path: Path) -> None:
    day = datetime.now(UTC).date() - timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), UTC)
    result = TlsResult(
        Policy(PolicyType.STS, "localhost", ("version: STSv1", "mode: enforce"), ("localhost",)),
        successful=7,
        failed=2,
        failure_details=(
            FailureDetails(
                "certificate-expired",
                sending_mta_ip="192.0.2.1",
                receiving_mx_hostname="localhost",
                receiving_ip="127.0.0.1",
                failed_session_count=2,
            ),
        ),
    )
    report = build_report(
        [result],
        organization="Receiver Org",
        contact="tls@receiver.example",
        report_id="r-42@receiver.example",
        day_start=start,
        day_end=start + timedelta(days=1, seconds=-1),
    )
    message = compose_report_message(
        report,
        policy_domain="localhost",
        from_addr="noreply@receiver.example",
        to_addrs=["tls-reports@localhost"],
        submitter="receiver.example",
        message_id="r-42@receiver.example",
        now=datetime.now(UTC),
    )
    with outbound_server(tmp_path / "ls", "", delivery_port=9) as world:
        with smtplib.SMTP("127.0.0.1", world.server.port("smtp"), timeout=10) as c:
            c.sendmail("noreply@receiver.example", ["tls-reports@localhost"], message)

        def stored() -> list[Any]:
            store = ReceivedTlsReportStore(world.data_dir / "tlsrpt.db", readonly=True)
            store.init()
            try:
                return store.list_reports()
            finally:
                store.close()

        (info,) = wait_for(stored, "the stored report")
        delivered = wait_for(lambda: world.mailbox("TLSRPT"), "the report in its mailbox")
    assert info.organization == "Receiver Org" and info.report_id == "r-42@receiver.example"
    assert (info.successful, info.failed) == (7, 2)
    assert info.policy_domains == ("localhost",)
    assert info.from_addr == "noreply@receiver.example"
    assert len(delivered) == 1 and b"TLS-Report-Domain: localhost" in delivered[0][1]
    assert world.mailbox("Inbox") == []
