"""FETCH data items from a row, a cached summary and the message octets."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mailactors.actors.imap.fetch import FetchRefused, fetch_items, parse_summary
from mailactors.protocol.imap.fetchattr import parse_fetch_atts
from mailactors.protocol.message import summarize
from mailactors.storage.account import MessageInfo

MESSAGE = (
    b"From: Alice <alice@example.org>\r\nSubject: parts\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nhello world\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nzzz\r\n--b--\r\n"
)
INFO = MessageInfo(
    1, 1, 7, 42, 40, ("\\Seen",), len(MESSAGE), datetime(2026, 11, 24, tzinfo=UTC), False
)


def items(spec: bytes, raw: bytes | None = None, **kw: bool) -> dict[str, bytes]:
    attrs, _ = parse_fetch_atts(spec, 0)
    out = fetch_items(
        INFO,
        attrs,
        uid_first=kw.get("uid", False),
        with_modseq=kw.get("modseq", False),
        add_flags=kw.get("flags", False),
        summary=parse_summary(raw),
        load=lambda: MESSAGE,
    )
    return dict(out)


def test_items_from_cached_summary() -> None:
    raw = summarize(MESSAGE)
    got = items(b"(ENVELOPE BODYSTRUCTURE RFC822.SIZE FLAGS)", raw, uid=True, modseq=True)
    assert list(got) == ["UID", "ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "FLAGS", "MODSEQ"]
    assert b'"parts"' in got["ENVELOPE"] and got["MODSEQ"] == b"(42)"
    assert items(b"(ENVELOPE)") == items(b"(ENVELOPE)", raw)


def test_sections_partial_and_binary() -> None:
    got = items(b"(BODY.PEEK[1]<6.5> BINARY.SIZE[1] BODY[HEADER.FIELDS (Subject)])")
    assert got["BODY[1]<6>"] == b"{5}\r\nworld"
    assert got["BINARY.SIZE[1]"] == b"11"
    assert got["BODY[HEADER.FIELDS (Subject)]"] == b"{18}\r\nSubject: parts\r\n\r\n"
    with pytest.raises(FetchRefused) as refused:
        items(b"BINARY[2]")
    assert refused.value.code == "UNKNOWN-CTE"
    with pytest.raises(FetchRefused):
        items(b"BINARY[9]")


def test_damaged_summaries_fall_back_to_parsing() -> None:
    doc = json.loads(summarize(MESSAGE))
    doc["tree"] = "broken"
    damaged = json.dumps(doc).encode()
    assert items(b"BODY.PEEK[1]", damaged)["BODY[1]"] == b"{11}\r\nhello world"
    assert parse_summary(b"not json") is None
    assert parse_summary(b'{"v": 0}') is None
