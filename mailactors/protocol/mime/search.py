"""Helpers for IMAP SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4): header values, text, sent date."""

from __future__ import annotations

import re
from datetime import date

from mailactors.protocol.mime.encoding import (
    UnknownTransferEncoding,
    decode_charset,
    decode_transfer_encoding,
)
from mailactors.protocol.mime.tree import Part

__all__ = ["header_values", "sent_date", "text_contains"]


def header_values(part: Part, name: str) -> list[str]:
    """Decoded values (RFC 2047) of every header field of `part` called `name`."""
    lower = name.lower()
    return [field.value for field in part.fields if field.is_named(lower)]


def _body_text(data: bytes, part: Part) -> str:
    body = data[part.body_start : part.end]
    try:
        content = decode_transfer_encoding(body, part.transfer_encoding)
    except UnknownTransferEncoding:
        # Search what we can: the octets as they are.
        content = body
    return decode_charset(content, part.param("charset"))


def text_contains(data: bytes, part: Part, needle: str, *, headers: bool) -> bool:
    """Whether the message contains `needle`, case-insensitively, in its text.

    With `headers` the header fields of every entity are searched too (SEARCH TEXT);
    without, only bodies (SEARCH BODY). Bodies of text parts (and of message or
    multipart parts that could not be split) are searched with their transfer encoding
    and charset undone; other media types, such as attachments, are not searched.
    """
    wanted = needle.casefold()
    if not wanted:
        return True
    stack = [part]
    while stack:
        node = stack.pop()
        if headers:
            for field in node.fields:
                if wanted in f"{field.name}: {field.value}".casefold():
                    return True
        if node.children:
            stack.extend(reversed(node.children))
            continue
        kind = node.media_type.lower()
        if kind in ("text", "message", "multipart") and wanted in _body_text(data, node).casefold():
            return True
    return False


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# RFC 5322 3.3: date = day month year (obs-day, obs-year of 4.3 allowed).
_DATE = re.compile(rb"(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{2,4})(?!\d)")


def sent_date(part: Part) -> date | None:
    """The date of the first Date field, time and zone disregarded (RFC 3501 6.4.4 SENTON)."""
    header_field = part.field("date")
    if header_field is None:
        return None
    match = _DATE.search(header_field.raw_value)
    if match is None:
        return None
    month = _MONTHS.get(match.group(2).decode("ascii").lower())
    if month is None:
        return None
    year = int(match.group(3))
    digits = len(match.group(3))
    # RFC 5322 4.3: two-digit years 00-49 are 2000-2049, 50-99 are 1950-1999; a
    # three-digit year has 1900 added.
    if digits == 2:
        year += 2000 if year < 50 else 1900
    elif digits == 3:
        year += 1900
    day = int(match.group(1))
    try:
        return date(year, month, day)
    except ValueError:
        # Day 31 of a 30-day month, day 0: the header names no real date.
        return None
