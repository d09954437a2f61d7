"""BODY[section] (RFC 3501 6.4.5, RFC 9051 6.4.5) and BINARY[section] (RFC 3516 4)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mailactors.protocol.mime.encoding import decode_transfer_encoding
from mailactors.protocol.mime.headers import scan_header

__all__ = [
    "SectionLike",
    "SectionNode",
    "SectionSpec",
    "binary_section",
    "parse_section_spec",
    "resolve_part",
    "section",
]

HEADER = "HEADER"
HEADER_FIELDS = "HEADER.FIELDS"
HEADER_FIELDS_NOT = "HEADER.FIELDS.NOT"
TEXT = "TEXT"
MIME = "MIME"


class SectionNode(Protocol):
    """What section lookup needs of a part: a `Part`, or an `Outline` from a cached summary."""

    @property
    def header_start(self) -> int: ...

    @property
    def body_start(self) -> int: ...

    @property
    def end(self) -> int: ...

    @property
    def transfer_encoding(self) -> str | None: ...

    @property
    def is_multipart(self) -> bool: ...

    @property
    def is_message(self) -> bool: ...

    @property
    def children(self) -> Sequence[SectionNode]: ...


class SectionLike(Protocol):
    """Any parsed section: our `SectionSpec` or the IMAP command parser's `Section`."""

    @property
    def part(self) -> tuple[int, ...]: ...

    @property
    def text(self) -> str | None: ...

    @property
    def fields(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """A parsed section-spec: part numbers, then "", HEADER, HEADER.FIELDS[.NOT], TEXT or MIME."""

    part: tuple[int, ...] = ()
    text: str = ""
    fields: tuple[str, ...] = ()


# section-part = nz-number *("." nz-number)
_PART = re.compile(r"([1-9][0-9]{0,8}(?:\.[1-9][0-9]{0,8})*)(?:\.(.+))?\Z", re.DOTALL)
# header-list = "(" header-fld-name *(SP header-fld-name) ")", header-fld-name = astring
_HEADER_LIST = re.compile(r" ?\((.*)\)\Z", re.DOTALL)
_ASTRING = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s()"]+)')
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)


def parse_section_spec(spec: str | bytes) -> SectionSpec | None:
    """Parse the text between the brackets of BODY[...] (RFC 3501 9 `section-spec`).

    Returns None when it is not a valid section-spec.
    """
    text = spec.decode("utf-8", "replace") if isinstance(spec, bytes) else spec
    numbers: tuple[int, ...] = ()
    match = _PART.match(text)
    if match is not None:
        numbers = tuple(int(number) for number in match.group(1).split("."))
        text = match.group(2) or ""
    upper = text.upper()
    if upper in ("", HEADER, TEXT) or (upper == MIME and numbers):
        return SectionSpec(numbers, upper)
    for kind in (HEADER_FIELDS_NOT, HEADER_FIELDS):
        if upper.startswith(kind):
            listed = _HEADER_LIST.match(text, len(kind))
            if listed is None:
                return None
            names = tuple(
                atom or _QUOTED_PAIR.sub(r"\1", quoted)
                for quoted, atom in _ASTRING.findall(listed.group(1))
            )
            if not names:
                return None
            return SectionSpec(numbers, kind, names)
    return None


def _subparts(node: SectionNode) -> Sequence[SectionNode] | None:
    """The nodes numbered 1, 2, ... inside `node` (RFC 3501 6.4.5)."""
    if node.is_multipart:
        return node.children
    if node.is_message and node.children:
        enclosed = node.children[0]
        # "a part of type MESSAGE/RFC822 ... refer[s] to the [MIME-IMB] body parts of
        # the encapsulated message"; a non-multipart enclosed message has one part: its body.
        return enclosed.children if enclosed.is_multipart else (enclosed,)
    return None


def resolve_part(root: SectionNode, numbers: tuple[int, ...]) -> SectionNode | None:
    """The part that a section-part names, or None when there is no such part."""
    # RFC 3501 6.4.5: "Every message has at least one part number. Non-[MIME-IMB]
    # messages, and non-multipart [MIME-IMB] messages with no encapsulated message, only
    # have a part 1."
    node = root
    candidates: Sequence[SectionNode] | None = root.children if root.is_multipart else (root,)
    for number in numbers:
        if candidates is None or not 1 <= number <= len(candidates):
            return None
        node = candidates[number - 1]
        candidates = _subparts(node)
    return node


def _header_fields(data: bytes, message: SectionNode, names: tuple[str, ...], keep: bool) -> bytes:
    wanted = {name.lower() for name in names}
    fields, _ = scan_header(data, message.header_start, message.body_start)
    # "The field-matching is case-insensitive but otherwise exact." The subset is
    # followed by the blank line that ends a header (RFC 3501 6.4.5).
    chosen = [field.raw for field in fields if (field.name.lower() in wanted) == keep]
    return b"".join(chosen) + b"\r\n"


def _as_spec(spec: SectionLike | str | bytes) -> SectionSpec | None:
    if isinstance(spec, SectionSpec):
        return spec
    if isinstance(spec, str | bytes):
        return parse_section_spec(spec)
    return SectionSpec(tuple(spec.part), (spec.text or "").upper(), tuple(spec.fields))


def section(data: bytes, part: SectionNode, spec: SectionLike | str | bytes) -> bytes | None:
    """The octets of BODY[spec] of the message `data` parsed as `part`; None if none such.

    `spec` is a `SectionSpec` (or any object with its attributes), or the text between
    the brackets.
    """
    parsed = _as_spec(spec)
    if parsed is None:
        return None
    if parsed.part:
        node = resolve_part(part, parsed.part)
        if node is None:
            return None
        if parsed.text == "":
            return data[node.body_start : node.end]
        if parsed.text == MIME:
            return data[node.header_start : node.body_start]
        # "The HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, and TEXT part specifiers can be
        # the sole part specifier or can be prefixed by one or more numeric part
        # specifiers, provided that the numeric part specifier refers to a part of type
        # MESSAGE/RFC822."
        if not node.is_message or not node.children:
            return None
        message = node.children[0]
    else:
        if parsed.text == "":
            return data[part.header_start : part.end]
        message = part
    if parsed.text == HEADER:
        return data[message.header_start : message.body_start]
    if parsed.text == TEXT:
        return data[message.body_start : message.end]
    if parsed.text in (HEADER_FIELDS, HEADER_FIELDS_NOT):
        return _header_fields(data, message, parsed.fields, parsed.text == HEADER_FIELDS)
    return None


def binary_section(
    data: bytes, part: SectionNode, spec: SectionLike | str | bytes | tuple[int, ...]
) -> bytes | None:
    """BINARY[spec]: the part's content with its transfer encoding undone (RFC 3516 4.2).

    Raises `UnknownTransferEncoding` for an encoding we cannot undo (answer NO
    [UNKNOWN-CTE]); returns None for a section that does not exist or is not a part.
    """
    if isinstance(spec, tuple):
        numbers = spec
    else:
        parsed = _as_spec(spec)
        # RFC 3516 4.2: section-binary = "[" [section-part] "]"
        if parsed is None or parsed.text:
            return None
        numbers = parsed.part
    if not numbers:
        return data[part.header_start : part.end]
    node = resolve_part(part, numbers)
    if node is None:
        return None
    return decode_transfer_encoding(data[node.body_start : node.end], node.transfer_encoding)
