"""protocol/msgauth: SPF + DKIM + DMARC of one incoming message, and its header field."""

from __future__ import annotations

from datetime import UTC, datetime

import authres as independent_authres  # the authres package, an independent parser
import pytest

from mailactors.protocol import dkim
from mailactors.protocol.authres import parse_authentication_results
from mailactors.protocol.dns import InMemoryResolver
from mailactors.protocol.msgauth import authenticate_inbound

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
KEY = dkim.load_private_key(dkim.generate_private_key("ed25519"))
MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: hello\r\n"
    b"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
    b"Hi Bob.\r\n"
)


def _resolver(
    dmarc: str = "v=DMARC1; p=reject; rua=mailto:dmarc@example.org!10m",
) -> InMemoryResolver:
    return InMemoryResolver(
        records={
            ("example.org", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"],
            ("_dmarc.example.org", "TXT"): [dmarc],
            ("sel._domainkey.example.org", "TXT"): [dkim.dns_txt_record(KEY)],
            ("mail.example.org", "A"): ["192.0.2.10"],
        }
    )


def _signed(message: bytes = MESSAGE) -> bytes:
    return (
        dkim.sign(message, domain="example.org", selector="sel", key=KEY, now=int(NOW.timestamp()))
        + message
    )


def _check(
    message: bytes,
    ip: str,
    resolver: InMemoryResolver,
    mail_from: str = "alice@example.org",
    pct_draw: int = 0,
):  # type: ignore[no-untyped-def]
    return authenticate_inbound(
        resolver,
        message=message,
        ip=ip,
        helo="mail.example.org",
        mail_from=mail_from,
        rcpt_to="bob@example.net",
        authserv_id="mx.example.net",
        now=NOW,
        pct_draw=pct_draw,
    )


def test_everything_passes() -> None:
    result = _check(_signed(), "192.0.2.10", _resolver())
    assert result.disposition == "none"
    assert result.dmarc is not None and result.dmarc.status == "pass"
    text = result.header.decode()
    assert text.startswith("Authentication-Results: mx.example.net;")
    assert text.endswith("\r\n")
    parsed = parse_authentication_results(text.split(":", 1)[1])
    methods = {(r.method, r.result) for r in parsed.results}
    assert methods == {("spf", "pass"), ("dkim", "pass"), ("dmarc", "pass")}
    other = independent_authres.AuthenticationResultsHeader.parse(text.rstrip("\r\n"))
    assert str(other.authserv_id) == "mx.example.net"
    assert sorted((r.method, r.result) for r in other.results) == [
        ("dkim", "pass"),
        ("dmarc", "pass"),
        ("spf", "pass"),
    ]
    # The evaluation row for the aggregate report.
    assert result.rua == ("mailto:dmarc@example.org!10485760",)
    assert result.report_policy is not None and result.report_policy.domain == "example.org"
    row = result.report_evaluation
    assert row is not None
    assert (row.source_ip, row.disposition, row.dkim_aligned, row.spf_aligned) == (
        "192.0.2.10",
        "none",
        "pass",
        "pass",
    )
    assert (row.header_from, row.envelope_from, row.envelope_to) == (
        "example.org",
        "example.org",
        "example.net",
    )
    assert [(d.domain, d.selector, d.result) for d in row.dkim] == [("example.org", "sel", "pass")]
    assert [(s.domain, s.scope, s.result) for s in row.spf] == [("example.org", "mfrom", "pass")]


def test_spoofed_message_is_rejected() -> None:
    result = _check(MESSAGE, "203.0.113.5", _resolver())
    assert result.disposition == "reject"
    assert result.dmarc is not None and result.dmarc.status == "fail"
    text = result.header.decode()
    assert "spf=fail" in text and "dkim=none" in text and "dmarc=fail" in text
    row = result.report_evaluation
    assert row is not None and row.disposition == "reject" and row.dkim == ()


def test_tampered_body_fails_dkim_but_spf_aligns() -> None:
    tampered = _signed().replace(b"Hi Bob.", b"Hi Eve.")
    result = _check(tampered, "192.0.2.10", _resolver())
    assert [r.status for r in result.dkim] == ["fail"]
    assert result.dmarc is not None and result.dmarc.status == "pass"
    assert result.disposition == "none"


@pytest.mark.parametrize(("draw", "expected"), [(0, "quarantine"), (60, "none")])
def test_quarantine_with_pct(draw: int, expected: str) -> None:
    resolver = _resolver("v=DMARC1; p=quarantine; pct=50")
    result = _check(MESSAGE, "203.0.113.5", resolver, pct_draw=draw)
    assert result.disposition == expected
    # No rua: nothing to report.
    assert result.report_evaluation is None and result.rua == ()


def test_null_sender_uses_helo_and_broken_from_is_permerror() -> None:
    result = _check(_signed(), "192.0.2.10", _resolver(), mail_from="")
    assert "smtp.helo=mail.example.org" in result.header.decode()
    no_from = MESSAGE.replace(b"From: Alice <alice@example.org>\r\n", b"")
    result = _check(no_from, "192.0.2.10", _resolver())
    assert result.dmarc is None and result.from_error
    assert "dmarc=permerror" in result.header.decode()
    assert result.disposition == "none"
