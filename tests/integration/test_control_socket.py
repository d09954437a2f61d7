"""The control socket: the command line reaches a running server, and nobody else does."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from conftest import start_localserve  # type: ignore[import-not-found]

from mailactors.actors.control import SOCKET_NAME, TCP_INFO_NAME, use_unix_socket
from mailactors.net.control import ControlCommandFailed, ServerNotRunning, control_request


def _raw(data_dir: Path, payload: bytes) -> bytes:
    """Send raw bytes to the server's control endpoint and read the answer."""
    info = data_dir / TCP_INFO_NAME
    if info.exists():
        port = json.loads(info.read_text())["port"]
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(str(data_dir / SOCKET_NAME))
    with sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_status_over_unix_socket(tmp_path: Path) -> None:
    served = start_localserve(tmp_path)
    data_dir = served.config.static.data_dir
    try:
        assert use_unix_socket(data_dir)
        path = data_dir / SOCKET_NAME
        assert path.exists()
        assert (path.stat().st_mode & 0o777) == 0o600
        status = control_request(data_dir, "status")
        assert status["accounts"] == ["mailactors"]
        assert {entry["service"] for entry in status["listeners"]} >= {"smtp", "imap"}
        smtp = next(e for e in status["listeners"] if e["service"] == "smtp")
        assert smtp["port"] == served.port("smtp")
        with pytest.raises(ControlCommandFailed, match="unknown command 'nope'"):
            control_request(data_dir, "nope")
        assert b'"ok": false' in _raw(data_dir, b"this is not json\n")
        assert b"request too large" in _raw(data_dir, b"x" * (200 * 1024))
        # The server still answers after bad requests.
        assert control_request(data_dir, "status")["hostname"]
    finally:
        served.stop()
    assert not (data_dir / SOCKET_NAME).exists()
    with pytest.raises(ServerNotRunning):
        control_request(data_dir, "status")


def test_tcp_with_token_when_the_socket_path_is_too_long(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    served = start_localserve(deep)
    data_dir = served.config.static.data_dir
    try:
        assert not use_unix_socket(data_dir)
        info = data_dir / TCP_INFO_NAME
        assert (info.stat().st_mode & 0o777) == 0o600
        assert control_request(data_dir, "status")["accounts"] == ["mailactors"]
        forged = json.dumps({"token": "guess", "command": "status", "args": {}}).encode() + b"\n"
        answer = json.loads(_raw(data_dir, forged))
        assert answer == {"ok": False, "error": "wrong token"}
    finally:
        served.stop()
    assert not (data_dir / TCP_INFO_NAME).exists()


def test_stale_socket_file_from_a_killed_server(tmp_path: Path) -> None:
    served = start_localserve(tmp_path)
    data_dir = served.config.static.data_dir
    served.stop()
    # A server killed with SIGKILL leaves its socket file behind.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(data_dir / SOCKET_NAME))
    stale.close()
    with pytest.raises(ServerNotRunning):
        control_request(data_dir, "status")
    served = start_localserve(tmp_path)
    try:
        assert control_request(data_dir, "status")["accounts"] == ["mailactors"]
    finally:
        served.stop()
    assert os.listdir(data_dir).count(SOCKET_NAME) == 0
