"""The DNS resolver interface that SPF, DKIM, DMARC, MTA-STS, DANE and TLSRPT use.

protocol/ code never opens a socket: it takes a `Resolver` and calls it. The
real implementation (dnspython, with nameservers from mailactors.conf) lives in
mailactors/net/resolver.py; `InMemoryResolver` here serves unit tests.

Names are absolute DNS names in A-label form, lower case, without the trailing
dot ("_dmarc.example.com"). Every answer carries the DNSSEC "authenticated
data" bit of the response (RFC 4035 section 3.2.3): DANE uses a TLSA answer
only when it is set (RFC 7672 section 2.2).

Outcomes:
- records found: `Answer(records=(...), authenticated=...)`;
- the name does not exist (NXDOMAIN) or has no record of the type (NODATA):
  an empty `Answer` with `nxdomain` telling the two apart (SPF counts both as
  "void lookups", RFC 7208 section 4.6.4);
- SERVFAIL, timeout, unreachable servers: `DnsTemporaryError` (SPF/DMARC
  "temperror");
- a malformed name or answer: `DnsPermanentError`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DnsError(Exception):
    """A lookup failed; `name` and `rdtype` say which."""

    def __init__(self, name: str, rdtype: str, reason: str) -> None:
        super().__init__(f"{rdtype} {name}: {reason}")
        self.name = name
        self.rdtype = rdtype
        self.reason = reason


class DnsTemporaryError(DnsError):
    """SERVFAIL, a timeout or unreachable nameservers: the answer may come later."""


class DnsPermanentError(DnsError):
    """A name that cannot be looked up (bad syntax, too long) or a malformed answer."""


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """The records of one lookup; empty for NXDOMAIN and NODATA."""

    records: tuple[T, ...]
    authenticated: bool = False
    nxdomain: bool = False


@dataclass(frozen=True, slots=True)
class MxRecord:
    preference: int
    host: str  # absolute, lower case, no trailing dot; "" for the null MX "." (RFC 7505)


@dataclass(frozen=True, slots=True)
class TlsaRecord:
    """RFC 6698 section 2.1: certificate usage, selector, matching type, data."""

    usage: int
    selector: int
    mtype: int
    data: bytes


class Resolver(Protocol):
    """What protocol/ code may ask of DNS. Every method may raise `DnsError`."""

    def txt(self, name: str) -> Answer[str]:
        """TXT records, each one's character-strings concatenated (RFC 7208 section 3.3),
        decoded as UTF-8 with invalid bytes replaced."""
        ...

    def a(self, name: str) -> Answer[ipaddress.IPv4Address]: ...

    def aaaa(self, name: str) -> Answer[ipaddress.IPv6Address]: ...

    def mx(self, name: str) -> Answer[MxRecord]: ...

    def ptr(self, address: IPAddress) -> Answer[str]:
        """Names of the reverse lookup of `address` (in-addr.arpa / ip6.arpa)."""
        ...

    def tlsa(self, name: str) -> Answer[TlsaRecord]: ...

    def cname(self, name: str) -> Answer[str]:
        """The CNAME target of `name` itself (other methods follow CNAMEs silently)."""
        ...


def normalize_name(name: str) -> str:
    """Lower case, no trailing dot; the form every Resolver method takes."""
    return name.rstrip(".").lower()


def reverse_name(address: IPAddress) -> str:
    """The PTR name of an address, without the trailing dot."""
    return address.reverse_pointer.lower()


_RdataKey = tuple[str, str]


@dataclass
class InMemoryResolver:
    """A resolver over a dict, for unit tests.

    `records` maps (name, rdtype) to record values: str for TXT, PTR and CNAME,
    address strings for A/AAAA, MxRecord and TlsaRecord. Names that appear under
    any type exist (NODATA for other types); others are NXDOMAIN. `temporary`
    holds (name, rdtype) pairs that fail with DnsTemporaryError; `authenticated`
    holds names whose answers carry the AD bit. `queries` records every lookup.
    """

    records: Mapping[_RdataKey, Iterable[object]] = field(default_factory=dict)
    temporary: frozenset[_RdataKey] = frozenset()
    authenticated: frozenset[str] = frozenset()
    queries: list[_RdataKey] = field(default_factory=list)

    def _lookup(self, name: str, rdtype: str) -> Answer[object]:
        name = normalize_name(name)
        self.queries.append((name, rdtype))
        if (name, rdtype) in self.temporary:
            raise DnsTemporaryError(name, rdtype, "SERVFAIL")
        values = tuple(self.records.get((name, rdtype), ()))
        exists = any(key[0] == name for key in self.records)
        return Answer(values, authenticated=name in self.authenticated, nxdomain=not exists)

    def txt(self, name: str) -> Answer[str]:
        got = self._lookup(name, "TXT")
        return Answer(tuple(str(v) for v in got.records), got.authenticated, got.nxdomain)

    def a(self, name: str) -> Answer[ipaddress.IPv4Address]:
        got = self._lookup(name, "A")
        return Answer(
            tuple(ipaddress.IPv4Address(str(v)) for v in got.records),
            got.authenticated,
            got.nxdomain,
        )

    def aaaa(self, name: str) -> Answer[ipaddress.IPv6Address]:
        got = self._lookup(name, "AAAA")
        return Answer(
            tuple(ipaddress.IPv6Address(str(v)) for v in got.records),
            got.authenticated,
            got.nxdomain,
        )

    def mx(self, name: str) -> Answer[MxRecord]:
        got = self._lookup(name, "MX")
        return Answer(
            tuple(v for v in got.records if isinstance(v, MxRecord)),
            got.authenticated,
            got.nxdomain,
        )

    def ptr(self, address: IPAddress) -> Answer[str]:
        got = self._lookup(reverse_name(address), "PTR")
        return Answer(
            tuple(normalize_name(str(v)) for v in got.records), got.authenticated, got.nxdomain
        )

    def tlsa(self, name: str) -> Answer[TlsaRecord]:
        got = self._lookup(name, "TLSA")
        return Answer(
            tuple(v for v in got.records if isinstance(v, TlsaRecord)),
            got.authenticated,
            got.nxdomain,
        )

    def cname(self, name: str) -> Answer[str]:
        got = self._lookup(name, "CNAME")
        return Answer(
            tuple(normalize_name(str(v)) for v in got.records), got.authenticated, got.nxdomain
        )


# RFC 1035 section 4.2: DNS servers listen on port 53 (UDP and TCP).
DNS_PORT = 53


def parse_nameserver(text: str) -> tuple[str, int]:
    """Split a name server given as "ip", "ipv4:port", "ipv6" or "[ipv6]:port" into (ip, port).

    The port defaults to 53; the address comes back in its canonical text form.
    Raises ValueError saying what is wrong.
    """
    spec = text.strip()
    if not spec:
        raise ValueError("empty name server address")
    host, port_text = spec, ""
    if spec.startswith("["):
        close = spec.find("]")
        if close < 0:
            raise ValueError(f"name server {text!r}: missing ']'")
        host, rest = spec[1:close], spec[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"name server {text!r}: expected ':port' after ']'")
            port_text = rest[1:]
    elif spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"name server {text!r}: {host!r} is not an IP address") from None
    if spec.startswith("[") and not isinstance(address, ipaddress.IPv6Address):
        raise ValueError(f"name server {text!r}: brackets are for IPv6 addresses only")
    port = DNS_PORT
    if port_text or spec.endswith(":"):
        if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"name server {text!r}: invalid port {port_text!r} (1..65535)")
        port = int(port_text)
    return str(address), port
