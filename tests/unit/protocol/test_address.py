"""SMTP address and path parsing (RFC 5321 4.1.2, RFC 6531)."""

from __future__ import annotations

import pytest

from mailactors.protocol.address import (
    Address,
    AddressError,
    parse_address,
    parse_domain,
    parse_path,
    split_path,
)


@pytest.mark.parametrize(
    ("text", "localpart", "domain", "canonical"),
    [
        ("mjl@Example.ORG", "mjl", "example.org", "mjl@example.org"),
        ("first.last+tag@sub.example.org", "first.last+tag", "sub.example.org", None),
        ("!#$%&'*+-/=?^_`{|}~@x.example", "!#$%&'*+-/=?^_`{|}~", "x.example", None),
        ('"john doe"@example.org', "john doe", "example.org", '"john doe"@example.org'),
        ('"john"@example.org', "john", "example.org", "john@example.org"),
        ('"a\\"b\\\\c"@example.org', 'a"b\\c', "example.org", '"a\\"b\\\\c"@example.org'),
        ('"a@b"@example.org', "a@b", "example.org", '"a@b"@example.org'),
        ('""@example.org', "", "example.org", '""@example.org'),
        ("Case@Example.org", "Case", "example.org", "Case@example.org"),
        ("u@[192.0.2.1]", "u", "[192.0.2.1]", None),
        ("u@[IPv6:2001:DB8:0:0::1]", "u", "[IPv6:2001:db8::1]", "u@[IPv6:2001:db8::1]"),
        ("u@xn--bcher-kva.example", "u", "xn--bcher-kva.example", None),
        ("u@a-b.c1", "u", "a-b.c1", None),
    ],
)
def test_valid_ascii(text: str, localpart: str, domain: str, canonical: str | None) -> None:
    address = parse_address(text, smtputf8=False)
    assert address == Address(localpart, domain)
    assert str(address) == (canonical or text)
    # The canonical form parses back to the same address.
    assert parse_address(str(address), smtputf8=False) == address


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nodomain",
        "@example.org",
        "a..b@example.org",
        ".a@example.org",
        "a.@example.org",
        "a b@example.org",
        "a@",
        "a@-x.example",
        "a@x-.example",
        "a@x..example",
        "a@x.example.",
        "a@x_y.example",
        "a@[300.1.1.1]",
        "a@[IPv6:nothing]",
        "a@[tag:general]",
        '"unterminated@example.org',
        '"a"b@example.org',
        '"tab\there"@example.org',
        "x" * 65 + "@example.org",
        "a@" + "l" * 64 + ".example",
        "a@" + ".".join(["abcdefghi"] * 26),
        "jöran@example.org",
        "u@bücher.example",
    ],
)
def test_invalid_ascii(text: str) -> None:
    with pytest.raises(AddressError):
        parse_address(text, smtputf8=False)


def test_smtputf8() -> None:
    address = parse_address("Jöran@Bücher.Example", smtputf8=True)
    assert address == Address("Jöran", "bücher.example")
    assert str(address) == "Jöran@bücher.example"
    assert parse_address('"ö ü"@例え.jp', smtputf8=True) == Address("ö ü", "例え.jp")
    # NFC: "u" + combining diaeresis in a domain becomes "ü".
    assert parse_address("a@bu\u0308cher.example", smtputf8=True).domain == "bücher.example"
    with pytest.raises(AddressError):
        parse_address("a\u0085b@example.org", smtputf8=True)  # a C1 control character
    with pytest.raises(AddressError):
        parse_address("a@b\u00a0c.example", smtputf8=True)  # not a valid IDNA label


def test_parse_domain() -> None:
    assert parse_domain("MX.Example.ORG", smtputf8=False) == "mx.example.org"
    assert parse_domain("[127.0.0.1]", smtputf8=False) == "[127.0.0.1]"
    with pytest.raises(AddressError):
        parse_domain("", smtputf8=False)


def test_parse_path() -> None:
    assert parse_path("<>") == ""
    assert parse_path("<a@b.example>") == "a@b.example"
    assert parse_path("<@relay.example,@other.example:a@b.example>") == "a@b.example"
    for bad in ("a@b.example", "<a@b.example", "<@relay.example>", "<@bad_host:a@b>"):
        with pytest.raises(AddressError):
            parse_path(bad)
    with pytest.raises(AddressError, match="too long"):
        parse_path("<" + "a" * 300 + "@b.example>")


def test_split_path() -> None:
    assert split_path("<a@b.example> SIZE=1") == ("a@b.example", " SIZE=1")
    assert split_path('<"x>y"@b.example>') == ('"x>y"@b.example', "")
    assert split_path('<"x\\"> y"@b.example> BODY=7BIT') == ('"x\\"> y"@b.example', " BODY=7BIT")
    for bad in ("a@b", "<a@b", "<a<b@c>"):
        with pytest.raises(AddressError):
            split_path(bad)
