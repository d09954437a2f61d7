"""ReporterActor's hourly DMARC job: started a few minutes after the hour, its reports
spread over the following minutes, evaluations removed only once a report is queued."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from mailactors.actors.dbactor import DatabaseActor
from mailactors.actors.dkimsign import DkimSigner
from mailactors.actors.localserve import ensure_localserve_files
from mailactors.actors.messages import Ping, Queued, QueueMessage
from mailactors.actors.reporter import (
    MAX_SPACING,
    MAX_START_DELAY,
    ReporterActor,
    ReporterTick,
)
from mailactors.actors.services import Services
from mailactors.conf import load_config
from mailactors.protocol.dmarcrpt import Evaluation, PolicyPublished, SpfAuth
from mailactors.protocol.dns import InMemoryResolver
from mailactors.storage.dmarcdb import EvaluationStore, StoredEvaluation

log = logging.getLogger("test.reporter.schedule")
HOUR = 3600
T0 = 1_795_500_000 // HOUR * HOUR


class FakeQueue(pykka.ThreadingActor):
    def __init__(self, accept: bool = True) -> None:
        super().__init__()
        self.accept = accept
        self.queued: list[QueueMessage] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            return True
        if isinstance(message, QueueMessage):
            if not self.accept:
                return Queued(message.request_id, None, "full", storage_full=True)
            self.queued.append(message)
            return Queued(message.request_id, len(self.queued))
        if message == "queued":
            return [(m.kind, m.recipients) for m in self.queued]
        raise TypeError(message)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _evaluation(domain: str, at: int) -> StoredEvaluation:
    return StoredEvaluation(
        evaluated_at=at,
        policy=PolicyPublished(domain, "r", "r", "none", None, 100, "0"),
        evaluation=Evaluation(
            "192.0.2.1",
            "none",
            "pass",
            "pass",
            (),
            domain,
            domain,
            "localhost",
            (),
            (SpfAuth(domain, "mfrom", "pass"),),
        ),
        rua=(f"mailto:dmarc@{domain}",),
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Any, Any, Clock, Path, Any]]:
    config = load_config(ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log))
    config = dataclasses.replace(
        config, static=dataclasses.replace(config.static, no_outgoing_dmarc_reports=False)
    )
    data = config.static.data_dir
    (data / "tmp").mkdir(parents=True)
    path = data / "dmarceval.db"
    store = EvaluationStore(path)
    store.init()
    for domain in ("a.example", "b.example", "c.example"):
        store.add(_evaluation(domain, T0 + 100))
    store.close()
    db = DatabaseActor.start("dmarceval", lambda: EvaluationStore(path), log)
    queue = FakeQueue.start()
    services = Services(
        config=config,
        stores={},
        limiter=None,  # type: ignore[arg-type]
        tls_contexts={},
        spool_dir=data / "tmp",
        accounts_dir=data / "accounts",
        log=log,
        queue=queue,
        databases={"dmarceval": db},
    )
    clock = Clock(T0 + 200)
    reporter = ReporterActor.start(
        config,
        services,
        InMemoryResolver(),
        DkimSigner(config.domains),
        log,
        clock=clock,
        tick_interval=None,
    )
    try:
        yield reporter, queue, clock, path, db
    finally:
        reporter.stop()
        queue.stop()
        db.stop()


def _pending(path: Path) -> list[str]:
    store = EvaluationStore(path, readonly=True)
    store.init()
    try:
        return [p.policy_domain for p in store.pending()]
    finally:
        store.close()


def test_reports_are_spread_and_evaluations_removed_after_queueing(
    world: tuple[Any, Any, Clock, Path, Any],
) -> None:
    reporter, queue, clock, path, _ = world
    # Before the hour has ended (and its random start delay passed) nothing happens.
    clock.now = T0 + HOUR - 1
    reporter.ask(ReporterTick(), timeout=10)
    assert queue.ask("queued", timeout=10) == []
    clock.now = T0 + HOUR + MAX_START_DELAY
    reporter.ask(ReporterTick(), timeout=10)
    assert len(queue.ask("queued", timeout=10)) == 1
    assert len(_pending(path)) == 2
    spacing = min(MAX_SPACING, 1800 / 3)
    clock.now += spacing - 1
    reporter.ask(ReporterTick(), timeout=10)
    assert len(queue.ask("queued", timeout=10)) == 1
    clock.now += 1
    reporter.ask(ReporterTick(), timeout=10)
    clock.now += spacing
    reporter.ask(ReporterTick(), timeout=10)
    queued = queue.ask("queued", timeout=10)
    assert sorted(r[0] for _, r in queued) == [
        "dmarc@a.example",
        "dmarc@b.example",
        "dmarc@c.example",
    ]
    assert {kind for kind, _ in queued} == {"dmarc-report"}
    assert _pending(path) == []


def test_disabled_reports_stay_unsent(
    world: tuple[Any, Any, Clock, Path, Any], tmp_path: Path
) -> None:
    reporter, queue, clock, path, db = world
    config = reporter.proxy().config.get()
    reporter.proxy().config = dataclasses.replace(
        config, static=dataclasses.replace(config.static, no_outgoing_dmarc_reports=True)
    )
    clock.now = T0 + 3 * HOUR
    reporter.ask(ReporterTick(), timeout=10)
    assert queue.ask("queued", timeout=10) == []
    assert len(_pending(path)) == 3


def test_evaluations_stay_when_queueing_fails(world: tuple[Any, Any, Clock, Path, Any]) -> None:
    reporter, queue, clock, path, _ = world
    queue.proxy().accept = False
    clock.now = T0 + HOUR + MAX_START_DELAY
    result = reporter.ask(
        __import__("mailactors.actors.reporter", fromlist=["SendReports"]).SendReports("dmarc"),
        timeout=10,
    )
    assert [r["queued"] for r in result["reports"]] == [False, False, False]
    assert len(_pending(path)) == 3
