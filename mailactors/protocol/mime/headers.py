"""Header sections (RFC 5322 2.2) and MIME parameter fields (RFC 2045 5.1, RFC 2183, RFC 2231)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from mailactors.protocol.mime.encoding import decode_charset, decode_encoded_words, text_of

__all__ = [
    "HeaderField",
    "Params",
    "decode_params",
    "parse_media_value",
    "scan_header",
]

# One parameter as written: (attribute, value), value unquoted, case kept.
Params = tuple[tuple[str, str], ...]

# RFC 5322 2.2: field-name = 1*ftext; ftext = %d33-57 / %d59-126. RFC 5322 4.5.3
# (obs-optional) allows white space before the colon.
_FIELD_START = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
# RFC 5322 2.2.3: unfolding removes each CRLF that is immediately followed by WSP.
_FOLD = re.compile(rb"\r?\n(?=[ \t])")


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field: its name and the exact octets it occupies, folding and line end included."""

    name: str
    raw: bytes
    colon: int  # index in `raw` of the colon that ends the name
    lower: str = ""  # the name in lower case; made from `name` when not given

    def __post_init__(self) -> None:
        if not self.lower:
            object.__setattr__(self, "lower", self.name.lower())

    @property
    def raw_value(self) -> bytes:
        """The unfolded value, white space at both ends removed, encoded words left as they are."""
        value = _FOLD.sub(b"", self.raw[self.colon + 1 :])
        return value.strip(b" \t\r\n")

    @property
    def value(self) -> str:
        """The unfolded value with RFC 2047 encoded words decoded."""
        return decode_encoded_words(self.raw_value)

    def is_named(self, lower_name: str) -> bool:
        """Whether the field's name matches `lower_name` case-insensitively."""
        return self.lower == lower_name


def _is_blank(data: bytes, start: int, end: int) -> bool:
    length = end - start
    if length == 1:
        return data[start] in (0x0A, 0x0D)
    return length == 2 and data[start] == 0x0D and data[start + 1] == 0x0A


def scan_header(data: bytes, start: int, end: int) -> tuple[tuple[HeaderField, ...], int]:
    """Split the header section of the entity in `data[start:end]` into fields.

    Returns the fields and the offset where the body starts: just after the empty line
    that ends the header (RFC 5322 2.1), or, in a broken message, at the first line that
    is neither a field nor a continuation, or at `end` when the entity is all header.
    Bare LF ends a line as CRLF does.
    """
    fields: list[HeaderField] = []
    field_start = -1
    colon = -1
    pos = start
    body_start = end
    while pos < end:
        newline = data.find(b"\n", pos, end)
        line_end = end if newline < 0 else newline + 1
        if _is_blank(data, pos, line_end):
            body_start = line_end
            break
        if data[pos] in (0x20, 0x09) and field_start >= 0:
            pos = line_end
            continue
        match = _FIELD_START.match(data, pos, line_end)
        if match is None:
            body_start = pos
            break
        if field_start >= 0:
            fields.append(_field(data, field_start, pos, colon))
        field_start = pos
        colon = match.end() - 1
        pos = line_end
    if field_start >= 0:
        fields.append(_field(data, field_start, min(pos, body_start), colon))
    return tuple(fields), body_start


def _field(data: bytes, start: int, end: int, colon: int) -> HeaderField:
    raw = data[start:end]
    name = data[start:colon].rstrip(b" \t").decode("ascii", "replace")
    return HeaderField(name=name, raw=raw, colon=colon - start, lower=name.lower())


def _skip_cfws(text: str, pos: int) -> int:
    """Skip white space and (nested) comments (RFC 5322 3.2.2)."""
    length = len(text)
    while pos < length:
        char = text[pos]
        if char in " \t\r\n":
            pos += 1
        elif char == "(":
            depth = 0
            while pos < length:
                char = text[pos]
                if char == "\\":
                    pos += 1
                elif char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                    if depth == 0:
                        pos += 1
                        break
                pos += 1
        else:
            break
    return pos


