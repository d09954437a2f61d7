"""The MTA-STS policy of a recipient domain at delivery time (RFC 8461 section 5).

`current_policy` looks up the _mta-sts TXT record, uses the cached policy when
its id matches and max_age has not run out, and otherwise fetches, parses and
stores a new one. A fetch or parse failure is kept as an RFC 8460 result type
for the TLS report; a still-valid cached policy then stays in force.

The cache is reached through `PolicyCacheAccess`, so a delivery worker thread
never owns a database connection: the server implements it by asking the
actor that owns mtasts.db; `LocalPolicyCache` is the in-process version over a
PolicyCache (tests, tools), serialized by a lock.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mailactors.net.https import PolicyFetchError
from mailactors.protocol.dns import Resolver
from mailactors.protocol.mtasts import (
    RecordStatus,
    StsPolicy,
    StsPolicyError,
    lookup_record,
    parse_policy,
)
from mailactors.storage.mtastsdb import CachedPolicy, PolicyCache

__all__ = [
    "FetchPolicy",
    "LocalPolicyCache",
    "PolicyCacheAccess",
    "StsState",
    "current_policy",
    "policy_strings",
]


class PolicyCacheAccess(Protocol):
    """What a delivery attempt needs of the MTA-STS policy cache (mtasts.db)."""

    def get(self, domain: str) -> CachedPolicy | None:
        """The cached policy of a domain, expired or not."""
        ...

    def put(
        self, domain: str, record_id: str, policy_text: bytes, fetched_at: datetime.datetime
    ) -> None:
        """Store a freshly fetched, valid policy."""
        ...

    def touch_use(self, domain: str, now: datetime.datetime) -> None:
        """Note that a delivery used the domain's policy."""
        ...


class LocalPolicyCache:
    """PolicyCacheAccess over a PolicyCache in this process; one lock serializes callers."""

    def __init__(self, cache: PolicyCache) -> None:
        self.cache = cache
        self.lock = threading.Lock()

    def get(self, domain: str) -> CachedPolicy | None:
        with self.lock:
            return self.cache.get(domain)

    def put(
        self, domain: str, record_id: str, policy_text: bytes, fetched_at: datetime.datetime
    ) -> None:
        with self.lock:
            self.cache.put(domain, record_id, policy_text, fetched_at=fetched_at)

    def touch_use(self, domain: str, now: datetime.datetime) -> None:
        with self.lock:
            self.cache.touch_use(domain, now)


# fetch(domain) -> the policy body; raises PolicyFetchError.
FetchPolicy = Callable[[str], bytes]


@dataclass(frozen=True, slots=True)
class StsState:
    """The policy that applies (None: none), its text, and what went wrong getting it."""

    policy: StsPolicy | None
    policy_text: bytes = b""
    # RFC 8460 4.3.2.2 result type of a failed fetch or parse, with its detail.
    error: str | None = None
    error_detail: str = ""
    from_cache: bool = False


def policy_strings(text: bytes) -> tuple[str, ...]:
    """RFC 8460 4.3 "policy-string" for MTA-STS: the policy's lines, without line ends."""
    lines = text.decode("utf-8", errors="replace").split("\n")
    return tuple(line.rstrip("\r") for line in lines if line.strip(" \t\r"))


def current_policy(
    domain: str,
    *,
    resolver: Resolver,
    cache: PolicyCacheAccess,
    fetch: FetchPolicy,
    now: datetime.datetime,
) -> StsState:
    """The MTA-STS policy to apply to a delivery to `domain` now (RFC 8461 section 5.1)."""
    cached = cache.get(domain)
    valid = cached if cached is not None and cached.is_valid(now) else None
    lookup = lookup_record(resolver, domain)
    if lookup.status is not RecordStatus.FOUND or lookup.record is None:
        # RFC 8461 section 5.1: a policy, once fetched, stays in force until its
        # max_age runs out, also when the TXT record is gone or cannot be looked up
        # (section 8.3: a domain withdraws its policy by publishing mode "none").
        return _cached_state(valid)
    record_id = lookup.record.id
    if valid is not None and valid.record_id == record_id:
        return _cached_state(valid)
    # RFC 8461 section 5.1: a new id (or no usable cached policy) means fetching the
    # policy; when that fails, a still-valid cached policy keeps applying.
    try:
        body = fetch(domain)
    except PolicyFetchError as exc:
        return _failed(valid, exc.result_type, exc.detail)
    try:
        policy = parse_policy(body)
    except StsPolicyError as exc:
        return _failed(valid, StsPolicyError.result_type, str(exc))
    cache.put(domain, record_id, body, now)
    return StsState(policy, body)


def _cached_state(cached: CachedPolicy | None) -> StsState:
    if cached is None:
        return StsState(None)
    return StsState(cached.policy, cached.policy_text, from_cache=True)


def _failed(cached: CachedPolicy | None, result_type: str, detail: str) -> StsState:
    if cached is None:
        return StsState(None, error=result_type, error_detail=detail)
    return StsState(
        cached.policy, cached.policy_text, error=result_type, error_detail=detail, from_cache=True
    )
