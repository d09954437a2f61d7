"""A compact per-message summary the store caches, so FETCH need not re-parse files.

It holds the ENVELOPE, BODY and BODYSTRUCTURE replies ready to send, the sent date for
SEARCH SENT*, and an outline of the part tree with byte offsets, enough for
`section()` and `binary_section()` to serve BODY[...] and BINARY[...] from the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from mailactors.protocol.mime.bodystructure import bodystructure
from mailactors.protocol.mime.envelope import envelope, format_envelope
from mailactors.protocol.mime.search import sent_date
from mailactors.protocol.mime.tree import Part, parse_message

__all__ = ["SUMMARY_VERSION", "Outline", "Summary", "SummaryError", "summarize"]

# Bump when the layout or the meaning of a cached summary changes; older ones are rejected.
SUMMARY_VERSION = 1

_MULTIPART = 1
_MESSAGE = 2
_LEAF = 0


class SummaryError(ValueError):
    """Cached summary bytes that are not a summary of this version."""


@dataclass(frozen=True, slots=True)
class Outline:
    """The part tree reduced to what sections need (see `SectionNode`)."""

    header_start: int
    body_start: int
    end: int
    transfer_encoding: str | None
    is_multipart: bool
    is_message: bool
    children: tuple[Outline, ...]

    @classmethod
    def from_part(cls, part: Part) -> Outline:
        """The outline of a parsed part tree."""
        return cls(
            part.header_start,
            part.body_start,
            part.end,
            part.transfer_encoding,
            part.is_multipart,
            part.is_message,
            tuple(cls.from_part(child) for child in part.children),
        )

    def _to_json(self) -> list[object]:
        kind = _MULTIPART if self.is_multipart else _MESSAGE if self.is_message else _LEAF
        node: list[object] = [self.header_start, self.body_start, self.end, kind]
        node.append(self.transfer_encoding)
        if self.children:
            node.append([child._to_json() for child in self.children])
        return node

    @classmethod
    def _from_json(cls, node: object, depth: int) -> Outline:
        if not isinstance(node, list) or len(node) not in (5, 6) or depth > 100:
            raise SummaryError("bad outline node")
        header_start, body_start, end, kind, encoding = node[:5]
        if not all(isinstance(value, int) for value in (header_start, body_start, end, kind)):
            raise SummaryError("bad outline offsets")
        if encoding is not None and not isinstance(encoding, str):
            raise SummaryError("bad outline encoding")
        children = node[5] if len(node) == 6 else []
        if not isinstance(children, list):
            raise SummaryError("bad outline children")
        return cls(
            header_start,
            body_start,
            end,
            encoding,
            kind == _MULTIPART,
            kind == _MESSAGE,
            tuple(cls._from_json(child, depth + 1) for child in children),
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """What FETCH ENVELOPE/BODY/BODYSTRUCTURE and SEARCH SENT* need of one message."""

    size: int
    envelope: bytes
    body: bytes
    bodystructure: bytes
    sent_date: date | None
    outline: Outline

    @classmethod
    def from_message(cls, data: bytes, part: Part | None = None) -> Summary:
        """Summarise a message, parsing it unless its tree is given."""
        tree = parse_message(data) if part is None else part
        return cls(
            size=len(data),
            envelope=format_envelope(envelope(tree)),
            body=bodystructure(tree, False),
            bodystructure=bodystructure(tree, True),
            sent_date=sent_date(tree),
            outline=Outline.from_part(tree),
        )

    def to_bytes(self) -> bytes:
        """Serialise as compact JSON (octet strings as Latin-1 text, which maps 1:1)."""
        document = {
            "v": SUMMARY_VERSION,
            "size": self.size,
            "env": self.envelope.decode("latin-1"),
            "body": self.body.decode("latin-1"),
            "bs": self.bodystructure.decode("latin-1"),
            "date": None if self.sent_date is None else self.sent_date.isoformat(),
            "tree": self.outline._to_json(),
        }
        return json.dumps(document, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Summary:
        """Read what `to_bytes` wrote; raise `SummaryError` for anything else."""
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as error:
            raise SummaryError(f"not a summary: {error}") from error
        if not isinstance(document, dict) or document.get("v") != SUMMARY_VERSION:
            raise SummaryError("not a summary of this version")
        size = document.get("size")
        texts = [document.get(key) for key in ("env", "body", "bs")]
        sent = document.get("date")
        if not isinstance(size, int) or not all(isinstance(text, str) for text in texts):
            raise SummaryError("bad summary fields")
        if sent is not None and not isinstance(sent, str):
            raise SummaryError("bad summary date")
        try:
            octets = [str(text).encode("latin-1") for text in texts]
            day = None if sent is None else date.fromisoformat(sent)
        except ValueError as error:
            raise SummaryError(f"bad summary text: {error}") from error
        return cls(
            size=size,
            envelope=octets[0],
            body=octets[1],
            bodystructure=octets[2],
            sent_date=day,
            outline=Outline._from_json(document.get("tree"), 0),
        )


def summarize(data: bytes) -> bytes:
    """Parse a message and return its serialised `Summary`."""
    return Summary.from_message(data).to_bytes()
