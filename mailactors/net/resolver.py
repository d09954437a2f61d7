"""`DnsResolver`: the `Resolver` of mailactors.protocol.dns over dnspython.

Queries go to the configured recursive name servers (or the system's) over UDP,
retried over TCP when the answer is truncated (RFC 7766 section 5). Each query
sets the AD bit and EDNS0 with the DO bit, so a validating resolver tells us
whether it validated the answer (RFC 6840 section 5.7, RFC 3225 section 3); the
response's AD bit becomes `Answer.authenticated`. DANE trusts it only when the
path to that resolver is trusted (RFC 7672 section 2.2), which is the
operator's choice of name servers.

One dnspython `Resolver` is configured once and never changed afterwards, so
concurrent lookups from several threads are safe.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.resolver

from mailactors.protocol.dns import (
    Answer,
    DnsPermanentError,
    DnsTemporaryError,
    IPAddress,
    MxRecord,
    TlsaRecord,
    normalize_name,
    parse_nameserver,
    reverse_name,
)

T = TypeVar("T")

# RFC 6891 section 6.2.5 and the DNS flag day 2020 recommendation: an EDNS0
# UDP payload of 1232 bytes avoids IP fragmentation; larger answers use TCP.
EDNS_UDP_PAYLOAD = 1232


class DnsResolver:
    """Look up records through recursive name servers; see mailactors.protocol.dns.

    `nameservers` holds "ip", "ip:port" or "[ipv6]:port" strings; None uses the
    system's configuration (/etc/resolv.conf, the registry on Windows).
    `timeout` bounds one query to one server, `lifetime` a whole lookup.
    """

    def __init__(
        self,
        nameservers: Sequence[str] | None = None,
        *,
        timeout: float = 5.0,
        lifetime: float = 10.0,
        cache_size: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if nameservers is None:
            try:
                resolver = dns.resolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration:
                # No system configuration: every lookup fails temporarily.
                resolver = dns.resolver.Resolver(configure=False)
        else:
            resolver = dns.resolver.Resolver(configure=False)
            servers: list[str | dns.nameserver.Nameserver] = []
            for spec in nameservers:
                address, port = parse_nameserver(spec)
                servers.append(dns.nameserver.Do53Nameserver(address, port))
            resolver.nameservers = servers
        resolver.timeout = timeout
        resolver.lifetime = lifetime
        resolver.cache = None
        # A lookup that got SERVFAIL from every server is a temporary error
        # at once; retrying here would only delay the caller's temperror.
        resolver.retry_servfail = False
        # RFC 6840 section 5.7: a stub sets AD to get the validation status;
        # RFC 3225 section 3: DO asks for DNSSEC records and validation.
        resolver.set_flags(dns.flags.RD | dns.flags.AD)
        resolver.use_edns(0, dns.flags.DO, EDNS_UDP_PAYLOAD)
        self._resolver = resolver
        self._cache = AnswerCache(cache_size, clock) if cache_size > 0 else None

    @property
    def nameservers(self) -> tuple[str, ...]:
        """The servers asked, as "ip:port" or "[ipv6]:port" (for logs and diagnostics)."""
        servers: list[str] = []
        for ns in self._resolver.nameservers:
            if isinstance(ns, dns.nameserver.Nameserver):
                address, port = ns.answer_nameserver(), ns.answer_port()
            else:
                address = ns
                port = self._resolver.nameserver_ports.get(ns, self._resolver.port)
            servers.append(f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
        return tuple(servers)

    def _query(
        self,
        name: str,
        rdtype: str,
        convert: Callable[[dns.rdata.Rdata], T],
    ) -> Answer[T]:
        name = normalize_name(name)
        if self._cache is None:
            return self._lookup(name, rdtype, convert)[0]
        cached = self._cache.get(name, rdtype)
        if cached is not None:
            if isinstance(cached, DnsTemporaryError):
                raise cached
            return cast(Answer[T], cached)
        try:
            answer, ttl = self._lookup(name, rdtype, convert)
        except DnsTemporaryError as exc:
            # RFC 2308 section 7.1: a server failure may be cached, for at most 5 minutes.
            self._cache.put(name, rdtype, exc, TEMPORARY_ERROR_TTL)
            raise
        self._cache.put(name, rdtype, answer, ttl)
        return answer

    def _lookup(
        self,
        name: str,
        rdtype: str,
        convert: Callable[[dns.rdata.Rdata], T],
    ) -> tuple[Answer[T], float]:
        """One lookup and how long its answer may be cached (RFC 1035 TTL, RFC 2308)."""
        try:
            qname = dns.name.from_text(name)
        except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
            raise DnsPermanentError(name, rdtype, f"invalid name: {exc}") from None
        if qname == dns.name.root:
            raise DnsPermanentError(name, rdtype, "invalid name: empty")
        try:
            answer = self._resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as exc:
            response = exc.responses().get(qname)  # type: ignore[no-untyped-call]
            return (
                Answer((), authenticated=_authenticated(response), nxdomain=True),
                _negative_ttl(response),
            )
        except dns.resolver.LifetimeTimeout:
            raise DnsTemporaryError(name, rdtype, "timeout") from None
        except dns.resolver.NoNameservers as exc:
            raise DnsTemporaryError(name, rdtype, f"no name server answered: {exc}") from None
        except dns.resolver.YXDOMAIN:
            raise DnsPermanentError(
                name, rdtype, "name too long after DNAME substitution"
            ) from None
        except dns.exception.DNSException as exc:
            raise DnsTemporaryError(name, rdtype, f"{type(exc).__name__}: {exc}") from None
        records: list[T] = []
        ttl = _negative_ttl(answer.response)
        if answer.rrset is not None:
            ttl = float(answer.rrset.ttl)
            try:
                records = [convert(rdata) for rdata in answer.rrset]
            except (ValueError, UnicodeError) as exc:
                raise DnsPermanentError(name, rdtype, f"malformed record: {exc}") from None
        return Answer(tuple(records), authenticated=_authenticated(answer.response)), ttl

    def cached(self, name: str, rdtype: str) -> Answer[Any]:
        """The cached answer (or temporary failure) of a lookup; DnsCacheMiss if none."""
        if self._cache is None:
            raise DnsCacheMiss(name)
        value = self._cache.get(normalize_name(name), rdtype)
        if value is None:
            raise DnsCacheMiss(name)
        if isinstance(value, DnsTemporaryError):
            raise value
        return cast(Answer[Any], value)

    def cached_only(self) -> CachedOnly:
        """This resolver's cache as a Resolver that never blocks (see CachedOnly)."""
        return CachedOnly(self)

    def txt(self, name: str) -> Answer[str]:
        return self._query(name, "TXT", _txt)

    def a(self, name: str) -> Answer[ipaddress.IPv4Address]:
        return self._query(name, "A", lambda r: ipaddress.IPv4Address(r.to_text()))

    def aaaa(self, name: str) -> Answer[ipaddress.IPv6Address]:
        return self._query(name, "AAAA", lambda r: ipaddress.IPv6Address(r.to_text()))

    def mx(self, name: str) -> Answer[MxRecord]:
        return self._query(name, "MX", _mx)

    def ptr(self, address: IPAddress) -> Answer[str]:
        return self._query(reverse_name(address), "PTR", _target)

    def tlsa(self, name: str) -> Answer[TlsaRecord]:
        return self._query(name, "TLSA", _tlsa)

    def cname(self, name: str) -> Answer[str]:
        return self._query(name, "CNAME", _target)


