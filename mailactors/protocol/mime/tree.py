"""The MIME part tree (RFC 2045, RFC 2046, RFC 5322) with exact byte offsets into the message.

Theory of operation: an entity is a header section and a body (RFC 2045 2.4). We scan
the header once, read the MIME fields from it, and then, for multipart/* bodies, find
the boundary delimiter lines with `bytes.find` and parse each body part as an entity of
its own; a message/rfc822 body is parsed as one enclosed message. Offsets always point
into the original bytes, so IMAP can serve any section byte for byte. Broken input
never raises: missing boundaries give a multipart without parts, a missing close
delimiter ends the last part at the end of its parent, and nesting stops at
`MAX_NESTING_DEPTH`. Work is linear in the message size times that depth.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailactors.protocol.mime.headers import HeaderField, Params, parse_media_value, scan_header

__all__ = ["MAX_BODY_PARTS", "MAX_NESTING_DEPTH", "Part", "parse_message"]

# RFC 2046 5.1 and RFC 2045 set no limit to nesting; IMAP servers do (Dovecot stops at
# 100 levels, Cyrus at a few dozen). Past this depth a multipart or message/rfc822 part
# is kept whole and not split further, which also bounds recursion and work.
MAX_NESTING_DEPTH = 40
# No RFC limit either; past this many body parts in one message the remaining text of a
# multipart is left unsplit, which bounds memory on "--b" repeated a million times.
MAX_BODY_PARTS = 10_000

# RFC 2045 5.2: "Content-type: text/plain; charset=us-ascii" is the default, also for a
# syntactically invalid Content-Type field.
_DEFAULT_PARAMS: Params = (("charset", "us-ascii"),)
# RFC 2046 5.1.1: the boundary delimiter line may be followed by transport padding.
_PADDING = b" \t\r"


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity: offsets into the message bytes, its MIME fields, and its children.

    `data[header_start:body_start]` is the header section (with the empty line that ends
    it), `data[body_start:end]` the body. Children are the body parts of a multipart, or
    the single enclosed message of a message/rfc822 (or message/global) part.
    """

    header_start: int
    body_start: int
    end: int
    fields: tuple[HeaderField, ...]
    media_type: str
    media_subtype: str
    params: Params
    content_id: str | None
    description: str | None
    transfer_encoding: str | None
    md5: str | None
    disposition: tuple[str, Params] | None
    language: tuple[str, ...]
    location: str | None
    lines: int
    children: tuple[Part, ...]

    @property
    def size(self) -> int:
        """Size of the body in octets, as it is stored (RFC 3501 body-fld-octets)."""
        return self.end - self.body_start

    @property
    def is_multipart(self) -> bool:
        """Whether the part is multipart/* (RFC 2046 5.1)."""
        return self.media_type.lower() == "multipart"

    @property
    def is_message(self) -> bool:
        """Whether the part encloses a message: message/rfc822 (RFC 2046 5.2.1) or
        message/global (RFC 6532 3.7)."""
        return self.media_type.lower() == "message" and self.media_subtype.lower() in (
            "rfc822",
            "global",
        )

    @property
    def is_text(self) -> bool:
        """Whether the part is text/* (RFC 2046 4.1)."""
        return self.media_type.lower() == "text"

    def param(self, name: str) -> str | None:
        """The value of a Content-Type parameter as written, by case-insensitive name."""
        lower = name.lower()
        for attribute, value in self.params:
            if attribute.lower() == lower:
                return value
        return None

    def field(self, name: str) -> HeaderField | None:
        """The first header field with this name (case-insensitive), if any."""
        lower = name.lower()
        for header_field in self.fields:
            if header_field.is_named(lower):
                return header_field
        return None


