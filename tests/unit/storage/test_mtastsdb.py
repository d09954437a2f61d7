"""mtasts.db, the MTA-STS policy cache."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailactors.protocol.dns import InMemoryResolver
from mailactors.protocol.mtasts import RecordStatus, StsMode, StsPolicyError, lookup_record
from mailactors.storage.db import DatabaseError
from mailactors.storage.mtastsdb import MIGRATIONS, PolicyCache

T0 = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


def policy(mode: str = "enforce", max_age: int = 86400) -> bytes:
    mx = "mx: mx.example.com\n" if mode != "none" else ""
    return f"version: STSv1\nmode: {mode}\n{mx}max_age: {max_age}\n".encode()


@pytest.fixture
def cache(tmp_path: Path, log: logging.Logger) -> Iterator[PolicyCache]:
    with PolicyCache(tmp_path / "mtasts.db", log) as c:
        yield c


def test_put_get(cache: PolicyCache) -> None:
    assert cache.get("example.com") is None
    stored = cache.put("Example.COM.", "id1", policy(), fetched_at=T0)
    got = cache.get("example.com")
    assert got == stored
    assert got is not None
    assert got.domain == "example.com"
    assert got.record_id == "id1"
    assert got.policy.mode is StsMode.ENFORCE
    assert got.policy_text == policy()
    assert got.fetched_at == T0
    assert got.valid_until == T0 + 24 * HOUR
    assert got.last_use is None and got.last_error is None
    assert got.is_valid(T0 + 23 * HOUR)
    assert not got.is_valid(T0 + 24 * HOUR)


def test_put_replaces_and_keeps_last_use(cache: PolicyCache) -> None:
    cache.put("example.com", "id1", policy(), fetched_at=T0)
    cache.touch_use("example.com", T0 + HOUR)
    cache.set_error("example.com", "sts-policy-fetch-error: timeout")
    got = cache.get("example.com")
    assert got is not None
    assert got.last_use == T0 + HOUR
    assert got.last_error == "sts-policy-fetch-error: timeout"
    got = cache.put("example.com", "id2", policy("testing", 600), fetched_at=T0 + 2 * HOUR)
    assert got.record_id == "id2"
    assert got.policy.mode is StsMode.TESTING
    assert got.valid_until == T0 + 2 * HOUR + datetime.timedelta(seconds=600)
    assert got.last_use == T0 + HOUR
    assert got.last_error is None


def test_put_refuses_invalid_policy(cache: PolicyCache) -> None:
    with pytest.raises(StsPolicyError):
        cache.put("example.com", "id1", b"version: STSv1\nmode: enforce\n", fetched_at=T0)
    assert cache.get("example.com") is None


def test_naive_times_are_utc(cache: PolicyCache) -> None:
    got = cache.put("example.com", "id", policy(), fetched_at=T0.replace(tzinfo=None))
    assert got.fetched_at == T0


def test_domains_to_refresh_and_delete_expired(cache: PolicyCache) -> None:
    cache.put("a.example", "1", policy(max_age=3600), fetched_at=T0)
    cache.put("b.example", "1", policy(max_age=7200), fetched_at=T0)
    cache.put("c.example", "1", policy(max_age=86400), fetched_at=T0)
    assert cache.domains_to_refresh(T0, HOUR) == ["a.example"]
    assert cache.domains_to_refresh(T0, 2 * HOUR) == ["a.example", "b.example"]
    assert cache.domains_to_refresh(T0 + 30 * HOUR, datetime.timedelta(0)) == [
        "a.example",
        "b.example",
        "c.example",
    ]
    assert cache.delete_expired(T0 + 2 * HOUR) == ["a.example", "b.example"]
    assert [p.domain for p in cache.all()] == ["c.example"]


def test_delete(cache: PolicyCache) -> None:
    cache.put("example.com", "1", policy(), fetched_at=T0)
    assert cache.delete("EXAMPLE.com")
    assert not cache.delete("example.com")
    assert cache.get("example.com") is None


def test_none_mode_cleanup_when_record_gone(cache: PolicyCache) -> None:
    # What the reporter does: for each cached "none" policy, look up the TXT record;
    # once it is gone, delete the policy (RFC 8461 section 8.3).
    cache.put("gone.example", "1", policy("none"), fetched_at=T0)
    cache.put("kept.example", "1", policy("none"), fetched_at=T0)
    cache.put("enforced.example", "1", policy(), fetched_at=T0)
    resolver = InMemoryResolver({("_mta-sts.kept.example", "TXT"): ["v=STSv1; id=1"]})
    assert cache.none_mode_domains() == ["gone.example", "kept.example"]
    for domain in cache.none_mode_domains():
        if lookup_record(resolver, domain).status is RecordStatus.NONE:
            assert cache.delete(domain, only_mode_none=True)
    assert [p.domain for p in cache.all()] == ["enforced.example", "kept.example"]


def test_delete_only_mode_none_spares_other_modes(cache: PolicyCache) -> None:
    cache.put("example.com", "1", policy("none"), fetched_at=T0)
    # A refresh replaced the policy with an enforced one in the meantime.
    cache.put("example.com", "2", policy("enforce"), fetched_at=T0 + HOUR)
    assert not cache.delete("example.com", only_mode_none=True)
    assert cache.get("example.com") is not None


def test_persists_and_readonly(tmp_path: Path, log: logging.Logger) -> None:
    path = tmp_path / "mtasts.db"
    with PolicyCache(path, log) as cache:
        cache.put("example.com", "1", policy(), fetched_at=T0)
        assert cache.db.schema_version() == len(MIGRATIONS)
    with PolicyCache(path, log, readonly=True) as reader:
        got = reader.get("example.com")
        assert got is not None and got.record_id == "1"
        with pytest.raises(DatabaseError):
            reader.touch_use("example.com", T0)
