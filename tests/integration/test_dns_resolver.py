"""DnsResolver (dnspython) against a real DNS server on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import threading
import time

import dns.flags
import dns.message
import dns.query
import pytest
from support.dnsserver import DnsTestServer

from mailactors.net.resolver import DnsResolver
from mailactors.protocol.dns import (
    DnsPermanentError,
    DnsTemporaryError,
    MxRecord,
    TlsaRecord,
    parse_nameserver,
)

ZONE = """
example.com.            A     192.0.2.10
example.com.            AAAA  2001:db8::10
example.com.            MX    10 Mail.Example.COM.
example.com.            MX    20 backup.example.net.
example.com.            TXT   "v=spf1 " "ip4:192.0.2.0/24 -all"
mail.example.com.       A     192.0.2.25
www.example.com.        CNAME web.example.com.
web.example.com.        CNAME host.example.net.
host.example.net.       A     198.51.100.7
host.example.net.       TXT   "behind a cname"
nullmx.example.org.     MX    0 .
_25._tcp.mail.example.com. TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
10.2.0.192.in-addr.arpa. PTR  Mail.Example.com.
a.b.c.deep.example.com. TXT   "deep"
"""


def resolver(server: DnsTestServer, **kwargs: float) -> DnsResolver:
    return DnsResolver([server.nameserver], **kwargs)


def test_typed_lookups() -> None:
    with DnsTestServer(ZONE) as server:
        r = resolver(server)
        assert r.a("example.com").records == (ipaddress.IPv4Address("192.0.2.10"),)
        assert r.aaaa("example.com").records == (ipaddress.IPv6Address("2001:db8::10"),)
        assert sorted(r.mx("example.com").records, key=lambda m: m.preference) == [
            MxRecord(10, "mail.example.com"),
            MxRecord(20, "backup.example.net"),
        ]
        assert r.mx("nullmx.example.org").records == (MxRecord(0, ""),)
        assert r.txt("Example.COM.").records == ("v=spf1 ip4:192.0.2.0/24 -all",)
        assert r.tlsa("_25._tcp.mail.example.com").records == (
            TlsaRecord(3, 1, 1, bytes.fromhex("0123456789abcdef" * 4)),
        )
        assert r.ptr(ipaddress.IPv4Address("192.0.2.10")).records == ("mail.example.com",)
        assert r.cname("www.example.com").records == ("web.example.com",)
        assert r.nameservers == (server.nameserver,)


def test_cnames_are_followed_for_typed_lookups() -> None:
    with DnsTestServer(ZONE) as server:
        r = resolver(server)
        assert r.a("www.example.com").records == (ipaddress.IPv4Address("198.51.100.7"),)
        assert r.txt("www.example.com").records == ("behind a cname",)
        # The chain ends in a name without AAAA: NODATA, not NXDOMAIN.
        answer = r.aaaa("www.example.com")
        assert answer.records == () and not answer.nxdomain


def test_nxdomain_and_nodata_are_told_apart() -> None:
    with DnsTestServer(ZONE) as server:
        r = resolver(server)
        missing = r.txt("nothere.example.com")
        assert missing.records == () and missing.nxdomain
        nodata = r.aaaa("mail.example.com")
        assert nodata.records == () and not nodata.nxdomain
        # An empty non-terminal exists (RFC 8020).
        ent = r.txt("c.deep.example.com")
        assert ent.records == () and not ent.nxdomain


def test_ad_bit_is_reported_and_requested() -> None:
    with DnsTestServer(ZONE, authenticated={"example.com"}) as server:
        r = resolver(server)
        assert r.txt("example.com").authenticated
        assert r.tlsa("_25._tcp.mail.example.com").authenticated
        assert not r.a("host.example.net").authenticated
        # A chain leaving the signed zone is not authenticated as a whole.
        assert not r.a("www.example.com").authenticated


def test_server_sets_ad_only_when_asked() -> None:
    # The test server behaves like a validating resolver (RFC 6840 section
    # 5.7): without AD or DO in the query, no AD in the answer. So the test
    # above also shows that DnsResolver asks.
    with DnsTestServer(ZONE, authenticated={"example.com"}) as server:
        plain = dns.message.make_query("example.com", "TXT", use_edns=False)
        plain.flags &= ~dns.flags.AD
        reply = dns.query.udp(plain, "127.0.0.1", port=server.port, timeout=2)
        assert not reply.flags & dns.flags.AD
        asking = dns.message.make_query("example.com", "TXT", want_dnssec=True)
        reply = dns.query.udp(asking, "127.0.0.1", port=server.port, timeout=2)
        assert reply.flags & dns.flags.AD


def test_truncated_udp_answer_is_retried_over_tcp() -> None:
    big = "x" * 250
    with DnsTestServer(truncate_udp_over=200) as server:
        for i in range(6):
            server.add("big.example.com", "TXT", f"{i}{big}")
        server.add("small.example.com", "TXT", "tiny")
        r = resolver(server)
        answer = r.txt("big.example.com")
        assert sorted(answer.records) == [f"{i}{big}" for i in range(6)]
        assert ("big.example.com", "TXT", "udp") in server.queries
        assert ("big.example.com", "TXT", "tcp") in server.queries
        assert r.txt("small.example.com").records == ("tiny",)
        assert ("small.example.com", "TXT", "tcp") not in server.queries


def test_long_txt_strings_are_joined() -> None:
    text = "v=spf1 " + " ".join(f"ip4:192.0.2.{i}" for i in range(40)) + " -all"
    assert len(text) > 255
    with DnsTestServer() as server:
        server.add("example.com", "TXT", text)
        server.add("multi.example.com", "TXT", ["v=spf1", " -all"])
        r = resolver(server)
        assert r.txt("example.com").records == (text,)
        assert r.txt("multi.example.com").records == ("v=spf1 -all",)


def test_invalid_utf8_in_txt_is_replaced() -> None:
    with DnsTestServer(r'example.com. TXT "caf\233 ok"') as server:
        assert resolver(server).txt("example.com").records == ("caf\ufffd ok",)


def test_servfail_is_temporary() -> None:
    with DnsTestServer(ZONE, servfail={"example.com"}) as server:
        r = resolver(server)
        with pytest.raises(DnsTemporaryError) as info:
            r.txt("example.com")
        assert info.value.name == "example.com" and info.value.rdtype == "TXT"
        assert r.a("mail.example.com").records  # others still work


def test_no_answer_times_out_as_temporary() -> None:
    with DnsTestServer(ZONE, drop={"example.com"}) as server:
        r = resolver(server, timeout=0.2, lifetime=0.5)
        started = time.monotonic()
        with pytest.raises(DnsTemporaryError, match="timeout"):
            r.a("example.com")
        assert time.monotonic() - started < 5


def test_unreachable_server_is_temporary() -> None:
    with DnsTestServer() as server:
        port = server.port
    # The server is gone: the port refuses (ICMP) or stays silent.
    r = DnsResolver([f"127.0.0.1:{port}"], timeout=0.2, lifetime=0.5)
    with pytest.raises(DnsTemporaryError):
        r.a("example.com")


@pytest.mark.parametrize(
    "name",
    ["a..example.com", "x" * 64 + ".example.com", ".".join(["abcdefghi"] * 30), "", "."],
)
def test_bad_names_are_permanent(name: str) -> None:
    with DnsTestServer() as server:
        with pytest.raises(DnsPermanentError):
            resolver(server).txt(name)
        assert server.queries == []


def test_runtime_add_and_remove() -> None:
    with DnsTestServer() as server:
        r = resolver(server)
        assert r.txt("_dmarc.example.com").nxdomain
        server.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
        assert r.txt("_dmarc.example.com").records == ("v=DMARC1; p=reject",)
        server.remove("_dmarc.example.com", "TXT")
        assert r.txt("_dmarc.example.com").nxdomain


def test_zones_mapping_with_origins() -> None:
    zones = {"example.com": "@ TXT hello\nsub A 192.0.2.1", "example.net": "@ TXT other"}
    with DnsTestServer(zones) as server:
        r = resolver(server)
        assert r.txt("example.com").records == ("hello",)
        assert r.a("sub.example.com").records == (ipaddress.IPv4Address("192.0.2.1"),)
        assert r.txt("example.net").records == ("other",)


def test_concurrent_lookups_from_threads() -> None:
    with DnsTestServer(ZONE) as server:
        r = resolver(server)
        results: list[object] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(10):
                    results.append(r.a("mail.example.com").records)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert results == [(ipaddress.IPv4Address("192.0.2.25"),)] * 40


def test_no_nameservers_is_temporary() -> None:
    with pytest.raises(DnsTemporaryError, match="no name server"):
        DnsResolver([]).a("example.com")


def test_nxdomain_carries_the_ad_bit() -> None:
    with DnsTestServer(ZONE, authenticated={"example.com"}) as server:
        answer = resolver(server).txt("missing.example.com")
        assert answer.nxdomain and answer.authenticated
        answer = resolver(server).txt("missing.example.net")
        assert answer.nxdomain and not answer.authenticated


def test_system_configuration_is_used_without_nameservers() -> None:
    # Whatever the machine has; constructing must not fail (no lookup is made).
    DnsResolver(None, timeout=0.1, lifetime=0.1)


def test_nameservers_are_reported() -> None:
    assert DnsResolver(["::1", "192.0.2.1:5353"]).nameservers == ("[::1]:53", "192.0.2.1:5353")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("10.0.0.1", ("10.0.0.1", 53)),
        ("[2001:DB8::1]", ("2001:db8::1", 53)),
    ],
)
def test_parse_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ns.example.com",
        "1.2.3.4:",
        "1.2.3.4:0",
        "1.2.3.4:65536",
        "[1.2.3.4]:53",
        "[::1",
        "[::1]x",
    ],
)
def test_parse_nameserver_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="name server|IP address"):
        parse_nameserver(text)
    with pytest.raises(ValueError):
        DnsResolver([text])


def test_records_argument_and_runtime_failure_sets() -> None:
    with DnsTestServer(records=[("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")]) as server:
        r = DnsResolver([server.nameserver], timeout=0.2, lifetime=0.5)
        assert r.txt("_dmarc.example.com").records == ("v=DMARC1; p=reject",)
        server.servfail.add("_dmarc.example.com")
        with pytest.raises(DnsTemporaryError):
            r.txt("_dmarc.example.com")
        server.servfail.clear()
        server.authenticated.add("example.com")
        assert r.txt("_DMARC.example.com").authenticated


def test_added_records_with_names_in_their_values() -> None:
    """add() of MX and CNAME values: names in the data stay absolute."""
    from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]

    from mailactors.net.resolver import DnsResolver

    with DnsTestServer() as server:
        server.add("example.test", "MX", "10 mx.example.test.")
        server.add("alias.example.test", "CNAME", "mx.example.test.")
        server.add("mx.example.test", "A", "192.0.2.7")
        resolver = DnsResolver([server.nameserver], timeout=2, lifetime=4)
        assert [(m.preference, m.host) for m in resolver.mx("example.test").records] == [
            (10, "mx.example.test")
        ]
        assert [str(a) for a in resolver.a("alias.example.test").records] == ["192.0.2.7"]


def test_cache_keeps_answers_for_their_ttl() -> None:
    from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]

    from mailactors.net.resolver import TEMPORARY_ERROR_TTL, DnsResolver
    from mailactors.protocol.dns import DnsTemporaryError

    now = [1000.0]
    with DnsTestServer() as server:
        server.add("cached.example", "TXT", "v=spf1 -all", ttl=60)
        resolver = DnsResolver(
            [server.nameserver], timeout=1, lifetime=2, cache_size=100, clock=lambda: now[0]
        )
        assert resolver.txt("cached.example").records == ("v=spf1 -all",)
        asked = len(server.queries)
        server.remove("cached.example")
        assert resolver.txt("cached.example").records == ("v=spf1 -all",)
        assert len(server.queries) == asked  # from the cache
        now[0] += 61
        gone = resolver.txt("cached.example")
        assert gone.records == () and gone.nxdomain
        # Negative answers are cached too (no SOA here: the default negative TTL).
        server.add("cached.example", "TXT", "v=spf1 +all")
        assert resolver.txt("cached.example").nxdomain
        now[0] += 3600
        assert resolver.txt("cached.example").records == ("v=spf1 +all",)
        # Server failures are remembered briefly (RFC 2308 section 7.1).
        server.servfail.add("broken.example")
        for _ in range(2):
            with pytest.raises(DnsTemporaryError):
                resolver.txt("broken.example")
        assert sum(1 for q in server.queries if q[0].startswith("broken.example")) == 1
        server.servfail.discard("broken.example")
        server.add("broken.example", "TXT", "ok")
        now[0] += TEMPORARY_ERROR_TTL + 1
        assert resolver.txt("broken.example").records == ("ok",)


def test_cached_only_view_never_queries() -> None:
    from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]

    from mailactors.net.resolver import DnsCacheMiss, DnsResolver
    from mailactors.protocol.dns import DnsError, DnsTemporaryError

    with DnsTestServer() as server:
        server.add("seen.example", "TXT", "hello")
        resolver = DnsResolver([server.nameserver], timeout=1, lifetime=2, cache_size=10)
        view = resolver.cached_only()
        with pytest.raises(DnsCacheMiss) as missed:
            view.txt("seen.example")
        assert not isinstance(missed.value, DnsError)  # protocol code must not swallow it
        assert server.queries == []
        resolver.txt("seen.example")
        assert view.txt("seen.example").records == ("hello",)
        server.servfail.add("bad.example")
        with pytest.raises(DnsTemporaryError):
            resolver.txt("bad.example")
        asked = len(server.queries)
        with pytest.raises(DnsTemporaryError):
            view.txt("bad.example")
        assert len(server.queries) == asked
    uncached = DnsResolver(["127.0.0.1:9"], timeout=1, lifetime=1)
    with pytest.raises(DnsCacheMiss):
        uncached.cached_only().a("x.example")
