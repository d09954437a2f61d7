"""DMARC against a real DNS server on 127.0.0.1 through the production resolver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.dnsserver import DnsTestServer

from mailactors.net.resolver import DnsResolver
from mailactors.protocol.dmarc import (
    DkimInput,
    SpfInput,
    evaluate,
    lookup,
    verify_external_destination,
)
from mailactors.protocol.dns import DnsTemporaryError

ZONE = """
_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=quarantine; " "rua=mailto:dmarc@example.com"
_dmarc.example.com. TXT "google-site-verification=abc"
_dmarc.example.co.uk. TXT "v=DMARC1; p=quarantine; pct=50"
_dmarc.twice.example. TXT "v=DMARC1; p=none"
_dmarc.twice.example. TXT "v=DMARC1; p=reject"
example.com._report._dmarc.reports.example.net. TXT "v=DMARC1"
"""


@pytest.fixture(scope="module")
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer(ZONE, servfail={"_dmarc.broken.example"}) as server:
        yield server


@pytest.fixture
def resolver(dns_server: DnsTestServer) -> DnsResolver:
    return DnsResolver([dns_server.nameserver], timeout=2, lifetime=4)


def test_record_split_over_character_strings(resolver: DnsResolver) -> None:
    found = lookup(resolver, "example.com")
    assert found.status == "found"
    assert found.record is not None
    assert found.record.rua[0].address == "dmarc@example.com"


def test_org_domain_fallback_and_pct(resolver: DnsResolver) -> None:
    result = evaluate(
        resolver,
        from_domain="mail.example.co.uk",
        spf=SpfInput("fail", "mail.example.co.uk"),
        dkim=[DkimInput("pass", "other.example", "s")],
        pct_draw=50,
    )
    assert (result.status, result.record_domain, result.disposition) == (
        "fail",
        "example.co.uk",
        "none",
    )
    assert [r.type for r in result.reasons] == ["sampled_out"]


def test_subdomain_policy_and_pass(resolver: DnsResolver) -> None:
    failing = evaluate(
        resolver, from_domain="a.example.com", spf=SpfInput("none", "x"), dkim=[], pct_draw=0
    )
    assert (failing.status, failing.disposition, failing.reportable) == ("fail", "quarantine", True)
    passing = evaluate(
        resolver,
        from_domain="a.example.com",
        spf=SpfInput("pass", "bounces.example.com"),
        dkim=[],
        pct_draw=0,
    )
    assert (passing.status, passing.disposition) == ("pass", "none")


def test_several_records_and_servfail(resolver: DnsResolver) -> None:
    assert lookup(resolver, "twice.example").status == "none"
    assert lookup(resolver, "nothing.example").status == "none"
    assert lookup(resolver, "broken.example").status == "temperror"


def test_external_destination(resolver: DnsResolver, dns_server: DnsTestServer) -> None:
    assert verify_external_destination(resolver, "example.com", "reports.example.net")
    assert not verify_external_destination(resolver, "other.example", "reports.example.net")
    dns_server.servfail.add("example.com._report._dmarc.slow.example")
    with pytest.raises(DnsTemporaryError):
        verify_external_destination(resolver, "example.com", "slow.example")
