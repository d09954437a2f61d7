"""The command line's side of the control socket (see actors/control.py)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from mailactors.protocol.control import (
    MAX_RESPONSE_SIZE,
    ControlProtocolError,
    ControlRequest,
    decode_response,
    encode_request,
)

SOCKET_NAME = "control.sock"
TCP_INFO_NAME = "control.json"


class ServerNotRunning(Exception):
    """No server answers on the data directory's control socket."""


class ControlCommandFailed(Exception):
    """The server refused or failed the command; the message says why."""


def _connect(data_dir: Path, timeout: float) -> tuple[socket.socket, str]:
    info_path = data_dir / TCP_INFO_NAME
    sock_path = data_dir / SOCKET_NAME
    try:
        if info_path.exists():
            info = json.loads(info_path.read_text())
            sock = socket.create_connection(("127.0.0.1", int(info["port"])), timeout=timeout)
            return sock, str(info["token"])
        if hasattr(socket, "AF_UNIX") and os.name != "nt" and sock_path.exists():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(str(sock_path))
            except OSError:
                sock.close()
                raise
            return sock, ""
    except (OSError, ValueError, KeyError) as exc:
        raise ServerNotRunning(
            f"no server is running on {data_dir} (control socket: {exc})"
        ) from None
    raise ServerNotRunning(f"no server is running on {data_dir} (no control socket)")


def control_request(
    data_dir: Path, command: str, args: dict[str, Any] | None = None, *, timeout: float = 120.0
) -> Any:
    """Send one command to the server running on `data_dir`; return its result."""
    sock, token = _connect(data_dir, timeout)
    with sock:
        sock.sendall(encode_request(ControlRequest(command, args or {}, token)))
        buf = bytearray()
        while b"\n" not in buf:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
            if len(buf) > MAX_RESPONSE_SIZE:
                raise ControlProtocolError("answer too large")
    if not buf:
        raise ControlCommandFailed("the server closed the control connection without answering")
    ok, value = decode_response(bytes(buf.split(b"\n", 1)[0]))
    if not ok:
        raise ControlCommandFailed(str(value))
    return value
