"""Supervisor: starts the actor tree in order, restarts what dies, stops it in order.

Start order: auth limiter, one StoreActor per account, then the listeners (so no
connection is accepted before its stores run). Each start is confirmed with a Ping
ask, because a failing on_start does not reach on_failure. A timer tells the
supervisor CheckChildren every second; a dead limiter or store is restarted with
exponential backoff and the listeners get the new wiring. Stop order: listeners
(sockets closed, sessions told 421/BYE), then limiter, then stores (checkpoint and
close).
"""

from __future__ import annotations

import logging
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import pykka

from mailactors import metrics
from mailactors.actors.control import CommandError, ControlServer, Handler
from mailactors.actors.dbactor import DatabaseActor
from mailactors.actors.delivery import Deliverer
from mailactors.actors.dkimsign import DkimSigner
from mailactors.actors.imap.session import ImapListenerSettings, ImapSessionActor
from mailactors.actors.inbound import InboundChecker
from mailactors.actors.limiter import AuthLimiterActor
from mailactors.actors.listener import ListenerActor, SessionFactory, StopSessions
from mailactors.actors.messages import CheckChildren, Ping, QueueControl
from mailactors.actors.notify import DsnNotifier
from mailactors.actors.queue import QueueActor
from mailactors.actors.reportdbs import ActorPolicyCache, AddTlsResults
from mailactors.actors.reporter import ReporterActor, SendReports
from mailactors.actors.services import Services, UpdateServices
from mailactors.actors.session import SmtpListenerSettings, SmtpSessionActor
from mailactors.actors.store import StoreActor
from mailactors.actors.tls import server_tls_context
from mailactors.actors.web import HttpListenerSettings, http_factory, serves_admin
from mailactors.conf import Config
from mailactors.net.resolver import DnsResolver
from mailactors.net.tlstrust import load_trust
from mailactors.storage.dmarcdb import EvaluationStore, ReceivedReportStore
from mailactors.storage.mtastsdb import PolicyCache
from mailactors.storage.tlsrptdb import ReceivedTlsReportStore, ResultEntry, ResultStore

# The report databases in the data directory, each with one DatabaseActor writing it.
REPORT_DATABASES: dict[str, tuple[str, Callable[[Path, logging.Logger], Any]]] = {
    "dmarceval": ("dmarceval.db", EvaluationStore),
    "dmarcrpt": ("dmarcrpt.db", ReceivedReportStore),
    "tlsrpt": ("tlsrpt.db", ReceivedTlsReportStore),
    "tlsrptresult": ("tlsrptresult.db", ResultStore),
    "mtasts": ("mtasts.db", PolicyCache),
}

START_TIMEOUT = 30.0
SMTP_PORT = 25
# Answers kept by the server's resolver (by their TTL, on the server's clock).
DNS_CACHE_SIZE = 10000
# `sendreports` looks up and queues every due report before answering.
REPORT_TIMEOUT = 600.0
STOP_TIMEOUT = 30.0
CHECK_INTERVAL = 1.0
RESTART_BACKOFF_MIN = 0.5
RESTART_BACKOFF_MAX = 30.0
# An actor that stayed up this long gets its backoff reset.
RESTART_BACKOFF_RESET = 60.0

SMTP_KINDS = ("smtp", "submission", "submissions")
# What a client refused for too many connections reads (plaintext listeners only).
SMTP_REFUSAL = b"421 4.7.0 too many connections from your address, try again later\r\n"
IMAP_REFUSAL = b"* BYE [UNAVAILABLE] too many connections from your address\r\n"
IMAP_KINDS = ("imap", "imaps")


@dataclass(frozen=True, slots=True)
class BoundService:
    """Where a service ended up listening (ports may be 0 in tests)."""

    listener: str
    service: str
    ip: str
    port: int


@dataclass(slots=True)
class Child:
    name: str
    start: Callable[[], pykka.ActorRef[Any]]
    ref: pykka.ActorRef[Any] | None = None
    started_at: float = 0.0
    backoff: float = RESTART_BACKOFF_MIN
    restart_at: float = 0.0


