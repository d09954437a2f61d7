"""MX selection: preference order, null MX, implicit MX, errors, host addresses."""

from __future__ import annotations

import ipaddress

import pytest

from mailactors.protocol.dns import InMemoryResolver, MxRecord
from mailactors.protocol.mxselect import MxError, MxHost, host_addresses, mx_targets


def no_shuffle(hosts: list[MxHost]) -> None:
    pass


def reverse(hosts: list[MxHost]) -> None:
    hosts.reverse()


def test_mx_order_by_preference_with_shuffle_inside_equal_preference() -> None:
    resolver = InMemoryResolver(
        {
            ("example.org", "MX"): [
                MxRecord(20, "backup.example.org"),
                MxRecord(10, "mx1.example.org"),
                MxRecord(10, "mx2.example.org"),
                MxRecord(10, "mx1.example.org"),  # duplicate
            ]
        },
        authenticated=frozenset({"example.org"}),
    )
    got = mx_targets(resolver, "Example.ORG.", shuffle=no_shuffle)
    assert [h.host for h in got.hosts] == [
        "mx1.example.org",
        "mx2.example.org",
        "backup.example.org",
    ]
    assert not got.implicit and got.authenticated and got.domain == "example.org"
    shuffled = mx_targets(resolver, "example.org", shuffle=reverse)
    assert [h.host for h in shuffled.hosts] == [
        "mx2.example.org",
        "mx1.example.org",
        "backup.example.org",
    ]


def test_default_shuffle_keeps_preference_groups() -> None:
    records = [MxRecord(10, f"a{i}.example.org") for i in range(5)] + [
        MxRecord(5, "first.example.org")
    ]
    resolver = InMemoryResolver({("example.org", "MX"): records})
    got = mx_targets(resolver, "example.org")
    assert got.hosts[0].host == "first.example.org"
    assert sorted(h.host for h in got.hosts[1:]) == [f"a{i}.example.org" for i in range(5)]


def test_null_mx_is_permanent() -> None:
    resolver = InMemoryResolver(
        {("example.org", "MX"): [MxRecord(0, "")], ("example.org", "A"): ["192.0.2.1"]}
    )
    with pytest.raises(MxError) as info:
        mx_targets(resolver, "example.org")
    assert info.value.permanent and info.value.status == "5.1.10"


def test_null_mx_among_others_is_skipped() -> None:
    resolver = InMemoryResolver(
        {("example.org", "MX"): [MxRecord(0, ""), MxRecord(10, "mx.example.org")]}
    )
    got = mx_targets(resolver, "example.org", shuffle=no_shuffle)
    assert got.hosts == (MxHost("mx.example.org", 10),)


def test_implicit_mx_when_no_mx_records() -> None:
    resolver = InMemoryResolver(
        {("example.org", "A"): ["192.0.2.1"], ("example.org", "TXT"): ["v=spf1 -all"]},
        authenticated=frozenset({"example.org"}),
    )
    got = mx_targets(resolver, "example.org")
    assert got.implicit and got.hosts == (MxHost("example.org", 0),) and got.authenticated


def test_no_mx_and_no_address_is_permanent() -> None:
    resolver = InMemoryResolver({("example.org", "TXT"): ["hello"]})
    with pytest.raises(MxError) as info:
        mx_targets(resolver, "example.org")
    assert info.value.permanent and info.value.status == "5.1.2"
    assert "no IP address" in info.value.reason


def test_nxdomain_is_permanent() -> None:
    with pytest.raises(MxError) as info:
        mx_targets(InMemoryResolver(), "nonexistent.example")
    assert info.value.permanent and info.value.status == "5.1.2"


def test_temporary_dns_failure_is_temporary() -> None:
    resolver = InMemoryResolver(temporary=frozenset({("example.org", "MX")}))
    with pytest.raises(MxError) as info:
        mx_targets(resolver, "example.org")
    assert not info.value.permanent and info.value.status == "4.4.3"
    # Implicit MX whose address lookups fail temporarily.
    resolver = InMemoryResolver(
        {("example.org", "TXT"): ["x"]},
        temporary=frozenset({("example.org", "A"), ("example.org", "AAAA")}),
    )
    with pytest.raises(MxError) as info:
        mx_targets(resolver, "example.org")
    assert not info.value.permanent


def test_internationalized_domain_is_looked_up_as_a_label() -> None:
    resolver = InMemoryResolver({("xn--bcher-kva.example", "MX"): [MxRecord(10, "mx.example")]})
    got = mx_targets(resolver, "bücher.example")
    assert got.domain == "xn--bcher-kva.example" and got.hosts[0].host == "mx.example"


def test_host_addresses_ipv6_first_and_authenticated_bits() -> None:
    resolver = InMemoryResolver(
        {
            ("mx.example.org", "A"): ["192.0.2.1", "192.0.2.2"],
            ("mx.example.org", "AAAA"): ["2001:db8::1"],
        },
        authenticated=frozenset({"mx.example.org"}),
    )
    got = host_addresses(resolver, "mx.example.org")
    assert got.addresses == (
        ipaddress.IPv6Address("2001:db8::1"),
        ipaddress.IPv4Address("192.0.2.1"),
        ipaddress.IPv4Address("192.0.2.2"),
    )
    assert got.authenticated
    unsigned = InMemoryResolver({("mx.example.org", "A"): ["192.0.2.1"]})
    assert not host_addresses(unsigned, "mx.example.org").authenticated


def test_host_addresses_one_family_failing_temporarily() -> None:
    resolver = InMemoryResolver(
        {("mx.example.org", "A"): ["192.0.2.1"]},
        temporary=frozenset({("mx.example.org", "AAAA")}),
        authenticated=frozenset({"mx.example.org"}),
    )
    got = host_addresses(resolver, "mx.example.org")
    assert got.addresses == (ipaddress.IPv4Address("192.0.2.1"),) and not got.authenticated


def test_host_without_addresses() -> None:
    with pytest.raises(MxError) as info:
        host_addresses(InMemoryResolver(), "gone.example.org")
    assert info.value.permanent and info.value.reason == "host does not exist"