class DnsCacheMiss(Exception):
    """A cache-only lookup found nothing cached. Deliberately not a DnsError: protocol
    code must not take it for a DNS result; the caller retries with the network."""


class CachedOnly:
    """A Resolver view of a DnsResolver's cache that never sends a query.

    Lets an actor run a check on its own thread when every answer is cached, and hand
    it to a thread that may block on the network otherwise.
    """

    def __init__(self, resolver: DnsResolver) -> None:
        self._resolver = resolver

    def txt(self, name: str) -> Answer[str]:
        return self._resolver.cached(name, "TXT")

    def a(self, name: str) -> Answer[ipaddress.IPv4Address]:
        return self._resolver.cached(name, "A")

    def aaaa(self, name: str) -> Answer[ipaddress.IPv6Address]:
        return self._resolver.cached(name, "AAAA")

    def mx(self, name: str) -> Answer[MxRecord]:
        return self._resolver.cached(name, "MX")

    def ptr(self, address: IPAddress) -> Answer[str]:
        return self._resolver.cached(reverse_name(address), "PTR")

    def tlsa(self, name: str) -> Answer[TlsaRecord]:
        return self._resolver.cached(name, "TLSA")

    def cname(self, name: str) -> Answer[str]:
        return self._resolver.cached(name, "CNAME")


