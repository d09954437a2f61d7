"""Lenient address-list parsing for ENVELOPE (RFC 5322 3.4, with the obsolete forms of 4.4).

Values stay raw octets: display names keep their RFC 2047 encoded words, because the
IMAP client decodes them (RFC 3501 7.4.2).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Address", "parse_address_list"]


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address (RFC 3501 7.4.2): name, at-domain-list (route), mailbox, host.

    A group start is (NIL NIL group-name NIL), a group end is (NIL NIL NIL NIL).
    """

    name: bytes | None
    adl: bytes | None
    mailbox: bytes | None
    host: bytes | None


# A token: (kind, octets, white space or a comment came before it).
_Token = tuple[str, bytes, bool]
_SPECIALS = b"<>:;@,."
_ATOM_STOPS = b' \t\r\n()<>[]:;@,."\\'
_ATOM = "atom"
_QUOTED = "quoted"
_LITERAL = "literal"
_COMMENT = "comment"
_SPECIAL = "special"


def _read_delimited(raw: bytes, pos: int, close: int, nests: bool) -> tuple[bytes, int]:
    """Read a quoted-string or comment whose opener is at `pos`; escapes are resolved."""
    out = bytearray()
    depth = 1
    opener = raw[pos]
    pos += 1
    length = len(raw)
    while pos < length:
        char = raw[pos]
        if char == 0x5C and pos + 1 < length:  # quoted-pair (RFC 5322 3.2.1)
            out.append(raw[pos + 1])
            pos += 2
            continue
        if nests and char == opener:
            depth += 1
        elif char == close:
            depth -= 1
            if depth == 0:
                return bytes(out), pos + 1
        if char not in (0x0D, 0x0A):
            out.append(char)
        pos += 1
    return bytes(out), pos


def _tokenize(raw: bytes) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    length = len(raw)
    space = False
    while pos < length:
        char = raw[pos]
        if char in b" \t\r\n":
            space = True
            pos += 1
        elif char == 0x28:  # "(" comment
            text, pos = _read_delimited(raw, pos, 0x29, True)
            tokens.append((_COMMENT, text, True))
            space = True
        elif char == 0x22:  # DQUOTE
            text, pos = _read_delimited(raw, pos, 0x22, False)
            tokens.append((_QUOTED, text, space))
            space = False
        elif char == 0x5B:  # "[" domain-literal
            close = raw.find(b"]", pos)
            end = length if close < 0 else close + 1
            tokens.append((_LITERAL, raw[pos:end], space))
            pos = end
            space = False
        elif char in _SPECIALS:
            tokens.append((_SPECIAL, raw[pos : pos + 1], space))
            pos += 1
            space = False
        else:
            start = pos
            pos += 1
            while pos < length and raw[pos] not in _ATOM_STOPS:
                pos += 1
            tokens.append((_ATOM, raw[start:pos], space))
            space = False
    return tokens


def _quote_local(text: bytes) -> bytes:
    return b'"' + text.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _join_addr(tokens: list[_Token]) -> bytes:
    """Join the tokens of a local-part or domain without white space (RFC 5322 3.4.1)."""
    out = bytearray()
    for kind, text, _ in tokens:
        if kind == _QUOTED:
            out += _quote_local(text)
        elif kind != _COMMENT:
            out += text
    return bytes(out)


def _join_phrase(tokens: list[_Token]) -> bytes | None:
    """Join display-name tokens, one space where the message had white space."""
    out = bytearray()
    for kind, text, space in tokens:
        if kind == _COMMENT:
            continue
        if out and space:
            out += b" "
        out += text
    return bytes(out) if out else None


def _addr_spec(tokens: list[_Token]) -> tuple[bytes, bytes]:
    for index, (kind, text, _) in enumerate(tokens):
        if kind == _SPECIAL and text == b"@":
            return _join_addr(tokens[:index]), _join_addr(tokens[index + 1 :])
    # A mailbox without "@": the host is empty, never NIL, which would mean a group.
    return _join_addr(tokens), b""


def _mailbox(tokens: list[_Token]) -> Address | None:
    """One name-addr or addr-spec (RFC 5322 3.4), or None when there is nothing there."""
    for index, (kind, text, _) in enumerate(tokens):
        if kind == _SPECIAL and text == b"<":
            name = _join_phrase(tokens[:index])
            inner = tokens[index + 1 :]
            for stop, (inner_kind, inner_text, _) in enumerate(inner):
                if inner_kind == _SPECIAL and inner_text == b">":
                    inner = inner[:stop]
                    break
            adl = None
            # RFC 5322 4.4: obs-angle-addr = [CFWS] "<" obs-route addr-spec ">" [CFWS],
            # obs-route = obs-domain-list ":"
            if inner and inner[0][0] == _SPECIAL and inner[0][1] == b"@":
                for stop, (inner_kind, inner_text, _) in enumerate(inner):
                    if inner_kind == _SPECIAL and inner_text == b":":
                        adl = _join_addr(inner[:stop])
                        inner = inner[stop + 1 :]
                        break
            local, host = _addr_spec(inner)
            if not local and not host and name is None:
                return None
            return Address(name, adl, local, host)
    words = [token for token in tokens if token[0] != _COMMENT]
    if not words:
        return None
    local, host = _addr_spec(words)
    # RFC 822 style "user@host (Full Name)": the comment serves as the name.
    comments = [text for kind, text, _ in tokens if kind == _COMMENT and text.strip()]
    name = b" ".join(comments) if comments else None
    return Address(name, None, local, host)


def parse_address_list(raw: bytes) -> tuple[Address, ...]:
    """Parse an address-list, groups included (RFC 5322 3.4), never raising.

    Groups become a start marker, their members and an end marker (RFC 3501 7.4.2); an
    unterminated group is closed at the end of the field.
    """
    addresses: list[Address] = []
    item: list[_Token] = []
    in_angle = False
    in_group = False

    def flush() -> None:
        address = _mailbox(item)
        if address is not None:
            addresses.append(address)
        item.clear()

    for token in _tokenize(raw):
        kind, text, _ = token
        if kind == _SPECIAL and not in_angle:
            if text == b",":
                flush()
                continue
            if text == b":" and not in_group:
                # RFC 5322 3.4: group = display-name ":" [group-list] ";" [CFWS]
                addresses.append(Address(None, None, _join_phrase(item) or b"", None))
                item.clear()
                in_group = True
                continue
            if text == b";":
                flush()
                if in_group:
                    addresses.append(Address(None, None, None, None))
                    in_group = False
                continue
            if text == b"<":
                in_angle = True
        elif kind == _SPECIAL and text == b">":
            in_angle = False
        item.append(token)
    flush()
    if in_group:
        addresses.append(Address(None, None, None, None))
    return tuple(addresses)
