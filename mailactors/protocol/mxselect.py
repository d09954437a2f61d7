"""Where to deliver mail for a domain: MX lookup and host addresses (RFC 5321 5.1, RFC 7505).

Pure functions over a `Resolver`. Failures are `MxError`s that say whether they are
permanent (bounce now) or temporary (retry later), with the enhanced status code for
the DSN. The `authenticated` bits (DNSSEC AD) are kept for DANE (RFC 7672 2.2).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from mailactors.protocol.dns import (
    DnsPermanentError,
    DnsTemporaryError,
    IPAddress,
    MxRecord,
    Resolver,
    normalize_name,
)

__all__ = ["HostAddresses", "MxError", "MxHost", "MxTargets", "host_addresses", "mx_targets"]


class MxError(Exception):
    """No delivery target: `permanent` or not, with an RFC 3463 `status` like "5.1.2"."""

    def __init__(self, domain: str, *, permanent: bool, status: str, reason: str) -> None:
        super().__init__(f"{domain}: {reason}")
        self.domain = domain
        self.permanent = permanent
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class MxHost:
    host: str  # lower case, no trailing dot
    preference: int


@dataclass(frozen=True, slots=True)
class MxTargets:
    """Hosts to try in order; `implicit` when the domain itself is the only target."""

    domain: str
    hosts: tuple[MxHost, ...]
    implicit: bool
    authenticated: bool  # the MX answer (or the implicit MX's address answers) had AD set


@dataclass(frozen=True, slots=True)
class HostAddresses:
    """A host's IPs in the order to try: IPv6 first, then IPv4."""

    host: str
    addresses: tuple[IPAddress, ...]
    authenticated: bool  # every answer that was used had the AD bit


Shuffle = Callable[[list[MxHost]], None]


def _ascii_domain(domain: str) -> str:
    """The A-label form for DNS (IDNA 2003 codec of the stdlib)."""
    name = normalize_name(domain)
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        raise MxError(
            domain, permanent=True, status="5.1.2", reason="invalid internationalized domain"
        ) from None


def mx_targets(resolver: Resolver, domain: str, *, shuffle: Shuffle = random.shuffle) -> MxTargets:
    """The delivery targets of `domain`, ordered by MX preference (RFC 5321 5.1).

    Equal preferences are put in random order by `shuffle` (in place): RFC 5321 5.1 "If
    there are multiple destinations with the same preference ..., they SHOULD be tried
    in random order to spread the load". Raises MxError.
    """
    name = _ascii_domain(domain)
    try:
        answer = resolver.mx(name)
    except DnsTemporaryError as exc:
        # RFC 3463 X.4.3: directory server failure.
        raise MxError(domain, permanent=False, status="4.4.3", reason=str(exc)) from None
    except DnsPermanentError as exc:
        raise MxError(domain, permanent=True, status="5.1.2", reason=str(exc)) from None
    if answer.nxdomain:
        # RFC 3463 X.1.2: bad destination system address.
        raise MxError(domain, permanent=True, status="5.1.2", reason="domain does not exist")
    records = answer.records
    if len(records) == 1 and records[0].host == "":
        # RFC 7505 section 3: a domain with a null MX does not accept mail; RFC 7505
        # section 4.1: senders "SHOULD NOT" try and fail with 5.1.10.
        raise MxError(
            domain, permanent=True, status="5.1.10", reason="domain does not accept mail (null MX)"
        )
    if records:
        return MxTargets(
            name, _ordered(records, shuffle), implicit=False, authenticated=answer.authenticated
        )
    # RFC 5321 5.1: "If an empty list of MXs is returned, the address is treated as if
    # it was associated with an implicit MX RR, with a preference of 0, pointing to
    # that host."
    addresses = host_addresses(resolver, name)
    return MxTargets(
        name,
        (MxHost(name, 0),),
        implicit=True,
        authenticated=answer.authenticated and addresses.authenticated,
    )


def _ordered(records: tuple[MxRecord, ...], shuffle: Shuffle) -> tuple[MxHost, ...]:
    by_preference: dict[int, list[MxHost]] = {}
    seen: set[str] = set()
    for record in records:
        host = normalize_name(record.host)
        # RFC 7505 section 3: a null MX "MUST NOT" come with other MX records; when it
        # does, the other records are still usable and the "." is skipped.
        if not host or host in seen:
            continue
        seen.add(host)
        by_preference.setdefault(record.preference, []).append(MxHost(host, record.preference))
    out: list[MxHost] = []
    for preference in sorted(by_preference):
        group = by_preference[preference]
        shuffle(group)
        out.extend(group)
    return tuple(out)


def host_addresses(resolver: Resolver, host: str) -> HostAddresses:
    """The host's AAAA and A addresses; MxError when it has none.

    A temporary failure of one family is ignored when the other has addresses;
    `authenticated` is then false, as not every answer could be checked.
    """
    name = _ascii_domain(host)
    found: list[IPAddress] = []
    authenticated = True
    temporary: DnsTemporaryError | None = None
    nxdomain = False
    for lookup in (resolver.aaaa, resolver.a):
        try:
            answer = lookup(name)
        except DnsTemporaryError as exc:
            temporary = exc
            authenticated = False
            continue
        except DnsPermanentError as exc:
            raise MxError(host, permanent=True, status="5.1.2", reason=str(exc)) from None
        nxdomain = nxdomain or answer.nxdomain
        authenticated = authenticated and answer.authenticated
        found.extend(answer.records)
    if found:
        return HostAddresses(name, tuple(found), authenticated)
    if temporary is not None:
        raise MxError(host, permanent=False, status="4.4.3", reason=str(temporary))
    # RFC 5321 5.1: "If MX records are present, but none of them are usable, or the
    # implicit MX is unusable, this situation MUST be reported as an error."
    reason = "host does not exist" if nxdomain else "host has no IP address"
    raise MxError(host, permanent=True, status="5.1.2", reason=reason)
