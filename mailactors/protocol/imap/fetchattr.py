"""FETCH attributes and modifiers (RFC 9051 section 6.4.5, RFC 3501, RFC 3516, RFC 7162).

fetch-att    = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".SIZE" / ".TEXT"] /
               "BODY" ["STRUCTURE"] / "UID" / "BODY" section [partial] /
               "BODY.PEEK" section [partial] / "BINARY" [".PEEK"] section-binary [partial] /
               "BINARY.SIZE" section-binary / "MODSEQ"
section      = "[" [section-spec] "]"
section-spec = section-msgtext / (section-part ["." section-text])
section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
section-part = nz-number *("." nz-number)
section-text = section-msgtext / "MIME"
header-list  = "(" header-fld-name *(SP header-fld-name) ")"
section-binary = "[" [section-part] "]"
partial      = "<" number64 "." nz-number64 ">"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailactors.protocol.imap.grammar import (
    MAX_NUMBER64,
    GrammarError,
    parse_astring_text,
    parse_number,
    parse_nz_number,
)
from mailactors.protocol.imap.response import astring


@dataclass(frozen=True, slots=True)
class Section:
    """A body section: part numbers then HEADER, HEADER.FIELDS[.NOT] (fields), TEXT or MIME."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def format(self) -> str:
        """The section-spec as sent back in the FETCH response (without brackets)."""
        out = ".".join(str(p) for p in self.part)
        if self.text is not None:
            out = f"{out}.{self.text}" if out else self.text
            if self.text.startswith("HEADER.FIELDS"):
                names = " ".join(astring(f).decode("utf-8") for f in self.fields)
                out += f" ({names})"
        return out


# Attribute names without a section.
SIMPLE_ATTRIBUTES = frozenset(
    {
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",
    }
)

# RFC 9051 section 6.4.5: macros "ALL", "FAST" and "FULL".
MACROS: dict[str, tuple[str, ...]] = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


@dataclass(frozen=True, slots=True)
class FetchAttr:
    """One FETCH data item.

    `name` is one of SIMPLE_ATTRIBUTES, or "BODY" / "BINARY" / "BINARY.SIZE" with a
    `section` (BODY without a section is the non-extensible BODYSTRUCTURE).
    `partial` is (origin, octet count). `peek` is BODY.PEEK / BINARY.PEEK.
    """

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False

    @property
    def sets_seen(self) -> bool:
        """Whether fetching this implicitly sets \\Seen (RFC 9051 section 6.4.5)."""
        if self.name in ("RFC822", "RFC822.TEXT"):
            return True
        return self.name in ("BODY", "BINARY") and self.section is not None and not self.peek

    def response_name(self) -> str:
        """The item name in the FETCH response, e.g. "BODY[1.MIME]<0>".

        RFC 9051 section 7.5.2: for a partial fetch only the origin is returned;
        BODY.PEEK and BINARY.PEEK are answered as BODY and BINARY.
        """
        if self.section is None:
            return self.name
        out = f"{self.name}[{self.section.format()}]"
        if self.partial is not None:
            out += f"<{self.partial[0]}>"
        return out


_NAME_RE = re.compile(rb"[A-Za-z0-9.]+")


def _parse_section_part(buf: bytes, pos: int) -> tuple[tuple[int, ...], int]:
    parts: list[int] = []
    while buf[pos : pos + 1].isdigit():
        n, pos = parse_nz_number(buf, pos)
        parts.append(n)
        if buf[pos : pos + 1] == b"." and buf[pos + 1 : pos + 2].isdigit():
            pos += 1
        else:
            break
    return tuple(parts), pos


def parse_header_list(buf: bytes, pos: int) -> tuple[tuple[str, ...], int]:
    """header-list = "(" header-fld-name *(SP header-fld-name) ")" ; header-fld-name = astring"""
    if buf[pos : pos + 1] != b"(":
        raise GrammarError("expected '(' before header field names")
    pos += 1
    names: list[str] = []
    while True:
        name, pos = parse_astring_text(buf, pos)
        names.append(name)
        if buf[pos : pos + 1] != b" ":
            break
        pos += 1
    if buf[pos : pos + 1] != b")":
        raise GrammarError("expected ')' after header field names")
    return tuple(names), pos + 1