# How long answers may be kept at most, and failures (RFC 2308 section 7.1: at most
# five minutes); a negative answer without an SOA is kept NEGATIVE_TTL_DEFAULT.
MAX_TTL = 3600.0
TEMPORARY_ERROR_TTL = 30.0
NEGATIVE_TTL_DEFAULT = 60.0


def _negative_ttl(response: dns.message.Message | None) -> float:
    """RFC 2308 section 5: the minimum of the SOA's TTL and its MINIMUM field."""
    if response is not None:
        for rrset in response.authority:
            if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
                minimum: int = rrset[0].minimum
                return float(min(rrset.ttl, minimum))
    return NEGATIVE_TTL_DEFAULT


class AnswerCache:
    """Answers and temporary failures by (name, type) until their TTL runs out; thread-safe,
    bounded (the oldest entries go first)."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self.size = size
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, rdtype: str) -> object | None:
        with self._lock:
            entry = self._entries.get((name, rdtype))
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[(name, rdtype)]
                return None
            return entry[1]

    def put(self, name: str, rdtype: str, value: object, ttl: float) -> None:
        ttl = min(ttl, MAX_TTL)
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            self._entries[(name, rdtype)] = (self.clock() + ttl, value)


def _authenticated(response: dns.message.Message | None) -> bool:
    """The AD bit of a response (RFC 4035 section 3.2.3)."""
    return response is not None and bool(response.flags & dns.flags.AD)


def _host(name: dns.name.Name) -> str:
    """Lower case, no trailing dot; "" for the root (the null MX of RFC 7505)."""
    return normalize_name(name.to_text())


def _txt(rdata: dns.rdata.Rdata) -> str:
    # RFC 7208 section 3.3: the character-strings of one record are
    # concatenated without spaces.
    strings: tuple[bytes, ...] = rdata.strings  # type: ignore[attr-defined]
    return b"".join(strings).decode("utf-8", errors="replace")


def _mx(rdata: dns.rdata.Rdata) -> MxRecord:
    exchange: dns.name.Name = rdata.exchange  # type: ignore[attr-defined]
    preference: int = rdata.preference  # type: ignore[attr-defined]
    return MxRecord(preference, _host(exchange))


def _target(rdata: dns.rdata.Rdata) -> str:
    target: dns.name.Name = rdata.target  # type: ignore[attr-defined]
    return _host(target)


def _tlsa(rdata: dns.rdata.Rdata) -> TlsaRecord:
    return TlsaRecord(
        usage=rdata.usage,  # type: ignore[attr-defined]
        selector=rdata.selector,  # type: ignore[attr-defined]
        mtype=rdata.mtype,  # type: ignore[attr-defined]
        data=bytes(rdata.cert),  # type: ignore[attr-defined]
    )
