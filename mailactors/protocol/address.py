"""SMTP addresses and paths (RFC 5321 section 4.1.2, RFC 6531 for UTF-8).

Domains are returned lowercased. ASCII domains (including A-labels "xn--...") stay ASCII.
With SMTPUTF8, U-labels are kept in their Unicode form, NFC-normalised and lowercased,
after checking with the stdlib IDNA 2003 codec (`encodings.idna.ToASCII`) that each label
converts to a valid A-label. We do not convert between the two forms: the `idna` package
(IDNA 2008) is not available, and IDNA 2003 maps some characters (such as "ß") differently,
so converting would silently change addresses.
"""

from __future__ import annotations

import encodings.idna
import ipaddress
import re
import unicodedata
from dataclasses import dataclass

# RFC 5321 4.5.3.1.1: "The maximum total length of a user name or other local-part is 64 octets."
MAX_LOCALPART = 64
# RFC 5321 4.5.3.1.2: "The maximum total length of a domain name or number is 255 octets."
MAX_DOMAIN = 255
# RFC 5321 4.5.3.1.3: "The maximum total length of a reverse-path or forward-path is 256
# octets (including the punctuation and element separators)."
MAX_PATH = 256
# RFC 1035 2.3.4: labels are 63 octets or less.
MAX_LABEL = 63

# RFC 5322 3.2.3: atext
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_LETDIG = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# The ASCII cases of _is_dot_string and _check_ascii_label in one regex each.
_ASCII_DOT_STRING = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_LDH = re.compile(r"[A-Za-z0-9-]*")