def _read_token(text: str, pos: int, stops: str) -> tuple[str, int]:
    start = pos
    length = len(text)
    while pos < length and text[pos] not in stops:
        pos += 1
    return text[start:pos], pos


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read a quoted-string starting at the opening quote (RFC 5322 3.2.4)."""
    out: list[str] = []
    pos += 1
    length = len(text)
    while pos < length:
        char = text[pos]
        if char == "\\" and pos + 1 < length:
            out.append(text[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        if char not in "\r\n":
            out.append(char)
        pos += 1
    return "".join(out), pos


_TOKEN_STOPS = ' \t\r\n()<>@,;:\\"/[]?='
# Unquoted parameter values are read leniently: real mail has "name=a b.pdf" and "name=x[1]".
_VALUE_STOPS = ";\r\n"


def parse_media_value(raw: bytes, with_subtype: bool) -> tuple[str, str, Params] | None:
    """Parse `type "/" subtype *(";" parameter)` (RFC 2045 5.1) or, without subtype,
    `disposition-type *(";" disposition-parm)` (RFC 2183 2).

    Returns None when the value has no valid type (the caller applies the default).
    """
    text = text_of(raw)
    pos = _skip_cfws(text, 0)
    kind, pos = _read_token(text, pos, _TOKEN_STOPS)
    subtype = ""
    if with_subtype:
        pos = _skip_cfws(text, pos)
        if pos >= len(text) or text[pos] != "/":
            return None
        pos = _skip_cfws(text, pos + 1)
        subtype, pos = _read_token(text, pos, _TOKEN_STOPS)
        if not subtype:
            return None
    if not kind:
        return None
    return kind, subtype, _parse_params(text, pos)


def _parse_params(text: str, pos: int) -> Params:
    params: list[tuple[str, str]] = []
    length = len(text)
    while pos < length:
        semicolon = text.find(";", pos)
        if semicolon < 0:
            break
        pos = _skip_cfws(text, semicolon + 1)
        attribute, pos = _read_token(text, pos, _TOKEN_STOPS)
        pos = _skip_cfws(text, pos)
        if not attribute or pos >= length or text[pos] != "=":
            continue
        pos = _skip_cfws(text, pos + 1)
        if pos < length and text[pos] == '"':
            value, pos = _read_quoted(text, pos)
        else:
            value, pos = _read_token(text, pos, _VALUE_STOPS)
            value = value.rstrip(" \t")
        params.append((attribute, value))
    return tuple(params)


_SECTION = re.compile(r"^(.*?)\*(\d+)(\*?)$|^(.*?)(\*)$")


def decode_params(params: Params) -> dict[str, str]:
    """Parameters by lower-cased name, with RFC 2231 continuations joined and charsets decoded."""
    plain: dict[str, str] = {}
    pieces: dict[str, list[tuple[int, bool, str]]] = {}
    for attribute, value in params:
        match = _SECTION.match(attribute)
        if match is None:
            plain.setdefault(attribute.lower(), value)
        elif match.group(1) is not None:
            number = int(match.group(2)) if len(match.group(2)) < 6 else 99999
            pieces.setdefault(match.group(1).lower(), []).append(
                (number, bool(match.group(3)), value)
            )
        else:
            pieces.setdefault(match.group(4).lower(), []).append((0, True, value))
    for name, parts in pieces.items():
        parts.sort(key=lambda part: part[0])
        charset = ""
        chunks: list[bytes] = []
        for index, (_, encoded, value) in enumerate(parts):
            if encoded:
                if index == 0 and value.count("'") >= 2:
                    # RFC 2231 4: value := [charset] "'" [language] "'" extended-other-values
                    charset, _, value = value.split("'", 2)
                chunks.append(unquote_to_bytes(value))
            else:
                chunks.append(value.encode("utf-8", "surrogateescape"))
        plain[name] = decode_charset(b"".join(chunks), charset or None)
    return plain