def parse_section(buf: bytes, pos: int, binary: bool = False) -> tuple[Section, int]:
    """section = "[" [section-spec] "]"; section-binary = "[" [section-part] "]" """
    if buf[pos : pos + 1] != b"[":
        raise GrammarError("expected '['")
    pos += 1
    part, pos = _parse_section_part(buf, pos)
    text: str | None = None
    fields: tuple[str, ...] = ()
    if not binary and buf[pos : pos + 1] not in (b"]", b""):
        if part:
            if buf[pos : pos + 1] != b".":
                raise GrammarError("expected '.' after section part")
            pos += 1
        m = _NAME_RE.match(buf, pos)
        if m is None:
            raise GrammarError("expected a section text")
        text = m.group().decode("ascii").upper()
        pos = m.end()
        if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            if buf[pos : pos + 1] != b" ":
                raise GrammarError("expected header field names")
            fields, pos = parse_header_list(buf, pos + 1)
        elif text == "MIME":
            # section-text = section-msgtext / "MIME": MIME only after a part number.
            if not part:
                raise GrammarError("MIME needs a part number")
        elif text not in ("HEADER", "TEXT"):
            raise GrammarError("unknown section text")
    if buf[pos : pos + 1] != b"]":
        raise GrammarError("expected ']'")
    return Section(part, text, fields), pos + 1


def _parse_partial(buf: bytes, pos: int) -> tuple[tuple[int, int] | None, int]:
    """partial = "<" number64 "." nz-number64 ">" """
    if buf[pos : pos + 1] != b"<":
        return None, pos
    origin, pos = parse_number(buf, pos + 1, MAX_NUMBER64)
    if buf[pos : pos + 1] != b".":
        raise GrammarError("expected '.' in partial")
    length, pos = parse_nz_number(buf, pos + 1, MAX_NUMBER64)
    if buf[pos : pos + 1] != b">":
        raise GrammarError("expected '>' after partial")
    return (origin, length), pos + 1


def parse_fetch_att(buf: bytes, pos: int) -> tuple[FetchAttr, int]:
    """fetch-att (see the module docstring)."""
    m = _NAME_RE.match(buf, pos)
    if m is None:
        raise GrammarError("expected a fetch attribute")
    name = m.group().decode("ascii").upper()
    pos = m.end()
    if buf[pos : pos + 1] == b"[":
        if name in ("BODY", "BODY.PEEK"):
            section, pos = parse_section(buf, pos)
            partial, pos = _parse_partial(buf, pos)
            return FetchAttr("BODY", section, partial, name == "BODY.PEEK"), pos
        if name in ("BINARY", "BINARY.PEEK", "BINARY.SIZE"):
            section, pos = parse_section(buf, pos, binary=True)
            partial = None
            if name != "BINARY.SIZE":
                partial, pos = _parse_partial(buf, pos)
            base = "BINARY.SIZE" if name == "BINARY.SIZE" else "BINARY"
            return FetchAttr(base, section, partial, name == "BINARY.PEEK"), pos
        raise GrammarError(f"{name} takes no section")
    if name in SIMPLE_ATTRIBUTES:
        return FetchAttr(name), pos
    raise GrammarError(f"unknown fetch attribute {name}")


def parse_fetch_atts(buf: bytes, pos: int) -> tuple[tuple[FetchAttr, ...], int]:
    """ "ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")" """
    if buf[pos : pos + 1] == b"(":
        pos += 1
        atts: list[FetchAttr] = []
        while True:
            att, pos = parse_fetch_att(buf, pos)
            atts.append(att)
            if buf[pos : pos + 1] != b" ":
                break
            pos += 1
        if buf[pos : pos + 1] != b")":
            raise GrammarError("expected ')' after fetch attributes")
        return tuple(atts), pos + 1
    m = _NAME_RE.match(buf, pos)
    if m is not None and m.group().upper().decode("ascii") in MACROS:
        end = m.end()
        if buf[end : end + 1] in (b"", b" "):
            return tuple(FetchAttr(n) for n in MACROS[m.group().upper().decode("ascii")]), end
    att, pos = parse_fetch_att(buf, pos)
    return (att,), pos