@dataclass(frozen=True, slots=True)
class StartTree:
    """Asked once after start: bind, start everything; answers the bound services."""


@dataclass(frozen=True, slots=True)
class GetStore:
    """Asked for the current StoreActor ref of an account (in-process only)."""

    account: str


@dataclass(frozen=True, slots=True)
class GetChild:
    """Asked for the current ref of a long-lived actor ("queue", "reporter", "db:...")."""

    name: str


@dataclass(frozen=True, slots=True)
class StopTree:
    """Asked to stop everything in order; answers when done."""


@dataclass
class _State:
    children: dict[str, Child] = field(default_factory=dict)
    listeners: list[pykka.ActorRef[Any]] = field(default_factory=list)


def _record_tls(ref: pykka.ActorRef[Any], entries: Sequence[ResultEntry]) -> None:
    """Hand a delivery attempt's TLS results to tlsrptresult.db's actor, and count them."""
    for entry in entries:
        result = entry.result
        if result.successful:
            metrics.tls_result("success", result.successful)
        for detail in result.failure_details:
            metrics.tls_result(str(detail.result_type), detail.failed_session_count)
    ref.tell(AddTlsResults(tuple(entries)))


def bind_socket(ip: str, port: int) -> socket.socket:
    """A listening TCP socket; SO_REUSEADDR on POSIX only (on Windows it allows stealing)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if hasattr(socket, "SO_REUSEADDR") and socket.SO_REUSEADDR and not _windows():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((ip, port))
        sock.listen(256)
    except OSError:
        sock.close()
        raise
    return sock


def _windows() -> bool:
    import os

    return os.name == "nt"


class Supervisor(pykka.ThreadingActor):
    def __init__(
        self,
        config: Config,
        log: logging.Logger,
        clock: Callable[[], float] = time.time,
        delivery_port: int = SMTP_PORT,
    ) -> None:
        super().__init__()
        self.config = config
        self.log = log
        self.clock = clock  # for the queue's and the reporter's schedules (tests inject one)
        # The port of other servers' SMTP (RFC 5321 4.5.4.2); tests run them elsewhere.
        self.delivery_port = delivery_port
        self.state = _State()
        self.services: Services | None = None
        self.bound: list[BoundService] = []
        self._timer_stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._stopping = False
        self.control: ControlServer | None = None
        self.unstarted: list[tuple[str, socket.socket, SessionFactory, bytes]] = []
        self.inbound: InboundChecker | None = None

    # --- starting -------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, StartTree):
            return self._start_tree()
        if isinstance(message, StopTree):
            self._stop_tree()
            return True
        if isinstance(message, CheckChildren):
            self._check_children()
            return None
        if isinstance(message, GetStore):
            child = self.state.children.get(f"store:{message.account}")
            return None if child is None else child.ref
        if isinstance(message, GetChild):
            child = self.state.children.get(message.name)
            return None if child is None else child.ref
        if isinstance(message, Ping):
            return True
        raise TypeError(f"Supervisor: unexpected message {type(message).__name__}")

    def _start_child(self, child: Child) -> None:
        ref = child.start()
        try:
            ref.ask(Ping(), timeout=START_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout):
            ref.stop(block=False)
            raise RuntimeError(f"{child.name} failed to start") from None
        child.ref = ref
        child.started_at = time.monotonic()

    def _start_tree(self) -> list[BoundService]:
        static = self.config.static
        data_dir = static.data_dir
        spool_dir = data_dir / "tmp"
        accounts_dir = data_dir / "accounts"
        spool_dir.mkdir(parents=True, exist_ok=True)
        accounts_dir.mkdir(parents=True, exist_ok=True)
        store_log = logging.getLogger("mailactors.store")

        limiter = Child("limiter", lambda: AuthLimiterActor.start())
        self.state.children["limiter"] = limiter
        self._start_child(limiter)
        for name in self.config.domains.accounts:
            directory = accounts_dir / name

            def start_store(name: str = name, directory: Any = directory) -> pykka.ActorRef[Any]:
                return StoreActor.start(name, directory, store_log)

            child = Child(f"store:{name}", start_store)
            self.state.children[child.name] = child
            self._start_child(child)

        db_log = logging.getLogger("mailactors.reportdb")
        for key, (filename, store_class) in REPORT_DATABASES.items():

            def start_db(
                key: str = key, path: Path = data_dir / filename, cls: Any = store_class
            ) -> pykka.ActorRef[Any]:
                return DatabaseActor.start(key, lambda: cls(path, db_log), db_log)

            child = Child(f"db:{key}", start_db)
            self.state.children[child.name] = child
            self._start_child(child)

        tls_contexts: dict[str, ssl.SSLContext] = {}
        for name, kc in static.tls_key_certs.items():
            tls_contexts[name] = server_tls_context(kc.cert_file, kc.key_file)
        # localserve runs on laptops that may be offline: short DNS waits there.
        timeout, lifetime = (2.0, 4.0) if static.localserve else (5.0, 10.0)
        resolver = DnsResolver(
            static.dns.nameservers or None,
            timeout=timeout,
            lifetime=lifetime,
            cache_size=DNS_CACHE_SIZE,
            clock=self.clock,
        )
        self.inbound = InboundChecker(
            resolver, static.hostname, logging.getLogger("mailactors.inbound")
        )
        self.services = Services(
            config=self.config,
            stores=self._store_refs(),
            limiter=self._ref("limiter"),
            tls_contexts=tls_contexts,
            spool_dir=spool_dir,
            accounts_dir=accounts_dir,
            log=self.log,
            dkim=DkimSigner(self.config.domains),
            inbound=self.inbound,
            databases=self._database_refs(),
        )
        self._start_listeners()  # binds every socket; the actors start below
        self._start_queue_and_reporter(resolver)
        self._launch_listeners()
        self.control = ControlServer(data_dir, self._control_handlers(), self.log)
        self.control.start()
        self._timer = threading.Thread(target=self._tick, name="supervisor-timer", daemon=True)
        self._timer.start()
        return list(self.bound)

    def _control_handlers(self) -> dict[str, Handler]:
        """Commands of the control socket; they run on its threads and only ask actors."""
        bound = list(self.bound)

        def status(args: Any) -> dict[str, Any]:
            return {
                "hostname": self.config.static.hostname,
                "accounts": sorted(self.config.domains.accounts),
                "listeners": [
                    {"listener": b.listener, "service": b.service, "ip": b.ip, "port": b.port}
                    for b in bound
                ],
            }

        def child(name: str) -> pykka.ActorRef[Any]:
            ref = self.state.children[name].ref
            if ref is None:
                raise CommandError(f"the {name} is restarting, try again")
            return ref

        def queue(action: str) -> Handler:
            def handle(args: Any) -> Any:
                ids = args.get("ids")
                if ids is not None and not (
                    isinstance(ids, list) and all(isinstance(i, int) for i in ids)
                ):
                    raise CommandError("ids must be a list of numbers")
                return child("queue").ask(
                    QueueControl(action, tuple(ids) if ids is not None else None),
                    timeout=STOP_TIMEOUT,
                )

            return handle

        def sendreports(kind: str) -> Handler:
            def handle(args: Any) -> Any:
                return child("reporter").ask(SendReports(kind), timeout=REPORT_TIMEOUT)

            return handle

        return {
            "status": status,
            "queue.list": queue("list"),
            "queue.kick": queue("kick"),
            "queue.hold": queue("hold"),
            "queue.drop": queue("drop"),
            "dmarc.sendreports": sendreports("dmarc"),
            "tlsrpt.sendreports": sendreports("tls"),
        }

    def _database_refs(self) -> dict[str, pykka.ActorRef[Any]]:
        out = {}
        for name, child in self.state.children.items():
            if name.startswith("db:") and child.ref is not None:
                out[name.removeprefix("db:")] = child.ref
        return out

    def _store_refs(self) -> dict[str, pykka.ActorRef[Any]]:
        out = {}
        for name, child in self.state.children.items():
            if name.startswith("store:") and child.ref is not None:
                out[name.removeprefix("store:")] = child.ref
        return out

    def _ref(self, name: str) -> pykka.ActorRef[Any]:
        ref = self.state.children[name].ref
        assert ref is not None
        return ref

    def _start_listeners(self) -> None:
        assert self.services is not None
        session_log = logging.getLogger("mailactors.smtpserver")
        imap_log = logging.getLogger("mailactors.imapserver")
        http_log = logging.getLogger("mailactors.httpserver")
        # Signs admin session cookies and CSRF tokens; new at every start.
        web_key = secrets.token_bytes(32)
        for lname, listener in self.config.static.listeners.items():
            hostname = listener.hostname or self.config.static.hostname
            for kind in SMTP_KINDS:
                service = getattr(listener, kind)
                if service is None:
                    continue
                settings = SmtpListenerSettings(
                    kind=kind,
                    hostname=hostname,
                    tls=listener.tls,
                    max_message_size=service.max_message_size,
                    max_recipients=service.max_recipients,
                )
                refusal = b"" if kind == "submissions" else SMTP_REFUSAL
                for ip in listener.ips:
                    self._start_listener(
                        lname, kind, ip, service.port, _smtp_factory(settings, session_log), refusal
                    )
            for kind in IMAP_KINDS:
                imap_service = getattr(listener, kind)
                if imap_service is None:
                    continue
                if kind == "imaps" and listener.tls is None:
                    self.log.error("imaps needs tls on the listener", extra={"listener": lname})
                    continue
                imap_factory = _imap_factory(
                    ImapListenerSettings(kind=kind, hostname=hostname, tls=listener.tls),
                    imap_log,
                )
                refusal = b"" if kind == "imaps" else IMAP_REFUSAL
                for ip in listener.ips:
                    self._start_listener(lname, kind, ip, imap_service.port, imap_factory, refusal)
            for kind in ("http", "https"):
                http_service = getattr(listener, kind)
                if http_service is None:
                    continue
                if kind == "https" and listener.tls is None:
                    self.log.error("https needs tls on the listener", extra={"listener": lname})
                    continue
                assert self.inbound is not None
                web_factory = http_factory(
                    HttpListenerSettings(
                        kind=kind,
                        tls=listener.tls,
                        key=web_key,
                        admin=serves_admin(listener.ips),
                    ),
                    http_log,
                    self.inbound.resolver,
                )
                for ip in listener.ips:
                    self._start_listener(lname, kind, ip, http_service.port, web_factory, b"")

    def _start_listener(
        self, lname: str, kind: str, ip: str, port: int, factory: SessionFactory, refusal: bytes
    ) -> None:
        """Bind (ip, port) and record the address; _launch_listeners starts its actor."""
        sock = bind_socket(ip, port)
        bound_port = sock.getsockname()[1]
        self.unstarted.append((f"{lname}/{kind}/{ip}", sock, factory, refusal))
        self.bound.append(BoundService(lname, kind, ip, bound_port))

    def _launch_listeners(self) -> None:
        """Start a ListenerActor for each bound socket and confirm it runs."""
        assert self.services is not None
        pending, self.unstarted = self.unstarted, []
        for i, (name, sock, factory, refusal) in enumerate(pending):
            try:
                ref = ListenerActor.start(
                    name,
                    sock,
                    factory,
                    self.services,
                    logging.getLogger("mailactors.listener"),
                    refusal=refusal,
                )
            except BaseException:
                for _, other, _, _ in pending[i:]:
                    other.close()
                raise
            ref.ask(Ping(), timeout=START_TIMEOUT)
            self.state.listeners.append(ref)

    def _local_smtp_target(self) -> tuple[str, int] | None:
        """localserve (without deliver_to_mx) delivers outgoing mail to its own SMTP listener."""
        static = self.config.static
        if not static.localserve or static.deliver_to_mx:
            return None
        for b in self.bound:
            if b.service == "smtp":
                ip = "127.0.0.1" if b.ip in ("0.0.0.0", "::") else b.ip
                return ip, b.port
        return None

    def _start_queue_and_reporter(self, resolver: DnsResolver) -> None:
        assert self.services is not None
        static = self.config.static
        databases = self.services.databases
        deliverer = Deliverer(
            hostname=static.hostname,
            resolver=resolver,
            trust=load_trust(static.tls_ca_certs),
            policies=ActorPolicyCache(databases["mtasts"]),
            record_tls=lambda entries: _record_tls(databases["tlsrptresult"], entries),
            our_domains=lambda domain: domain.lower() in self.config.domains.domains,
            log=logging.getLogger("mailactors.delivery"),
            local_target=self._local_smtp_target(),
            smtp_port=self.delivery_port,
            clock=self.clock,
        )
        queue_log = logging.getLogger("mailactors.queue")
        notifier = DsnNotifier(self.config)

        def start_queue() -> pykka.ActorRef[Any]:
            assert self.services is not None
            return QueueActor.start(
                static.data_dir / "queue",
                self.services,
                deliverer.deliver,
                notifier,
                queue_log,
                clock=self.clock,
            )

        child = Child("queue", start_queue)
        self.state.children["queue"] = child
        self._start_child(child)
        self.services = replace(self.services, queue=child.ref)
        signer = self.services.dkim
        assert signer is not None

        def start_reporter() -> pykka.ActorRef[Any]:
            assert self.services is not None
            return ReporterActor.start(
                self.config,
                self.services,
                resolver,
                signer,
                logging.getLogger("mailactors.reporter"),
                clock=self.clock,
            )

        child = Child("reporter", start_reporter)
        self.state.children["reporter"] = child
        self._start_child(child)

    # --- supervision ----------------------------------------------------------------

    def _tick(self) -> None:
        while not self._timer_stop.wait(CHECK_INTERVAL):
            try:
                self.actor_ref.tell(CheckChildren())
            except pykka.ActorDeadError:
                return

    def _check_children(self) -> None:
        if self._stopping or self.services is None:
            return
        now = time.monotonic()
        changed = False
        for child in self.state.children.values():
            if child.ref is not None and child.ref.is_alive():
                if now - child.started_at > RESTART_BACKOFF_RESET:
                    child.backoff = RESTART_BACKOFF_MIN
                continue
            if child.ref is not None:
                self.log.error(
                    "actor died, restarting", extra={"actor": child.name, "in": child.backoff}
                )
                child.ref = None
                child.restart_at = now + child.backoff
                child.backoff = min(child.backoff * 2, RESTART_BACKOFF_MAX)
                continue
            if now < child.restart_at:
                continue
            try:
                self._start_child(child)
                changed = True
                self.log.info("actor restarted", extra={"actor": child.name})
            except Exception as exc:
                self.log.error("restart failed", extra={"actor": child.name, "err": str(exc)})
                child.restart_at = now + child.backoff
                child.backoff = min(child.backoff * 2, RESTART_BACKOFF_MAX)
        if changed:
            self.services = replace(
                self.services,
                stores=self._store_refs(),
                limiter=self._ref("limiter"),
                databases=self._database_refs(),
                queue=self.state.children["queue"].ref,
            )
            others = [self.state.children[n].ref for n in ("queue", "reporter")]
            for ref in [*self.state.listeners, *(r for r in others if r is not None)]:
                ref.tell(UpdateServices(self.services))

    # --- stopping -------------------------------------------------------------------

    def _stop_tree(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        for _, sock, _, _ in self.unstarted:
            sock.close()
        self.unstarted.clear()
        self._timer_stop.set()
        if self.control is not None:
            self.control.stop()
        for ref in self.state.listeners:
            try:
                ref.ask(StopSessions(timeout=STOP_TIMEOUT), timeout=STOP_TIMEOUT + 5)
                ref.stop(block=True, timeout=STOP_TIMEOUT)
            except (pykka.ActorDeadError, pykka.Timeout):
                self.log.error("listener did not stop cleanly")
        self.state.listeners.clear()
        if self.inbound is not None:
            self.inbound.stop()
        # Stores last: they checkpoint and close their databases in on_stop.
        order = ["reporter", "queue", "limiter"] + [
            n for n in self.state.children if n.startswith(("store:", "db:"))
        ]
        for name in order:
            child = self.state.children.get(name)
            if child is None or child.ref is None:
                continue
            try:
                child.ref.stop(block=True, timeout=STOP_TIMEOUT)
            except pykka.Timeout:
                self.log.error("actor did not stop in time", extra={"actor": name})
            child.ref = None
        if self._timer is not None:
            self._timer.join(timeout=2 * CHECK_INTERVAL)

    def on_stop(self) -> None:
        self._stop_tree()

    def on_failure(self, *args: Any) -> None:
        self.log.error("supervisor failed; stopping the tree")
        self._stop_tree()


def _smtp_factory(settings: SmtpListenerSettings, log: logging.Logger) -> SessionFactory:
    def start(
        sock: socket.socket, peer_ip: str, cid: str, services: Services, listener_urn: str
    ) -> pykka.ActorRef[Any]:
        return SmtpSessionActor.start(sock, peer_ip, cid, settings, services, listener_urn, log)

    return start


def _imap_factory(settings: ImapListenerSettings, log: logging.Logger) -> SessionFactory:
    def start(
        sock: socket.socket, peer_ip: str, cid: str, services: Services, listener_urn: str
    ) -> pykka.ActorRef[Any]:
        return ImapSessionActor.start(sock, peer_ip, cid, settings, services, listener_urn, log)

    return start


class RunningServer:
    """A started actor tree: the bound addresses and an ordered stop."""

    def __init__(self, supervisor: pykka.ActorRef[Any], bound: list[BoundService]) -> None:
        self.supervisor = supervisor
        self.bound = bound

    def port(self, service: str, listener: str | None = None) -> int:
        for b in self.bound:
            if b.service == service and (listener is None or b.listener == listener):
                return b.port
        raise KeyError(service)

    def actor(self, name: str) -> pykka.ActorRef[Any]:
        """A long-lived actor of the tree: "queue", "reporter", "limiter", "db:<name>"."""
        ref = cast(
            pykka.ActorRef[Any] | None, self.supervisor.ask(GetChild(name), timeout=STOP_TIMEOUT)
        )
        if ref is None:
            raise LookupError(f"no running actor {name!r}")
        return ref

    def store(self, account: str) -> pykka.ActorRef[Any]:
        """The StoreActor of an account (for setup work such as setting a password)."""
        ref = cast(
            pykka.ActorRef[Any] | None, self.supervisor.ask(GetStore(account), timeout=STOP_TIMEOUT)
        )
        if ref is None:
            raise LookupError(f"no running store for account {account!r} (restarting?)")
        return ref

    def stop(self) -> None:
        if self.supervisor.is_alive():
            self.supervisor.ask(StopTree(), timeout=STOP_TIMEOUT * 4)
            self.supervisor.stop(block=True, timeout=STOP_TIMEOUT)


def start_server(
    config: Config,
    log: logging.Logger | None = None,
    *,
    clock: Callable[[], float] = time.time,
    delivery_port: int = SMTP_PORT,
) -> RunningServer:
    """Start the whole actor tree in this process; raise if any part fails to start.

    `clock` drives the queue's and the reporter's schedules; `delivery_port` is where
    other servers' SMTP is reached (25; tests use their own ports).
    """
    log = log or logging.getLogger("mailactors.supervisor")
    ref = Supervisor.start(config, log, clock, delivery_port)
    try:
        bound = cast(list[BoundService], ref.ask(StartTree(), timeout=START_TIMEOUT * 4))
    except BaseException:
        try:
            ref.ask(StopTree(), timeout=STOP_TIMEOUT * 4)
        finally:
            ref.stop(block=True, timeout=STOP_TIMEOUT)
        raise
    return RunningServer(ref, bound)
