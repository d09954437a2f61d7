"""SPF evaluation (RFC 7208 check_host) over InMemoryResolver: the RFC's examples, limits, errors."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

from mailactors.protocol.dns import InMemoryResolver, MxRecord
from mailactors.protocol.spf import (
    SpfIdentity,
    SpfResult,
    SpfStatus,
    check_host,
    received_spf_header,
    verify_sender,
)

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
Entry = tuple[str, str, object]


def resolver(
    *entries: Entry, temporary: frozenset[tuple[str, str]] = frozenset()
) -> InMemoryResolver:
    records: dict[tuple[str, str], list[object]] = {}
    for name, rdtype, value in entries:
        records.setdefault((name, rdtype), []).append(value)
    return InMemoryResolver(records, temporary=temporary)


def check(
    dns: InMemoryResolver,
    ip: str,
    domain: str = "example.com",
    sender: str | None = None,
    helo: str = "mx.example.org",
) -> SpfResult:
    return check_host(
        dns,
        ipaddress.ip_address(ip),
        domain,
        sender if sender is not None else f"sender@{domain}",
        helo=helo,
        receiver_host="mx.receiver.example",
        now=NOW,
    )


# RFC 7208 Appendix A: the zone all examples use.
APPENDIX_A: tuple[Entry, ...] = (
    ("example.com", "MX", MxRecord(10, "mail-a.example.com")),
    ("example.com", "MX", MxRecord(20, "mail-b.example.com")),
    ("example.com", "A", "192.0.2.10"),
    ("example.com", "A", "192.0.2.11"),
    ("amy.example.com", "A", "192.0.2.65"),
    ("bob.example.com", "A", "192.0.2.66"),
    ("mail-a.example.com", "A", "192.0.2.129"),
    ("mail-b.example.com", "A", "192.0.2.130"),
    ("www.example.com", "A", "192.0.2.10"),  # CNAME example.com, followed by the resolver
    ("example.org", "MX", MxRecord(10, "mail-c.example.org")),
    ("mail-c.example.org", "A", "192.0.2.140"),
    ("10.2.0.192.in-addr.arpa", "PTR", "example.com"),
    ("11.2.0.192.in-addr.arpa", "PTR", "example.com"),
    ("65.2.0.192.in-addr.arpa", "PTR", "amy.example.com"),
    ("66.2.0.192.in-addr.arpa", "PTR", "bob.example.com"),
    ("129.2.0.192.in-addr.arpa", "PTR", "mail-a.example.com"),
    ("130.2.0.192.in-addr.arpa", "PTR", "mail-b.example.com"),
    ("140.2.0.192.in-addr.arpa", "PTR", "mail-c.example.org"),
    ("4.3.2.10.in-addr.arpa", "PTR", "bob.example.com"),
)
CLIENTS = ["192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.129",
           "192.0.2.130", "192.0.2.140", "10.2.3.4", "192.0.2.131"]  # fmt: skip


@pytest.mark.parametrize(
    ("record", "allowed"),
    [
        # A.1 Simple Examples
        ("v=spf1 +all", set(CLIENTS)),
        ("v=spf1 a -all", {"192.0.2.10", "192.0.2.11"}),
        ("v=spf1 a:example.org -all", set()),
        ("v=spf1 mx -all", {"192.0.2.129", "192.0.2.130"}),
        ("v=spf1 mx:example.org -all", {"192.0.2.140"}),
        ("v=spf1 mx mx:example.org -all", {"192.0.2.129", "192.0.2.130", "192.0.2.140"}),
        (
            "v=spf1 mx/30 mx:example.org/30 -all",
            {"192.0.2.129", "192.0.2.130", "192.0.2.131", "192.0.2.140"},
        ),
        # "A host with an address of 192.0.2.65 is allowed"; 192.0.2.140 is not
        # (example.org); 10.2.3.4 is not (bob.example.com does not resolve to it).
        (
            "v=spf1 ptr -all",
            {"192.0.2.10", "192.0.2.11", "192.0.2.65", "192.0.2.66", "192.0.2.129", "192.0.2.130"},
        ),  # fmt: skip
        (
            "v=spf1 ip4:192.0.2.128/28 -all",
            {"192.0.2.129", "192.0.2.130", "192.0.2.131", "192.0.2.140"},
        ),  # fmt: skip
    ],
)
def test_appendix_a1_simple_examples(record: str, allowed: set[str]) -> None:
    dns = resolver(*APPENDIX_A, ("example.com", "TXT", record))
    for ip in CLIENTS:
        expected = SpfStatus.PASS if ip in allowed else SpfStatus.FAIL
        assert check(dns, ip).status is expected, (record, ip)


def test_appendix_a2_multiple_domains() -> None:
    dns = resolver(
        *APPENDIX_A,
        ("example.org", "TXT", "v=spf1 include:example.com include:example.net -all"),
        ("la.example.org", "TXT", "v=spf1 redirect=example.org"),
        ("example.com", "TXT", "v=spf1 a -all"),
        ("example.net", "TXT", "v=spf1 ip4:198.51.100.0/24 -all"),
    )
    for domain in ("example.org", "la.example.org"):
        assert check(dns, "192.0.2.10", domain).status is SpfStatus.PASS
        assert check(dns, "198.51.100.9", domain).status is SpfStatus.PASS
        result = check(dns, "192.0.2.129", domain)
        assert result.status is SpfStatus.FAIL and result.mechanism == "-all"
        assert result.domain == domain


def test_appendix_a3_dnsbl_style() -> None:
    dns = resolver(
        *APPENDIX_A,
        (
            "example.com",
            "TXT",
            "v=spf1 mx include:mobile-users._spf.%{d} include:remote-users._spf.%{d} -all",
        ),
        ("mobile-users._spf.example.com", "TXT", "v=spf1 exists:%{l1r+}.%{d}"),
        ("remote-users._spf.example.com", "TXT", "v=spf1 exists:%{ir}.%{l1r+}.%{d}"),
        ("mary.mobile-users._spf.example.com", "A", "127.0.0.2"),
        ("fred.mobile-users._spf.example.com", "A", "127.0.0.2"),
        ("15.15.168.192.joel.remote-users._spf.example.com", "A", "127.0.0.2"),
        ("16.15.168.192.joel.remote-users._spf.example.com", "A", "127.0.0.2"),
    )
    assert check(dns, "203.0.113.1", sender="mary@example.com").status is SpfStatus.PASS
    # %{l1r+}: the first part of the local part split on "+".
    assert check(dns, "203.0.113.1", sender="fred+ext@example.com").status is SpfStatus.PASS
    assert check(dns, "203.0.113.1", sender="ext+fred@example.com").status is SpfStatus.FAIL
    assert check(dns, "192.168.15.15", sender="joel@example.com").status is SpfStatus.PASS
    assert check(dns, "192.168.15.17", sender="joel@example.com").status is SpfStatus.FAIL
    assert check(dns, "192.0.2.129", sender="anyone@example.com").status is SpfStatus.PASS


def test_appendix_a4_multiple_requirements() -> None:
    # As corrected by RFC errata 6216: "-ptr:example.com" in ptr._spf.example.com.
    dns = resolver(
        *APPENDIX_A,
        ("example.com", "TXT", "v=spf1 -include:ip4._spf.%{d} -include:ptr._spf.%{d} +all"),
        ("ip4._spf.example.com", "TXT", "v=spf1 -ip4:192.0.2.0/24 +all"),
        ("ptr._spf.example.com", "TXT", "v=spf1 -ptr:example.com +all"),
    )
    # In 192.0.2.0/24 and with a PTR name under example.com: pass.
    assert check(dns, "192.0.2.65").status is SpfStatus.PASS
    # In the network but named under example.org: fail.
    assert check(dns, "192.0.2.140").status is SpfStatus.FAIL
    # Outside the network: fail, whatever the name.
    result = check(dns, "10.2.3.4")
    assert result.status is SpfStatus.FAIL
    assert result.mechanism == "-include:ip4._spf.%{d}"


def test_appendix_a4_as_printed_fails_everyone() -> None:
    # Without the erratum, "ptr" in ptr._spf.example.com compares with that
    # domain (the <domain> of the include), which no PTR name is under.
    dns = resolver(
        *APPENDIX_A,
        ("example.com", "TXT", "v=spf1 -include:ip4._spf.%{d} -include:ptr._spf.%{d} +all"),
        ("ip4._spf.example.com", "TXT", "v=spf1 -ip4:192.0.2.0/24 +all"),
        ("ptr._spf.example.com", "TXT", "v=spf1 -ptr +all"),
    )
    result = check(dns, "192.0.2.65")
    assert result.status is SpfStatus.FAIL
    assert result.mechanism == "-include:ptr._spf.%{d}"


SECTION_7_4 = [
    ("%{s}", "strong-bad@email.example.com"),
    ("%{o}", "email.example.com"),
    ("%{d}", "email.example.com"),
    ("%{d4}", "email.example.com"),
    ("%{d3}", "email.example.com"),
    ("%{d2}", "example.com"),
    ("%{d1}", "com"),
    ("%{dr}", "com.example.email"),
    ("%{d2r}", "example.email"),
    ("%{l}", "strong-bad"),
    ("%{l-}", "strong.bad"),
    ("%{lr}", "strong-bad"),
    ("%{lr-}", "bad.strong"),
    ("%{l1r-}", "strong"),
    ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
    ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
    ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
    ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
    ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
]


def expanded_name(
    spec: str, ip: str = "192.0.2.3", sender: str = "strong-bad@email.example.com"
) -> str:
    """The name an exists: mechanism looks up: the macro expansion of `spec`."""
    dns = resolver(
        ("email.example.com", "TXT", f"v=spf1 exists:{spec} -all"),
        ("3.2.0.192.in-addr.arpa", "PTR", "mx.example.org"),
        ("mx.example.org", "A", "192.0.2.3"),
    )
    result = check(dns, ip, "email.example.com", sender)
    assert result.status is SpfStatus.FAIL, result
    name, rdtype = dns.queries[-1]
    assert rdtype == "A"
    return name


@pytest.mark.parametrize(("spec", "expansion"), SECTION_7_4)
def test_section_7_4_macro_examples(spec: str, expansion: str) -> None:
    assert expanded_name(spec) == expansion


def test_section_7_4_ipv6_example() -> None:
    assert expanded_name("%{ir}.%{v}._spf.%{d2}", ip="2001:db8::cb01") == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )


@pytest.mark.parametrize(
    ("spec", "expansion"),
    [
        ("%{i}", "192.0.2.3"),
        (
            "%{p}.x.example",
            "mx.example.org.x.example",
        ),  # "the PTR domain name of the client IP is mx.example.org"
        ("%{p2}.x.example", "example.org.x.example"),
        ("%{h}.x.example", "mx.example.org.x.example"),
        ("%{v}.%{d}", "in-addr.email.example.com"),
        ("%{L}.%{d}", "strong-bad.email.example.com"),
        ("%{S}", "strong-bad%40email.example.com"),
        ("%%x.%{d2}", "%x.example.com"),
        ("a%_b.%{d}", "a b.email.example.com"),
        ("a%-b.%{d}", "a%20b.email.example.com"),
        ("%{l9r-}.%{d}", "bad.strong.email.example.com"),
        ("%{d1r}", "email"),
        ("%{l=+,/_-}.%{d}", "strong.bad.email.example.com"),
    ],
)
def test_more_macros(spec: str, expansion: str) -> None:
    assert expanded_name(spec) == expansion


def test_macro_without_local_part_uses_postmaster() -> None:
    assert expanded_name("%{l}.%{d}", sender="email.example.com") == (
        "postmaster.email.example.com"
    )
    assert expanded_name("%{s}", sender="@email.example.com") == ("postmaster@email.example.com")


def test_p_macro_unknown_without_validated_name() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 exists:%{p}.example.com -all"),
        ("1.2.0.192.in-addr.arpa", "PTR", "liar.example.net"),  # no A record back to us
    )
    assert check(dns, "192.0.2.1").status is SpfStatus.FAIL
    assert dns.queries[-1] == ("unknown.example.com", "A")


def test_p_macro_prefers_the_domain() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 exists:%{p}.x.example -all"),
        ("1.2.0.192.in-addr.arpa", "PTR", "other.example.net"),
        ("1.2.0.192.in-addr.arpa", "PTR", "mail.example.com"),
        ("other.example.net", "A", "192.0.2.1"),
        ("mail.example.com", "A", "192.0.2.1"),
    )
    check(dns, "192.0.2.1")
    assert dns.queries[-1] == ("mail.example.com.x.example", "A")


def test_long_expansion_is_truncated_from_the_left() -> None:
    local = ".".join(["abcdefghij"] * 30)  # 329 characters
    name = expanded_name("%{l}._spf.%{d}", sender=f"{local}@email.example.com")
    assert len(name) <= 253 and name.endswith("abcdefghij._spf.email.example.com")
    assert name.startswith("abcdefghij.")


def test_explanation_with_exp_only_macros() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 mx -all exp=explain._spf.%{d}"),
        (
            "explain._spf.example.com",
            "TXT",
            "%{i} is not one of %{d}'s designated mail servers (%{c} at %{t} seen by %{r}) %{S}",
        ),
    )
    result = check(dns, "192.0.2.3", sender="a b@example.com")
    assert result.status is SpfStatus.FAIL and result.mechanism == "-all"
    assert result.explanation == (
        "192.0.2.3 is not one of example.com's designated mail servers "
        f"(192.0.2.3 at {int(NOW.timestamp())} seen by mx.receiver.example) a%20b%40example.com"
    )


def test_ipv6_explanation_uses_colon_form() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 -all exp=why.example.com"),
        ("why.example.com", "TXT", "%{c} / %{v}"),
    )
    assert check(dns, "2001:db8::1").explanation == "2001:db8::1 / ip6"


@pytest.mark.parametrize(
    "explain_records",
    [
        (),  # no record
        ("one", "two"),  # several
        ("bad %{x} macro",),  # syntax error
        ("caf\u00e9",),  # not US-ASCII
    ],
)
def test_bad_explanations_are_dropped(explain_records: tuple[str, ...]) -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 -all exp=why.example.com"),
        ("example.com", "A", "192.0.2.1"),
        *(("why.example.com", "TXT", text) for text in explain_records),
    )
    result = check(dns, "192.0.2.9")
    assert result.status is SpfStatus.FAIL and result.explanation is None


def test_explanation_temporary_error_is_dropped() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 -all exp=why.example.com"),
        temporary=frozenset({("why.example.com", "TXT")}),
    )
    result = check(dns, "192.0.2.9")
    assert result == SpfResult(SpfStatus.FAIL, "example.com", None, "-all")


def test_explanation_only_for_fail() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 ~all exp=why.example.com"),
        ("why.example.com", "TXT", "go away"),
    )
    assert check(dns, "192.0.2.9").explanation is None
    assert ("why.example.com", "TXT") not in dns.queries


def test_exp_of_include_is_not_used_but_of_redirect_is() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 -include:inc.example.com redirect=red.example.com"),
        ("inc.example.com", "TXT", "v=spf1 ip4:192.0.2.1 -all exp=inc-why.example.com"),
        ("red.example.com", "TXT", "v=spf1 -all exp=red-why.example.com"),
        ("inc-why.example.com", "TXT", "from include"),
        ("red-why.example.com", "TXT", "from redirect %{d}"),
    )
    result = check(dns, "192.0.2.1")
    assert result.status is SpfStatus.FAIL and result.explanation is None
    result = check(dns, "192.0.2.2")
    assert result.status is SpfStatus.FAIL
    assert result.explanation == "from redirect red.example.com"


def status(dns: InMemoryResolver, ip: str = "192.0.2.1", domain: str = "example.com") -> SpfStatus:
    return check(dns, ip, domain).status


@pytest.mark.parametrize(
    ("entries", "ip", "expected"),
    [
        # 4.5: record selection
        ((), "192.0.2.1", SpfStatus.NONE),
        ((("example.com", "TXT", "hello"),), "192.0.2.1", SpfStatus.NONE),
        (
            (("example.com", "TXT", "v=spf1 +all"), ("example.com", "TXT", "v=spf1 -all")),
            "192.0.2.1",
            SpfStatus.PERMERROR,
        ),  # fmt: skip
        (
            (("example.com", "TXT", "v=spf1 +all"), ("example.com", "TXT", "other")),
            "192.0.2.1",
            SpfStatus.PASS,
        ),  # fmt: skip
        ((("example.com", "TXT", "v=spf1"),), "192.0.2.1", SpfStatus.NEUTRAL),
        ((("example.com", "TXT", "v=spf1 bogus -all"),), "192.0.2.1", SpfStatus.PERMERROR),
        # qualifiers
        ((("example.com", "TXT", "v=spf1 ~all"),), "192.0.2.1", SpfStatus.SOFTFAIL),
        ((("example.com", "TXT", "v=spf1 ?all"),), "192.0.2.1", SpfStatus.NEUTRAL),
        ((("example.com", "TXT", "v=spf1 -ip4:192.0.2.1 +all"),), "192.0.2.1", SpfStatus.FAIL),
        # a syntax error after a matching term is still a permerror (4.6)
        ((("example.com", "TXT", "v=spf1 +all foo:bar"),), "192.0.2.1", SpfStatus.PERMERROR),
        # ip4 / ip6 with each kind of client
        ((("example.com", "TXT", "v=spf1 ip6:::/0 -all"),), "192.0.2.1", SpfStatus.FAIL),
        ((("example.com", "TXT", "v=spf1 ip4:0.0.0.0/0 -all"),), "2001:db8::1", SpfStatus.FAIL),
        ((("example.com", "TXT", "v=spf1 ip6:2001:db8::/32 -all"),), "2001:db8::1", SpfStatus.PASS),
        (
            (("example.com", "TXT", "v=spf1 ip4:192.0.2.0/24 -all"),),
            "::ffff:192.0.2.7",
            SpfStatus.PASS,
        ),  # fmt: skip
        # a with dual cidr and IPv6
        (
            (("example.com", "TXT", "v=spf1 a//64 -all"), ("example.com", "AAAA", "2001:db8::1")),
            "2001:db8::ffff",
            SpfStatus.PASS,
        ),  # fmt: skip
        (
            (("example.com", "TXT", "v=spf1 a/24 -all"), ("example.com", "AAAA", "2001:db8::1")),
            "2001:db8::ffff",
            SpfStatus.FAIL,
        ),  # fmt: skip
        # exists always asks for A records
        (
            (("example.com", "TXT", "v=spf1 exists:%{d} -all"), ("example.com", "A", "127.0.0.2")),
            "2001:db8::1",
            SpfStatus.PASS,
        ),  # fmt: skip
        # mx: no implicit MX, null MX names no host
        (
            (("example.com", "TXT", "v=spf1 mx -all"), ("example.com", "A", "192.0.2.1")),
            "192.0.2.1",
            SpfStatus.FAIL,
        ),  # fmt: skip
        (
            (("example.com", "TXT", "v=spf1 mx -all"), ("example.com", "MX", MxRecord(0, ""))),
            "192.0.2.1",
            SpfStatus.FAIL,
        ),  # fmt: skip
        # redirect: ignored when "all" is present; "none" at the target is a permerror
        (
            (
                ("example.com", "TXT", "v=spf1 ?all redirect=other.example"),
                ("other.example", "TXT", "v=spf1 -all"),
            ),
            "192.0.2.1",
            SpfStatus.NEUTRAL,
        ),  # fmt: skip
        (
            (("example.com", "TXT", "v=spf1 redirect=other.example"),),
            "192.0.2.1",
            SpfStatus.PERMERROR,
        ),  # fmt: skip
        (
            (
                ("example.com", "TXT", "v=spf1 redirect=other.example"),
                ("other.example", "TXT", "v=spf1 ?ip4:192.0.2.1"),
            ),
            "192.0.2.1",
            SpfStatus.NEUTRAL,
        ),  # fmt: skip
        (
            (("example.com", "TXT", "v=spf1 redirect=%{l}.example.com"),),
            "192.0.2.1",
            SpfStatus.PERMERROR,
        ),  # fmt: skip
        # include result mapping (5.2)
        (
            (
                ("example.com", "TXT", "v=spf1 include:inc.example -all"),
                ("inc.example", "TXT", "v=spf1 +all"),
            ),
            "192.0.2.1",
            SpfStatus.PASS,
        ),  # fmt: skip
        (
            (
                ("example.com", "TXT", "v=spf1 include:inc.example ?all"),
                ("inc.example", "TXT", "v=spf1 -all"),
            ),
            "192.0.2.1",
            SpfStatus.NEUTRAL,
        ),  # fmt: skip
        (
            (
                ("example.com", "TXT", "v=spf1 include:inc.example ?all"),
                ("inc.example", "TXT", "v=spf1 ~all"),
            ),
            "192.0.2.1",
            SpfStatus.NEUTRAL,
        ),  # fmt: skip
        (
            (
                ("example.com", "TXT", "v=spf1 include:inc.example -all"),
                ("inc.example", "TXT", "v=spf1"),
            ),
            "192.0.2.1",
            SpfStatus.FAIL,
        ),  # fmt: skip
        (
            (("example.com", "TXT", "v=spf1 include:inc.example +all"),),
            "192.0.2.1",
            SpfStatus.PERMERROR,
        ),  # fmt: skip
        (
            (
                ("example.com", "TXT", "v=spf1 include:inc.example +all"),
                ("inc.example", "TXT", "v=spf1 nope"),
            ),
            "192.0.2.1",
            SpfStatus.PERMERROR,
        ),  # fmt: skip
        # a target that cannot be a name
        (
            (("example.com", "TXT", "v=spf1 a:%{l}.example.com -all"),),
            "192.0.2.1",
            SpfStatus.PERMERROR,
        ),  # fmt: skip
    ],
)
def test_evaluation_table(entries: tuple[Entry, ...], ip: str, expected: SpfStatus) -> None:
    dns = resolver(*entries)
    assert check(dns, ip, sender="a..b@example.com").status is expected


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "com",
        "example..com",
        "x" * 64 + ".example",
        "[192.0.2.1]",
        "exa mple.com",
        "a." * 127 + "com",
    ],
)
def test_invalid_domain_is_none(domain: str) -> None:
    dns = resolver(("example.com", "TXT", "v=spf1 -all"))
    result = check(dns, "192.0.2.1", domain)
    assert result.status is SpfStatus.NONE
    assert dns.queries == []


def test_idn_domain_is_looked_up_as_a_label() -> None:
    dns = resolver(("xn--bcher-kva.example", "TXT", "v=spf1 -all"))
    result = check(dns, "192.0.2.1", "B\u00fccher.example")
    assert result.status is SpfStatus.FAIL and result.domain == "xn--bcher-kva.example"


def test_trailing_dot_and_case() -> None:
    dns = resolver(("example.com", "TXT", "v=spf1 +all"))
    assert check(dns, "192.0.2.1", "Example.COM.").domain == "example.com"


def chain(length: int, mechanism: str) -> list[Entry]:
    """example.com with `length` terms of `mechanism` ("a:h%d.example.com" etc.)."""
    terms = " ".join(mechanism % i for i in range(length))
    entries: list[Entry] = [("example.com", "TXT", f"v=spf1 {terms} -all")]
    for i in range(length):
        entries.append((f"h{i}.example.com", "A", "198.51.100.1"))
        entries.append((f"h{i}.example.com", "MX", MxRecord(10, f"h{i}.example.com")))
        entries.append((f"h{i}.example.com", "TXT", "v=spf1 ?ip4:203.0.113.1"))
    return entries


@pytest.mark.parametrize(
    "mechanism", ["a:h%d.example.com", "mx:h%d.example.com", "include:h%d.example.com"]
)
def test_ten_dns_terms_are_allowed_eleven_are_not(mechanism: str) -> None:
    ten = check(resolver(*chain(10, mechanism)), "192.0.2.1")
    assert ten.status is SpfStatus.FAIL
    eleven = check(resolver(*chain(11, mechanism)), "192.0.2.1")
    assert eleven.status is SpfStatus.PERMERROR
    assert eleven.problem is not None and "10 DNS lookups" in eleven.problem


@pytest.mark.parametrize("last", ["?exists:h0.example.com", "?ptr", "redirect=h0.example.com"])
def test_every_dns_term_counts(last: str) -> None:
    nine = chain(9, "a:h%d.example.com")
    nine[0] = ("example.com", "TXT", str(nine[0][2]).replace(" -all", f" {last}"))
    assert check(resolver(*nine), "192.0.2.1").status is not SpfStatus.PERMERROR
    ten = chain(10, "a:h%d.example.com")
    ten[0] = ("example.com", "TXT", str(ten[0][2]).replace(" -all", f" {last}"))
    result = check(resolver(*ten), "192.0.2.1")
    assert result.status is SpfStatus.PERMERROR, last
    assert result.problem is not None and "10 DNS lookups" in result.problem


def test_p_macro_counts_as_a_dns_term() -> None:
    # RFC 7208 section 4.6.4: the PTR lookups of %{p} count toward the limit.
    for terms, expected in ((8, SpfStatus.NEUTRAL), (9, SpfStatus.PERMERROR)):
        entries = chain(terms, "a:h%d.example.com")
        record = str(entries[0][2]).replace(" -all", " ?a:%{p}.x.example")
        entries[0] = ("example.com", "TXT", record)
        assert status(resolver(*entries)) is expected, terms


def test_ip_terms_do_not_count() -> None:
    terms = " ".join(f"ip4:198.51.100.{i}" for i in range(30))
    dns = resolver(("example.com", "TXT", f"v=spf1 {terms} a:h0.example.com ip4:192.0.2.1 -all"),
                   ("h0.example.com", "A", "198.51.100.200"))  # fmt: skip
    assert status(dns) is SpfStatus.PASS


def test_lookup_limit_counts_across_includes_and_redirects() -> None:
    entries: list[Entry] = [
        ("example.com", "TXT", "v=spf1 include:i1.example.com redirect=r.example.com")
    ]
    # include (1) + 5 a terms inside (6); redirect (7) + 4 a terms (11) -> permerror.
    entries.append(
        ("i1.example.com", "TXT", "v=spf1 " + " ".join(f"a:h{i}.example.com" for i in range(5)))
    )
    entries.append(
        (
            "r.example.com",
            "TXT",
            "v=spf1 " + " ".join(f"a:h{i}.example.com" for i in range(4)) + " -all",
        )
    )
    entries += [(f"h{i}.example.com", "A", "198.51.100.1") for i in range(5)]
    assert status(resolver(*entries)) is SpfStatus.PERMERROR
    entries[2] = (
        "r.example.com",
        "TXT",
        "v=spf1 " + " ".join(f"a:h{i}.example.com" for i in range(3)) + " -all",
    )
    assert status(resolver(*entries)) is SpfStatus.FAIL


def test_include_loop_ends_in_permerror() -> None:
    dns = resolver(("example.com", "TXT", "v=spf1 include:example.com -all"))
    result = check(dns, "192.0.2.1")
    assert result.status is SpfStatus.PERMERROR
    assert len(dns.queries) == 11


def test_redirect_loop_ends_in_permerror() -> None:
    dns = resolver(("example.com", "TXT", "v=spf1 redirect=example.com"))
    assert status(dns) is SpfStatus.PERMERROR


@pytest.mark.parametrize(("voids", "expected"), [(2, SpfStatus.FAIL), (3, SpfStatus.PERMERROR)])
def test_void_lookup_limit(voids: int, expected: SpfStatus) -> None:
    # NXDOMAIN (missing names) and NODATA (an existing name without A) both count.
    terms = ["a:gone.example.com", "mx:nodata.example.com", "exists:gone2.example.com"][:voids]
    dns = resolver(("example.com", "TXT", f"v=spf1 {' '.join(terms)} -all"),
                   ("nodata.example.com", "A", "192.0.2.99"))  # fmt: skip
    result = check(dns, "192.0.2.1")
    assert result.status is expected
    if expected is SpfStatus.PERMERROR:
        assert result.problem is not None and "void" in result.problem


def test_eleven_mx_records_are_a_permerror() -> None:
    entries: list[Entry] = [("example.com", "TXT", "v=spf1 mx -all")]
    entries += [("example.com", "MX", MxRecord(i, f"mx{i}.example.com")) for i in range(11)]
    entries += [(f"mx{i}.example.com", "A", "192.0.2.1") for i in range(11)]
    assert status(resolver(*entries)) is SpfStatus.PERMERROR
    assert status(resolver(*entries[:-1][:11], *entries[12:])) is SpfStatus.PASS


def test_only_ten_ptr_names_are_examined() -> None:
    entries: list[Entry] = [("example.com", "TXT", "v=spf1 ptr -all")]
    entries += [("1.2.0.192.in-addr.arpa", "PTR", f"h{i}.example.com") for i in range(11)]
    entries.append(("h10.example.com", "A", "192.0.2.1"))  # only the 11th validates
    dns = resolver(*entries)
    assert status(dns) is SpfStatus.FAIL
    assert ("h10.example.com", "A") not in dns.queries
    entries.append(("h9.example.com", "A", "192.0.2.1"))
    assert status(resolver(*entries)) is SpfStatus.PASS


def test_ptr_errors_do_not_match() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 ptr ptr:example.org -all"),
        ("1.2.0.192.in-addr.arpa", "PTR", "a.example.com"),
        ("1.2.0.192.in-addr.arpa", "PTR", "b.example.com"),
        ("b.example.com", "A", "192.0.2.1"),
        temporary=frozenset({("a.example.com", "A")}),
    )
    assert status(dns) is SpfStatus.PASS  # a.example.com skipped, b.example.com validates
    dns = resolver(
        ("example.com", "TXT", "v=spf1 ptr -all"),
        temporary=frozenset({("1.2.0.192.in-addr.arpa", "PTR")}),
    )
    assert status(dns) is SpfStatus.FAIL


def test_ptr_subdomain_match_not_suffix() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 ptr -all"),
        ("1.2.0.192.in-addr.arpa", "PTR", "badexample.com"),
        ("badexample.com", "A", "192.0.2.1"),
    )
    assert status(dns) is SpfStatus.FAIL


@pytest.mark.parametrize(
    ("record", "failing"),
    [
        ("v=spf1 a -all", ("example.com", "A")),
        ("v=spf1 mx -all", ("example.com", "MX")),
        ("v=spf1 mx -all", ("mx.example.com", "A")),
        ("v=spf1 exists:%{ir}.bl.example -all", ("1.2.0.192.bl.example", "A")),
        ("v=spf1 include:inc.example -all", ("inc.example", "TXT")),
        ("v=spf1 redirect=inc.example", ("inc.example", "TXT")),
        ("v=spf1 -all", ("example.com", "TXT")),
    ],
)
def test_temporary_dns_errors_are_temperror(record: str, failing: tuple[str, str]) -> None:
    dns = resolver(
        ("example.com", "TXT", record),
        ("example.com", "MX", MxRecord(10, "mx.example.com")),
        temporary=frozenset({failing}),
    )
    result = check(dns, "192.0.2.1")
    assert result.status is SpfStatus.TEMPERROR
    assert result.problem is not None and failing[0] in result.problem


def test_verify_sender_checks_both_identities() -> None:
    dns = resolver(
        ("mx.example.org", "TXT", "v=spf1 a -all"),
        ("mx.example.org", "A", "192.0.2.1"),
        ("example.com", "TXT", "v=spf1 ip4:192.0.2.0/24 ~all"),
    )
    got = verify_sender(dns, ipaddress.ip_address("192.0.2.1"), "bob@example.com", "mx.example.org",
                        receiver_host="mx.receiver.example", now=NOW)  # fmt: skip
    assert got.helo.status is SpfStatus.PASS and got.helo.domain == "mx.example.org"
    assert got.mail_from.status is SpfStatus.PASS and got.mail_from.domain == "example.com"
    assert got.identity is SpfIdentity.MAILFROM
    assert got.result is got.mail_from and got.domain == "example.com"


def test_verify_sender_null_reverse_path_uses_helo() -> None:
    dns = resolver(("mx.example.org", "TXT", "v=spf1 exists:%{l}.%{o}.x.example -all"),
                   ("postmaster.mx.example.org.x.example", "A", "127.0.0.2"))  # fmt: skip
    got = verify_sender(dns, ipaddress.ip_address("192.0.2.1"), "", "MX.example.org",
                        receiver_host="mx.receiver.example", now=NOW)  # fmt: skip
    assert got.helo.status is SpfStatus.PASS
    assert got.mail_from == got.helo
    assert got.identity is SpfIdentity.HELO
    assert got.domain == "mx.example.org" and got.result.status is SpfStatus.PASS


@pytest.mark.parametrize("helo", ["[192.0.2.1]", "localhost", "bad..name"])
def test_verify_sender_skips_invalid_helo(helo: str) -> None:
    dns = resolver(("example.com", "TXT", "v=spf1 -all"))
    got = verify_sender(dns, ipaddress.ip_address("192.0.2.1"), "bob@example.com", helo,
                        receiver_host="mx.receiver.example", now=NOW)  # fmt: skip
    assert got.helo.status is SpfStatus.NONE
    assert got.mail_from.status is SpfStatus.FAIL
    assert dns.queries == [("example.com", "TXT")]


def test_received_spf_header() -> None:
    result = SpfResult(SpfStatus.PASS, "example.com", mechanism="ip4:192.0.2.0/24")
    header = received_spf_header(
        result,
        ip=ipaddress.ip_address("2001:db8::1"),
        identity=SpfIdentity.MAILFROM,
        mail_from='we"ird(@example.com',
        helo="mx.example.org",
        receiver_host="mx.receiver.example",
    )
    assert header == (
        b'Received-SPF: pass (mx.receiver.example: domain of we"ird\\(@example.com designates'
        b" 2001:db8::1 as permitted sender)\r\n"
        b'\tclient-ip="2001:db8::1";\r\n'
        b'\tenvelope-from="we\\"ird(@example.com";\r\n'
        b"\thelo=mx.example.org;\r\n"
        b"\treceiver=mx.receiver.example;\r\n"
        b"\tidentity=mailfrom;\r\n"
        b'\tmechanism="ip4:192.0.2.0/24";\r\n'
    )
    failed = received_spf_header(
        SpfResult(SpfStatus.PERMERROR, "x.example", problem="caf\u00e9 record"),
        ip=ipaddress.ip_address("192.0.2.1"),
        identity=SpfIdentity.HELO,
        mail_from="",
        helo="x.example",
        receiver_host="r.example",
    )
    assert failed.startswith(b"Received-SPF: permerror (r.example: domain of postmaster@x.example")
    assert b'\tproblem="caf? record";\r\n' in failed
    assert b'envelope-from="";' in failed


def test_explanation_is_capped() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 -all exp=why.example.com"),
        ("why.example.com", "TXT", "%{d}" * 100),
    )
    explanation = check(dns, "192.0.2.1").explanation
    assert explanation is not None and len(explanation) == 400
    assert explanation.startswith("example.comexample.com")


def test_t_macro_with_naive_time_is_utc() -> None:
    dns = resolver(
        ("example.com", "TXT", "v=spf1 -all exp=why.example.com"),
        ("why.example.com", "TXT", "at %{t}"),
    )
    result = check_host(
        dns,
        ipaddress.ip_address("192.0.2.1"),
        "example.com",
        "a@example.com",
        helo="h.example",
        receiver_host="",
        now=datetime(1970, 1, 2),
    )
    assert result.explanation == "at 86400"
