"""Evaluating SEARCH criteria against messages (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 7162 3.1.5).

Flag, size, date, set and MODSEQ keys use the message row only; header and text keys
parse the message file, once per message and only when the row keys did not already
decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from mailactors.protocol.imap.searchkey import (
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchKeyword,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSet,
    SearchSize,
    SearchText,
)
from mailactors.protocol.message import Part, header_values, parse_message, sent_date, text_contains
from mailactors.storage.account import MessageInfo

_FLAG_OF = {
    "ANSWERED": "\\Answered",
    "DELETED": "\\Deleted",
    "DRAFT": "\\Draft",
    "FLAGGED": "\\Flagged",
    "SEEN": "\\Seen",
}

# RFC 3501 6.4.4: the header fields that FROM, TO, CC, BCC and SUBJECT search.
_HEADER_OF = {"FROM": "from", "TO": "to", "CC": "cc", "BCC": "bcc", "SUBJECT": "subject"}


@dataclass(slots=True)
class Candidate:
    """One message being searched; the file is parsed on first need."""

    info: MessageInfo
    msn: int
    max_msn: int
    max_uid: int
    load: Callable[[], bytes]
    saved: frozenset[int] = frozenset()
    _data: bytes | None = None
    _part: Part | None = None
    flags_lower: frozenset[str] = field(default_factory=frozenset)

    def parsed(self) -> tuple[bytes, Part]:
        if self._part is None or self._data is None:
            self._data = self.load()
            self._part = parse_message(self._data)
        return self._data, self._part


def uses_modseq(key: SearchKey) -> bool:
    """Whether the criteria contain MODSEQ (the response then carries MODSEQ, RFC 7162 3.1.5)."""
    if isinstance(key, SearchModseq):
        return True
    if isinstance(key, SearchNot):
        return uses_modseq(key.key)
    if isinstance(key, SearchOr):
        return uses_modseq(key.left) or uses_modseq(key.right)
    if isinstance(key, SearchAnd):
        return any(uses_modseq(k) for k in key.keys)
    return False


def uses_saved(key: SearchKey) -> bool:
    """Whether the criteria refer to "$" (RFC 5182)."""
    if isinstance(key, SearchSet):
        return key.sequence.saved
    if isinstance(key, SearchNot):
        return uses_saved(key.key)
    if isinstance(key, SearchOr):
        return uses_saved(key.left) or uses_saved(key.right)
    if isinstance(key, SearchAnd):
        return any(uses_saved(k) for k in key.keys)
    return False


def matches(key: SearchKey, c: Candidate) -> bool:
    """Whether message `c` satisfies `key`."""
    if isinstance(key, SearchAnd):
        return all(matches(k, c) for k in key.keys)
    if isinstance(key, SearchFlag):
        return _flag(key.key, c)
    if isinstance(key, SearchKeyword):
        return (key.keyword.lower() in c.flags_lower) == key.present
    if isinstance(key, SearchNot):
        return not matches(key.key, c)
    if isinstance(key, SearchOr):
        return matches(key.left, c) or matches(key.right, c)
    if isinstance(key, SearchSet):
        if key.sequence.saved:
            return c.info.uid in c.saved
        if key.uid:
            return key.sequence.contains(c.info.uid, c.max_uid)
        return key.sequence.contains(c.msn, c.max_msn)
    if isinstance(key, SearchSize):
        return c.info.size > key.size if key.larger else c.info.size < key.size
    if isinstance(key, SearchModseq):
        return c.info.modseq >= key.modseq
    if isinstance(key, SearchDate):
        return _date(key, c)
    if isinstance(key, SearchHeader):
        _, part = c.parsed()
        values = header_values(part, key.field)
        if not values:
            return False
        wanted = key.value.casefold()
        return any(wanted in v.casefold() for v in values)
    if isinstance(key, SearchText):
        data, part = c.parsed()
        if key.key in _HEADER_OF:
            wanted = key.value.casefold()
            return any(wanted in v.casefold() for v in header_values(part, _HEADER_OF[key.key]))
        return text_contains(data, part, key.value, headers=key.key == "TEXT")
    raise TypeError(f"unknown search key {type(key).__name__}")


def _flag(name: str, c: Candidate) -> bool:
    if name == "ALL":
        return True
    if name in _FLAG_OF:
        return _FLAG_OF[name].lower() in c.flags_lower
    if name.startswith("UN") and name[2:] in _FLAG_OF:
        return _FLAG_OF[name[2:]].lower() not in c.flags_lower
    # \Recent is not kept (RFC 9051 removed it): no message is recent, so NEW
    # (recent and unseen) matches nothing and OLD everything.
    if name in ("NEW", "RECENT"):
        return False
    if name == "OLD":
        return True
    raise TypeError(f"unknown search flag {name}")


def _date(key: SearchDate, c: Candidate) -> bool:
    if key.key.startswith("SENT"):
        _, part = c.parsed()
        day: date | None = sent_date(part)
        if day is None:
            return False
        which = key.key[4:]
    else:
        # RFC 3501 6.4.4: internal date "disregarding time and timezone".
        day = c.info.received.date()
        which = key.key
    if which == "BEFORE":
        return day < key.date
    if which == "ON":
        return day == key.date
    return day >= key.date