class AddressError(ValueError):
    """The text is not a valid SMTP address or path."""


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox: local-part (unquoted form) and domain (lowercased, or an address literal)."""

    localpart: str
    domain: str

    def __str__(self) -> str:
        return f"{quote_localpart(self.localpart)}@{self.domain}"


def _is_atext(c: str, smtputf8: bool) -> bool:
    # RFC 6531 3.3: atext =/ UTF8-non-ascii
    return c in _ATEXT or (smtputf8 and ord(c) > 127 and _is_visible_unicode(c))


def _is_visible_unicode(c: str) -> bool:
    return unicodedata.category(c) not in ("Cc", "Cs", "Zl", "Zp")


def _is_dot_string(text: str, smtputf8: bool = True) -> bool:
    # RFC 5321 4.1.2: Dot-string = Atom *("."  Atom); Atom = 1*atext
    if text.isascii():
        return _ASCII_DOT_STRING.fullmatch(text) is not None
    return bool(text) and all(
        atom and all(_is_atext(c, smtputf8) for c in atom) for atom in text.split(".")
    )


def quote_localpart(localpart: str) -> str:
    """The local-part as written in a path: a Dot-string when possible, else a Quoted-string."""
    if _is_dot_string(localpart):
        return localpart
    escaped = localpart.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _parse_quoted(text: str, smtputf8: bool) -> tuple[str, str]:
    """Quoted-string at the start of text -> (content, rest).

    RFC 5321 4.1.2:
        Quoted-string  = DQUOTE *QcontentSMTP DQUOTE
        QcontentSMTP   = qtextSMTP / quoted-pairSMTP
        quoted-pairSMTP = %d92 %d32-126
        qtextSMTP      = %d32-33 / %d35-91 / %d93-126
    RFC 6531 3.3: qtextSMTP =/ UTF8-non-ascii
    """
    out: list[str] = []
    i = 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(out), text[i + 1 :]
        if c == "\\":
            if i + 1 >= len(text) or not 32 <= ord(text[i + 1]) <= 126:
                raise AddressError("invalid quoted-pair in local-part")
            out.append(text[i + 1])
            i += 2
            continue
        if 32 <= ord(c) <= 126 or (smtputf8 and ord(c) > 127 and _is_visible_unicode(c)):
            out.append(c)
            i += 1
            continue
        raise AddressError("invalid character in quoted local-part")
    raise AddressError("unterminated quoted local-part")


def _parse_address_literal(text: str) -> str:
    """address-literal -> normalised literal (RFC 5321 4.1.3).

    address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
                            General-address-literal ) "]"
    General-address-literal (no standardized tags exist) is refused.
    """
    if not (text.startswith("[") and text.endswith("]")):
        raise AddressError("malformed address literal")
    inner = text[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            return f"[IPv6:{ipaddress.IPv6Address(inner[5:]).compressed}]"
        return f"[{ipaddress.IPv4Address(inner)}]"
    except ValueError:
        raise AddressError("invalid IP address literal") from None


def _check_ascii_label(label: str) -> None:
    # RFC 5321 4.1.2: sub-domain = Let-dig [Ldh-str];
    # Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig
    if not label or len(label) > MAX_LABEL:
        raise AddressError("empty or too long domain label")
    if label[0] not in _LETDIG or label[-1] not in _LETDIG:
        raise AddressError("domain label must start and end with a letter or digit")
    if not _LDH.fullmatch(label):
        raise AddressError("invalid character in domain")


def parse_domain(text: str, *, smtputf8: bool) -> str:
    """Validate `Domain / address-literal` and return its normalised form."""
    if text.startswith("["):
        return _parse_address_literal(text)
    if not text or len(text.encode("utf-8")) > MAX_DOMAIN:
        raise AddressError("empty or too long domain")
    labels: list[str] = []
    ascii_length = 0
    for label in text.split("."):
        if label.isascii():
            _check_ascii_label(label)
            labels.append(label.lower())
            ascii_length += len(label) + 1
            continue
        if not smtputf8:
            # RFC 6531 3.3: U-labels in domains only with SMTPUTF8.
            raise AddressError("non-ASCII domain requires SMTPUTF8")
        ulabel = unicodedata.normalize("NFC", label).lower()
        try:
            alabel = encodings.idna.ToASCII(ulabel)
        except UnicodeError:
            raise AddressError("invalid internationalized domain label") from None
        _check_ascii_label(alabel.decode("ascii"))
        labels.append(ulabel)
        ascii_length += len(alabel) + 1
    if ascii_length - 1 > MAX_DOMAIN:
        raise AddressError("domain too long")
    return ".".join(labels)


def parse_address(text: str, *, smtputf8: bool) -> Address:
    """Parse `Mailbox = Local-part "@" ( Domain / address-literal )` (RFC 5321 4.1.2).

    Local-part = Dot-string / Quoted-string. UTF-8 is allowed only when smtputf8 is set
    (RFC 6531 3.3).
    """
    if text.startswith('"'):
        localpart, rest = _parse_quoted(text, smtputf8)
        if not rest.startswith("@"):
            raise AddressError("expected '@' after quoted local-part")
        domain_text = rest[1:]
        written = quote_localpart(localpart)
    else:
        written, sep, domain_text = text.partition("@")
        if not sep:
            raise AddressError("address needs '@'")
        if not _is_dot_string(written, smtputf8):
            if not smtputf8 and not written.isascii():
                raise AddressError("non-ASCII local-part requires SMTPUTF8")
            raise AddressError("invalid local-part")
        localpart = written
    if len(written.encode("utf-8")) > MAX_LOCALPART:
        raise AddressError("local-part too long")
    return Address(localpart, parse_domain(domain_text, smtputf8=smtputf8))


def parse_path(text: str) -> str:
    """`Path = "<" [ A-d-l ":" ] Mailbox ">"` -> the mailbox text ("" for the null path "<>").

    RFC 5321 4.1.2: A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain.
    The source route is checked for syntax and dropped (RFC 5321 4.1.1.3: servers "SHOULD
    ignore the routes"). The mailbox itself is returned
    unvalidated; pass it to parse_address.
    """
    if len(text.encode("utf-8")) > MAX_PATH:
        raise AddressError("path too long")
    if not (text.startswith("<") and text.endswith(">")):
        raise AddressError("path must be enclosed in <>")
    inner = text[1:-1]
    if inner.startswith("@"):
        route, sep, inner = inner.partition(":")
        if not sep:
            raise AddressError("source route without ':'")
        for at_domain in route.split(","):
            if not at_domain.startswith("@"):
                raise AddressError("malformed source route")
            parse_domain(at_domain[1:], smtputf8=True)
        if not inner:
            raise AddressError("source route without mailbox")
    return inner


def split_path(text: str) -> tuple[str, str]:
    """Parse a Path at the start of text -> (mailbox text as parse_path returns it, rest).

    The closing ">" is found while skipping quoted local-parts, which may contain ">".
    """
    if not text.startswith("<"):
        raise AddressError("path must start with '<'")
    i = 1
    in_quote = False
    while i < len(text):
        c = text[i]
        if in_quote:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == ">":
            return parse_path(text[: i + 1]), text[i + 1 :]
        elif c == "<":
            raise AddressError("unexpected '<' in path")
        i += 1
    raise AddressError("path without closing '>'")
