"""Validation of host names, domains, localparts, account names, IPs and name servers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailactors.conf import names


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("localhost", "localhost"),
        ("Mail.Example.COM", "mail.example.com"),
        ("a-b.example", "a-b.example"),
        ("xn--bcher-kva.example", "bücher.example"),
        ("BÜCHER.example", "bücher.example"),
        ("123.example", "123.example"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
    ],
)
def test_normalize_domain(text: str, normalized: str) -> None:
    assert names.normalize_domain(text) == normalized


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty domain name"),
        ("example.com.", "must not end with a dot"),
        ("a..b", "has an empty label"),
        (".a", "has an empty label"),
        ("-a.example", "must be letters, digits and hyphens"),
        ("a-.example", "must be letters, digits and hyphens"),
        ("a_b.example", "must be letters, digits and hyphens"),
        ("a b.example", "must be letters, digits and hyphens"),
        ("a" * 64 + ".example", "is longer than 63 octets"),
        (".".join(["a" * 63] * 4), "is longer than 253 characters"),
        ("192.0.2.1", "all-numeric top-level label"),
        ("xn--zz-.example", "invalid IDNA label"),
        ("xn--abc.example", "not allowed in host names"),
        ("b\u00fccher!.example", "has a character not allowed in host names"),
        ("\u00fc-.example", "must not start or end with a hyphen"),
    ],
)
def test_normalize_domain_invalid(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        names.normalize_domain(text)


def test_domain_to_ascii() -> None:
    assert names.domain_to_ascii("bücher.example") == "xn--bcher-kva.example"
    assert names.domain_to_ascii("mail.example.com") == "mail.example.com"


@given(st.text(max_size=80))
def test_normalize_domain_is_idempotent(text: str) -> None:
    try:
        normalized = names.normalize_domain(text)
    except ValueError:
        return
    assert names.normalize_domain(normalized) == normalized
    assert names.normalize_domain(names.domain_to_ascii(normalized)) == normalized


@pytest.mark.parametrize(
    "localpart", ["alice", "a.b", "a+tag", "o'hara", "x_y-z", "ünïcode", "!#$%&*"]
)
def test_validate_localpart(localpart: str) -> None:
    assert names.validate_localpart(localpart) == localpart


@pytest.mark.parametrize(
    ("localpart", "message"),
    [
        ("", "empty localpart"),
        (".a", "empty part between dots"),
        ("a.", "empty part between dots"),
        ("a..b", "empty part between dots"),
        ("a b", "character not allowed"),
        ('"a"', "character not allowed"),
        ("a@b", "character not allowed"),
        ("a\u00a0b", "character not allowed"),
        ("a" * 65, "longer than 64 octets"),
        ("é" * 33, "longer than 64 octets"),
    ],
)
def test_validate_localpart_invalid(localpart: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        names.validate_localpart(localpart)


@pytest.mark.parametrize("name", ["alice", "a.b", "A-1_x", "console", "con-1", "com10"])
def test_validate_account_name(name: str) -> None:
    assert names.validate_account_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".hidden", "trailing.", "a/b", "a\\b", "a b", "ü", "CON", "aux.x", "Lpt9"],
)
def test_validate_account_name_invalid(name: str) -> None:
    with pytest.raises(ValueError):
        names.validate_account_name(name)


@pytest.mark.parametrize(
    ("name", "normalized"),
    [("Inbox", "Inbox"), ("INBOX", "Inbox"), ("inbox", "Inbox"), ("Archive/2026", "Archive/2026")],
)
def test_normalize_mailbox(name: str, normalized: str) -> None:
    assert names.normalize_mailbox(name) == normalized


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b", "a\tb", "a\x00"])
def test_normalize_mailbox_invalid(name: str) -> None:
    with pytest.raises(ValueError):
        names.normalize_mailbox(name)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:53", "192.0.2.1:53"),
        ("2001:DB8::1", "2001:db8::1"),
        ("[2001:db8::1]:5353", "[2001:db8::1]:5353"),
        ("::1", "::1"),
    ],
)
def test_normalize_nameserver(text: str, normalized: str) -> None:
    assert names.normalize_nameserver(text) == normalized


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dns.example",
        "192.0.2.1:",
        "192.0.2.1:65536",
        "192.0.2.1:0",
        "192.0.2.1:x",
        "[::1]",
        "[::1]:",
        "[192.0.2.1]:53",
        "[::1]:53:1",
        "::1:53x",
        "192.0.2.1:+53",
        "192.0.2.1:٥٣",
    ],
)
def test_normalize_nameserver_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        names.normalize_nameserver(text)


@given(st.text(max_size=40))
def test_normalize_nameserver_only_value_errors(text: str) -> None:
    try:
        normalized = names.normalize_nameserver(text)
    except ValueError:
        return
    assert names.normalize_nameserver(normalized) == normalized
