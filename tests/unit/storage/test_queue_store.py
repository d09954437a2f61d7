"""storage/queue.py: queued messages, per-recipient schedules, files on disk."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mailactors.storage.db import DatabaseError
from mailactors.storage.queue import QueueError, QueueRequest, QueueStore

log = logging.getLogger("test.queue")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[QueueStore]:
    s = QueueStore(tmp_path / "queue", log)
    s.init()
    try:
        yield s
    finally:
        s.close()


def _source(tmp_path: Path, data: bytes = b"Subject: hi\r\n\r\nbody\r\n") -> Path:
    path = tmp_path / "spool.eml"
    path.write_bytes(data)
    return path


def test_enqueue_and_read(store: QueueStore, tmp_path: Path) -> None:
    src = _source(tmp_path)
    req = QueueRequest(
        sender="a@example.org",
        recipients=("b@Example.COM", "c@other.example"),
        account="alice",
        smtputf8=True,
        requiretls=True,
    )
    mid = store.enqueue(src, req, now=1000)
    msg = store.message(mid)
    assert msg is not None
    assert (msg.sender, msg.size, msg.kind, msg.account) == (
        "a@example.org",
        src.stat().st_size,
        "mail",
        "alice",
    )
    assert msg.smtputf8 and msg.requiretls and not msg.has_8bit
    rcpts = store.recipients(mid)
    assert [(r.address, r.domain, r.attempts, r.next_attempt) for r in rcpts] == [
        ("b@Example.COM", "example.com", 0, 1000),
        ("c@other.example", "other.example", 0, 1000),
    ]
    assert store.path_for(mid).read_bytes() == src.read_bytes()
    # The spool file is linked or copied, never moved.
    assert src.exists()
    with store.open_message(mid) as f:
        assert f.read() == src.read_bytes()


def test_schedule_and_finish(store: QueueStore, tmp_path: Path) -> None:
    mid = store.enqueue(
        _source(tmp_path), QueueRequest("a@x.example", ("b@y.example", "c@z.example")), now=0
    )
    b, c = store.recipients(mid)
    assert [r.id for r in store.due(0)] == [b.id, c.id]
    store.record_failure([b.id], now=0, next_attempt=450_000, error="451 try later")
    assert [r.id for r in store.due(1000)] == [c.id]
    assert store.next_due() == 0
    store.remove_recipients([c.id])
    assert store.next_due() == 450_000
    again = store.recipients(mid)[0]
    assert (again.attempts, again.last_attempt, again.last_error) == (1, 0, "451 try later")
    assert store.path_for(mid).exists()
    store.remove_recipients([b.id])
    assert store.message(mid) is None
    assert not store.path_for(mid).exists()
    assert store.next_due() is None


def test_kick_hold_drop(store: QueueStore, tmp_path: Path) -> None:
    mid = store.enqueue(_source(tmp_path), QueueRequest("", ("b@y.example",), kind="dsn"), now=0)
    (r,) = store.recipients(mid)
    store.record_failure([r.id], now=0, next_attempt=10**9, error="x")
    assert store.due(5) == []
    assert store.kick([r.id], now=5) == 1
    assert [x.id for x in store.due(5)] == [r.id]
    assert store.hold([r.id]) == 1
    assert store.due(10**12) == [] and store.next_due() is None
    assert store.kick(None, now=7) == 1
    assert store.due(7)[0].held is False
    assert store.drop([r.id, 999]) == 1
    assert store.messages() == [] and not store.path_for(mid).exists()


def test_bad_requests(store: QueueStore, tmp_path: Path) -> None:
    with pytest.raises(QueueError):
        store.enqueue(_source(tmp_path), QueueRequest("a@b.example", ()), now=0)
    with pytest.raises(QueueError):
        store.enqueue(
            _source(tmp_path), QueueRequest("a@b.example", ("c@d.example",), kind="spam"), now=0
        )
    with pytest.raises(FileNotFoundError):
        store.enqueue(tmp_path / "missing", QueueRequest("a@b.example", ("c@d.example",)), now=0)
    assert store.messages() == []


def test_readonly_refuses_writes(store: QueueStore, tmp_path: Path) -> None:
    store.enqueue(_source(tmp_path), QueueRequest("a@b.example", ("c@d.example",)), now=0)
    reader = QueueStore(store.directory, log, readonly=True)
    reader.init()
    try:
        assert len(reader.recipients()) == 1
        with pytest.raises(DatabaseError):
            reader.kick(None, now=1)
    finally:
        reader.close()


def test_open_file_removed_after_close(store: QueueStore, tmp_path: Path) -> None:
    """Windows semantics: a file still open for reading is removed once it is closed."""
    mid = store.enqueue(_source(tmp_path), QueueRequest("a@b.example", ("c@d.example",)), now=0)
    f = store.open_message(mid)
    store.remove_recipients([r.id for r in store.recipients(mid)])
    assert store.path_for(mid).exists()
    f.close()
    store.close()
    assert not store.path_for(mid).exists()
    store.init()


class QueueModel(RuleBasedStateMachine):
    """The store against a dict: recipient id -> (message id, next attempt, held)."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.tmp = Path(tempfile.mkdtemp())
        self.store = QueueStore(self.tmp / "queue", log)
        self.store.init()
        self.model: dict[int, tuple[int, int, bool]] = {}
        self.now = 0

    @rule(n=st.integers(1, 3))
    def enqueue(self, n: int) -> None:
        src = self.tmp / "src"
        src.write_bytes(b"x" * n)
        rcpts = tuple(f"r{i}@d{i}.example" for i in range(n))
        mid = self.store.enqueue(src, QueueRequest("s@e.example", rcpts), now=self.now)
        for r in self.store.recipients(mid):
            self.model[r.id] = (mid, self.now, False)

    @rule(dt=st.integers(0, 10_000))
    def tick(self, dt: int) -> None:
        self.now += dt

    @rule(data=st.data())
    def fail_some(self, data: st.DataObject) -> None:
        if not self.model:
            return
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), unique=True))
        later = self.now + data.draw(st.integers(1, 5000))
        self.store.record_failure(ids, now=self.now, next_attempt=later, error="e")
        for i in ids:
            mid, _, held = self.model[i]
            self.model[i] = (mid, later, held)

    @rule(data=st.data())
    def finish_some(self, data: st.DataObject) -> None:
        if not self.model:
            return
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), unique=True))
        self.store.remove_recipients(ids)
        for i in ids:
            del self.model[i]

    @rule(data=st.data())
    def hold_some(self, data: st.DataObject) -> None:
        if not self.model:
            return
        ids = data.draw(st.lists(st.sampled_from(sorted(self.model)), unique=True))
        self.store.hold(ids)
        for i in ids:
            mid, at, _ = self.model[i]
            self.model[i] = (mid, at, True)

    @invariant()
    def agrees(self) -> None:
        due = sorted(r.id for r in self.store.due(self.now))
        assert due == sorted(
            i for i, (_, at, held) in self.model.items() if at <= self.now and not held
        )
        live = {mid for mid, _, _ in self.model.values()}
        assert {m.id for m in self.store.messages()} == live
        files = {int(p.name) for p in (self.tmp / "queue" / "msg").rglob("*") if p.is_file()}
        assert files == live

    def teardown(self) -> None:
        self.store.close()
        import shutil

        shutil.rmtree(self.tmp)


TestQueueModel = QueueModel.TestCase
TestQueueModel.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
