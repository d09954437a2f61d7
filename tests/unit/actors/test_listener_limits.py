"""ListenerActor refuses a client address that already holds too many sessions."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pykka

from mailactors.actors.listener import ListenerActor
from mailactors.actors.messages import SessionEnded
from mailactors.actors.services import Services
from mailactors.actors.supervisor import bind_socket
from mailactors.actors.tell import tell_urn
from mailactors.conf import load_config
from mailactors.conf.localserve import localserve_config_texts

log = logging.getLogger("mailactors.tests")


class GreetingSession(pykka.ThreadingActor):
    """A stand-in session: greets, and ends when told (tells its listener, as real ones do)."""

    def __init__(self, sock: socket.socket, listener_urn: str) -> None:
        super().__init__()
        self.sock = sock
        self.listener_urn = listener_urn

    def on_start(self) -> None:
        self.sock.sendall(b"hello\r\n")

    def on_stop(self) -> None:
        self.sock.close()
        tell_urn(self.listener_urn, SessionEnded(self.actor_urn), log)


def services(tmp_path: Path) -> Services:
    for name, text in localserve_config_texts(ip="127.0.0.1").items():
        (tmp_path / name).write_text(text)
    from datetime import UTC, datetime

    from mailactors.conf.tlscert import self_signed_certificate

    cert, key = self_signed_certificate(hostnames=["localhost"], ips=["127.0.0.1"], now=datetime.now(UTC))
    (tmp_path / "localserve-cert.pem").write_bytes(cert)
    (tmp_path / "localserve-key.pem").write_bytes(key)
    config = load_config(tmp_path / "mailactors.conf")
    limiter: Any = None
    return Services(config, {}, limiter, {}, tmp_path / "tmp", tmp_path / "accounts", log)


def test_too_many_sessions_from_one_address_are_refused(tmp_path: Path) -> None:
    sessions: list[pykka.ActorRef[Any]] = []

    def start(sock: socket.socket, ip: str, cid: str, svc: Services, urn: str) -> pykka.ActorRef[Any]:
        ref = GreetingSession.start(sock, urn)
        sessions.append(ref)
        return ref

    listener = ListenerActor.start(
        "test", bind_socket("127.0.0.1", 0), start, services(tmp_path), log,
        refusal=b"421 too many\r\n", max_per_ip=2,
    )
    clients: list[socket.socket] = []
    try:
        port = listener.proxy().sock.get().getsockname()[1]
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            clients.append(c)
            assert c.recv(100) == b"hello\r\n"
        third = socket.create_connection(("127.0.0.1", port), timeout=5)
        clients.append(third)
        assert third.recv(100) == b"421 too many\r\n"
        assert third.recv(100) == b""  # closed
        # When a session ends, the address may connect again.
        sessions[0].stop(block=True, timeout=5)
        listener.proxy().name.get()  # let the listener handle SessionEnded
        again = socket.create_connection(("127.0.0.1", port), timeout=5)
        clients.append(again)
        assert again.recv(100) == b"hello\r\n"
    finally:
        for c in clients:
            c.close()
        listener.stop(block=True, timeout=10)
        for ref in sessions:
            ref.stop(block=True, timeout=5)
