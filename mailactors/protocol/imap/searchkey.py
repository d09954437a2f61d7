"""SEARCH criteria (RFC 3501 section 6.4.4, RFC 9051 section 6.4.4, RFC 7162 MODSEQ).

search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date / "BODY" SP astring /
             "CC" SP astring / "DELETED" / "FLAGGED" / "FROM" SP astring /
             "KEYWORD" SP flag-keyword / "NEW" / "OLD" / "ON" SP date / "RECENT" / "SEEN" /
             "SINCE" SP date / "SUBJECT" SP astring / "TEXT" SP astring / "TO" SP astring /
             "UNANSWERED" / "UNDELETED" / "UNFLAGGED" / "UNKEYWORD" SP flag-keyword /
             "UNSEEN" / "DRAFT" / "HEADER" SP header-fld-name SP astring /
             "LARGER" SP number64 / "NOT" SP search-key / "OR" SP search-key SP search-key /
             "SENTBEFORE" SP date / "SENTON" SP date / "SENTSINCE" SP date /
             "SMALLER" SP number64 / "UID" SP sequence-set / "UNDRAFT" / sequence-set /
             "(" search-key *(SP search-key) ")"
search-key =/ search-modsequence                                   ; RFC 7162 3.1.5
search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer
search-modseq-ext  = SP entry-name SP entry-type-req
entry-name         = entry-flag-name ; DQUOTE "/flags/" attr-flag DQUOTE
entry-type-req     = entry-type-resp / "all" ; entry-type-resp = "priv" / "shared"
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from mailactors.protocol.imap.grammar import (
    MAX_NUMBER64,
    GrammarError,
    parse_astring_text,
    parse_atom,
    parse_date,
    parse_number,
    parse_quoted,
    parse_sequence_set,
    parse_sp,
)
from mailactors.protocol.imap.sequence import SequenceSet

# Not an RFC number: bounds recursion through NOT, OR and parentheses.
MAX_SEARCH_DEPTH = 64

# Keys without arguments, matched against flags or message state.
FLAG_KEYS = frozenset(
    {
        "ALL",
        "ANSWERED",
        "DELETED",
        "DRAFT",
        "FLAGGED",
        "NEW",
        "OLD",
        "RECENT",
        "SEEN",
        "UNANSWERED",
        "UNDELETED",
        "UNDRAFT",
        "UNFLAGGED",
        "UNSEEN",
    }
)
TEXT_KEYS = frozenset({"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"})
DATE_KEYS = frozenset({"BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"})


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """An argument-less key: ALL, SEEN, UNSEEN, NEW, RECENT, ..."""

    key: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """BCC/BODY/CC/FROM/SUBJECT/TEXT/TO: case-insensitive substring match."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """HEADER field-name string; an empty string matches any message with the field."""

    field: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchKeyword:
    """KEYWORD (present=True) or UNKEYWORD (present=False)."""

    keyword: str
    present: bool


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE/ON/SINCE (internal date) and SENTBEFORE/SENTON/SENTSINCE (Date: header)."""

    key: str
    date: datetime.date


@dataclass(frozen=True, slots=True)
class SearchSize:
    """LARGER (larger=True) or SMALLER n octets (RFC822.SIZE)."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchSet:
    """A sequence set of message numbers, or UID set (uid=True)."""

    sequence: SequenceSet
    uid: bool


@dataclass(frozen=True, slots=True)
class SearchModseq:
    """MODSEQ [entry-name entry-type] n: mod-sequence >= n (RFC 7162 section 3.1.5)."""

    modseq: int
    entry_name: str | None = None
    entry_type: str | None = None


@dataclass(frozen=True, slots=True)
class SearchNot:
    """NOT key."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    """OR key1 key2."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """All keys match: a parenthesized list, or the whole search program."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchFlag
    | SearchText
    | SearchHeader
    | SearchKeyword
    | SearchDate
    | SearchSize
    | SearchSet
    | SearchModseq
    | SearchNot
    | SearchOr
    | SearchAnd
)

