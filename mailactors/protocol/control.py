"""The control socket's wire format: one JSON object per line, each way.

A request is `{"token": str, "command": str, "args": {...}}`; the answer is
`{"ok": true, "result": ...}` or `{"ok": false, "error": str}`. The token proves
the client could read the 0600 token file of the data directory (the TCP
fallback used on Windows and for over-long Unix socket paths); over a Unix
socket the file mode of the socket itself guards access and the token is "".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# A request is a command name and a few arguments; anything larger is an error.
MAX_REQUEST_SIZE = 64 * 1024
# Answers may list a whole queue.
MAX_RESPONSE_SIZE = 256 * 1024 * 1024


class ControlProtocolError(Exception):
    """A malformed request or answer."""


@dataclass(frozen=True, slots=True)
class ControlRequest:
    command: str
    args: dict[str, Any]
    token: str = ""


def encode_request(request: ControlRequest) -> bytes:
    text = json.dumps({"token": request.token, "command": request.command, "args": request.args})
    return text.encode() + b"\n"


def decode_request(line: bytes) -> ControlRequest:
    if len(line) > MAX_REQUEST_SIZE:
        raise ControlProtocolError("request too large")
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlProtocolError(f"request is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ControlProtocolError("request must be a JSON object")
    command, args, token = value.get("command"), value.get("args", {}), value.get("token", "")
    if not isinstance(command, str) or not command:
        raise ControlProtocolError("request needs a command")
    if not isinstance(args, dict) or not isinstance(token, str):
        raise ControlProtocolError("args must be an object and token a string")
    return ControlRequest(command=command, args=args, token=token)


def encode_response(ok: bool, value: Any) -> bytes:
    body = {"ok": True, "result": value} if ok else {"ok": False, "error": str(value)}
    return json.dumps(body, default=str).encode() + b"\n"


def decode_response(line: bytes) -> tuple[bool, Any]:
    """(True, result) or (False, error message)."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlProtocolError(f"answer is not JSON: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("ok"), bool):
        raise ControlProtocolError("malformed answer")
    if value["ok"]:
        return True, value.get("result")
    return False, str(value.get("error", "unknown error"))
