"""SPF record syntax (RFC 7208 sections 4.5, 4.6.1, 5, 6, 7.1)."""

from __future__ import annotations

import ipaddress

import pytest

from mailactors.protocol.spf import (
    Directive,
    SpfRecord,
    SpfSyntaxError,
    parse_record,
    select_record,
)


def test_parse_full_record() -> None:
    record = parse_record(
        "v=spf1 +a -mx:Example.com/24//64 ~ptr ?ip4:192.0.2.1/24 ip6:2001:DB8::/32 "
        "include:_spf.example.net exists:%{ir}.%{v}._spf.%{d2} -all "
        "redirect=_spf.example.org exp=explain._spf.%{d} foo=bar  "
    )
    assert record.directives == (
        Directive("+", "a"),
        Directive("-", "mx", domain_spec="Example.com", ip4_prefix=24, ip6_prefix=64),
        Directive("~", "ptr"),
        Directive("?", "ip4", address=ipaddress.IPv4Address("192.0.2.1"), ip4_prefix=24),
        Directive("+", "ip6", address=ipaddress.IPv6Address("2001:db8::"), ip6_prefix=32),
        Directive("+", "include", domain_spec="_spf.example.net"),
        Directive("+", "exists", domain_spec="%{ir}.%{v}._spf.%{d2}"),
        Directive("-", "all"),
    )
    assert record.redirect == "_spf.example.org"
    assert record.explanation == "explain._spf.%{d}"
    assert record.unknown_modifiers == (("foo", "bar"),)


def test_format_round_trips() -> None:
    text = (
        "v=spf1 a/24 mx//64 ptr:example.com -ip4:192.0.2.0/24 ip6:::1 ~all "
        "redirect=example.org exp=%{d} x-y=%{l}"
    )
    record = parse_record(text)
    assert str(record) == text
    assert parse_record(str(record)) == record


def test_names_are_case_insensitive() -> None:
    record = parse_record("V=SPF1 A MX:example.com IP4:192.0.2.1 REDIRECT=example.org -ALL")
    assert [d.mechanism for d in record.directives] == ["a", "mx", "ip4", "all"]
    assert record.redirect == "example.org"


def test_defaults() -> None:
    assert parse_record("v=spf1") == SpfRecord()
    assert parse_record("v=spf1 ") == SpfRecord()
    ip4 = parse_record("v=spf1 ip4:192.0.2.1").directives[0]
    assert ip4.ip4_prefix is None and ip4.qualifier == "+"


@pytest.mark.parametrize(
    "text",
    [
        "v=spf1 a:example.com/32//128",
        "v=spf1 a:example.com.",
        "v=spf1 a:%{d}",
        "v=spf1 a:foo.%{d}",
        "v=spf1 exists:%{l1r+}.%{d}",
        "v=spf1 exists:%{ir}.%{l1r+}.%{d}",
        "v=spf1 include:%{d2}.trusted-domains.example.net",
        "v=spf1 ip4:0.0.0.0/0 ip6:::/0",
        "v=spf1 a:xn--bcher-kva.example",
        "v=spf1 a:1.2.3.example",
        "v=spf1 a:example.c0m",
        "v=spf1 a:example.b-c",
        "v=spf1 exists:%%.%{d}",
        "v=spf1 exists:%{d}%-",
        "v=spf1 unknown=%{c}%{r}%{t}",
        "v=spf1 exists:%{S}.%{L}.%{O}.%{D}.%{I}.%{P}.%{V}.%{H}",
        "v=spf1 a/0 a//0",
    ],
)
def test_valid_records(text: str) -> None:
    parse_record(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("v=spf10", "v=spf1"),
        ("spf1 -all", "v=spf1"),
        ("v=spf1 -all\t", "character"),
        ("v=spf1 a:caf\u00e9.example", "character"),
        ("v=spf1 foo", "unknown mechanism"),
        ("v=spf1 -foo:bar", "unknown mechanism"),
        ("v=spf1 all:foo", "all"),
        ("v=spf1 all/24", "all"),
        ("v=spf1 include", "domain"),
        ("v=spf1 include:", "empty"),
        ("v=spf1 exists", "domain"),
        ("v=spf1 a:", "empty"),
        ("v=spf1 a:example", "top label"),
        ("v=spf1 a:1.2.3.4", "top label"),
        ("v=spf1 a:example.com-", "top label"),
        ("v=spf1 a:%{d}.", "top label"),
        ("v=spf1 a/33", "prefix"),
        ("v=spf1 a//129", "prefix"),
        ("v=spf1 a/024", "prefix"),
        ("v=spf1 a/", "mechanism"),
        ("v=spf1 a-b", "mechanism"),
        ("v=spf1 ptr/24", "ptr"),
        ("v=spf1 ip4", "address"),
        ("v=spf1 ip4:192.0.2", "address"),
        ("v=spf1 ip4:192.0.2.01", "address"),
        ("v=spf1 ip4:192.0.2.256", "address"),
        ("v=spf1 ip4:192.0.2.1/", "prefix"),
        ("v=spf1 ip4:192.0.2.1/33", "prefix"),
        ("v=spf1 ip4:2001:db8::1", "address"),
        ("v=spf1 ip6:192.0.2.1", "address"),
        ("v=spf1 ip6:2001:db8::/129", "prefix"),
        ("v=spf1 ip6:fe80::1%eth0", "address"),
        ("v=spf1 redirect=a.example redirect=b.example", "more than once"),
        ("v=spf1 exp=a.example EXP=b.example", "more than once"),
        ("v=spf1 redirect=", "empty"),
        ("v=spf1 exists:%{x}.example.com", "macro letter"),
        ("v=spf1 exists:%{c}.example.com", "macro letter"),
        ("v=spf1 exists:%{r}.example.com", "macro letter"),
        ("v=spf1 exists:%{t}.example.com", "macro letter"),
        ("v=spf1 exists:%{d0}.example.com", "zero parts"),
        ("v=spf1 exists:%(ir).example.com", "invalid macro"),
        ("v=spf1 exists:%{ir", "invalid macro"),
        ("v=spf1 exists:%", "invalid macro"),
        ("v=spf1 exists:%{d;}.example.com", "invalid macro"),
        ("v=spf1 foo=%x", "invalid macro"),
        ("v=spf1 -all exp=", "empty"),
    ],
)
def test_syntax_errors(text: str, reason: str) -> None:
    with pytest.raises(SpfSyntaxError, match=reason):
        parse_record(text)


def test_select_record() -> None:
    assert select_record([]) is None
    assert select_record(["hello", "v=spf10 -all", "v=spf1x"]) is None
    assert select_record(["hello", "v=spf1 -all"]) == "v=spf1 -all"
    assert select_record(["V=SPF1"]) == "V=SPF1"
    with pytest.raises(SpfSyntaxError, match="2 SPF records"):
        select_record(["v=spf1 -all", "v=spf1 +all"])
