"""Tests for mailactors.storage.gentestdata: a deterministic, sound data directory."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from mailactors.protocol.sasl.scram import ScramCredentials, verify_password
from mailactors.storage import gentestdata
from mailactors.storage.account import AccountStore
from mailactors.storage.dmarcdb import EvaluationStore, ReceivedReportStore
from mailactors.storage.gentestdata import (
    TEST_ACCOUNTS,
    TEST_PASSWORD,
    GenTestDataError,
    generate_test_data,
    run_gentestdata,
)
from mailactors.storage.mtastsdb import PolicyCache
from mailactors.storage.queue import QueueStore
from mailactors.storage.tlsrptdb import ReceivedTlsReportStore, ResultStore
from mailactors.storage.verify import find_databases, open_readonly, verify_data_dir


def logical_dump(data_dir: Path) -> dict[str, Any]:
    """Every row of every table of every database, and every file's bytes."""
    out: dict[str, Any] = {}
    for path, _kind in find_databases(data_dir):
        conn = open_readonly(path)
        try:
            tables = [
                str(r[0])
                for r in conn.execute(
                    "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"
                )
            ]
            for table in tables:
                rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()  # names from the schema
                out[f"{path.relative_to(data_dir).as_posix()}:{table}"] = sorted(rows, key=repr)
            out[f"{path.relative_to(data_dir).as_posix()}:version"] = conn.pragma("user_version")
        finally:
            conn.close()
    for p in sorted(data_dir.rglob("*")):
        if p.is_file() and not p.name.endswith(".db"):
            out[p.relative_to(data_dir).as_posix()] = p.read_bytes()
    return out


@pytest.fixture
def data_dir(tmp_path: Path, log: logging.Logger) -> Path:
    d = tmp_path / "data"
    generate_test_data(d, log)
    return d


def test_generation_is_deterministic(data_dir: Path, tmp_path: Path, log: logging.Logger) -> None:
    again = tmp_path / "again"
    generate_test_data(again, log)
    first, second = logical_dump(data_dir), logical_dump(again)
    assert first == second
    # Not trivially equal: every account's tables and files are in there.
    assert {k.split("/")[1] for k in first if k.startswith("accounts/")} == set(TEST_ACCOUNTS)
    assert any(k.endswith(":message") for k in first)


def test_generated_dir_verifies(data_dir: Path) -> None:
    assert verify_data_dir(data_dir) == []
    assert [p.relative_to(data_dir).as_posix() for p, _ in find_databases(data_dir)] == [
        *(f"accounts/{a}/index.db" for a in sorted(TEST_ACCOUNTS)),
        "dmarceval.db",
        "dmarcrpt.db",
        "mtasts.db",
        "queue/index.db",
        "tlsrpt.db",
        "tlsrptresult.db",
    ]
    # Every database has a kind verifydata knows.
    assert all(kind is not None for _, kind in find_databases(data_dir))
    # Spool files were removed after each delivery.
    assert list((data_dir / "tmp").iterdir()) == []


def test_accounts_have_flagged_expunged_and_copied_messages(
    data_dir: Path, log: logging.Logger
) -> None:
    for account in TEST_ACCOUNTS:
        store = AccountStore(data_dir / "accounts" / account, log, readonly=True)
        store.init()
        try:
            names = [mb.name for mb in store.list_mailboxes()]
            assert "Inbox" in names and "Lists/Python" in names and "Archive" in names
            inbox = store.mailbox("Inbox")
            archive = store.mailbox("Archive")
            assert inbox is not None and archive is not None
            messages = store.messages(inbox.id)
            assert any("\\Flagged" in m.flags for m in messages)
            assert any("$Important" in m.flags for m in messages)
            assert not any("\\Deleted" in m.flags for m in messages)
            every = store.messages(inbox.id, include_expunged=True)
            assert any(m.expunged for m in every)
            # The COPY of uids 1 and 2 shares the files (hard links).
            copied = store.messages(archive.id)
            originals = store.messages_by_uid(inbox.id, [1, 2])
            assert len(copied) == 3 and len(originals) == 2
            assert os.path.samefile(store.message_path(copied[1]), store.message_path(originals[0]))
            # Pinned, not from the clock.
            assert inbox.uidvalidity < 10_000
            creds = store.password_credentials()
            assert creds is not None
            assert verify_password(ScramCredentials(*creds), TEST_PASSWORD)
        finally:
            store.close()


def test_refuses_non_empty_dir(data_dir: Path, tmp_path: Path, log: logging.Logger) -> None:
    with pytest.raises(GenTestDataError, match="not an empty directory"):
        generate_test_data(data_dir, log)
    out, err = io.StringIO(), io.StringIO()
    assert run_gentestdata(data_dir, out, err) == 1
    assert "not an empty directory" in err.getvalue()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_gentestdata(empty, out, err) == 0
    assert f"test data written to {empty}" in out.getvalue()


def test_each_generator_runs_in_order(
    tmp_path: Path, log: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def first(d: Path, lg: logging.Logger) -> None:
        calls.append(f"first {d.name}")

    def second(d: Path, lg: logging.Logger) -> None:
        calls.append(f"second {d.name}")

    monkeypatch.setattr(gentestdata, "GENERATORS", (first, second))
    generate_test_data(tmp_path / "d", log)
    assert calls == ["first d", "second d"]


def test_queue_and_report_databases_have_content(data_dir: Path, log: logging.Logger) -> None:
    queue = QueueStore(data_dir / "queue", log, readonly=True)
    queue.init()
    try:
        messages = queue.messages()
        assert [m.kind for m in messages] == ["mail", "mail", "dsn"]
        recipients = queue.recipients()
        assert len(recipients) == 4
        assert sum(r.attempts for r in recipients) == 1
    finally:
        queue.close()
    evaluations = EvaluationStore(data_dir / "dmarceval.db", log, readonly=True)
    evaluations.init()
    try:
        assert sorted(p.policy_domain for p in evaluations.pending()) == [
            "example.com",
            "example.org",
        ]
    finally:
        evaluations.close()
    dmarc_reports = ReceivedReportStore(data_dir / "dmarcrpt.db", log, readonly=True)
    dmarc_reports.init()
    try:
        assert [r.report_id for r in dmarc_reports.list()] == ["gentestdata-1"]
    finally:
        dmarc_reports.close()
    results = ResultStore(data_dir / "tlsrptresult.db", log, readonly=True)
    results.init()
    try:
        assert sorted(e.policy_domain for e in results.pending()) == ["example.com", "example.net"]
    finally:
        results.close()
    tls_reports = ReceivedTlsReportStore(data_dir / "tlsrpt.db", log, readonly=True)
    tls_reports.init()
    try:
        assert len(tls_reports.list_reports()) == 1
    finally:
        tls_reports.close()
    cache = PolicyCache(data_dir / "mtasts.db", log, readonly=True)
    cache.init()
    try:
        cached = cache.get("example.net")
        assert cached is not None and cached.record_id == "20240102T000000"
    finally:
        cache.close()
