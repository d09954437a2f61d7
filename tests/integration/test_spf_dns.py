"""SPF over real DNS: check_host and verify_sender with DnsResolver against DnsTestServer."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from support.dnsserver import DnsTestServer

from mailactors.net.resolver import DnsResolver
from mailactors.protocol.spf import SpfIdentity, SpfStatus, check_host, verify_sender

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

ZONE = """
example.com.              TXT   ( "v=spf1 mx a:relay.example.com include:_spf.example.net "
                                  "exists:%{ir}.%{v}.allow.example.com -all exp=why.example.com" )
why.example.com.          TXT   "%{i} may not send for %{d}"
example.com.              MX    10 mail.example.com.
mail.example.com.         A     192.0.2.25
mail.example.com.         AAAA  2001:db8::25
relay.example.com.        CNAME relay-host.example.org.
relay-host.example.org.   A     198.51.100.1
_spf.example.net.         TXT   "v=spf1 ip6:2001:db8:1::/48 ip4:203.0.113.0/24 ?all"
9.2.0.192.in-addr.allow.example.com. A 127.0.0.2
helo.example.org.         TXT   "v=spf1 a -all"
helo.example.org.         A     192.0.2.25
broken.example.com.       TXT   "v=spf1 include:temp.example.com -all"
loop.example.com.         TXT   "v=spf1 include:loop.example.com -all"
"""


def check(
    resolver: DnsResolver, ip: str, domain: str = "example.com"
) -> tuple[SpfStatus, str | None]:
    result = check_host(
        resolver,
        ipaddress.ip_address(ip),
        domain,
        f"someone@{domain}",
        helo="helo.example.org",
        receiver_host="mx.receiver.example",
        now=NOW,
    )
    return result.status, result.explanation


def test_spf_check_over_real_dns() -> None:
    with DnsTestServer(ZONE, servfail={"temp.example.com"}) as dns:
        resolver = DnsResolver([dns.nameserver], timeout=1, lifetime=2)
        assert check(resolver, "192.0.2.25") == (SpfStatus.PASS, None)  # mx
        assert check(resolver, "2001:db8::25") == (SpfStatus.PASS, None)  # mx over AAAA
        assert check(resolver, "198.51.100.1") == (SpfStatus.PASS, None)  # a through a CNAME
        assert check(resolver, "203.0.113.77") == (SpfStatus.PASS, None)  # include
        assert check(resolver, "2001:db8:1::9") == (SpfStatus.PASS, None)  # include, ip6
        assert check(resolver, "192.0.2.9") == (SpfStatus.PASS, None)  # exists with macros
        assert check(resolver, "192.0.2.10") == (
            SpfStatus.FAIL,
            "192.0.2.10 may not send for example.com",
        )
        assert check(resolver, "192.0.2.1", "nothing.example.com") == (SpfStatus.NONE, None)
        assert check(resolver, "192.0.2.1", "broken.example.com")[0] is SpfStatus.TEMPERROR
        assert check(resolver, "192.0.2.1", "loop.example.com")[0] is SpfStatus.PERMERROR
        assert ("9.2.0.192.in-addr.allow.example.com", "A", "udp") in dns.queries


def test_spf_record_too_big_for_udp_is_fetched_over_tcp() -> None:
    networks = " ".join(f"ip4:198.51.100.{i}" for i in range(60))
    with DnsTestServer(truncate_udp_over=512) as dns:
        dns.add("example.com", "TXT", f"v=spf1 {networks} -all")
        resolver = DnsResolver([dns.nameserver], timeout=1, lifetime=2)
        assert check(resolver, "198.51.100.59")[0] is SpfStatus.PASS
        assert check(resolver, "198.51.100.60")[0] is SpfStatus.FAIL
        assert ("example.com", "TXT", "tcp") in dns.queries


def test_timeout_is_temperror() -> None:
    with DnsTestServer(ZONE, drop={"example.com"}) as dns:
        resolver = DnsResolver([dns.nameserver], timeout=0.2, lifetime=0.5)
        assert check(resolver, "192.0.2.25")[0] is SpfStatus.TEMPERROR


def test_verify_sender_over_real_dns() -> None:
    with DnsTestServer(ZONE) as dns:
        resolver = DnsResolver([dns.nameserver], timeout=1, lifetime=2)
        got = verify_sender(
            resolver,
            ipaddress.ip_address("192.0.2.25"),
            "bounce@example.com",
            "helo.example.org",
            receiver_host="mx.receiver.example",
            now=NOW,
        )
        assert got.helo.status is SpfStatus.PASS and got.mail_from.status is SpfStatus.PASS
        assert got.identity is SpfIdentity.MAILFROM and got.domain == "example.com"
        null = verify_sender(
            resolver,
            ipaddress.ip_address("192.0.2.26"),
            "",
            "helo.example.org",
            receiver_host="mx.receiver.example",
            now=NOW,
        )
        assert null.identity is SpfIdentity.HELO and null.domain == "helo.example.org"
        assert null.result.status is SpfStatus.FAIL
