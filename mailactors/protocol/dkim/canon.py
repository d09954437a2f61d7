"""The message as DKIM sees it: header fields, body, canonicalization (RFC 6376 3.4).

We split the header section ourselves, keeping every field's exact bytes (the
"simple" algorithm hashes them unchanged). Line ends are CRLF on the wire; a
message handed to us with bare LF line ends is treated as if each LF were CRLF,
as other implementations do. Everything here is linear in the message size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CRLF = b"\r\n"
_LINE_END = re.compile(rb"\r?\n")
_WSP_RUN = re.compile(rb"[ \t]+")
# RFC 5322 3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126; RFC 5322 4.5.3 (obsolete
# syntax) allows WSP between the name and the colon.
_FIELD_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field: `raw` is its exact bytes including the final CRLF."""

    name: str  # lower case, as matched against h= (RFC 6376 5.4: case-insensitive)
    raw: bytes
    colon: int  # offset of the ":" in raw

    @property
    def value(self) -> bytes:
        """Everything after the colon, without the final CRLF."""
        return self.raw[self.colon + 1 : -2]

    def canonical(self, relaxed: bool) -> bytes:
        """The field in "simple" or "relaxed" form, with the final CRLF."""
        if not relaxed:
            return self.raw
        return relaxed_field(self.raw[: self.colon], self.value) + CRLF


def relaxed_field(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2 "relaxed" header canonicalization, without the final CRLF."""
    # "Convert all header field names (not the header field values) to lowercase."
    # "Delete any WSP characters remaining before and after the colon separating the
    # header field name from the header field value."
    name = name.rstrip(b" \t").lower()
    # "Unfold all header field continuation lines ... Convert all sequences of one or more
    # WSP characters to a single SP character. ... Delete all WSP characters at the end of
    # each unfolded header field value."
    value = _WSP_RUN.sub(b" ", value.replace(CRLF, b"")).strip(b" ")
    return name + b":" + value


@dataclass(frozen=True, slots=True)
class Message:
    """A message split into header fields (top to bottom) and body."""

    fields: tuple[HeaderField, ...]
    body: bytes


def split_message(message: bytes) -> Message:
    """Split at the first empty line. Lines in the header section that are not fields
    (an mbox "From " line, text without a colon) are dropped with their continuations."""
    data = _LINE_END.sub(CRLF, message)
    if data.startswith(CRLF):
        head, body = b"", data[2:]
    else:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            head, body = data, b""
            if head and not head.endswith(CRLF):
                head += CRLF
        else:
            head, body = data[: end + 2], data[end + 4 :]
    return Message(tuple(_fields(head.split(CRLF)[:-1])), body)


def _fields(lines: Iterable[bytes]) -> Iterable[HeaderField]:
    current: list[bytes] = []
    name = b""
    colon = 0
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if current:
                current.append(line)
            continue
        if current:
            yield HeaderField(name.decode("ascii").lower(), CRLF.join(current) + CRLF, colon)
            current = []
        match = _FIELD_NAME.match(line)
        if match is not None:
            current = [line]
            name = match.group(1)
            colon = match.end() - 1
    if current:
        yield HeaderField(name.decode("ascii").lower(), CRLF.join(current) + CRLF, colon)


def select_fields(
    fields: Sequence[HeaderField], names: Iterable[str], exclude: int | None = None
) -> list[HeaderField]:
    """The fields named by h=, in h= order.

    RFC 6376 5.4.2: a name listed several times selects the instances of that field from
    the bottom of the header block upward. A name listed more often than it occurs selects
    nothing the extra times (3.5: "nonexistent header fields do not contribute to the
    signature computation"). `exclude` is the index of the DKIM-Signature field being
    verified, which did not exist when it was signed.
    """
    remaining: dict[str, list[int]] = {}
    for index, field in enumerate(fields):
        if index != exclude:
            remaining.setdefault(field.name, []).append(index)
    selected: list[HeaderField] = []
    for name in names:
        stack = remaining.get(name.lower())
        if stack:
            selected.append(fields[stack.pop()])
    return selected


def canonical_body(body: bytes, relaxed: bool) -> bytes:
    """RFC 6376 3.4.3 ("simple") or 3.4.4 ("relaxed") body canonicalization."""
    if not relaxed:
        # 3.4.3: "ignores all empty lines at the end of the message body ... If there is no
        # body or no trailing CRLF on the message body, a CRLF is added."
        return body[: len(body) - _trailing_crlf_bytes(body)] + CRLF
    lines = body.split(CRLF)
    last = _WSP_RUN.sub(b" ", lines.pop())  # text after the last CRLF: not a complete line
    # 3.4.4 a: "Ignore all whitespace at the end of lines. ... Reduce all sequences of WSP
    # within a line to a single SP character."
    out = [_WSP_RUN.sub(b" ", line.rstrip(b" \t")) for line in lines]
    if last:
        out.append(last)
        return CRLF.join(out) + CRLF  # "If the body is non-empty but does not end with a CRLF"
    # 3.4.4 b: "Ignore all empty lines at the end of the message body."
    while out and not out[-1]:
        out.pop()
    return CRLF.join(out) + CRLF if out else b""


def _trailing_crlf_bytes(body: bytes) -> int:
    """How many bytes at the end of body are a run of CRLF pairs."""
    tail = body[len(body.rstrip(b"\r\n")) :]
    # Match CRLF pairs from the end: reversed, they are "\n\r" pairs from the start.
    match = re.match(rb"(?:\n\r)*", tail[::-1])
    return 0 if match is None else match.end()
