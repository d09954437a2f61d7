"""IMAP primitive parsers (RFC 9051 section 9) and modified UTF-7 (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import datetime

import pytest

from mailactors.protocol.imap import grammar as g
from mailactors.protocol.imap.mutf7 import MailboxNameError, decode_mutf7, encode_mutf7


def test_atom_and_astring() -> None:
    assert g.parse_atom(b"FLAGS)", 0) == ("FLAGS", 5)
    assert g.parse_astring(b"a]b c", 0) == (b"a]b", 3)
    assert g.parse_astring(b'"a\\"b" x', 0) == (b'a"b', 6)
    assert g.parse_astring(b"{3}\r\nabc", 0) == (b"abc", 8)
    assert g.parse_astring(b"{3+}\r\nabc", 0) == (b"abc", 9)
    with pytest.raises(g.GrammarError):
        g.parse_atom(b"(x", 0)
    with pytest.raises(g.GrammarError):
        g.parse_astring(b"", 0)


def test_quoted() -> None:
    assert g.parse_quoted(b'""', 0) == (b"", 2)
    assert g.parse_quoted(b'"\\\\"', 0) == (b"\\", 4)
    assert g.parse_quoted(b'"\xc3\xa9"', 0) == (b"\xc3\xa9", 4)
    for bad in (b'"abc', b'"a\\b"', b'"a\rb"', b"abc"):
        with pytest.raises(g.GrammarError):
            g.parse_quoted(bad, 0)


def test_literals() -> None:
    assert g.parse_literal(b"{0}\r\n", 0) == (b"", 5)
    with pytest.raises(g.GrammarError):
        g.parse_literal(b"~{1}\r\nx", 0)
    assert g.parse_literal(b"~{1}\r\nx", 0, binary=True) == (b"x", 7)
    with pytest.raises(g.GrammarError):
        g.parse_literal(b"{5}\r\nabc", 0)
    with pytest.raises(g.GrammarError):
        g.parse_string(b"abc", 0)


def test_nstring() -> None:
    assert g.parse_nstring(b"NIL)", 0) == (None, 3)
    assert g.parse_nstring(b"nil", 0) == (None, 3)
    assert g.parse_nstring(b'"NIL"', 0) == (b"NIL", 5)
    with pytest.raises(g.GrammarError):
        g.parse_nstring(b"NILS", 0)


def test_numbers() -> None:
    assert g.parse_number(b"0", 0) == (0, 1)
    assert g.parse_number(b"4294967295", 0) == (4294967295, 10)
    with pytest.raises(g.GrammarError):
        g.parse_number(b"4294967296", 0)
    assert g.parse_number(b"9223372036854775807", 0, g.MAX_NUMBER64)[0] == g.MAX_NUMBER64
    with pytest.raises(g.GrammarError):
        g.parse_number(b"9" * 30, 0, g.MAX_NUMBER64)
    with pytest.raises(g.GrammarError):
        g.parse_nz_number(b"0", 0)
    with pytest.raises(g.GrammarError):
        g.parse_nz_number(b"012", 0)


def test_flags() -> None:
    assert g.parse_flag_list(b"(\\seen \\ANSWERED $Forwarded \\Custom)", 0) == (
        ("\\Seen", "\\Answered", "$Forwarded", "\\Custom"),
        36,
    )
    assert g.parse_flag_list(b"()", 0) == ((), 2)
    assert g.parse_flag_list(b"(\\Seen \\seen)", 0)[0] == ("\\Seen",)
    with pytest.raises(g.GrammarError):
        g.parse_flag_list(b"(\\Recent)", 0)
    assert g.parse_flag(b"\\Recent", 0, allow_recent=True) == ("\\Recent", 7)
    with pytest.raises(g.GrammarError):
        g.parse_flag_list(b"(\\Seen", 0)
    with pytest.raises(g.GrammarError):
        g.parse_flag_list(b"(a b ", 0)


def test_dates() -> None:
    assert g.parse_date(b"1-Feb-1994", 0) == (datetime.date(1994, 2, 1), 10)
    assert g.parse_date(b'"01-feb-1994"', 0) == (datetime.date(1994, 2, 1), 13)
    for bad in (b"1-Feb-94", b"32-Jan-2000", b'"1-Feb-1994', b"1-XYZ-1994"):
        with pytest.raises(g.GrammarError):
            g.parse_date(bad, 0)
    value, end = g.parse_date_time(b'"17-Jul-1996 02:44:25 -0700"', 0)
    assert end == 28
    assert value == datetime.datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=datetime.timezone(-datetime.timedelta(hours=7))
    )
    assert g.parse_date_time(b'" 7-Feb-1994 21:52:25 +0000"', 0)[0].day == 7
    for bad in (
        b'"7-Feb-1994 21:52:25 +0000"',
        b'"17-Jul-1996 25:44:25 -0700"',
        b'"17-Jul-1996 02:44:25 -2400"',
        b"17-Jul-1996 02:44:25 -0700",
    ):
        with pytest.raises(g.GrammarError):
            g.parse_date_time(bad, 0)


def test_list_mailbox_patterns() -> None:
    assert g.parse_list_mailbox(b"%/*]x", 0) == ("%/*]x", 5)
    assert g.parse_list_mailbox(b'"a b/%"', 0) == ("a b/%", 7)
    assert g.parse_list_mailbox(b"&ZeVnLIqe-/*", 0) == ("\u65e5\u672c\u8a9e/*", 12)


def test_mutf7_rfc3501_example() -> None:
    # RFC 3501 section 5.1.3: "~peter/mail/&U,BTFw-/&ZeVnLIqe-" is
    # "~peter/mail/<Taipei in Chinese>/<Japanese in Japanese>".
    name = "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"
    assert encode_mutf7(name) == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
    assert decode_mutf7(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-") == name
    assert encode_mutf7("&") == "&-"
    assert decode_mutf7(b"&-&-") == "&&"
    # Astral characters travel as UTF-16 surrogate pairs.
    assert decode_mutf7(encode_mutf7("\U0001f600 mail").encode()) == "\U0001f600 mail"


@pytest.mark.parametrize("bad", [b"&", b"&U,BTFw", b"&U!-", b"&A-", b"&2D0-", b"\x01", b"\xff"])
def test_mutf7_invalid(bad: bytes) -> None:
    with pytest.raises(MailboxNameError):
        decode_mutf7(bad)
