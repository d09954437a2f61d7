"""ListenerActor: owns one bound listening socket and starts a session per connection.

An accept thread blocks in accept() and tells the actor about each new connection.
The socket is never dup'ed (Windows cannot dup a listening socket). Stopping a
listener closes its socket first, then tells every session to say goodbye and waits
for them.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from mailactors.actors.messages import Ping, SessionEnded, Shutdown
from mailactors.actors.services import Services, UpdateServices

# Accepting stops when this many sessions of one listener are open.
MAX_SESSIONS_PER_LISTENER = 4096
# Concurrent sessions one client address may hold on one listener.
MAX_SESSIONS_PER_IP = 100
# How often the accept thread looks whether it should stop.
ACCEPT_POLL_INTERVAL = 0.25

# Connection ids: unique within the process, short in logs.
_cid_counter = itertools.count(1)
_cid_prefix = f"{os.getpid() % 4096:x}{int(time.time()) % 65536:x}"


def new_cid() -> str:
    return f"{_cid_prefix}{next(_cid_counter):x}"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A new connection from the accept thread (in-process only: holds a socket)."""

    sock: socket.socket
    peer_ip: str


SessionFactory = Callable[[socket.socket, str, str, Services, str], pykka.ActorRef[Any]]


@dataclass(frozen=True, slots=True)
class StopSessions:
    """Close the socket, then tell every session to end; answered when all ended."""

    timeout: float


class ListenerActor(pykka.ThreadingActor):
    def __init__(
        self,
        name: str,
        sock: socket.socket,
        start_session: SessionFactory,
        services: Services,
        log: logging.Logger,
        *,
        refusal: bytes = b"",
        max_per_ip: int = MAX_SESSIONS_PER_IP,
    ) -> None:
        super().__init__()
        self.name = name
        self.refusal = refusal  # sent to a refused client: "421 ..." / "* BYE ..."
        self.max_per_ip = max_per_ip
        self.session_ips: dict[str, str] = {}  # session urn -> client address
        self.per_ip: dict[str, int] = {}
        self.sock = sock
        self.start_session = start_session
        self.services = services
        self.log = log
        self.sessions: dict[str, pykka.ActorRef[Any]] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self) -> None:
        self.sock.settimeout(ACCEPT_POLL_INTERVAL)
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"accept-{self.name}", daemon=True
        )
        self._thread.start()
        addr = self.sock.getsockname()
        self.log.info("listening", extra={"listener": self.name, "addr": f"{addr[0]}:{addr[1]}"})

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stopping.is_set():
                    self.log.error("accept failed", extra={"listener": self.name, "err": str(exc)})
                    time.sleep(ACCEPT_POLL_INTERVAL)
                    continue
                return
            conn.settimeout(None)
            # Replies are small and answer what the client waits for: no Nagle delay.
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.actor_ref.tell(Accepted(conn, addr[0]))
            except pykka.ActorDeadError:
                conn.close()
                return

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Accepted):
            ip = message.peer_ip
            if self._stopping.is_set() or len(self.sessions) >= MAX_SESSIONS_PER_LISTENER:
                self.log.info("connection refused: too many sessions", extra={"listener": self.name})
                self._refuse(message.sock)
                return None
            if self.per_ip.get(ip, 0) >= self.max_per_ip:
                self.log.info(
                    "connection refused: too many from this address",
                    extra={"listener": self.name, "remote": ip},
                )
                self._refuse(message.sock)
                return None
            cid = new_cid()
            try:
                ref = self.start_session(
                    message.sock, message.peer_ip, cid, self.services, self.actor_urn
                )
            except Exception:
                self.log.exception("starting session failed", extra={"cid": cid})
                message.sock.close()
                return None
            self.sessions[ref.actor_urn] = ref
            self.session_ips[ref.actor_urn] = ip
            self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
            return None
        if isinstance(message, SessionEnded):
            self.sessions.pop(message.urn, None)
            ended_ip = self.session_ips.pop(message.urn, None)
            if ended_ip is not None:
                left = self.per_ip.get(ended_ip, 1) - 1
                if left > 0:
                    self.per_ip[ended_ip] = left
                else:
                    self.per_ip.pop(ended_ip, None)
            return None
        if isinstance(message, UpdateServices):
            self.services = message.services
            # Sessions hold refs to stores too: a restarted store must reach them.
            for ref in list(self.sessions.values()):
                try:
                    ref.tell(message)
                except pykka.ActorDeadError:
                    continue
            return None
        if isinstance(message, StopSessions):
            self._close_socket()
            return self._stop_sessions(message.timeout)
        if isinstance(message, Ping):
            return True
        raise TypeError(f"ListenerActor: unexpected message {type(message).__name__}")

    def _refuse(self, sock: socket.socket) -> None:
        """Say why (best effort, never blocking the listener long), then close."""
        if self.refusal:
            try:
                sock.settimeout(1.0)
                sock.sendall(self.refusal)
            except OSError as exc:
                self.log.debug("sending refusal failed", extra={"err": str(exc)})
        sock.close()

    def _close_socket(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * ACCEPT_POLL_INTERVAL)
        self.sock.close()

    def _stop_sessions(self, timeout: float) -> int:
        sessions = list(self.sessions.values())
        for ref in sessions:
            try:
                ref.tell(Shutdown("server stopping"))
            except pykka.ActorDeadError:
                continue
        deadline = time.monotonic() + timeout
        for ref in sessions:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                ref.stop(block=True, timeout=remaining)
            except pykka.Timeout:
                self.log.error("session did not stop in time")
        self.sessions.clear()
        return len(sessions)

    def on_stop(self) -> None:
        if not self._stopping.is_set():
            self._close_socket()
            self._stop_sessions(5.0)
