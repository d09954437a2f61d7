"""One client connection: its socket, optional TLS, and the session actor's inbox.

A session actor's thread also reads its socket: the actor's inbox (SocketInbox)
returns the messages other actors sent first and, when none waits and the session
wants input, waits for the socket too and returns the bytes read as a SocketData
message. A client command thus costs one thread wake-up, not two (a reader thread
and then the actor), and a connection costs one thread. TLS runs on the same thread
through an ssl.SSLObject over memory BIOs, so STARTTLS switches the byte stream in
place. Flow control: the inbox reads the next chunk only once the session handled
the last one and asked for more (not while it waits for a store), so a client that
floods the server fills its own socket buffers, not our memory.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import socket
import ssl
import struct
import threading
import time
from typing import Any

from mailactors.actors.messages import SocketData, SocketError, SocketTimeout

# Bytes asked from the socket per read.
READ_CHUNK = 65536


def set_kernel_timeouts(sock: socket.socket, seconds: float) -> None:
    """Idle timeouts enforced by the kernel (SO_RCVTIMEO/SO_SNDTIMEO) on a blocking socket.

    A Python-level socket timeout costs a poll() before every recv and send; the
    kernel options cost nothing per call. A send that times out raises
    BlockingIOError (EAGAIN).
    """
    sock.settimeout(None)
    if os.name == "nt":
        value = struct.pack("<I", int(seconds * 1000))  # DWORD milliseconds
    else:
        whole = int(seconds)
        value = struct.pack("@ll", whole, int((seconds - whole) * 1_000_000))  # struct timeval
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)


class ConnectionLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds the connection id to every record, keeping the call's own fields."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


class TlsError(Exception):
    """The TLS handshake or a TLS record failed."""


class Envelope:
    """What pykka's actor loop takes from an inbox: a message and whom to answer."""

    __slots__ = ("message", "reply_to")

    def __init__(self, message: Any, reply_to: Any = None) -> None:
        self.message = message
        self.reply_to = reply_to


class SocketInbox:
    """A session actor's inbox that also reads the session's socket.

    Other threads put() messages (pykka's tell and ask). get() runs on the actor's
    own thread: it returns a waiting message first. Otherwise, while the session
    wants input, it sleeps in poll/select until a message arrives (a put() writes a
    byte to a socket pair, which works on every platform select() supports) or the
    socket has bytes, which it returns as SocketData (b"" at end of stream),
    SocketError, or SocketTimeout after the idle timeout. While the session does not
    want input (it has not handled the last chunk, or waits for a store), get()
    sleeps on a condition variable, which a put() wakes without a system call on the
    putting thread's side of the GIL.
    """

    _AWAKE, _IN_POLL, _ON_CONDITION = range(3)

    def __init__(self) -> None:
        self._messages: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._sleeping = self._AWAKE
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sock: socket.socket | None = None
        self._idle_timeout = 0.0
        self._unconsumed = False  # a SocketData the session has not asked past yet
        self._reading = False
        self._poll = select.poll() if hasattr(select, "poll") else None
        if self._poll is not None:
            self._poll.register(self._wake_r, select.POLLIN)
        self._polled_fd = -1  # the socket's descriptor while poll watches it

    # --- any thread ---------------------------------------------------------------

    def put(self, envelope: Any, block: bool = True, timeout: float | None = None) -> None:
        with self._lock:
            self._messages.append(envelope)
            sleeping = self._sleeping
            if sleeping == self._ON_CONDITION:
                self._cond.notify()
                return
            self._sleeping = self._AWAKE
        if sleeping == self._IN_POLL:
            with contextlib.suppress(OSError):  # full (already woken) or closed
                self._wake_w.send(b"\0")

    def empty(self) -> bool:
        return not self._messages

    def qsize(self) -> int:
        return len(self._messages)

    # --- the actor's thread ---------------------------------------------------------

    def start_reading(self, sock: socket.socket, idle_timeout: float) -> None:
        self._sock = sock
        self._idle_timeout = idle_timeout
        self._reading = True

    def stop_reading(self) -> None:
        """No more reads; called before the socket closes, so poll forgets it first."""
        self._reading = False
        if self._poll is not None and self._polled_fd >= 0:
            # By number: poll forgets it even if the socket was closed meanwhile.
            self._poll.unregister(self._polled_fd)
            self._polled_fd = -1
        self._sock = None

    def consumed(self) -> None:
        """The session handled the last SocketData and wants more input."""
        self._unconsumed = False

    def close(self) -> None:
        self.stop_reading()
        self._wake_r.close()
        self._wake_w.close()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        while True:
            read = self._reading and not self._unconsumed
            with self._lock:
                if self._messages:
                    return self._messages.popleft()
                if not read:
                    self._sleeping = self._ON_CONDITION
                    self._cond.wait()
                    self._sleeping = self._AWAKE
                    continue
                self._sleeping = self._IN_POLL
            ready = self._wait()
            with self._lock:
                self._sleeping = self._AWAKE
            if ready is None:
                return Envelope(self._timed_out())
            if ready:
                return Envelope(self._read())
            self._drain_wakeups()

    def _wait(self) -> bool | None:
        """Sleep until woken (False), the socket is readable (True) or the idle
        timeout passes (None)."""
        sock = self._sock
        assert sock is not None
        deadline = time.monotonic() + self._idle_timeout
        while True:
            wait = max(0.0, deadline - time.monotonic())
            if self._poll is not None:
                if self._polled_fd < 0:
                    self._polled_fd = sock.fileno()
                    self._poll.register(self._polled_fd, select.POLLIN)
                events = self._poll.poll(wait * 1000)
                fds = {fd for fd, _ in events}
                woken = self._wake_r.fileno() in fds
                readable = bool(fds - {self._wake_r.fileno()})
            else:
                ready, _, _ = select.select([self._wake_r, sock], [], [], wait)
                woken = self._wake_r in ready
                readable = sock in ready
            if woken:
                return False
            if readable:
                return True
            if time.monotonic() >= deadline:
                return None

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _timed_out(self) -> SocketTimeout:
        self._reading = False
        return SocketTimeout()

    def _read(self) -> SocketData | SocketError:
        assert self._sock is not None
        try:
            data = self._sock.recv(READ_CHUNK)
        except (TimeoutError, BlockingIOError):
            self._reading = False
            return SocketError("read timed out")
        except OSError as exc:
            self._reading = False
            return SocketError(str(exc))
        if not data:
            self._reading = False
        self._unconsumed = True
        return SocketData(data)


