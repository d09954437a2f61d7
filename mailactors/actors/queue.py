"""QueueActor: the outgoing queue's only writer; schedules delivery attempts and retries.

Theory of operation. Sessions (and the reporter) tell QueueMessage; the actor links
the spool file into queue/ and answers Queued. A timer tells QueueTick every second;
on a tick the actor takes the due recipients, groups them by message and recipient
domain (one SMTP transaction serves a domain's recipients), and hands each group as
a DeliveryJob to a small pool of worker threads, at most PER_DOMAIN_ATTEMPTS at a
time per domain. A worker runs `deliver(job)` (blocking network IO, never on the
actor's thread) and tells DeliveryAttempted back. Then each recipient is done
(delivered), failed (permanent error, or retried until MAX_QUEUE_AGE: the sender
gets a failure DSN) or rescheduled with a doubling backoff; after
DELAY_NOTIFY_ATTEMPTS failed attempts the sender gets one delay DSN. Times come from
an injected clock so tests run the schedule without sleeping.
"""

from __future__ import annotations

import logging
import queue as threadqueue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pykka

from mailactors import metrics
from mailactors.actors.messages import (
    DeliverMessages,
    Delivery,
    DeliveryAttempted,
    DeliveryResult,
    Ping,
    QueueControl,
    Queued,
    QueueMessage,
    QueueTick,
    RecipientOutcome,
)
from mailactors.actors.services import Services, UpdateServices
from mailactors.actors.tell import tell_urn
from mailactors.storage.files import SpoolFile, StorageFullError, create_spool_file
from mailactors.storage.queue import QueuedMessage, QueuedRecipient, QueueRequest, QueueStore

# The first retry comes after 7.5 minutes; each further one after twice the wait.
FIRST_RETRY_MS = 450_000
# A message that could not be delivered for 4 days fails (RFC 5321 4.5.4.1: "give
# up" should be at least 4-5 days).
MAX_QUEUE_AGE_MS = 4 * 24 * 3600 * 1000
# The sender hears about a delay once, after this many failed attempts (~1 hour).
DELAY_NOTIFY_ATTEMPTS = 4
# Parallel attempts per recipient domain, and worker threads overall.
PER_DOMAIN_ATTEMPTS = 2
WORKERS = 8
TICK_INTERVAL = 1.0
# A worker that does not report back within this time counts as failed.
ATTEMPT_DEADLINE_MS = 30 * 60 * 1000


def next_attempt_at(queued_at: int, attempts: int, last_attempt: int) -> int | None:
    """When to try again after `attempts` failed attempts; None: give up.

    Waits double from FIRST_RETRY_MS; the last attempt happens at MAX_QUEUE_AGE_MS.
    """
    expires = queued_at + MAX_QUEUE_AGE_MS
    if last_attempt >= expires:
        return None
    wait: int = FIRST_RETRY_MS << max(attempts - 1, 0)
    return min(last_attempt + wait, expires)


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """One attempt: a message's recipients in one domain."""

    job_id: int
    message: QueuedMessage
    recipients: tuple[QueuedRecipient, ...]
    path: str
    domain: str


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """A recipient the sender must hear about, and the attempt's last word on it."""

    recipient: QueuedRecipient
    outcome: RecipientOutcome


@dataclass(frozen=True, slots=True)
class Notice:
    """A DSN to deliver: into a local account's mailbox, or queued to a remote sender."""

    data: bytes
    account: str | None  # local delivery when set
    mailbox: str
    flags: tuple[str, ...]
    recipient: str  # the envelope recipient (the original sender)


class Notifier(Protocol):
    """Makes the DSN (RFC 3464) telling a sender about failed or delayed recipients."""

    def notify(
        self,
        action: str,  # "failed" or "delayed"
        message: QueuedMessage,
        message_path: Path,
        recipients: Sequence[FailedRecipient],
        now_ms: int,
        will_retry_until_ms: int | None,
    ) -> Notice | None: ...


Deliver = Callable[[DeliveryJob], Sequence[RecipientOutcome]]


