"""One client connection: a reader thread, optional TLS, and sending.

The reader thread only moves socket bytes into SocketData messages for its session
actor. TLS runs on the actor's thread through an ssl.SSLObject over memory BIOs, so
one SSL object is never used from two threads, and STARTTLS switches the byte stream
in place. Flow control: the reader may hand over a few chunks ahead of the actor
(credit); the actor returns credit only when it wants more input (not while it waits
for a store), so a client that floods the server fills its own socket buffers, not
our memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import struct
import threading
from typing import Any

import pykka

from mailactors.actors.messages import SocketData, SocketError, SocketTimeout

# Bytes asked from the socket per read.
READ_CHUNK = 65536
# Chunks the reader may hand over before the session consumed them; bounds the memory
# a flooding client can make us hold to this many READ_CHUNKs.
MAX_UNCONSUMED_CHUNKS = 4


def set_kernel_timeouts(sock: socket.socket, seconds: float) -> None:
    """Idle timeouts enforced by the kernel (SO_RCVTIMEO/SO_SNDTIMEO) on a blocking socket.

    A Python-level socket timeout costs a poll() before every recv and send; the
    kernel options cost nothing per call. A recv that times out raises
    BlockingIOError (EAGAIN); a send that times out fails the same way.
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


class Connection:
    """A socket owned by one session actor; only that actor sends and decrypts."""

    def __init__(
        self,
        sock: socket.socket,
        session: pykka.ActorRef[Any],
        log: logging.Logger,
        cid: str,
        idle_timeout: float,
    ) -> None:
        self.sock = sock
        self.session = session
        self.log = log
        self.cid = cid
        self.idle_timeout = idle_timeout
        self._credit = threading.Condition()
        self._unconsumed = 0
        self._reader_waiting = False
        self._closed = threading.Event()
        self._reader: threading.Thread | None = None
        self._tls: ssl.SSLObject | None = None
        self._tls_in: ssl.MemoryBIO | None = None
        self._tls_out: ssl.MemoryBIO | None = None
        self.tls_established = False

    # --- reading ------------------------------------------------------------------

    def start_reader(self) -> None:
        set_kernel_timeouts(self.sock, self.idle_timeout)
        self._reader = threading.Thread(
            target=self._read_loop, name=f"reader-{self.cid}", daemon=True
        )
        self._reader.start()

    def _read_loop(self) -> None:
        while not self._closed.is_set():
            with self._credit:
                while self._unconsumed >= MAX_UNCONSUMED_CHUNKS and not self._closed.is_set():
                    self._reader_waiting = True
                    self._credit.wait()
                self._reader_waiting = False
                if self._closed.is_set():
                    return
                self._unconsumed += 1
            try:
                data = self.sock.recv(READ_CHUNK)
            except (TimeoutError, BlockingIOError):
                self._tell(SocketTimeout())
                return
            except OSError as exc:
                if not self._closed.is_set():
                    self._tell(SocketError(str(exc)))
                return
            if not self._tell(SocketData(data)) or not data:
                return

    def _tell(self, message: Any) -> bool:
        try:
            self.session.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def want_more(self) -> None:
        """Give the reader credit for one more chunk (once per SocketData handled).

        The reader keeps reading while it has credit, so the common case needs no
        wake-up of the reader thread at all.
        """
        with self._credit:
            self._unconsumed -= 1
            if self._reader_waiting:
                self._credit.notify()

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
        if not data or self._closed.is_set():
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
        if self._closed.is_set():
            return
        self._closed.set()
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
        with self._credit:
            self._credit.notify()  # wake the reader so it sees the close
