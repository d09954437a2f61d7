"""HttpSessionActor: one HTTP or HTTPS connection, glue between a Connection and WebApp.

Theory of operation: as for SMTP, the inbox hands the actor SocketData; TLS (https:
implicit TLS on the listener's certificate) is undone by the Connection; the
plaintext goes to the sans-IO HttpServer, and each complete request is answered
by WebApp on this actor's thread, in order (keep-alive, no pipelining overlap).
The app reaches the rest of the server through ActorWebBackend: asks with a
timeout to the auth limiter, the queue and the "tlsrpt" DatabaseActor.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pykka

from mailactors.actors.connection import TlsError
from mailactors.actors.inbound import AddTlsReport
from mailactors.actors.listener import SessionFactory
from mailactors.actors.messages import (
    AuthAllowed,
    AuthFailed,
    AuthSucceeded,
    QueueControl,
    Shutdown,
    SocketData,
    SocketError,
    SocketTimeout,
)
from mailactors.actors.services import Services, UpdateServices
from mailactors.actors.sessionbase import ASK_TIMEOUT, ConnectionSession
from mailactors.protocol import http
from mailactors.protocol.dns import Resolver
from mailactors.protocol.tlsrpt import Report
from mailactors.web.app import RequestContext, WebApp
from mailactors.web.backend import BackendUnavailable

__all__ = [
    "HTTP_IDLE_TIMEOUT",
    "HTTP_REQUEST_TIMEOUT",
    "ActorWebBackend",
    "HttpListenerSettings",
    "HttpSessionActor",
    "http_factory",
    "serves_admin",
]

# A client that sends nothing for this long is disconnected (no RFC number;
# RFC 9112 9.8 lets a server close idle connections at any time).
HTTP_IDLE_TIMEOUT = 60.0
# A request must arrive whole within this time from its first byte, so a client
# trickling bytes cannot hold a session for ever (answered 408, RFC 9110 15.5.9).
HTTP_REQUEST_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class HttpListenerSettings:
    """What an HTTP listener serves.

    `key` signs the admin session cookies and CSRF tokens: random, made once at
    server start and shared (read-only) by every HTTP listener of the server.
    """

    kind: str  # "http" or "https"
    tls: str | None  # name of the TLS key/cert; https needs it
    key: bytes
    admin: bool = True  # serve the admin pages (see serves_admin)


def serves_admin(ips: Sequence[str]) -> bool:
    """The admin pages are served on listeners bound to loopback addresses only.

    Public HTTPS listeners (MTA-STS policies, TLS report POSTs) show no login page
    to the internet; reach the admin pages through an SSH tunnel.
    """
    try:
        return bool(ips) and all(ipaddress.ip_address(ip).is_loopback for ip in ips)
    except ValueError:
        return False


class ActorWebBackend:
    """WebBackend over the actor tree: every ask has a timeout."""

    def __init__(self, services: Services, resolver: Resolver) -> None:
        self.services = services
        self._resolver = resolver

    @property
    def resolver(self) -> Resolver:
        return self._resolver

    def auth_allowed(self, ip: str) -> bool:
        try:
            return bool(self.services.limiter.ask(AuthAllowed(ip), timeout=ASK_TIMEOUT))
        except (pykka.ActorDeadError, pykka.Timeout):
            return True  # the limiter restarts; do not lock the admin out meanwhile

    def auth_result(self, ip: str, success: bool) -> None:
        try:
            self.services.limiter.tell(AuthSucceeded(ip) if success else AuthFailed(ip))
        except pykka.ActorDeadError:
            return

    def queue_control(self, action: str, ids: tuple[int, ...] | None) -> Any:
        queue = self.services.queue
        if queue is None:
            raise BackendUnavailable("no queue")
        try:
            return queue.ask(QueueControl(action, ids), timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            raise BackendUnavailable("queue") from exc

    def store_tls_report(self, report: Report, from_addr: str, received_at: datetime) -> int | None:
        db = self.services.databases.get("tlsrpt")
        if db is None:
            raise BackendUnavailable("no tlsrpt database")
        write = AddTlsReport(report, from_addr, int(received_at.timestamp()), via="https")
        try:
            result = db.ask(write, timeout=ASK_TIMEOUT)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            raise BackendUnavailable("tlsrpt database") from exc
        return None if result is None else int(cast(int, result))


class HttpSessionActor(ConnectionSession):
    """One HTTP(S) connection: admin pages, MTA-STS policies, TLS report POSTs."""

    def __init__(
        self,
        sock: socket.socket,
        peer_ip: str,
        cid: str,
        settings: HttpListenerSettings,
        services: Services,
        listener_urn: str,
        log: logging.Logger,
        resolver: Resolver,
    ) -> None:
        super().__init__(sock, peer_ip, cid, services, listener_urn, log)
        self.settings = settings
        self.resolver = resolver
        self.http = http.HttpServer()
        self.app = self._make_app()
        self.request_started: float | None = None  # monotonic time of a request's first byte

    def _make_app(self) -> WebApp:
        backend = ActorWebBackend(self.services, self.resolver)
        return WebApp(
            self.services.config,
            backend,
            self.settings.key,
            self.log.logger,
            admin=self.settings.admin,
        )

    # --- lifecycle ------------------------------------------------------------------

    def on_start(self) -> None:
        s = self.settings
        tls_ctx = self.services.tls_contexts.get(s.tls) if s.tls else None
        if s.kind == "https" and tls_ctx is None:
            raise RuntimeError("https listener without a TLS certificate")
        conn = self._open_connection(
            s.kind, HTTP_IDLE_TIMEOUT, tls_ctx if s.kind == "https" else None
        )
        conn.start_reading()

    def on_stop(self) -> None:
        self._end_connection()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        goodbye = http.HttpServer().failure_response(
            http.HttpFailure(500, "internal server error"), datetime.now(UTC)
        )
        self._crashed(
            goodbye if self.http.idle else b"", (exception_type, exception_value, traceback)
        )
        self.on_stop()

    # --- inbox ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        if self.closing:
            return None
        if isinstance(message, SocketData):
            self._on_socket_data(message.data)
        elif isinstance(message, SocketTimeout):
            self.log.debug("idle timeout")
            self._close()
        elif isinstance(message, SocketError):
            self.log.info("connection error", extra={"err": message.error})
            self._close()
        elif isinstance(message, Shutdown):
            # Between requests the connection can simply end (RFC 9112 9.6).
            self._close()
        elif isinstance(message, UpdateServices):
            self.services = message.services
            self.app = self._make_app()
        else:
            raise TypeError(f"HttpSessionActor: unexpected message {type(message).__name__}")
        return None

    def _on_socket_data(self, data: bytes) -> None:
        assert self.conn is not None
        received = self._receive(data)
        if received is None:
            return
        plain, eof, _ = received
        if plain:
            if self.request_started is None:
                self.request_started = time.monotonic()
            elif time.monotonic() - self.request_started > HTTP_REQUEST_TIMEOUT:
                self.log.info("request too slow")
                failure = http.HttpFailure(408, "request took too long")
                self._send(self.http.failure_response(failure, datetime.now(UTC)))
                self._close()
                return
            self.http.receive_data(plain)
        if eof:
            self.http.receive_data(b"")
        self._pump()
        if self.http.idle:
            self.request_started = None
        if not eof and not self.closing:
            self.conn.want_more()

    def _pump(self) -> None:
        """Answer every complete request received so far."""
        while not self.closing:
            event = self.http.next_event()
            if event is http.NEED_DATA:
                self._send(self.http.data_to_send())
                return
            if event is http.CONNECTION_CLOSED:
                self._close()
                return
            if isinstance(event, http.HttpFailure):
                self.log.info("bad request", extra={"status": event.status, "err": event.reason})
                self._send(self.http.failure_response(event, datetime.now(UTC)))
                self._close()
                return
            assert isinstance(event, http.HttpRequest)
            now = datetime.now(UTC)
            ctx = RequestContext(self.peer_ip, self.settings.kind == "https", now)
            response = self.app.handle(event, ctx)
            self.log.debug(
                "http request",
                extra={"method": event.method, "path": event.path, "status": response.status},
            )
            self._send(self.http.send_response(response, now))
            if not self.http.start_next_request():
                self._close()
                return

    def _send(self, data: bytes) -> None:
        if not data or self.conn is None:
            return
        try:
            self.conn.send(data)
        except (OSError, TlsError) as exc:
            self.log.info("write error", extra={"err": str(exc)})
            self._close()


def http_factory(
    settings: HttpListenerSettings, log: logging.Logger, resolver: Resolver
) -> SessionFactory:
    """Start an HttpSessionActor per accepted connection (for ListenerActor)."""

    def start(
        sock: socket.socket, peer_ip: str, cid: str, services: Services, listener_urn: str
    ) -> pykka.ActorRef[Any]:
        return HttpSessionActor.start(
            sock, peer_ip, cid, settings, services, listener_urn, log, resolver
        )

    return start
