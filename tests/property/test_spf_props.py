"""Hypothesis: the SPF parser never crashes, formatted records round-trip, check_host always answers."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.dns import InMemoryResolver, MxRecord
from mailactors.protocol.spf import (
    Directive,
    SpfRecord,
    SpfStatus,
    SpfSyntaxError,
    check_host,
    parse_record,
)

LABEL = st.from_regex(r"[a-z0-9_]([a-z0-9_-]{0,8}[a-z0-9_])?", fullmatch=True)
TOPLABEL = st.from_regex(r"[a-z][a-z0-9]{0,5}|[a-z0-9]{1,3}-[a-z0-9]{1,3}", fullmatch=True)
MACRO = st.builds(
    lambda letter, digits, reverse, delimiters: f"%{{{letter}{digits}{reverse}{delimiters}}}",
    st.sampled_from("slodiphvSLODIPHV"),
    st.sampled_from(["", "1", "2", "12"]),
    st.sampled_from(["", "r", "R"]),
    st.sampled_from(["", ".", "-", "+=", ",/_"]),
)
ESCAPE = st.sampled_from(["%%", "%_", "%-"])


@st.composite
def domain_specs(draw: st.DrawFn) -> str:
    """domain-spec = macro-string domain-end"""
    parts = draw(st.lists(st.one_of(LABEL, MACRO, ESCAPE), max_size=4))
    prefix = ".".join(parts)
    if draw(st.booleans()):
        return (prefix + "." if prefix else "") + draw(MACRO)
    end = "." + draw(TOPLABEL) + draw(st.sampled_from(["", "."]))
    return (prefix or draw(LABEL)) + end


QUALIFIERS = st.sampled_from("+-~?")
IP4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
IP6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
PREFIX4 = st.none() | st.integers(0, 32)
PREFIX6 = st.none() | st.integers(0, 128)

DIRECTIVES = st.one_of(
    st.builds(Directive, QUALIFIERS, st.just("all")),
    st.builds(
        lambda q, m, d: Directive(q, m, domain_spec=d),
        QUALIFIERS,
        st.sampled_from(["include", "exists"]),
        domain_specs(),
    ),
    st.builds(
        lambda q, d: Directive(q, "ptr", domain_spec=d), QUALIFIERS, st.none() | domain_specs()
    ),
    st.builds(
        lambda q, m, d, p4, p6: Directive(q, m, domain_spec=d, ip4_prefix=p4, ip6_prefix=p6),
        QUALIFIERS,
        st.sampled_from(["a", "mx"]),
        st.none() | domain_specs(),
        PREFIX4,
        PREFIX6,
    ),
    st.builds(
        lambda q, a, p: Directive(q, "ip4", address=a, ip4_prefix=p), QUALIFIERS, IP4, PREFIX4
    ),
    st.builds(
        lambda q, a, p: Directive(q, "ip6", address=a, ip6_prefix=p), QUALIFIERS, IP6, PREFIX6
    ),
)
UNKNOWN_MODIFIERS = st.tuples(
    st.from_regex(r"[a-z][a-z0-9._-]{0,6}", fullmatch=True).filter(
        lambda n: n not in ("redirect", "exp")
    ),
    st.lists(st.one_of(LABEL, MACRO, ESCAPE), max_size=3).map("".join),
)
RECORDS = st.builds(
    SpfRecord,
    st.lists(DIRECTIVES, max_size=6).map(tuple),
    st.none() | domain_specs(),
    st.none() | domain_specs(),
    st.lists(UNKNOWN_MODIFIERS, max_size=2).map(tuple),
)


@given(RECORDS)
def test_formatted_record_round_trips(record: SpfRecord) -> None:
    assert parse_record(str(record)) == record


@given(st.text())
def test_parser_never_crashes_on_any_text(text: str) -> None:
    for candidate in (text, "v=spf1 " + text):
        try:
            record = parse_record(candidate)
        except SpfSyntaxError:
            continue
        assert parse_record(str(record)) == record


SPF_ALPHABET = st.sampled_from(
    list("v=spf1 +-~?:/.%{}_aAimnxpltrsodchreiu460123456789") + ["all", "ip4:", "ip6:", "mx", "%{"]
)


@given(st.lists(SPF_ALPHABET, max_size=40).map("".join))
def test_parser_on_near_spf_text(text: str) -> None:
    try:
        record = parse_record("v=spf1 " + text)
    except SpfSyntaxError:
        return
    assert parse_record(str(record)) == record


DOMAINS = ["example.com", "a.example.com", "b.example.net"]


@st.composite
def zones(draw: st.DrawFn) -> InMemoryResolver:
    records: dict[tuple[str, str], list[object]] = {}
    for domain in DOMAINS:
        if draw(st.booleans()):
            records[(domain, "TXT")] = [str(draw(RECORDS))]
        if draw(st.booleans()):
            records[(domain, "A")] = ["192.0.2.1"]
        if draw(st.booleans()):
            records[(domain, "MX")] = [MxRecord(10, draw(st.sampled_from(DOMAINS)))]
    records[("1.2.0.192.in-addr.arpa", "PTR")] = [draw(st.sampled_from(DOMAINS))]
    temporary = frozenset(
        draw(
            st.sets(
                st.tuples(st.sampled_from(DOMAINS), st.sampled_from(["A", "TXT", "MX"])), max_size=2
            )
        )
    )
    return InMemoryResolver(records, temporary=temporary)


@settings(max_examples=200)
@given(zones(), st.sampled_from(["192.0.2.1", "2001:db8::1"]), st.sampled_from(DOMAINS))
def test_check_host_always_returns_a_result(dns: InMemoryResolver, ip: str, domain: str) -> None:
    result = check_host(
        dns,
        ipaddress.ip_address(ip),
        domain,
        f"user+tag@{domain}",
        helo="mx.example.org",
        receiver_host="receiver.example",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert result.status in SpfStatus
    assert (result.problem is not None) == (
        result.status in (SpfStatus.TEMPERROR, SpfStatus.PERMERROR)
    )
    assert result.explanation is None or result.status is SpfStatus.FAIL
    # 10 DNS-querying terms, each of which looks up at most 1 + 10 names, plus
    # the record lookups of include/redirect and the explanation.
    assert len(dns.queries) <= 1 + 10 * 11 + 2
