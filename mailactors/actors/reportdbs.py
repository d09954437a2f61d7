"""Writes and reads the report DatabaseActors run for the queue's delivery workers.

Delivery attempts run on worker threads; they reach mtasts.db and tlsrptresult.db
only through the DatabaseActor owning each (one writer per database).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pykka

from mailactors.storage.mtastsdb import CachedPolicy, PolicyCache
from mailactors.storage.tlsrptdb import ResultEntry, ResultStore

ASK_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class AddTlsResults:
    entries: tuple[ResultEntry, ...]

    def apply(self, store: ResultStore) -> None:
        store.add_many(self.entries)


@dataclass(frozen=True, slots=True)
class GetPolicy:
    domain: str

    def apply(self, store: PolicyCache) -> CachedPolicy | None:
        return store.get(self.domain)


@dataclass(frozen=True, slots=True)
class PutPolicy:
    domain: str
    record_id: str
    policy_text: bytes
    fetched_at: datetime.datetime

    def apply(self, store: PolicyCache) -> Any:
        return store.put(self.domain, self.record_id, self.policy_text, fetched_at=self.fetched_at)


@dataclass(frozen=True, slots=True)
class TouchPolicy:
    domain: str
    now: datetime.datetime

    def apply(self, store: PolicyCache) -> Any:
        return store.touch_use(self.domain, self.now)


class ActorPolicyCache:
    """The MTA-STS cache as delivery workers see it: asks to the mtasts.db actor."""

    def __init__(self, ref: pykka.ActorRef[Any]) -> None:
        self.ref = ref

    def get(self, domain: str) -> CachedPolicy | None:
        result = self.ref.ask(GetPolicy(domain), timeout=ASK_TIMEOUT)
        return result if isinstance(result, CachedPolicy) else None

    def put(
        self, domain: str, record_id: str, policy_text: bytes, fetched_at: datetime.datetime
    ) -> None:
        self.ref.ask(PutPolicy(domain, record_id, policy_text, fetched_at), timeout=ASK_TIMEOUT)

    def touch_use(self, domain: str, now: datetime.datetime) -> None:
        self.ref.tell(TouchPolicy(domain, now))