_KEY_RE = re.compile(rb"[A-Za-z]+")
_SET_START = frozenset(b"0123456789*$")


def parse_search_key(buf: bytes, pos: int, depth: int = 0) -> tuple[SearchKey, int]:
    """search-key (see the module docstring)."""
    if depth > MAX_SEARCH_DEPTH:
        raise GrammarError("search criteria nested too deeply")
    c = buf[pos : pos + 1]
    if c == b"(":
        keys, pos = parse_search_keys(buf, pos + 1, depth + 1)
        if buf[pos : pos + 1] != b")":
            raise GrammarError("expected ')' in search criteria")
        return (keys[0] if len(keys) == 1 else SearchAnd(keys)), pos + 1
    if c and c[0] in _SET_START:
        seq, pos = parse_sequence_set(buf, pos)
        return SearchSet(seq, uid=False), pos
    m = _KEY_RE.match(buf, pos)
    if m is None:
        raise GrammarError("expected a search key")
    key = m.group().decode("ascii").upper()
    pos = m.end()
    if key in FLAG_KEYS:
        return SearchFlag(key), pos
    if key in TEXT_KEYS:
        value, pos = parse_astring_text(buf, parse_sp(buf, pos))
        return SearchText(key, value), pos
    if key in DATE_KEYS:
        date, pos = parse_date(buf, parse_sp(buf, pos))
        return SearchDate(key, date), pos
    if key == "HEADER":
        field, pos = parse_astring_text(buf, parse_sp(buf, pos))
        value, pos = parse_astring_text(buf, parse_sp(buf, pos))
        return SearchHeader(field, value), pos
    if key in ("KEYWORD", "UNKEYWORD"):
        keyword, pos = parse_atom(buf, parse_sp(buf, pos))
        return SearchKeyword(keyword, key == "KEYWORD"), pos
    if key in ("LARGER", "SMALLER"):
        size, pos = parse_number(buf, parse_sp(buf, pos), MAX_NUMBER64)
        return SearchSize(key == "LARGER", size), pos
    if key == "UID":
        seq, pos = parse_sequence_set(buf, parse_sp(buf, pos))
        return SearchSet(seq, uid=True), pos
    if key == "NOT":
        inner, pos = parse_search_key(buf, parse_sp(buf, pos), depth + 1)
        return SearchNot(inner), pos
    if key == "OR":
        left, pos = parse_search_key(buf, parse_sp(buf, pos), depth + 1)
        right, pos = parse_search_key(buf, parse_sp(buf, pos), depth + 1)
        return SearchOr(left, right), pos
    if key == "MODSEQ":
        return _parse_modseq(buf, parse_sp(buf, pos))
    raise GrammarError(f"unknown search key {key}")


def _parse_modseq(buf: bytes, pos: int) -> tuple[SearchModseq, int]:
    """[entry-name SP entry-type-req SP] mod-sequence-valzer"""
    name: str | None = None
    kind: str | None = None
    if buf[pos : pos + 1] == b'"':
        raw, pos = parse_quoted(buf, pos)
        name = raw.decode("utf-8", "replace")
        if not name.lower().startswith("/flags/"):
            raise GrammarError("MODSEQ entry name must be /flags/<flag>")
        kind, pos = parse_atom(buf, parse_sp(buf, pos))
        kind = kind.lower()
        if kind not in ("priv", "shared", "all"):
            raise GrammarError("MODSEQ entry type must be priv, shared or all")
        pos = parse_sp(buf, pos)
    value, pos = parse_number(buf, pos, MAX_NUMBER64)
    return SearchModseq(value, name, kind), pos


def parse_search_keys(buf: bytes, pos: int, depth: int = 0) -> tuple[tuple[SearchKey, ...], int]:
    """search-key *(SP search-key)"""
    keys: list[SearchKey] = []
    while True:
        key, pos = parse_search_key(buf, pos, depth)
        keys.append(key)
        if buf[pos : pos + 1] != b" ":
            return tuple(keys), pos
        pos += 1
