"""Organizational Domains from the Public Suffix List (RFC 7489 3.2)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from publicsuffixlist import PublicSuffixList

from mailactors.protocol import orgdomain
from mailactors.protocol.orgdomain import OrgDomainError, a_label_domain, organizational_domain


@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("example.com", "example.com"),
        ("mail.example.com", "example.com"),
        ("a.b.c.example.com", "example.com"),
        ("Mail.Example.COM.", "example.com"),
        ("example.co.uk", "example.co.uk"),
        ("www.example.co.uk", "example.co.uk"),
        ("a.b.example.co.uk", "example.co.uk"),
        # A public suffix is its own Organizational Domain.
        ("co.uk", "co.uk"),
        ("uk", "uk"),
        ("com", "com"),
        # Wildcard and exception rules: "*.kawasaki.jp" and "!city.kawasaki.jp".
        ("a.b.kawasaki.jp", "a.b.kawasaki.jp"),
        ("x.a.b.kawasaki.jp", "a.b.kawasaki.jp"),
        ("city.kawasaki.jp", "city.kawasaki.jp"),
        ("www.city.kawasaki.jp", "city.kawasaki.jp"),
        # The private section counts: each blogspot.com subdomain is its own organization.
        ("foo.blogspot.com", "foo.blogspot.com"),
        ("a.foo.blogspot.com", "foo.blogspot.com"),
        # Unknown top-level domains fall under the implicit "*" rule.
        ("mail.example.unknowntld", "example.unknowntld"),
        ("localhost", "localhost"),
        # IDNA: A-labels in and out; U-labels are converted.
        ("mail.xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("mail.bücher.de", "xn--bcher-kva.de"),
        ("a.b.xn--55qx5d.cn", "b.xn--55qx5d.cn"),
        ("a.b.公司.cn", "b.xn--55qx5d.cn"),
        ("xn--55qx5d.cn", "xn--55qx5d.cn"),
    ],
)
def test_organizational_domain(domain: str, org: str) -> None:
    assert organizational_domain(domain) == org


@pytest.mark.parametrize(
    "domain", ["", ".", "a..example.com", "x" * 64 + ".com", "a." * 127 + "com"]
)
def test_invalid_domains(domain: str) -> None:
    with pytest.raises(OrgDomainError):
        organizational_domain(domain)


def test_a_label_domain() -> None:
    assert a_label_domain("Bücher.Example.") == "xn--bcher-kva.example"
    assert a_label_domain("XN--BCHER-KVA.example") == "xn--bcher-kva.example"


def test_list_loaded_once_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[int] = []

    def counting(*, accept_unknown: bool, accept_encoded_idn: bool) -> PublicSuffixList:
        loads.append(1)
        return PublicSuffixList(
            accept_unknown=accept_unknown, accept_encoded_idn=accept_encoded_idn
        )

    monkeypatch.setattr(orgdomain, "_psl", None)
    monkeypatch.setattr(orgdomain, "PublicSuffixList", counting)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(organizational_domain, ["www.example.co.uk"] * 64))
    assert results == ["example.co.uk"] * 64
    assert loads == [1]
