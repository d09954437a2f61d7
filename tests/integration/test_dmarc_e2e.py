"""End to end: a DKIM-signed message from a domain with SPF, DKIM and DMARC records is
received and checked, its evaluation stored, and the next hourly run (clock injected)
sends an aggregate report that parsedmarc reads."""

from __future__ import annotations

import dataclasses
import logging
import smtplib
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import read_mailbox, with_free_ports, with_test_dns  # type: ignore[import-not-found]
from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]

from mailactors.actors.localserve import ensure_local_password, ensure_localserve_files
from mailactors.actors.reporter import ReporterTick
from mailactors.actors.supervisor import start_server
from mailactors.conf import load_config
from mailactors.conf.domainauth import DkimSelector, DomainDkim
from mailactors.protocol import dkim
from mailactors.protocol.authres import parse_authentication_results
from mailactors.storage.dmarcdb import EvaluationStore

log = logging.getLogger("mailactors.tests")


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _parsedmarc() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parsedmarc

    return parsedmarc


def _wait_for(predicate: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _pending(data_dir: Path) -> list[Any]:
    store = EvaluationStore(data_dir / "dmarceval.db", readonly=True)
    store.init()
    try:
        return store.pending()
    finally:
        store.close()


def test_received_checked_evaluated_and_reported(tmp_path: Path) -> None:
    sender_key = dkim.load_private_key(dkim.generate_private_key("ed25519"))
    report_key_pem = dkim.generate_private_key("ed25519")
    report_key = dkim.load_private_key(report_key_pem)
    zone = f"""
example.org. TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.example.org. TXT "v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.org"
sel._domainkey.example.org. TXT "{dkim.dns_txt_record(sender_key)}"
rep._domainkey.localhost. TXT "{dkim.dns_txt_record(report_key)}"
"""
    with DnsTestServer(zone) as dns:
        conf_path = ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log)
        (tmp_path / "ls" / "rep.pem").write_bytes(report_key_pem)
        config = with_test_dns(with_free_ports(load_config(conf_path)), dns.nameserver)
        # Reports on, and a DKIM key for the reporting domain (our host name).
        local = config.domains.domains["localhost"]
        selector = DkimSelector("rep", tmp_path / "ls" / "rep.pem")
        domains = dataclasses.replace(
            config.domains,
            domains={
                "localhost": dataclasses.replace(
                    local, dkim=DomainDkim(selectors={"rep": selector}, sign=("rep",))
                )
            },
        )
        config = dataclasses.replace(
            config,
            static=dataclasses.replace(config.static, no_outgoing_dmarc_reports=False),
            domains=domains,
        )
        clock = Clock()
        server = start_server(config, clock=clock)
        try:
            ensure_local_password(server, config)
            message = (
                b"From: Alice <alice@example.org>\r\n"
                b"To: bob@localhost\r\n"
                b"Subject: checked\r\n"
                b"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n"
                b"Message-ID: <e2e@example.org>\r\n"
                b"\r\n"
                b"Hello.\r\n"
            )
            signed = (
                dkim.sign(
                    message,
                    domain="example.org",
                    selector="sel",
                    key=sender_key,
                    now=int(time.time()),
                )
                + message
            )
            with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as c:
                c.ehlo("mail.example.org")
                c.sendmail("alice@example.org", ["bob@localhost"], signed)

            # 1. The Authentication-Results field of our checks.
            stored = [data for _, data in read_mailbox(config, "mailactors", "Inbox")]
            assert len(stored) == 1
            field = stored[0].split(b"\r\nReceived: ", 1)[0].decode()
            name, _, value = field.partition(":")
            assert name == "Authentication-Results"
            results = parse_authentication_results(value)
            assert results.authserv_id == "localhost"
            assert {(r.method, r.result) for r in results.results} == {
                ("spf", "pass"),
                ("dkim", "pass"),
                ("dmarc", "pass"),
            }

            # 2. The evaluation waits in dmarceval.db.
            data_dir = config.static.data_dir
            pending = _wait_for(lambda: _pending(data_dir), "the stored evaluation")
            assert [(p.policy_domain, p.evaluations) for p in pending] == [("example.org", 1)]

            # 3. An hour later (the clock moves, nothing sleeps), the hourly run sends the report.
            clock.offset = 2 * 3600
            server.actor("reporter").ask(ReporterTick(), timeout=30)

            def report_arrived() -> bytes | None:
                for _, data in read_mailbox(config, "mailactors", "Inbox"):
                    if b"Subject: Report Domain: example.org" in data:
                        return data
                return None

            report = _wait_for(report_arrived, "the report in the inbox")
            assert _pending(data_dir) == []
        finally:
            server.stop()

    # The report is DKIM-signed by our reporting domain (checked with our verifier
    # through the same DNS data) and parsedmarc reads it.
    header_end = report.index(b"\r\n\r\n")
    assert b"DKIM-Signature:" in report[:header_end]
    original = report[report.index(b"DKIM-Signature:") :]
    with DnsTestServer(zone) as dns:
        from mailactors.net.resolver import DnsResolver

        verdicts = dkim.verify(original, DnsResolver([dns.nameserver]), now=int(time.time()))
    assert [(v.status, v.domain, v.selector) for v in verdicts] == [("pass", "localhost", "rep")]

    parsed = _parsedmarc().parse_report_email(report, offline=True)
    assert parsed["report_type"] == "aggregate"
    agg = parsed["report"]
    assert agg["policy_published"]["domain"] == "example.org"
    assert agg["policy_published"]["p"] == "reject"
    (record,) = agg["records"]
    assert record["count"] == 1
    assert record["source"]["ip_address"] == "127.0.0.1"
    assert record["policy_evaluated"]["disposition"] == "none"
    assert record["policy_evaluated"]["dkim"] == "pass"
    assert record["policy_evaluated"]["spf"] == "pass"
    assert record["identifiers"]["header_from"] == "example.org"
    assert [(d["domain"], d["selector"], d["result"]) for d in record["auth_results"]["dkim"]] == [
        ("example.org", "sel", "pass")
    ]
    begin = datetime.fromisoformat(agg["report_metadata"]["begin_date"].replace(" ", "T"))
    assert begin.replace(tzinfo=UTC) <= datetime.now(UTC)
