"""IMAP string formatting for ENVELOPE and BODYSTRUCTURE (RFC 3501 9, RFC 9051 9)."""

from __future__ import annotations

import re

__all__ = ["NIL", "imap_nstring", "imap_string", "imap_text"]

NIL = b"NIL"

# RFC 3501 9: quoted = DQUOTE *QUOTED-CHAR DQUOTE, QUOTED-CHAR = <any TEXT-CHAR except
# quoted-specials> / "\" quoted-specials; TEXT-CHAR = <any CHAR except CR and LF>;
# CHAR = %x01-7F. Anything else (8-bit octets, CR, LF, NUL) must be sent as a literal.
_NOT_QUOTABLE = re.compile(rb"[^\x01-\x09\x0b\x0c\x0e-\x7f]")
# Long values go as literals too, so a reply line stays readable.
_MAX_QUOTED = 1000


def imap_string(value: bytes) -> bytes:
    """`value` as an IMAP quoted string, or as a literal when it cannot be quoted."""
    if len(value) > _MAX_QUOTED or _NOT_QUOTABLE.search(value) is not None:
        return b"{%d}\r\n%s" % (len(value), value)
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def imap_nstring(value: bytes | None) -> bytes:
    """`value` as an IMAP nstring: NIL for None."""
    return NIL if value is None else imap_string(value)


def imap_text(value: str | None) -> bytes:
    """A str from the parser (surrogate-escaped octets) as an IMAP nstring."""
    return NIL if value is None else imap_string(value.encode("utf-8", "surrogateescape"))
