"""mtasts.db: the cache of fetched MTA-STS policies (RFC 8461 section 5.1).

One row per recipient domain: the policy text as fetched, the id of the
_mta-sts TXT record it was fetched for, when it was fetched, until when it is
valid (fetched_at + max_age), when a delivery last used it and the last error
of a refresh. The QueueActor reads it; the ReporterActor refreshes policies
that are about to expire (RFC 8461 section 5.1: "senders SHOULD ... refresh
... before expiry") and deletes those of mode "none" whose TXT record is gone
(section 8.3, removing a policy), as well as expired ones.

Times are stored as integer seconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from mailactors.protocol.dns import normalize_name
from mailactors.protocol.mtasts import StsMode, StsPolicy, parse_policy
from mailactors.storage.db import DatabaseStore, Migration

__all__ = ["CachedPolicy", "PolicyCache", "MIGRATIONS"]

MIGRATIONS: list[Migration] = [
    """
    CREATE TABLE policy (
        domain TEXT PRIMARY KEY,
        record_id TEXT NOT NULL,
        policy_text BLOB NOT NULL,
        mode TEXT NOT NULL,
        fetched_at INTEGER NOT NULL,
        valid_until INTEGER NOT NULL,
        last_use INTEGER,
        last_error TEXT
    ) STRICT;
    CREATE INDEX policy_valid_until ON policy (valid_until);
    """,
]

_COLUMNS = "domain, record_id, policy_text, fetched_at, valid_until, last_use, last_error"


def _ts(when: datetime.datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp())


def _dt(ts: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC)


@dataclass(frozen=True, slots=True)
class CachedPolicy:
    domain: str
    record_id: str
    policy_text: bytes
    policy: StsPolicy
    fetched_at: datetime.datetime
    valid_until: datetime.datetime
    last_use: datetime.datetime | None
    last_error: str | None

    def is_valid(self, now: datetime.datetime) -> bool:
        """Whether max_age has not yet run out (RFC 8461 section 5.1)."""
        return now < self.valid_until


def _row(row: tuple[Any, ...]) -> CachedPolicy:
    domain, record_id, text, fetched_at, valid_until, last_use, last_error = row
    return CachedPolicy(
        domain=domain,
        record_id=record_id,
        policy_text=bytes(text),
        policy=parse_policy(bytes(text)),
        fetched_at=_dt(fetched_at),
        valid_until=_dt(valid_until),
        last_use=None if last_use is None else _dt(last_use),
        last_error=last_error,
    )


class PolicyCache(DatabaseStore):
    """The MTA-STS policy cache in one database file.

    The owning actor opens it for writing; others may open it readonly=True.
    """

    MIGRATIONS = MIGRATIONS
    LOGGER = "mailactors.storage.mtastsdb"

    def get(self, domain: str) -> CachedPolicy | None:
        """The cached policy of a domain, expired or not; None if there is none."""
        row = self.db.connection.execute(
            f"SELECT {_COLUMNS} FROM policy WHERE domain = ?", (normalize_name(domain),)
        ).fetchone()
        return None if row is None else _row(row)

    def put(
        self, domain: str, record_id: str, policy_text: bytes, *, fetched_at: datetime.datetime
    ) -> CachedPolicy:
        """Store a freshly fetched policy, valid for its max_age from `fetched_at`.

        Clears last_error and keeps last_use. Raises StsPolicyError for a text that
        does not parse: only valid policies are cached (RFC 8461 section 3.3).
        """
        policy = parse_policy(policy_text)
        domain = normalize_name(domain)
        fetched = _ts(fetched_at)
        with self.db.transaction() as conn:
            conn.execute(
                """
                INSERT INTO policy (domain, record_id, policy_text, mode, fetched_at, valid_until)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (domain) DO UPDATE SET
                    record_id = excluded.record_id,
                    policy_text = excluded.policy_text,
                    mode = excluded.mode,
                    fetched_at = excluded.fetched_at,
                    valid_until = excluded.valid_until,
                    last_error = NULL
                """,
                (
                    domain,
                    record_id,
                    policy_text,
                    policy.mode.value,
                    fetched,
                    fetched + policy.max_age,
                ),
            )
        cached = self.get(domain)
        assert cached is not None
        return cached

    def touch_use(self, domain: str, now: datetime.datetime) -> None:
        """Record that a delivery used the domain's policy."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE policy SET last_use = ? WHERE domain = ?",
                (_ts(now), normalize_name(domain)),
            )

    def set_error(self, domain: str, error: str) -> None:
        """Remember why the last refresh failed (the cached policy stays in force)."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE policy SET last_error = ? WHERE domain = ?", (error, normalize_name(domain))
            )

    def delete(self, domain: str, *, only_mode_none: bool = False) -> bool:
        """Remove a domain's policy; whether there was one.

        With only_mode_none, only a policy of mode "none": the reporter's cleanup
        after lookup_record found no TXT record, so a policy fetched in between
        (with another mode) survives.
        """
        sql = "DELETE FROM policy WHERE domain = ?"
        args: tuple[str, ...] = (normalize_name(domain),)
        if only_mode_none:
            sql += " AND mode = ?"
            args += (StsMode.NONE.value,)
        with self.db.transaction() as conn:
            conn.execute(sql, args)
            return bool(conn.changes())

    def domains_to_refresh(self, now: datetime.datetime, within: datetime.timedelta) -> list[str]:
        """Domains whose policy expires within `within` from `now` (or already did),
        soonest first."""
        limit = _ts(now + within)
        return [
            str(row[0])
            for row in self.db.connection.execute(
                "SELECT domain FROM policy WHERE valid_until <= ? ORDER BY valid_until, domain",
                (limit,),
            )
        ]

    def none_mode_domains(self) -> list[str]:
        """Domains cached with mode "none": the reporter looks up each one's TXT
        record (mtasts.lookup_record) and deletes the policy once the record is gone."""
        return [
            str(row[0])
            for row in self.db.connection.execute(
                "SELECT domain FROM policy WHERE mode = ? ORDER BY domain", (StsMode.NONE.value,)
            )
        ]

    def delete_expired(self, now: datetime.datetime) -> list[str]:
        """Remove policies whose max_age has run out; the domains removed."""
        ts = _ts(now)
        with self.db.transaction() as conn:
            removed = [
                str(row[0])
                for row in conn.execute(
                    "SELECT domain FROM policy WHERE valid_until <= ? ORDER BY domain", (ts,)
                )
            ]
            conn.execute("DELETE FROM policy WHERE valid_until <= ?", (ts,))
        return removed

    def all(self) -> list[CachedPolicy]:
        """Every cached policy, by domain (for the admin pages)."""
        return [
            _row(row)
            for row in self.db.connection.execute(f"SELECT {_COLUMNS} FROM policy ORDER BY domain")
        ]
