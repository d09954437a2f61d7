"""Validation of the names a configuration holds: hosts, domains, localparts, accounts, IPs.

Each function returns the normalized value or raises ValueError with a short
message that the caller puts after the file, line and key.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

__all__ = [
    "domain_to_ascii",
    "normalize_domain",
    "normalize_ip",
    "normalize_mailbox",
    "normalize_nameserver",
    "validate_account_name",
    "validate_localpart",
]

# RFC 1035 2.3.4: labels are 63 octets or less; names 255 octets or less, which
# leaves 253 characters for the dotted text form without the trailing dot.
MAX_LABEL_LENGTH = 63
MAX_DOMAIN_LENGTH = 253
# RFC 5321 4.5.3.1.1: "The maximum total length of a user name or other
# local-part is 64 octets."
MAX_LOCALPART_LENGTH = 64
# Account names become directory names; 255 is the usual file name limit.
MAX_ACCOUNT_NAME_LENGTH = 255

_ACE_PREFIX = "xn--"
# RFC 952 / RFC 1123 2.1: letters, digits and hyphens, not starting or ending with a hyphen.
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
# RFC 5322 3.2.3: atext, the characters of a dot-atom besides ".".
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
# Names Windows reserves for devices, with or without an extension.
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)


def _label_to_unicode(label: str) -> str:
    """Decode an A-label ("xn--...") to its U-label (RFC 3492 Punycode, RFC 5890 2.3.2.1)."""
    try:
        decoded = label[len(_ACE_PREFIX) :].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        raise ValueError(f"invalid IDNA label {label!r}") from None
    if decoded.isascii() or decoded != decoded.lower() or _encode_label(decoded) != label:
        raise ValueError(f"invalid IDNA label {label!r}")
    return decoded


def _encode_label(label: str) -> str:
    if label.isascii():
        return label
    return _ACE_PREFIX + label.encode("punycode").decode("ascii")


def _check_unicode_label(label: str) -> None:
    if label.startswith("-") or label.endswith("-"):
        raise ValueError(f"label {label!r} must not start or end with a hyphen")
    for ch in label:
        if ch != "-" and unicodedata.category(ch)[0] not in "LMN":
            raise ValueError(f"label {label!r} has a character not allowed in host names: {ch!r}")


def normalize_domain(text: str) -> str:
    """Return a host or domain name in lowercase Unicode form ("xn--" labels decoded).

    Rejects trailing dots, empty labels, characters outside letters, digits and
    hyphens, an all-numeric top-level label and names that are too long.
    """
    if not text:
        raise ValueError("empty domain name")
    if text.endswith("."):
        raise ValueError(f"{text!r} must not end with a dot")
    labels = []
    ascii_length = 0
    for label in text.lower().split("."):
        if not label:
            raise ValueError(f"{text!r} has an empty label")
        if label.startswith(_ACE_PREFIX):
            label = _label_to_unicode(label)
        if label.isascii():
            if not _LDH_LABEL.fullmatch(label):
                raise ValueError(
                    f"label {label!r} must be letters, digits and hyphens, "
                    "not starting or ending with a hyphen"
                )
        else:
            _check_unicode_label(label)
        encoded = _encode_label(label)
        if len(encoded) > MAX_LABEL_LENGTH:
            raise ValueError(f"label {label!r} is longer than {MAX_LABEL_LENGTH} octets")
        ascii_length += len(encoded) + 1
        labels.append(label)
    if ascii_length - 1 > MAX_DOMAIN_LENGTH:
        raise ValueError(f"domain name is longer than {MAX_DOMAIN_LENGTH} characters")
    # RFC 3696 2: "There is an additional rule that essentially requires that
    # top-level domain names not be all-numeric."
    if labels[-1].isdigit():
        raise ValueError(f"{text!r} is not a host name (all-numeric top-level label)")
    return ".".join(labels)


def domain_to_ascii(domain: str) -> str:
    """Return the ASCII (A-label) form of a domain normalized by normalize_domain."""
    return ".".join(_encode_label(label) for label in domain.split("."))


def validate_localpart(localpart: str) -> str:
    """Check a localpart as an RFC 5321 Dot-string, with UTF-8 allowed (RFC 6531 3.3)."""
    if not localpart:
        raise ValueError("empty localpart")
    if len(localpart.encode("utf-8")) > MAX_LOCALPART_LENGTH:
        raise ValueError(f"localpart is longer than {MAX_LOCALPART_LENGTH} octets")
    # RFC 5321 4.1.2: Dot-string = Atom *("."  Atom); Atom = 1*atext
    for atom in localpart.split("."):
        if not atom:
            raise ValueError(f"localpart {localpart!r} has an empty part between dots")
        for ch in atom:
            if ch not in _ATEXT and (ch.isascii() or not ch.isprintable() or ch.isspace()):
                raise ValueError(f"localpart {localpart!r} has a character not allowed: {ch!r}")
    return localpart


def validate_account_name(name: str) -> str:
    """Check an account name; it becomes a directory name on every platform."""
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ValueError("account names may only contain letters, digits, '_', '.' and '-'")
    if len(name) > MAX_ACCOUNT_NAME_LENGTH:
        raise ValueError(f"account name is longer than {MAX_ACCOUNT_NAME_LENGTH} characters")
    if name.startswith(".") or name.endswith("."):
        raise ValueError("account names must not start or end with '.'")
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        raise ValueError(f"{name!r} is a reserved device name on Windows")
    return name


def normalize_mailbox(name: str) -> str:
    """Check a mailbox name ("/" separates levels); any case of "inbox" becomes "Inbox"."""
    if not name:
        raise ValueError("empty mailbox name")
    if any(not ch.isprintable() for ch in name):
        raise ValueError(f"mailbox name {name!r} has a control character")
    if name.startswith("/") or name.endswith("/") or "//" in name:
        raise ValueError(f"mailbox name {name!r} has an empty level")
    # RFC 3501 5.1: "The case-insensitive mailbox name INBOX is a special name
    # reserved to mean "the primary mailbox for this user on this server"."
    if name.lower() == "inbox":
        return "Inbox"
    return name


def normalize_ip(text: str) -> str:
    """Return an IP address in its canonical text form."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def _port(text: str) -> int:
    if not text.isdigit() or not text.isascii() or not 1 <= int(text) <= 65535:
        raise ValueError(f"invalid port {text!r} (1..65535)")
    return int(text)


def normalize_nameserver(text: str) -> str:
    """Check a name server given as "ip", "ipv4:port" or "[ipv6]:port"; return it canonical."""
    if text.startswith("["):
        match = re.fullmatch(r"\[([^\]]+)\]:(.*)", text)
        if match is None:
            raise ValueError(f"{text!r} is not of the form [ipv6]:port")
        address = ipaddress.ip_address(match.group(1)) if _is_ip(match.group(1)) else None
        if not isinstance(address, ipaddress.IPv6Address):
            raise ValueError(f"{match.group(1)!r} is not an IPv6 address")
        return f"[{address}]:{_port(match.group(2))}"
    if _is_ip(text):
        return normalize_ip(text)
    host, sep, port = text.rpartition(":")
    if not sep or not _is_ip(host) or ":" in host:
        raise ValueError(f"{text!r} is not of the form ip, ip:port or [ipv6]:port")
    return f"{normalize_ip(host)}:{_port(port)}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
