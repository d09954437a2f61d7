"""QueueActor: scheduling, retries with backoff, delay and failure notices (clock injected)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mailactors.actors.messages import (
    QueueControl,
    Queued,
    QueueMessage,
    QueueTick,
    RecipientOutcome,
)
from mailactors.actors.queue import (
    DELAY_NOTIFY_ATTEMPTS,
    FIRST_RETRY_MS,
    MAX_QUEUE_AGE_MS,
    DeliveryJob,
    FailedRecipient,
    Notice,
    QueueActor,
    next_attempt_at,
)
from mailactors.actors.services import Services
from mailactors.actors.store import StoreActor
from mailactors.storage.account import AccountStore
from mailactors.storage.queue import QueuedMessage

log = logging.getLogger("test.queueactor")


def test_backoff_schedule() -> None:
    times = []
    last, attempts = 0, 0
    while True:
        attempts += 1
        nxt = next_attempt_at(0, attempts, last)
        if nxt is None:
            break
        times.append(nxt)
        last = nxt
    assert times[0] == FIRST_RETRY_MS
    assert times[1] - times[0] == 2 * FIRST_RETRY_MS
    assert times[2] - times[1] == 4 * FIRST_RETRY_MS
    # Waits double until the last attempt, which is exactly at the 4-day mark.
    assert times[-1] == MAX_QUEUE_AGE_MS
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert len(times) == 10


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> float:
        return self.ms / 1000


class Recorder:
    def __init__(self) -> None:
        self.jobs: list[DeliveryJob] = []
        self.notices: list[tuple[str, list[str], int | None]] = []

    def deliver(self, job: DeliveryJob) -> Sequence[RecipientOutcome]:
        self.jobs.append(job)
        out = []
        for r in job.recipients:
            if r.domain == "ok.example":
                out.append(RecipientOutcome(r.id, "delivered", 250, "2.0.0", "ok", "mx.ok.example"))
            elif r.domain == "bad.example":
                out.append(
                    RecipientOutcome(
                        r.id, "permanent", 550, "5.1.1", "no such user", "mx.bad.example"
                    )
                )
            else:
                out.append(RecipientOutcome(r.id, "temporary", 451, "4.4.1", "connection refused"))
        return out

    def notify(
        self,
        action: str,
        message: QueuedMessage,
        message_path: Path,
        recipients: Sequence[FailedRecipient],
        now_ms: int,
        will_retry_until_ms: int | None,
    ) -> Notice | None:
        original = message_path.read_bytes()
        self.notices.append(
            (action, [f.recipient.address for f in recipients], will_retry_until_ms)
        )
        text = f"Subject: {action}\r\n\r\n{[f.outcome.text for f in recipients]}\r\n".encode()
        return Notice(text + original[:20], "alice", "Inbox", (), message.sender)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Any, Recorder, Clock, Path]]:
    store = StoreActor.start("alice", tmp_path / "accounts" / "alice", log)
    spool = tmp_path / "tmp"
    spool.mkdir()
    services = Services(
        config=None,  # type: ignore[arg-type]
        stores={"alice": store},
        limiter=None,  # type: ignore[arg-type]
        tls_contexts={},
        spool_dir=spool,
        accounts_dir=tmp_path / "accounts",
        log=log,
    )
    rec, clock = Recorder(), Clock()
    queue = QueueActor.start(
        tmp_path / "queue",
        services,
        rec.deliver,
        rec,
        log,
        clock=clock,
        tick_interval=None,
        workers=2,
    )
    try:
        yield queue, rec, clock, tmp_path
    finally:
        queue.stop()
        store.stop()


def _settle(queue: Any) -> list[dict[str, Any]]:
    """Wait until no attempt is in flight; return the queue listing."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not queue.proxy().inflight.get():
            break
        time.sleep(0.01)
    return list(queue.ask(QueueControl("list"), timeout=10))


