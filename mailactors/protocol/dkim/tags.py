"""DKIM tag=value lists (RFC 6376 section 3.2), parsed from raw bytes.

The DKIM-Signature field and the key record in DNS both use this syntax:

    tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
    tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
    tag-name  =  ALPHA *ALNUMPUNC
    tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
    tval      =  1*VALCHAR
    VALCHAR   =  %x21-3A / %x3C-7E
    ALNUMPUNC =  ALPHA / DIGIT / "_"

VALCHAR is widened to UTF-8 octets (RFC 8616 section 4, internationalized
mail). Each tag remembers where its value sits in the parsed bytes, so the
verifier can blank the b= value exactly as it appeared (RFC 6376 section 3.7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FWS = re.compile(rb"[ \t\r\n]*")
_TAG_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9_]*")
# Octets a tag-value may not hold once folding (CRLF) is removed: controls other than HTAB.
_BAD_VALUE_OCTET = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_WHITESPACE = " \t\r\n"


class TagListError(ValueError):
    """The text is not a valid tag=value list."""


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag-spec.

    `value` is the tag-value as written (inner folding whitespace kept, surrounding
    whitespace removed), decoded as UTF-8. `start`/`end` delimit everything between
    the "=" and the following ";" (or the end): the value with its surrounding FWS.
    """

    name: str
    value: str
    start: int
    end: int

    def unfolded(self) -> str:
        """The value with every whitespace character removed (base64 values, lists)."""
        return "".join(self.value.split())


def parse_tag_list(data: bytes) -> dict[str, Tag]:
    """Parse a tag-list; tags keep their order. Raises TagListError."""
    tags: dict[str, Tag] = {}
    n = len(data)
    pos = _skip_fws(data, 0)
    while pos < n:
        name_match = _TAG_NAME.match(data, pos)
        if name_match is None:
            raise TagListError(f"expected a tag name at offset {pos}")
        name = name_match.group().decode("ascii")
        pos = _skip_fws(data, name_match.end())
        if pos >= n or data[pos] != ord("="):
            raise TagListError(f"expected '=' after tag {name!r}")
        start = pos + 1
        semicolon = data.find(b";", start)
        end = n if semicolon < 0 else semicolon
        raw = data[start:end].strip(b" \t\r\n")
        if _BAD_VALUE_OCTET.search(raw.replace(b"\r\n", b"")):
            raise TagListError(f"control character in the value of tag {name!r}")
        # RFC 6376 3.2: "Tags with duplicate names MUST NOT occur within a single tag-list;
        # if a tag name does occur more than once, the entire tag-list is invalid."
        if name in tags:
            raise TagListError(f"duplicate tag {name!r}")
        tags[name] = Tag(name, raw.decode("utf-8", "replace"), start, end)
        if semicolon < 0:
            break
        pos = _skip_fws(data, semicolon + 1)
    return tags


def _skip_fws(data: bytes, pos: int) -> int:
    match = _FWS.match(data, pos)
    return pos if match is None else match.end()


def split_list(value: str, separator: str = ":") -> tuple[str, ...]:
    """A colon-separated tag value (h=, q=, s=, t=) as items without surrounding whitespace."""
    return tuple(item.strip(_WHITESPACE) for item in value.split(separator))
