"""Search helpers (header_values, text_contains, sent_date) and the cached Summary."""

from __future__ import annotations

import pickle
from datetime import date

import pytest

from mailactors.protocol.message import (
    Summary,
    SummaryError,
    bodystructure,
    envelope,
    format_envelope,
    header_values,
    parse_message,
    sent_date,
    summarize,
    text_contains,
)


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


MESSAGE = crlf(
    "From: =?iso-8859-1?q?Andr=E9?= <andre@example.fr>",
    "To: bob@example.org",
    "Subject: =?utf-8?b?UsOpc3Vtw6k=?= of the week",
    "Subject: second subject",
    "Date: Sat, 29 Feb 2020 23:59:59 -1200",
    "Content-Type: multipart/mixed; boundary=b",
    "",
    "--b",
    "Content-Type: text/plain; charset=iso-8859-1",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "Le caf=E9 est pr=EAt, =",
    "mon ami.",
    "--b",
    "Content-Type: text/html; charset=utf-8",
    "Content-Transfer-Encoding: base64",
    "",
    "PHA+R3LDvMOfZTwvcD4=",
    "--b",
    "Content-Type: application/octet-stream",
    "",
    "secret attachment words",
    "--b--",
)
PART = parse_message(MESSAGE)


def test_header_values_are_decoded() -> None:
    assert header_values(PART, "SUBJECT") == ["Résumé of the week", "second subject"]
    assert header_values(PART, "from") == ["André <andre@example.fr>"]
    assert header_values(PART, "x-missing") == []


@pytest.mark.parametrize(
    ("needle", "headers", "found"),
    [
        ("CAFÉ EST PRÊT, MON AMI", False, True),  # quoted-printable, Latin-1, soft line break
        ("grüße", False, True),  # base64, UTF-8, case-folded ß
        ("GRÜSSE", False, True),
        ("secret attachment", False, False),  # attachments are not text
        ("résumé", False, False),  # a header, not the body
        ("résumé", True, True),
        ("subject: second", True, True),
        ("andré", True, True),
        ("nowhere", True, False),
        ("", False, True),
    ],
)
def test_text_contains(needle: str, headers: bool, found: bool) -> None:
    assert text_contains(MESSAGE, PART, needle, headers=headers) is found


def test_text_contains_searches_enclosed_messages_and_unknown_encodings() -> None:
    data = crlf(
        "Content-Type: message/rfc822",
        "",
        "Subject: inner subject",
        "Content-Transfer-Encoding: x-unknown",
        "",
        "inner text",
    )
    part = parse_message(data)
    assert text_contains(data, part, "INNER TEXT", headers=False)
    assert text_contains(data, part, "inner subject", headers=True)
    assert not text_contains(data, part, "inner subject", headers=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sat, 29 Feb 2020 23:59:59 -1200", date(2020, 2, 29)),
        ("1 Jan 70 00:00 GMT", date(1970, 1, 1)),
        ("Mon, 3 Mar 03 1:00 +0000", date(2003, 3, 3)),
        ("Tue, 4 Apr 104 1:00 +0000", date(2004, 4, 4)),
        ("  7 september 2021 10:00", date(2021, 9, 7)),
        ("31 Apr 2021 10:00 +0000", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_sent_date(value: str, expected: date | None) -> None:
    assert sent_date(parse_message(crlf(f"Date: {value}", ""))) == expected


def test_sent_date_without_date_field() -> None:
    assert sent_date(parse_message(b"Subject: x\r\n\r\n")) is None


def test_summary_round_trip() -> None:
    raw = summarize(MESSAGE)
    summary = Summary.from_bytes(raw)
    assert summary.size == len(MESSAGE)
    assert summary.envelope == format_envelope(envelope(PART))
    assert summary.body == bodystructure(PART, False)
    assert summary.bodystructure == bodystructure(PART, True)
    assert summary.sent_date == date(2020, 2, 29)
    assert [child.end for child in summary.outline.children] == [child.end for child in PART.children]
    assert summary.to_bytes() == raw
    assert pickle.loads(pickle.dumps(summary)) == summary
    assert pickle.loads(pickle.dumps(PART)) == PART


def test_summary_keeps_eight_bit_octets() -> None:
    data = b"Subject: caf\xe9\r\nContent-Type: text/plain; name=\"\xff\"\r\n\r\nx"
    summary = Summary.from_bytes(summarize(data))
    assert b"caf\xe9" in summary.envelope
    assert b"\xff" in summary.bodystructure


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"v": 999}',
        b'{"v": 1, "size": "1", "env": "", "body": "", "bs": "", "date": null, "tree": [0,0,0,0,null]}',
        b'{"v": 1, "size": 1, "env": "", "body": "", "bs": "", "date": 5, "tree": [0,0,0,0,null]}',
        b'{"v": 1, "size": 1, "env": "", "body": "", "bs": "", "date": "x", "tree": [0,0,0,0,null]}',
        b'{"v": 1, "size": 1, "env": "\\u0100", "body": "", "bs": "", "date": null, "tree": [0,0,0,0,null]}',
        b'{"v": 1, "size": 1, "env": "", "body": "", "bs": "", "date": null, "tree": [0,0,0]}',
        b'{"v": 1, "size": 1, "env": "", "body": "", "bs": "", "date": null, "tree": [0,0,0,0,1]}',
        b'{"v": 1, "size": 1, "env": "", "body": "", "bs": "", "date": null, "tree": [0,0,0,0,null,3]}',
        b"[" * 100_000,
    ],
)
def test_summary_rejects_garbage(raw: bytes) -> None:
    with pytest.raises(SummaryError):
        Summary.from_bytes(raw)
