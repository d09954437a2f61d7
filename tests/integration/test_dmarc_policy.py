"""DMARC on a running server: policies applied, reports received and stored, submissions
DKIM-signed, report failures kept quietly for the postmaster, and the dmarc commands."""

from __future__ import annotations

import logging
import os
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import read_mailbox, with_free_ports  # type: ignore[import-not-found]
from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]

from mailactors.actors.localserve import ensure_local_password, ensure_localserve_files
from mailactors.actors.supervisor import RunningServer, start_server
from mailactors.conf import Config, load_config
from mailactors.net.resolver import DnsResolver
from mailactors.protocol import dkim
from mailactors.protocol.dmarcrpt import (
    Evaluation,
    Feedback,
    PolicyPublished,
    ReportMetadata,
    SpfAuth,
    compose_report_message,
    records_from_evaluations,
)
from mailactors.storage.dmarcdb import EvaluationStore, ReceivedReportStore

log = logging.getLogger("mailactors.tests")
KEY_PEM = dkim.generate_private_key("ed25519")
KEY = dkim.load_private_key(KEY_PEM)
ZONE = f"""
reject.example. TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.reject.example. TXT "v=DMARC1; p=reject; rua=mailto:reports-permerror@reject.example"
quarantine.example. TXT "v=spf1 ip4:192.0.2.1 -all"
_dmarc.quarantine.example. TXT "v=DMARC1; p=quarantine"
sel._domainkey.localhost. TXT "{dkim.dns_txt_record(KEY)}"
"""


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _config(tmp_path: Path, nameserver: str) -> Config:
    conf_path = ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log)
    (tmp_path / "ls" / "sel.pem").write_bytes(KEY_PEM)
    domains_conf = tmp_path / "ls" / "domains.conf"
    text = domains_conf.read_text()
    anchor = "    description: Local development domain\n"
    assert anchor in text
    domains_conf.write_text(
        text.replace(
            anchor,
            anchor
            + "    dkim: {selectors: {sel: {private_key_file: sel.pem}}}\n"
            + "    dmarc: {localpart: dmarc-reports, account: mailactors, mailbox: DMARC}\n",
        )
    )
    conf_path.write_text(
        conf_path.read_text().replace(
            "no_outgoing_dmarc_reports: true", "no_outgoing_dmarc_reports: false"
        )
        + f'dns:\n  nameservers: ["{nameserver}"]\n'
    )
    return with_free_ports(load_config(conf_path))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Config, RunningServer, Clock, str]]:
    with DnsTestServer(ZONE) as dns:
        config = _config(tmp_path, dns.nameserver)
        clock = Clock()
        server = start_server(config, clock=clock)
        try:
            ensure_local_password(server, config)
            yield config, server, clock, dns.nameserver
        finally:
            server.stop()


def _mail(sender_domain: str, subject: str) -> bytes:
    return (
        f"From: someone@{sender_domain}\r\nTo: bob@localhost\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@{sender_domain}>\r\n\r\nbody\r\n"
    ).encode()


