"""ENVELOPE (RFC 3501 7.4.2) and the address-list parser behind it."""

from __future__ import annotations

import pytest

from mailactors.protocol.message import (
    Address,
    envelope,
    format_envelope,
    parse_address_list,
    parse_message,
)


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


def fetch_envelope(data: bytes) -> bytes:
    return format_envelope(envelope(parse_message(data)))


def test_rfc3501_example_envelope() -> None:
    data = crlf(
        "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
        "From: Terry Gray <gray@cac.washington.edu>",
        "Subject: IMAP4rev1 WG mtg summary and minutes",
        "To: imap@cac.washington.edu",
        "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>",
        "Message-Id: <B27397-0100000@cac.washington.edu>",
        "MIME-Version: 1.0",
        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII",
        "",
        "minutes",
    )
    # RFC 3501 7.4.2, the example of the ENVELOPE fetch item, byte for byte.
    assert fetch_envelope(data) == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )


def test_missing_fields_are_nil_and_sender_reply_to_default_to_from() -> None:
    data = crlf("From: a@example.com", "Sender:", "", "x")
    assert fetch_envelope(data) == (
        b'(NIL NIL ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com")) '
        b'((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL)'
    )
    assert fetch_envelope(b"") == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_all_fields_with_explicit_sender_and_reply_to() -> None:
    data = crlf(
        "Date: Mon, 1 Jan 2024 00:00:00 +0000",
        "Subject: =?utf-8?q?caf=C3=A9?=",
        "From: A <a@x.org>",
        "Sender: S <s@x.org>",
        "Reply-To: R <r@x.org>",
        "To: t@x.org",
        "Cc: c@x.org",
        "Bcc: b@x.org",
        "In-Reply-To: <p@x.org>",
        "Message-ID: <m@x.org>",
        "",
    )
    assert fetch_envelope(data) == (
        b'("Mon, 1 Jan 2024 00:00:00 +0000" "=?utf-8?q?caf=C3=A9?=" '
        b'(("A" NIL "a" "x.org")) (("S" NIL "s" "x.org")) (("R" NIL "r" "x.org")) '
        b'((NIL NIL "t" "x.org")) ((NIL NIL "c" "x.org")) ((NIL NIL "b" "x.org")) '
        b'"<p@x.org>" "<m@x.org>")'
    )


def test_groups_in_to() -> None:
    data = crlf(
        "From: a@x.org",
        "To: undisclosed-recipients:;, Team: Bob <bob@x.org>, carol@y.org;, dave@z.org",
        "",
    )
    env = envelope(parse_message(data))
    assert env.to == (
        Address(None, None, b"undisclosed-recipients", None),
        Address(None, None, None, None),
        Address(None, None, b"Team", None),
        Address(b"Bob", None, b"bob", b"x.org"),
        Address(None, None, b"carol", b"y.org"),
        Address(None, None, None, None),
        Address(None, None, b"dave", b"z.org"),
    )
    assert format_envelope(env) == (
        b'(NIL NIL ((NIL NIL "a" "x.org")) ((NIL NIL "a" "x.org")) ((NIL NIL "a" "x.org")) '
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)'
        b'(NIL NIL "Team" NIL)("Bob" NIL "bob" "x.org")'
        b'(NIL NIL "carol" "y.org")(NIL NIL NIL NIL)(NIL NIL "dave" "z.org")) NIL NIL NIL NIL)'
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'"Doe, John" <john@x.org>', [Address(b"Doe, John", None, b"john", b"x.org")]),
        (b"John Q. Public <jqp@x.org>", [Address(b"John Q. Public", None, b"jqp", b"x.org")]),
        (b"jqp@x.org (John Public)", [Address(b"John Public", None, b"jqp", b"x.org")]),
        (b"<@a.net,@b.net:joe@c.net>", [Address(None, b"@a.net,@b.net", b"joe", b"c.net")]),
        (b'"joe smith"@x.org', [Address(None, None, b'"joe smith"', b"x.org")]),
        (b"joe@[192.0.2.1]", [Address(None, None, b"joe", b"[192.0.2.1]")]),
        (b"=?utf-8?q?J=C3=B6rg?= <j@x.de>", [Address(b"=?utf-8?q?J=C3=B6rg?=", None, b"j", b"x.de")]),
        (b'"a \\"quoted\\" name" <q@x>', [Address(b'a "quoted" name', None, b"q", b"x")]),
        (b"localonly", [Address(None, None, b"localonly", b"")]),
        (b", ,a@b,,", [Address(None, None, b"a", b"b")]),
        (b"Group: a@b", [Address(None, None, b"Group", None), Address(None, None, b"a", b"b"),
                         Address(None, None, None, None)]),
        (b"<a@b", [Address(None, None, b"a", b"b")]),
        (b"", []),
        (b"\xc3\xa9mile <e@x>", [Address(b"\xc3\xa9mile", None, b"e", b"x")]),
    ],
)
def test_address_list_forms(raw: bytes, expected: list[Address]) -> None:
    assert list(parse_address_list(raw)) == expected


def test_eight_bit_and_special_characters_become_literals_or_escapes() -> None:
    data = b'From: "a\\\\b \\"c\\"" <x@y>\r\nSubject: caf\xc3\xa9\r\n\r\n'
    out = fetch_envelope(data)
    assert out.startswith(b"(NIL {5}\r\ncaf\xc3\xa9 ((\"a\\\\b \\\"c\\\"\" NIL \"x\" \"y\"))")


def test_enclosed_message_envelope_uses_its_own_header() -> None:
    data = crlf(
        "From: outer@x",
        "Content-Type: message/rfc822",
        "",
        "From: inner@y",
        "Subject: inner",
        "",
        "body",
    )
    part = parse_message(data)
    assert envelope(part.children[0]).subject == b"inner"
    assert envelope(part).subject is None
