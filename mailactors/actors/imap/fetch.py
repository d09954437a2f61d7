"""FETCH data items of one message (RFC 9051 6.4.5 / 7.5.2, RFC 3516 BINARY, RFC 7162 MODSEQ).

ENVELOPE, BODY and BODYSTRUCTURE come from the summary the store cached at delivery;
the message file is read only for body sections (and parsed only when a message has
no cached summary).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from mailactors.protocol.imap.fetchattr import FetchAttr, Section
from mailactors.protocol.imap.response import (
    format_date_time,
    format_flags,
    literal,
)
from mailactors.protocol.message import (
    Outline,
    Summary,
    SummaryError,
    UnknownTransferEncoding,
    binary_section,
    section,
)
from mailactors.protocol.mime.summary import SUMMARY_VERSION
from mailactors.storage.account import MessageInfo


class SummaryLike(Protocol):
    """What FETCH needs of a message summary (a `Summary` or a `CachedSummary`)."""

    @property
    def envelope(self) -> bytes: ...

    @property
    def body(self) -> bytes: ...

    @property
    def bodystructure(self) -> bytes: ...

    @property
    def outline(self) -> Outline: ...


class FetchRefused(Exception):
    """A data item cannot be served (e.g. BINARY of an unknown encoding): tagged NO."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def needs_summary(attrs: tuple[FetchAttr, ...]) -> bool:
    """Whether any item needs the message summary (ENVELOPE, BODY*, sections)."""
    return any(a.name in ("ENVELOPE", "BODY", "BODYSTRUCTURE", "BINARY", "BINARY.SIZE") for a in attrs)


def needs_file(attrs: tuple[FetchAttr, ...]) -> bool:
    """Whether any item needs the message octets."""
    return any(
        a.section is not None or a.name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT")
        for a in attrs
    )


def _partial(data: bytes, attr: FetchAttr) -> bytes:
    if attr.partial is None:
        return data
    origin, count = attr.partial
    return data[origin : origin + count]


def fetch_items(
    info: MessageInfo,
    attrs: tuple[FetchAttr, ...],
    *,
    uid_first: bool,
    with_modseq: bool,
    add_flags: bool,
    summary: SummaryLike | None,
    load: Callable[[], bytes],
) -> list[tuple[str, bytes]]:
    """The (name, value) items of a FETCH response for one message, in request order.

    `uid_first`: UID FETCH always returns UID (RFC 9051 6.4.9). `with_modseq`: CONDSTORE
    is on, so MODSEQ is included (RFC 7162 3.1.4.1). `add_flags`: \\Seen was just set,
    so FLAGS is included (RFC 9051 6.4.5). `load()` reads the message octets.
    """
    items: list[tuple[str, bytes]] = []
    names: set[str] = set()

    def add(name: str, value: bytes) -> None:
        if name not in names:
            names.add(name)
            items.append((name, value))

    if uid_first:
        add("UID", str(info.uid).encode())
    data: bytes | None = None

    def octets() -> bytes:
        nonlocal data
        if data is None:
            data = load()
        return data

    def the_summary() -> SummaryLike:
        nonlocal summary
        if summary is None:
            summary = Summary.from_message(octets())
        return summary

    def outline() -> Outline:
        nonlocal summary
        try:
            return the_summary().outline
        except SummaryError:
            # A damaged cached outline: parse the message instead.
            summary = Summary.from_message(octets())
            return summary.outline

    for attr in attrs:
        name = attr.name
        if name == "UID":
            add("UID", str(info.uid).encode())
        elif name == "FLAGS":
            add("FLAGS", format_flags(info.flags))
        elif name == "INTERNALDATE":
            add("INTERNALDATE", format_date_time(info.received))
        elif name == "RFC822.SIZE":
            add("RFC822.SIZE", str(info.size).encode())
        elif name == "MODSEQ":
            add("MODSEQ", f"({info.modseq})".encode())
        elif name == "ENVELOPE":
            add("ENVELOPE", the_summary().envelope)
        elif name == "BODYSTRUCTURE":
            add("BODYSTRUCTURE", the_summary().bodystructure)
        elif name == "BODY" and attr.section is None:
            add("BODY", the_summary().body)
        elif name == "RFC822":
            add("RFC822", literal(octets()))
        elif name == "RFC822.HEADER":
            add("RFC822.HEADER", literal(section(octets(), outline(), Section(text="HEADER")) or b""))
        elif name == "RFC822.TEXT":
            add("RFC822.TEXT", literal(section(octets(), outline(), Section(text="TEXT")) or b""))
        elif name == "BODY":
            assert attr.section is not None
            value = section(octets(), outline(), attr.section)
            add(attr.response_name(), literal(_partial(value or b"", attr)))
        elif name in ("BINARY", "BINARY.SIZE"):
            assert attr.section is not None
            try:
                value = binary_section(octets(), outline(), attr.section.part)
            except UnknownTransferEncoding:
                # RFC 3516 4.3: unknown transfer encoding: NO [UNKNOWN-CTE].
                raise FetchRefused("UNKNOWN-CTE", "unknown content-transfer-encoding") from None
            if value is None:
                raise FetchRefused("NONEXISTENT", "no such body part")
            if name == "BINARY.SIZE":
                add(attr.response_name(), str(len(value)).encode())
            else:
                part = _partial(value, attr)
                add(attr.response_name(), literal(part, binary=b"\x00" in part))
    if with_modseq:
        add("MODSEQ", f"({info.modseq})".encode())
    if add_flags:
        add("FLAGS", format_flags(info.flags))
    return items


class CachedSummary:
    """A cached summary read lazily: ENVELOPE and BODYSTRUCTURE come straight from the
    stored document; the part outline (for sections) is built only when asked for."""

    __slots__ = ("_raw", "_doc", "_full")

    def __init__(self, raw: bytes, doc: dict[str, Any]) -> None:
        self._raw = raw
        self._doc = doc
        self._full: Summary | None = None

    def _text(self, key: str) -> bytes:
        value = self._doc[key]
        assert isinstance(value, str)  # checked by parse_summary
        return value.encode("latin-1")

    def full(self) -> Summary:
        if self._full is None:
            self._full = Summary.from_bytes(self._raw)
        return self._full

    @property
    def envelope(self) -> bytes:
        return self._text("env")

    @property
    def body(self) -> bytes:
        return self._text("body")

    @property
    def bodystructure(self) -> bytes:
        return self._text("bs")

    @property
    def outline(self) -> Outline:
        return self.full().outline


def parse_summary(raw: bytes | None) -> CachedSummary | None:
    """A cached summary, or None when absent or stale (the file is parsed instead)."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("v") != SUMMARY_VERSION:
        return None
    if not all(isinstance(doc.get(key), str) for key in ("env", "body", "bs")):
        return None
    try:
        "".join((doc["env"], doc["body"], doc["bs"])).encode("latin-1")
    except UnicodeEncodeError:
        return None
    return CachedSummary(raw, doc)


__all__ = ["FetchRefused", "fetch_items", "needs_file", "needs_summary", "parse_summary"]