def _wait(predicate: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _mailbox(config: Config, name: str) -> list[tuple[Any, bytes]]:
    try:
        return read_mailbox(config, "mailactors", name)
    except AssertionError:
        return []


def test_reject_and_quarantine(world: tuple[Config, RunningServer, Clock, str]) -> None:
    config, server, _, _ = world
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as c:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            c.sendmail("a@reject.example", ["bob@localhost"], _mail("reject.example", "spoof"))
        assert refused.value.smtp_code == 550
        assert b"5.7.1" in refused.value.smtp_error
        c.sendmail("a@quarantine.example", ["bob@localhost"], _mail("quarantine.example", "junk"))
    junk = _mailbox(config, "Junk")
    assert len(junk) == 1 and b"Subject: junk" in junk[0][1]
    assert b"dmarc=fail" in junk[0][1]
    assert not any(b"Subject: spoof" in data for _, data in _mailbox(config, "Inbox"))
    # The rejected message's evaluation waits for its report (p=reject has a rua).
    store = EvaluationStore(config.static.data_dir / "dmarceval.db", readonly=True)
    store.init()
    try:
        pending = _wait(store.pending, "the evaluation")
    finally:
        store.close()
    assert [(p.policy_domain, p.evaluations) for p in pending] == [("reject.example", 1)]


def test_failed_report_delivery_goes_quietly_to_postmaster(
    world: tuple[Config, RunningServer, Clock, str],
) -> None:
    config, server, clock, _ = world
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as c:
        with pytest.raises(smtplib.SMTPDataError):
            c.sendmail("a@reject.example", ["bob@localhost"], _mail("reject.example", "spoof"))
    clock.offset = 2 * 3600
    result = subprocess.run(
        [sys.executable, "-m", "mailactors", "-config", str(config.path), "dmarc", "sendreports"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MAILACTORS_CONF": ""},
    )
    # The CLI process reads the same config; its data dir is the running server's.
    assert result.returncode == 0, result.stderr
    assert "reject.example" in result.stdout and "queued" in result.stdout
    # localserve's own listener refuses "...permerror" recipients: the report fails and
    # its DSN lands, already seen, in the postmaster's submailbox; no delay DSN anywhere.
    dsns = _wait(lambda: _mailbox(config, "Postmaster/dmarc"), "the failure DSN")
    info, data = dsns[0]
    assert "\\Seen" in info.flags
    assert b"multipart/report" in data and b"report-type=delivery-status" in data
    assert b"reports-permerror@reject.example" in data
    assert not any(b"delivery-status" in d for _, d in _mailbox(config, "Inbox"))


def test_incoming_report_is_stored_and_delivered(
    world: tuple[Config, RunningServer, Clock, str],
) -> None:
    config, server, _, _ = world
    evaluation = Evaluation(
        source_ip="127.0.0.1",
        disposition="none",
        dkim_aligned="pass",
        spf_aligned="pass",
        reasons=(),
        header_from="localhost",
        envelope_from="localhost",
        envelope_to="example.net",
        dkim=(),
        spf=(SpfAuth("localhost", "mfrom", "pass"),),
    )
    feedback = Feedback(
        version="1.0",
        metadata=ReportMetadata(
            "Example Receiver", "noreply@receiver.example", None, "r-1", 1767225600, 1767229199
        ),
        policy=PolicyPublished("localhost", "r", "r", "none", "none", 100, "0"),
        records=records_from_evaluations([evaluation] * 3),
    )
    message = compose_report_message(
        feedback,
        from_addr="noreply@receiver.example",
        to_addrs=["dmarc-reports@localhost"],
        submitter="receiver.example",
        message_id="r-1@receiver.example",
        now=__import__("datetime").datetime.now(__import__("datetime").UTC),
    )
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as c:
        c.sendmail("noreply@receiver.example", ["dmarc-reports@localhost"], message)
    delivered = _mailbox(config, "DMARC")
    assert len(delivered) == 1

    def stored() -> list[Any]:
        store = ReceivedReportStore(config.static.data_dir / "dmarcrpt.db", readonly=True)
        store.init()
        try:
            return store.list()
        finally:
            store.close()

    (report,) = _wait(stored, "the stored report")
    assert report.org_name == "Example Receiver" and report.report_id == "r-1"
    # Reports to our reporting address are not evaluated for reports (no loops).
    store = EvaluationStore(config.static.data_dir / "dmarceval.db", readonly=True)
    store.init()
    try:
        assert store.pending() == []
    finally:
        store.close()


def test_submission_is_dkim_signed_and_queued(
    world: tuple[Config, RunningServer, Clock, str],
) -> None:
    config, server, _, nameserver = world
    msg = b"From: mailactors@localhost\r\nTo: friend@example.net\r\nSubject: signed\r\n\r\nhi\r\n"
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as c:
        c.starttls(context=__import__("ssl")._create_unverified_context())
        c.login("mailactors@localhost", "any")
        c.sendmail("mailactors@localhost", ["friend@example.net"], msg)

    # localserve's queue delivers to its own SMTP listener (catch-all to the account).
    def arrived() -> bytes | None:
        for _, data in _mailbox(config, "Inbox"):
            if b"Subject: signed" in data:
                return data
        return None

    data = _wait(arrived, "the queued message")
    signed = data[data.index(b"DKIM-Signature:") :]
    verdicts = dkim.verify(signed, DnsResolver([nameserver]), now=int(time.time()))
    assert [(v.status, v.domain, v.selector) for v in verdicts] == [("pass", "localhost", "sel")]
    assert b"dkim=pass header.d=localhost" in data


def test_cli_commands(world: tuple[Config, RunningServer, Clock, str], tmp_path: Path) -> None:
    config, server, _, nameserver = world
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as c:
        with pytest.raises(smtplib.SMTPDataError):
            c.sendmail("a@reject.example", ["bob@localhost"], _mail("reject.example", "spoof"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mailactors", "-config", str(config.path), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    # evaluations: the rejected message waits to be reported.
    out = _wait(
        lambda: "reject.example: 1 evaluations" in run("dmarc", "evaluations").stdout,
        "evaluations CLI",
    )
    assert out
    # lookup uses the configured name servers (the file on disk has the test DNS server).
    looked = run("dmarc", "lookup", "reject.example")
    assert looked.returncode == 0, looked.stderr
    assert "p=reject" in looked.stdout and "record at: _dmarc.reject.example" in looked.stdout
    # dry run: the current hour's report as .eml, nothing changed.
    preview = tmp_path / "preview"
    dry = run("dmarc", "sendreports", "--dry-run", str(preview))
    assert dry.returncode == 0, dry.stderr
    (eml,) = list(preview.glob("*.eml"))
    assert b"Report Domain: reject.example" in eml.read_bytes()
    assert "reject.example: 1 evaluations" in run("dmarc", "evaluations").stdout
    # parsereport reads the preview back.
    parsed = run("dmarc", "parsereport", str(eml))
    assert parsed.returncode == 0, parsed.stderr
    assert '"domain": "reject.example"' in parsed.stdout
    bad = tmp_path / "bad.xml"
    bad.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><feedback>&a;</feedback>')
    refused = run("dmarc", "parsereport", str(bad))
    assert refused.returncode == 1 and "dmarc parsereport:" in refused.stderr
