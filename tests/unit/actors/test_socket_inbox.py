"""SocketInbox: a session actor's inbox that reads the session's socket, with real
socket pairs and real threads."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from mailactors.actors.connection import Envelope, SocketInbox
from mailactors.actors.messages import SocketData, SocketError, SocketTimeout


@pytest.fixture(params=["poll", "select"])
def inbox(request: pytest.FixtureRequest) -> Iterator[SocketInbox]:
    box = SocketInbox()
    if request.param == "select":
        box._poll = None  # the path taken where select.poll is missing (Windows)
    yield box
    box.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def get_in_thread(box: SocketInbox) -> tuple[threading.Thread, list[object]]:
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(box.get().message), daemon=True)
    thread.start()
    return thread, got


def test_messages_come_before_socket_data(
    inbox: SocketInbox, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    inbox.start_reading(server, idle_timeout=5)
    client.sendall(b"NOOP\r\n")
    inbox.put(Envelope("from another actor"))
    assert inbox.get().message == "from another actor"
    assert inbox.get().message == SocketData(b"NOOP\r\n")


def test_put_wakes_a_get_sleeping_in_poll(
    inbox: SocketInbox, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, _ = pair
    inbox.start_reading(server, idle_timeout=5)
    thread, got = get_in_thread(inbox)
    time.sleep(0.05)  # asleep in poll/select on the socket and the wake-up pair
    assert got == []
    inbox.put(Envelope("result"))
    thread.join(2)
    assert got == ["result"]


def test_no_read_until_the_last_chunk_is_consumed(
    inbox: SocketInbox, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    inbox.start_reading(server, idle_timeout=5)
    client.sendall(b"first")
    assert inbox.get().message == SocketData(b"first")
    client.sendall(b"second")
    # Not consumed yet (the session waits for a store): get() sleeps on its condition
    # and leaves the bytes in the socket; a put() wakes it.
    thread, got = get_in_thread(inbox)
    time.sleep(0.05)
    assert got == []
    inbox.put(Envelope("delivery result"))
    thread.join(2)
    assert got == ["delivery result"]
    inbox.consumed()
    assert inbox.get().message == SocketData(b"second")


def test_end_of_stream_and_then_only_messages(
    inbox: SocketInbox, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    inbox.start_reading(server, idle_timeout=5)
    client.shutdown(socket.SHUT_WR)
    assert inbox.get().message == SocketData(b"")
    inbox.consumed()
    # Reading stopped at the end: the next get() waits for messages only.
    thread, got = get_in_thread(inbox)
    time.sleep(0.05)
    assert got == []
    inbox.put(Envelope("stop"))
    thread.join(2)
    assert got == ["stop"]


def test_idle_timeout(inbox: SocketInbox, pair: tuple[socket.socket, socket.socket]) -> None:
    server, _ = pair
    inbox.start_reading(server, idle_timeout=0.1)
    started = time.monotonic()
    assert inbox.get().message == SocketTimeout()
    assert time.monotonic() - started >= 0.1


def test_connection_reset_is_a_socket_error(inbox: SocketInbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    try:
        inbox.start_reading(server, idle_timeout=5)
        # SO_LINGER 0: close sends a TCP RST, the server's read fails (ECONNRESET).
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        message = inbox.get().message
        assert isinstance(message, SocketError)
        # Reading stopped: only messages come now.
        inbox.put(Envelope("stop"))
        assert inbox.get().message == "stop"
    finally:
        server.close()


def test_stop_reading_before_the_socket_closes(
    inbox: SocketInbox, pair: tuple[socket.socket, socket.socket]
) -> None:
    server, client = pair
    inbox.start_reading(server, idle_timeout=5)
    client.sendall(b"a")
    assert inbox.get().message == SocketData(b"a")
    inbox.consumed()
    inbox.stop_reading()
    client.sendall(b"never read")
    inbox.put(Envelope("after"))
    assert inbox.get().message == "after"
    assert server.recv(100) == b"never read"