def test_retry_delay_and_failure(setup: tuple[Any, Recorder, Clock, Path]) -> None:
    queue, rec, clock, tmp_path = setup
    src = tmp_path / "msg.eml"
    src.write_bytes(b"From: alice@local.example\r\nSubject: hi\r\n\r\nbody\r\n")
    queued = queue.ask(
        QueueMessage(
            1, str(src), "alice@local.example", ("x@ok.example", "y@bad.example", "z@down.example")
        ),
        timeout=10,
    )
    assert isinstance(queued, Queued) and queued.message_id is not None
    listing = _settle(queue)
    # The delivered and the permanently failed recipient are gone; one failure notice.
    assert [r["address"] for r in listing[0]["recipients"]] == ["z@down.example"]
    assert rec.notices == [("failed", ["y@bad.example"], None)]
    assert {j.domain for j in rec.jobs} == {"ok.example", "bad.example", "down.example"}
    # Nothing happens before the first retry is due.
    clock.ms += FIRST_RETRY_MS - 1
    queue.tell(QueueTick())
    _settle(queue)
    assert len(rec.jobs) == 3
    attempts = 1
    while attempts < DELAY_NOTIFY_ATTEMPTS:
        rcpt = _settle(queue)[0]["recipients"][0]
        clock.ms = rcpt["next_attempt"]
        queue.tell(QueueTick())
        attempts += 1
        _settle(queue)
    rcpt = _settle(queue)[0]["recipients"][0]
    assert rcpt["attempts"] == DELAY_NOTIFY_ATTEMPTS
    assert rcpt["last_error"] == "451 4.4.1 connection refused"
    assert rec.notices[1][0:2] == ("delayed", ["z@down.example"])
    assert rec.notices[1][2] == 1_000_000 + MAX_QUEUE_AGE_MS
    # Retries continue until the 4-day mark, then the sender hears of the failure once.
    while _settle(queue):
        rcpt = _settle(queue)[0]["recipients"][0]
        clock.ms = rcpt["next_attempt"]
        queue.tell(QueueTick())
        _settle(queue)
    assert [n[0] for n in rec.notices] == ["failed", "delayed", "failed"]
    assert rec.notices[2][1] == ["z@down.example"]
    assert not (tmp_path / "queue" / "msg" / "0" / str(queued.message_id)).exists()
    # The notices were delivered to the local sender's Inbox.
    deadline = time.monotonic() + 10
    reader = AccountStore(tmp_path / "accounts" / "alice", log, readonly=True)
    reader.init()
    try:
        while time.monotonic() < deadline:
            inbox = reader.mailbox("Inbox")
            assert inbox is not None
            if len(reader.messages(inbox.id)) == 3:
                break
            time.sleep(0.02)
        subjects = []
        for info in reader.messages(inbox.id):
            with reader.open_message(info) as f:
                subjects.append(f.readline())
        assert subjects == [b"Subject: failed\r\n", b"Subject: delayed\r\n", b"Subject: failed\r\n"]
    finally:
        reader.close()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_control_kick_hold_drop(setup: tuple[Any, Recorder, Clock, Path]) -> None:
    queue, rec, clock, tmp_path = setup
    src = tmp_path / "msg.eml"
    src.write_bytes(b"Subject: hi\r\n\r\nbody\r\n")
    queue.ask(QueueMessage(1, str(src), "alice@local.example", ("z@down.example",)), timeout=10)
    rid = _settle(queue)[0]["recipients"][0]["id"]
    assert len(rec.jobs) == 1
    assert queue.ask(QueueControl("hold", (rid,)), timeout=10) == 1
    assert queue.ask(QueueControl("kick", None), timeout=10) == 1
    _settle(queue)
    assert len(rec.jobs) == 2
    assert queue.ask(QueueControl("drop", (rid, 12345)), timeout=10) == 1
    assert _settle(queue) == []
    assert rec.notices == []