class QueueActor(pykka.ThreadingActor):
    def __init__(
        self,
        directory: Path,
        services: Services,
        deliver: Deliver,
        notifier: Notifier,
        log: logging.Logger,
        *,
        clock: Callable[[], float] = time.time,
        tick_interval: float | None = TICK_INTERVAL,
        workers: int = WORKERS,
    ) -> None:
        super().__init__()
        self.directory = directory
        self.services = services
        self.deliver = deliver
        self.notifier = notifier
        self.log = log
        self.clock = clock
        self.tick_interval = tick_interval
        self.workers = workers
        self.store: QueueStore | None = None
        self.jobs: threadqueue.Queue[DeliveryJob | None] = threadqueue.Queue()
        self.threads: list[threading.Thread] = []
        self.inflight: dict[int, tuple[DeliveryJob, int]] = {}  # job id -> (job, started ms)
        self.job_ids = iter(range(1, 1 << 62))
        self._timer_stop = threading.Event()
        self._timer: threading.Thread | None = None
        self.notices: dict[int, SpoolFile] = {}  # request id -> DSN spool file
        self.request_ids = iter(range(1, 1 << 62))

    # --- lifecycle ----------------------------------------------------------------

    def on_start(self) -> None:
        store = QueueStore(self.directory, self.log)
        store.init()
        self.store = store
        me = self.actor_ref
        for i in range(self.workers):
            t = threading.Thread(target=self._work, args=(me,), name=f"delivery-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        if self.tick_interval is not None:
            self._timer = threading.Thread(target=self._tick_loop, name="queue-timer", daemon=True)
            self._timer.start()

    def on_stop(self) -> None:
        self._timer_stop.set()
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join(timeout=10)
            if t.is_alive():
                self.log.error("delivery worker still busy at stop", extra={"thread": t.name})
        self.threads.clear()
        if self._timer is not None:
            self._timer.join(timeout=5)
        for spool in self.notices.values():
            spool.discard()
        self.notices.clear()
        if self.store is not None:
            store, self.store = self.store, None
            store.close()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self.log.error("queue failed", extra={"err": str(exception_value)})
        self.on_stop()

    def _tick_loop(self) -> None:
        assert self.tick_interval is not None
        while not self._timer_stop.wait(self.tick_interval):
            try:
                self.actor_ref.tell(QueueTick())
            except pykka.ActorDeadError:
                return

    def _work(self, me: pykka.ActorRef[Any]) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                outcomes = tuple(self.deliver(job))
            except Exception as exc:
                self.log.exception("delivery attempt crashed", extra={"job": job.job_id})
                outcomes = tuple(
                    RecipientOutcome(r.id, "temporary", 451, "4.3.0", f"internal error: {exc}")
                    for r in job.recipients
                )
            try:
                me.tell(DeliveryAttempted(job.job_id, outcomes))
            except pykka.ActorDeadError:
                return

    # --- inbox ----------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock() * 1000)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, QueueMessage):
            return self._enqueue(message)
        if isinstance(message, QueueTick):
            self._tick()
            return None
        if isinstance(message, DeliveryAttempted):
            self._attempted(message)
            return None
        if isinstance(message, QueueControl):
            return self._control(message)
        if isinstance(message, DeliveryResult):
            spool = self.notices.pop(message.request_id, None)
            if spool is not None:
                spool.discard()
            if any(e is not None for e in message.errors):
                self.log.error(
                    "delivering a DSN locally failed", extra={"errors": str(message.errors)}
                )
            return None
        if isinstance(message, UpdateServices):
            self.services = message.services
            return None
        if isinstance(message, Ping):
            return True
        raise TypeError(f"QueueActor: unexpected message {type(message).__name__}")

    def _enqueue(self, msg: QueueMessage) -> Queued:
        assert self.store is not None
        request = QueueRequest(
            sender=msg.sender,
            recipients=msg.recipients,
            kind=msg.kind,
            account=msg.account,
            smtputf8=msg.smtputf8,
            has_8bit=msg.has_8bit,
            requiretls=msg.requiretls,
            tls_required_no=msg.tls_required_no,
        )
        try:
            mid = self.store.enqueue(Path(msg.source), request, self._now())
            result = Queued(msg.request_id, mid)
            self.log.info(
                "message queued",
                extra={"id": mid, "kind": msg.kind, "rcpts": len(msg.recipients)},
            )
        except StorageFullError as exc:
            self.log.error("queueing failed: storage full", extra={"err": str(exc)})
            result = Queued(msg.request_id, None, str(exc), storage_full=True)
        except Exception as exc:
            self.log.exception("queueing failed")
            result = Queued(msg.request_id, None, str(exc))
        if msg.reply_to is not None:
            tell_urn(msg.reply_to, result, self.log)
        if result.message_id is not None:
            # Start delivering at once rather than at the next timer tick.
            self.actor_ref.tell(QueueTick())
        return result

    def _tick(self) -> None:
        assert self.store is not None
        now = self._now()
        self._expire_stuck(now)
        busy = {r.id for job, _ in self.inflight.values() for r in job.recipients}
        per_domain: dict[str, int] = {}
        for job, _ in self.inflight.values():
            per_domain[job.domain] = per_domain.get(job.domain, 0) + 1
        groups: dict[tuple[int, str], list[QueuedRecipient]] = {}
        for r in self.store.due(now):
            if r.id not in busy:
                groups.setdefault((r.message_id, r.domain), []).append(r)
        for (mid, domain), rcpts in groups.items():
            if len(self.inflight) >= 2 * self.workers:
                break
            if per_domain.get(domain, 0) >= PER_DOMAIN_ATTEMPTS:
                continue
            message = self.store.message(mid)
            if message is None:
                continue
            job = DeliveryJob(
                next(self.job_ids), message, tuple(rcpts), str(self.store.path_for(mid)), domain
            )
            self.inflight[job.job_id] = (job, now)
            per_domain[domain] = per_domain.get(domain, 0) + 1
            self.jobs.put(job)

    def _expire_stuck(self, now: int) -> None:
        for job_id, (_job, started) in list(self.inflight.items()):
            if now - started > ATTEMPT_DEADLINE_MS:
                self.log.error("delivery attempt did not report back", extra={"job": job_id})
                del self.inflight[job_id]

    def _attempted(self, msg: DeliveryAttempted) -> None:
        assert self.store is not None
        entry = self.inflight.pop(msg.job_id, None)
        if entry is None:
            return
        job = entry[0]
        now = self._now()
        by_id = {r.id: r for r in job.recipients}
        done: list[int] = []
        failed: list[FailedRecipient] = []
        delayed: list[FailedRecipient] = []
        retry: dict[int, list[int]] = {}
        errors: dict[int, str] = {}
        for outcome in msg.outcomes:
            rcpt = by_id.get(outcome.recipient_id)
            if rcpt is None:
                continue
            detail = f"{outcome.code} {outcome.enhanced} {outcome.text}".strip()
            if outcome.status == "delivered":
                done.append(rcpt.id)
                metrics.message_delivered()
                self.log.info(
                    "delivered",
                    extra={"id": job.message.id, "rcpt": rcpt.address, "mta": outcome.remote_mta},
                )
                continue
            attempts = rcpt.attempts + 1
            later = (
                None
                if outcome.status == "permanent"
                else next_attempt_at(job.message.queued_at, attempts, now)
            )
            if later is None:
                failed.append(FailedRecipient(rcpt, outcome))
                metrics.delivery_failed()
                done.append(rcpt.id)
                self.log.info(
                    "delivery failed",
                    extra={"id": job.message.id, "rcpt": rcpt.address, "err": detail},
                )
                continue
            retry.setdefault(later, []).append(rcpt.id)
            errors[rcpt.id] = detail
            self.log.info(
                "delivery deferred",
                extra={
                    "id": job.message.id,
                    "rcpt": rcpt.address,
                    "err": detail,
                    "attempts": attempts,
                },
            )
            if attempts >= DELAY_NOTIFY_ATTEMPTS and not rcpt.delay_notified:
                delayed.append(FailedRecipient(rcpt, outcome))
        path = Path(job.path)
        expires = job.message.queued_at + MAX_QUEUE_AGE_MS
        if failed:
            self._notify("failed", job.message, path, failed, now, None)
        if delayed:
            self._notify("delayed", job.message, path, delayed, now, expires)
            self.store.mark_delay_notified([f.recipient.id for f in delayed])
        for later, ids in retry.items():
            for rid in ids:
                self.store.record_failure([rid], now=now, next_attempt=later, error=errors[rid])
        if done:
            self.store.remove_recipients(done)

    def _notify(
        self,
        action: str,
        message: QueuedMessage,
        path: Path,
        recipients: list[FailedRecipient],
        now: int,
        until: int | None,
    ) -> None:
        try:
            notice = self.notifier.notify(action, message, path, recipients, now, until)
            if notice is not None:
                self._send_notice(notice)
        except Exception:
            # A DSN that cannot be made must not keep the queue from moving on.
            self.log.exception("notifying the sender failed", extra={"id": message.id})

    def _send_notice(self, notice: Notice) -> None:
        """Deliver a DSN to a local account, or queue it (null sender) for a remote one."""
        assert self.store is not None
        spool = create_spool_file(self.services.spool_dir, prefix="dsn-")
        try:
            spool.write(notice.data)
            spool.finish()
        except BaseException:
            spool.discard()
            raise
        if notice.account is None:
            request = QueueRequest(sender="", recipients=(notice.recipient,), kind="dsn")
            try:
                self.store.enqueue(spool.path, request, self._now())
            finally:
                spool.discard()
            return
        store = self.services.store_for(notice.account)
        if store is None:
            spool.discard()
            raise RuntimeError(f"no store for account {notice.account!r}")
        request_id = next(self.request_ids)
        self.notices[request_id] = spool
        delivery = Delivery(
            mailbox=notice.mailbox,
            source=str(spool.path),
            received=datetime.now(UTC),
            flags=notice.flags,
        )
        store.tell(DeliverMessages(request_id, (delivery,), self.actor_urn))

    def _control(self, msg: QueueControl) -> Any:
        assert self.store is not None
        now = self._now()
        if msg.action == "list":
            out = []
            for m in self.store.messages():
                out.append(
                    {
                        "id": m.id,
                        "queued_at": m.queued_at,
                        "sender": m.sender,
                        "size": m.size,
                        "kind": m.kind,
                        "recipients": [
                            {
                                "id": r.id,
                                "address": r.address,
                                "attempts": r.attempts,
                                "next_attempt": r.next_attempt,
                                "last_error": r.last_error,
                                "held": r.held,
                            }
                            for r in self.store.recipients(m.id)
                        ],
                    }
                )
            return out
        if msg.action == "kick":
            count = self.store.kick(msg.ids, now)
            self._tick()
            return count
        if msg.action == "hold":
            return self.store.hold(msg.ids or ())
        if msg.action == "drop":
            busy = {r.id for job, _ in self.inflight.values() for r in job.recipients}
            ids = [i for i in (msg.ids or ()) if i not in busy]
            return self.store.drop(ids)
        raise ValueError(f"unknown queue action {msg.action!r}")
