"""The control socket: how the command line asks a running server to change its data.

Each StoreActor stays the only writer of its database, so commands such as
`queue kick` or `dmarc sendreports` are requests to the running server. The
server listens on `<data>/control.sock` (a Unix socket, mode 0600) or, on
Windows and when that path is too long for a Unix socket, on a loopback TCP port
written with a random token into `<data>/control.json` (mode 0600). One thread
accepts; each connection gets a thread that reads one request line, calls the
command's handler (which asks actors, with timeouts) and writes the answer.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mailactors.protocol.control import (
    MAX_REQUEST_SIZE,
    ControlProtocolError,
    decode_request,
    encode_response,
)
from mailactors.storage.files import remove_file, write_file_atomic

SOCKET_NAME = "control.sock"
TCP_INFO_NAME = "control.json"
# sockaddr_un.sun_path is 108 bytes on Linux, 104 on the BSDs and macOS.
MAX_UNIX_PATH = 100
# A client must send its request within this time.
REQUEST_TIMEOUT = 10.0

Handler = Callable[[Mapping[str, Any]], Any]


class CommandError(Exception):
    """A command failed in a way the user should read (bad argument, nothing to do)."""


def use_unix_socket(data_dir: Path) -> bool:
    return (
        hasattr(socket, "AF_UNIX")
        and os.name != "nt"
        and len(os.fsencode(data_dir / SOCKET_NAME)) <= MAX_UNIX_PATH
    )


class ControlServer:
    """Serves control requests with `handlers` (command name -> function of args)."""

    def __init__(
        self, data_dir: Path, handlers: Mapping[str, Handler], log: logging.Logger
    ) -> None:
        self.data_dir = data_dir
        self.handlers = dict(handlers)
        self.log = log
        self.token = ""
        self._sock: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._published: Path | None = None

    def start(self) -> None:
        if use_unix_socket(self.data_dir):
            path = self.data_dir / SOCKET_NAME
            if path.exists() or path.is_symlink():
                path.unlink()  # left behind by a server that was killed
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_umask = os.umask(0o077)
            try:
                sock.bind(str(path))
            finally:
                os.umask(old_umask)
            os.chmod(path, 0o600)
            self._published = path
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            self.token = secrets.token_urlsafe(32)
            info = {"port": sock.getsockname()[1], "token": self.token}
            self._published = self.data_dir / TCP_INFO_NAME
            write_file_atomic(self._published, json.dumps(info).encode(), mode=0o600)
        sock.listen(16)
        self._sock = sock
        self._accepting = threading.Thread(target=self._accept, name="control-accept", daemon=True)
        self._accepting.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            # shutdown wakes the accepting thread on Linux; close alone may not.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=30)
        if self._published is not None:
            try:
                remove_file(self._published)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.log.error("removing control endpoint failed", extra={"err": str(exc)})

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            worker = threading.Thread(target=self._serve, args=(conn,), name="control", daemon=True)
            with self._lock:
                self._workers.add(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(REQUEST_TIMEOUT)
                try:
                    line = _read_line(conn)
                except ControlProtocolError as exc:
                    conn.sendall(encode_response(False, exc))
                    _drain(conn)
                    return
                conn.settimeout(None)
                conn.sendall(self._answer(line))
        except OSError as exc:
            self.log.info("control connection failed", extra={"err": str(exc)})
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _answer(self, line: bytes) -> bytes:
        try:
            request = decode_request(line)
        except ControlProtocolError as exc:
            return encode_response(False, exc)
        if self.token and not hmac.compare_digest(request.token, self.token):
            return encode_response(False, "wrong token")
        handler = self.handlers.get(request.command)
        if handler is None:
            return encode_response(False, f"unknown command {request.command!r}")
        self.log.info("control command", extra={"command": request.command})
        try:
            return encode_response(True, handler(request.args))
        except CommandError as exc:
            return encode_response(False, exc)
        except Exception as exc:
            self.log.exception("control command failed", extra={"command": request.command})
            return encode_response(False, f"internal error: {exc}")


def _read_line(conn: socket.socket) -> bytes:
    buf = bytearray()
    while b"\n" not in buf:
        if len(buf) > MAX_REQUEST_SIZE:
            raise ControlProtocolError("request too large")
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    return bytes(buf.split(b"\n", 1)[0])


def _drain(conn: socket.socket) -> None:
    """Read what the client still sends (bounded), so closing does not reset the answer."""
    conn.shutdown(socket.SHUT_WR)
    received = 0
    while received < 16 * MAX_REQUEST_SIZE:
        chunk = conn.recv(65536)
        if not chunk:
            return
        received += len(chunk)