class Connection:
    """A socket owned by one session actor; only that actor's thread reads, sends and
    decrypts."""

    def __init__(
        self,
        sock: socket.socket,
        inbox: SocketInbox,
        log: logging.Logger,
        cid: str,
        idle_timeout: float,
    ) -> None:
        self.sock = sock
        self.inbox = inbox
        self.log = log
        self.cid = cid
        self.idle_timeout = idle_timeout
        self._closed = False
        self._tls: ssl.SSLObject | None = None
        self._tls_in: ssl.MemoryBIO | None = None
        self._tls_out: ssl.MemoryBIO | None = None
        self.tls_established = False

    # --- reading ------------------------------------------------------------------

    def start_reading(self) -> None:
        """Let the session's inbox read the socket from now on."""
        set_kernel_timeouts(self.sock, self.idle_timeout)
        self.inbox.start_reading(self.sock, self.idle_timeout)

    def want_more(self) -> None:
        """Let the inbox read the next chunk (once the last SocketData is handled)."""
        self.inbox.consumed()

    # --- TLS ----------------------------------------------------------------------

    def start_tls(self, context: ssl.SSLContext) -> None:
        """Switch to TLS as server; the handshake proceeds as bytes arrive."""
        self._tls_in = ssl.MemoryBIO()
        self._tls_out = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._tls_in, self._tls_out, server_side=True)

    @property
    def tls_active(self) -> bool:
        return self._tls is not None

    def tls_description(self) -> str | None:
        """E.g. "TLS1.3 TLS_AES_128_GCM_SHA256", for Received headers and logs."""
        if self._tls is None or not self.tls_established:
            return None
        version = (self._tls.version() or "TLS").replace("v", "")
        cipher = self._tls.cipher()
        return f"{version} {cipher[0]}" if cipher else version

    def receive(self, data: bytes) -> tuple[bytes, bool, bool]:
        """Turn socket bytes into plaintext.

        Returns (plaintext, eof, handshake_just_completed). Raises TlsError.
        """
        if self._tls is None:
            return data, not data, False
        assert self._tls_in is not None
        if data:
            self._tls_in.write(data)
        else:
            self._tls_in.write_eof()
        completed = False
        if not self.tls_established:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush_tls()
                return b"", not data, False
            except (ssl.SSLError, OSError) as exc:
                self._flush_tls_quietly()
                raise TlsError(str(exc)) from exc
            self.tls_established = True
            completed = True
            self._flush_tls()
        chunks: list[bytes] = []
        eof = not data
        while True:
            try:
                chunk = self._tls.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                eof = True
                break
            except (ssl.SSLError, OSError) as exc:
                raise TlsError(str(exc)) from exc
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
        self._flush_tls()
        return b"".join(chunks), eof, completed

    def _flush_tls(self) -> None:
        assert self._tls_out is not None
        pending = self._tls_out.read()
        if pending:
            self._sendall(pending)

    def _flush_tls_quietly(self) -> None:
        with contextlib.suppress(OSError):
            self._flush_tls()

    # --- writing ------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if not data or self._closed:
            return
        if self._tls is not None:
            self._tls.write(data)
            self._flush_tls()
        else:
            self._sendall(data)

    def _sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    # --- closing ------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.inbox.stop_reading()
        if self._tls is not None and self.tls_established:
            # RFC 8446 6.1: close_notify before closing the write side; best effort.
            try:
                self._tls.unwrap()
            except (ssl.SSLError, OSError):
                pass
            self._flush_tls_quietly()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already disconnected by the peer
        self.sock.close()