class _Budget:
    """Counts body parts across one message (see MAX_BODY_PARTS)."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = 0


def parse_message(data: bytes) -> Part:
    """Parse a message (RFC 5322) into its MIME tree. Never raises."""
    return _parse_entity(data, 0, len(data), 0, False, _Budget())


def _text_field(fields: tuple[HeaderField, ...], lower_name: str) -> str | None:
    for header_field in fields:
        if header_field.is_named(lower_name):
            return header_field.raw_value.decode("utf-8", "surrogateescape")
    return None


def _count_lines(data: bytes, start: int, end: int) -> int:
    """Lines of the body: line ends, plus one for a last line without one."""
    if start >= end:
        return 0
    lines = data.count(b"\n", start, end)
    if data[end - 1] != 0x0A:
        lines += 1
    return lines


def _parse_entity(
    data: bytes, start: int, end: int, depth: int, in_digest: bool, budget: _Budget
) -> Part:
    fields, body_start = scan_header(data, start, end)
    media_type, media_subtype, params = "text", "plain", _DEFAULT_PARAMS
    if in_digest:
        # RFC 2046 5.1.5: in a digest, the default Content-Type is message/rfc822.
        media_type, media_subtype, params = "message", "rfc822", ()
    disposition: tuple[str, Params] | None = None
    language: tuple[str, ...] = ()
    seen_type = False
    for header_field in fields:
        name = header_field.name.lower()
        if not name.startswith("content-"):
            continue
        if name == "content-type" and not seen_type:
            seen_type = True
            parsed = parse_media_value(header_field.raw_value, True)
            if parsed is not None:
                media_type, media_subtype, params = parsed
            else:
                media_type, media_subtype, params = "text", "plain", _DEFAULT_PARAMS
        elif name == "content-disposition" and disposition is None:
            parsed = parse_media_value(header_field.raw_value, False)
            if parsed is not None:
                disposition = (parsed[0], parsed[2])
        elif name == "content-language" and not language:
            # RFC 3282 2: Content-Language = Language-List (comma separated tags)
            raw = header_field.raw_value.decode("utf-8", "surrogateescape")
            language = tuple(tag.strip() for tag in raw.split(",") if tag.strip())
    content_id = _text_field(fields, "content-id")
    description = _text_field(fields, "content-description")
    transfer_encoding = _text_field(fields, "content-transfer-encoding")
    md5 = _text_field(fields, "content-md5")
    location = _text_field(fields, "content-location")
    if location is not None:
        # RFC 2557 4.2: a folded URL is unfolded by removing the white space.
        location = "".join(location.split())

    lower_type = media_type.lower()
    lower_subtype = media_subtype.lower()
    children: tuple[Part, ...] = ()
    if depth < MAX_NESTING_DEPTH:
        if lower_type == "multipart":
            boundary = None
            for attribute, value in params:
                if attribute.lower() == "boundary":
                    boundary = value
                    break
            if boundary:
                children = _split_multipart(
                    data,
                    body_start,
                    end,
                    boundary.encode("utf-8", "surrogateescape"),
                    depth + 1,
                    lower_subtype == "digest",
                    budget,
                )
        elif lower_type == "message" and lower_subtype in ("rfc822", "global"):
            budget.parts += 1
            children = (_parse_entity(data, body_start, end, depth + 1, False, budget),)
    lines = 0
    if lower_type in ("text", "message"):
        lines = _count_lines(data, body_start, end)
    return Part(
        header_start=start,
        body_start=body_start,
        end=end,
        fields=fields,
        media_type=media_type,
        media_subtype=media_subtype,
        params=params,
        content_id=content_id,
        description=description,
        transfer_encoding=transfer_encoding,
        md5=md5,
        disposition=disposition,
        language=language,
        location=location,
        lines=lines,
        children=children,
    )


def _delimiter_lines(
    data: bytes, start: int, end: int, boundary: bytes
) -> list[tuple[int, int, bool]]:
    """Find boundary delimiter lines in `data[start:end]` (RFC 2046 5.1.1).

    Returns (line start, offset after the line, is close delimiter) for each, up to and
    including the first close delimiter.
    """
    dash_boundary = b"--" + boundary
    # The delimiter must start a line: look for it after a line end, so that occurrences
    # inside lines are skipped by `bytes.find`, not by Python code.
    line_boundary = b"\n" + dash_boundary
    found: list[tuple[int, int, bool]] = []
    hit = start if data.startswith(dash_boundary, start, end) else -1
    pos = start
    while True:
        if hit < 0:
            newline_before = data.find(line_boundary, pos, end)
            if newline_before < 0:
                return found
            hit = newline_before + 1
        after = hit + len(dash_boundary)
        close = data.startswith(b"--", after, end)
        rest = after + 2 if close else after
        newline = data.find(b"\n", rest, end)
        line_end = end if newline < 0 else newline
        hit = -1
        # Only transport padding may follow on the line (RFC 2046 5.1.1).
        if data[rest:line_end].strip(_PADDING):
            pos = after
            continue
        found.append((after - len(dash_boundary), end if newline < 0 else newline + 1, close))
        if close or newline < 0:
            return found
        # Search again from this line's end, which may precede the next delimiter.
        pos = newline


def _split_multipart(
    data: bytes,
    start: int,
    end: int,
    boundary: bytes,
    depth: int,
    in_digest: bool,
    budget: _Budget,
) -> tuple[Part, ...]:
    delimiters = _delimiter_lines(data, start, end, boundary)
    children: list[Part] = []
    for index, (_, part_start, close) in enumerate(delimiters):
        if close:
            break
        if budget.parts >= MAX_BODY_PARTS:
            break
        if index + 1 < len(delimiters):
            part_end = delimiters[index + 1][0]
            # RFC 2046 5.1.1: "the CRLF preceding the boundary delimiter line is
            # conceptually attached to the boundary".
            if part_end > part_start and data[part_end - 1] == 0x0A:
                part_end -= 1
                if part_end > part_start and data[part_end - 1] == 0x0D:
                    part_end -= 1
        else:
            # No close delimiter: the last part runs to the end of the multipart.
            part_end = end
        budget.parts += 1
        children.append(_parse_entity(data, part_start, part_end, depth, in_digest, budget))
    return tuple(children)
