"""Content-transfer-encodings (RFC 2045 6), encoded words (RFC 2047) and charsets.

Every decoder here is lenient: broken input decodes to something, never raises,
except an unknown transfer encoding, which IMAP BINARY must refuse (RFC 3516 4.3).
"""

from __future__ import annotations

import binascii
import re

__all__ = [
    "IDENTITY_ENCODINGS",
    "UnknownTransferEncoding",
    "decode_base64",
    "decode_charset",
    "decode_encoded_words",
    "decode_quoted_printable",
    "decode_transfer_encoding",
    "text_of",
]


class UnknownTransferEncoding(ValueError):
    """A part's Content-Transfer-Encoding is not one we can decode.

    The server answers `NO [UNKNOWN-CTE]` (RFC 3516 4.3).
    """

    def __init__(self, encoding: str) -> None:
        super().__init__(f"unknown content-transfer-encoding {encoding!r}")
        self.encoding = encoding


# RFC 2045 6.1: 7bit, 8bit and binary mean "no encoding was performed".
IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(b for b in range(256) if b not in _BASE64_ALPHABET)


def text_of(raw: bytes) -> str:
    """Bytes as str such that `s.encode("utf-8", "surrogateescape")` gives them back."""
    return raw.decode("utf-8", "surrogateescape")


def decode_base64(data: bytes) -> bytes:
    """Decode base64, ignoring characters outside the alphabet (RFC 2045 6.8) and bad padding."""
    clean = data.translate(None, _NOT_BASE64)
    extra = len(clean) % 4
    if extra == 1:
        # A single trailing sextet carries no whole octet.
        clean = clean[:-1]
    elif extra:
        clean += b"=" * (4 - extra)
    return binascii.a2b_base64(clean)


_QP_SOFT_BREAK = re.compile(rb"=[ \t]*\r?\n")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_QP_TRAILING_SPACE = re.compile(rb"[ \t]+(?=\r?\n)")


def decode_quoted_printable(data: bytes) -> bytes:
    """Decode quoted-printable (RFC 2045 6.7); a malformed "=" stays as it is (6.7 note 1)."""
    # RFC 2045 6.7 rule 3: trailing white space on a line must be deleted when decoding.
    data = _QP_TRAILING_SPACE.sub(b"", data)
    data = _QP_SOFT_BREAK.sub(b"", data)
    return _QP_ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), data)


def decode_transfer_encoding(body: bytes, encoding: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding; raise `UnknownTransferEncoding` for unknown ones."""
    name = (encoding or "").strip().lower()
    if name in IDENTITY_ENCODINGS:
        return body
    if name == "base64":
        return decode_base64(body)
    if name == "quoted-printable":
        return decode_quoted_printable(body)
    raise UnknownTransferEncoding(encoding or "")


def decode_charset(data: bytes, charset: str | None) -> str:
    """Decode text in a MIME charset; unknown or absent charsets are tried as UTF-8."""
    name = (charset or "").strip().strip('"').lower()
    if name in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        name = "utf-8"
    try:
        # bytes.decode accepts only text encodings: a charset named "zlib", "bz2" or
        # "hex" raises LookupError instead of decompressing.
        return data.decode(name, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


# RFC 2047 2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
# (RFC 2231 5 allows "charset*language").
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def _decode_word(encoding: bytes, text: bytes) -> bytes:
    if encoding in (b"B", b"b"):
        return decode_base64(text)
    # RFC 2047 4.2: "_" stands for space, "=XX" for an octet.
    return _Q_ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), text.replace(b"_", b" "))


def decode_encoded_words(raw: bytes) -> str:
    """Decode a header value with RFC 2047 encoded words; other octets are read as UTF-8.

    Linear white space between two adjacent encoded words is dropped (RFC 2047 6.2), and
    adjacent words in the same charset are joined before decoding, so a multi-octet
    character split across two words survives.
    """
    if b"=?" not in raw:
        return raw.decode("utf-8", "replace")
    pieces: list[tuple[str | None, bytes]] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(raw):
        between = raw[pos : match.start()]
        previous_encoded = bool(pieces) and pieces[-1][0] is not None
        if between and not (previous_encoded and between.strip(b" \t\r\n") == b""):
            pieces.append((None, between))
        charset = match.group(1).split(b"*", 1)[0].decode("ascii", "replace").lower()
        octets = _decode_word(match.group(2), match.group(3))
        if pieces and pieces[-1][0] == charset:
            pieces[-1] = (charset, pieces[-1][1] + octets)
        else:
            pieces.append((charset, octets))
        pos = match.end()
    if pos < len(raw):
        pieces.append((None, raw[pos:]))
    return "".join(decode_charset(octets, charset) for charset, octets in pieces)
