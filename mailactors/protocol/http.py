"""HTTP/1.1 server side of one connection: h11 plus our limits (sans-IO).

Theory of operation: the session feeds socket plaintext to `receive_data` and
calls `next_event` until it returns NEED_DATA. h11 parses the messages (RFC 9112);
this class collects a request's body up to the limit `body_limit(method, path)`
allows, and hands back one `HttpRequest` per complete request, or an
`HttpFailure` (400, 413, 431) after which the session sends `failure_response`
and closes. `send_response` turns an `HttpResponse` into bytes (HEAD responses
carry the headers of the GET response and no body, RFC 9110 9.3.2); afterwards
`start_next_request` says whether the next request may follow on this connection.
Bytes that the protocol itself wants sent (an interim 100 Continue) collect in
`data_to_send()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from enum import Enum
from urllib.parse import unquote, urlsplit

import h11

__all__ = [
    "CONNECTION_CLOSED",
    "MAX_BODY_SIZE",
    "MAX_HEADER_SIZE",
    "MAX_REPORT_BODY_SIZE",
    "NEED_DATA",
    "HttpFailure",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "default_body_limit",
]

# RFC 9112 2.3 and RFC 9110 5.4 leave the size of the header section to the server;
# ours: request line and fields together at most 64 KiB (431 beyond).
MAX_HEADER_SIZE = 64 * 1024
# RFC 9110 15.5.14 (413 Content Too Large): our limit for form posts.
MAX_BODY_SIZE = 1024 * 1024
# TLS reports POSTed to /tlsrpt (RFC 8460 5.4) may be larger; the report parser
# bounds what it decompresses.
MAX_REPORT_BODY_SIZE = 10 * 1024 * 1024
TLSRPT_PATH = "/tlsrpt"

_REASONS = {
    200: "OK",
    204: "No Content",
    303: "See Other",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    421: "Misdirected Request",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class _Marker(Enum):
    NEED_DATA = "need data"
    CONNECTION_CLOSED = "connection closed"


NEED_DATA = _Marker.NEED_DATA
CONNECTION_CLOSED = _Marker.CONNECTION_CLOSED


def default_body_limit(method: str, path: str) -> int:
    """The body size a request may carry: 10 MiB for POST /tlsrpt, else 1 MiB."""
    if method == "POST" and path == TLSRPT_PATH:
        return MAX_REPORT_BODY_SIZE
    return MAX_BODY_SIZE


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A complete request. Header names are lower case; `path` is percent-decoded."""

    method: str
    target: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header field, or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def host(self) -> str:
        """The Host field without port, lower case ("" when absent)."""
        host = (self.header("host") or "").strip().lower()
        if host.startswith("["):
            return host.partition("]")[0] + "]"
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class HttpFailure:
    """The client broke the protocol or a limit; answer `status` and close."""

    status: int
    reason: str


Event = HttpRequest | HttpFailure | _Marker


def _split_target(target: str) -> tuple[str, str] | None:
    """(decoded path, query) of an origin-form or absolute-form target (RFC 9112 3.2)."""
    if target.startswith("/"):
        raw_path, _, query = target.partition("?")
    elif target.lower().startswith(("http://", "https://")):
        parts = urlsplit(target)
        raw_path, query = parts.path or "/", parts.query
    else:
        return None
    return unquote(raw_path, errors="strict"), query


class HttpServer:
    """One connection's HTTP/1.1 server state (RFC 9112), over h11."""

    def __init__(self, body_limit: Callable[[str, str], int] = default_body_limit) -> None:
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_SIZE)
        self._body_limit = body_limit
        self._request: h11.Request | None = None
        self._path = ""
        self._query = ""
        self._limit = 0
        self._body = bytearray()
        self._outgoing = bytearray()
        self._failed = False
        self._head = False

    def receive_data(self, data: bytes) -> None:
        """Feed received bytes; b"" means the peer closed its side."""
        self._h11.receive_data(data)

    def data_to_send(self) -> bytes:
        out = bytes(self._outgoing)
        self._outgoing.clear()
        return out

    def next_event(self) -> Event:
        """The next complete request, a failure, NEED_DATA or CONNECTION_CLOSED."""
        if self._failed:
            return CONNECTION_CLOSED
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint or 400
                # The peer's bytes are not echoed back.
                return self._fail(
                    status, "header section too large" if status == 431 else "malformed request"
                )
            if event is h11.NEED_DATA:
                return NEED_DATA
            if event is h11.PAUSED:
                return NEED_DATA
            if isinstance(event, h11.ConnectionClosed):
                return CONNECTION_CLOSED
            if isinstance(event, h11.Request):
                failure = self._start_request(event)
                if failure is not None:
                    return failure
            elif isinstance(event, h11.Data):
                if len(self._body) + len(event.data) > self._limit:
                    return self._fail(413, "request body too large")
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                request = self._finish_request()
                if request is not None:
                    return request

    def _start_request(self, event: h11.Request) -> HttpFailure | None:
        method = event.method.decode("ascii", "replace")
        target = event.target.decode("ascii", "replace")
        try:
            split = _split_target(target)
        except UnicodeDecodeError:
            split = None
        if split is None:
            return self._fail(400, "bad request target")
        self._path, self._query = split
        self._request = event
        self._body.clear()
        self._head = method == "HEAD"
        self._limit = self._body_limit(method, self._path)
        length = _content_length(event)
        if length is not None and length > self._limit:
            return self._fail(413, "request body too large")
        # RFC 9110 10.1.1: a client that sent Expect: 100-continue waits for it.
        if self._h11.they_are_waiting_for_100_continue:
            self._outgoing += self._h11.send(
                h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
            )
        return None

    def _finish_request(self) -> HttpRequest | None:
        event = self._request
        if event is None:
            return None
        headers = tuple(
            (name.decode("ascii", "replace").lower(), value.decode("latin-1"))
            for name, value in event.headers
        )
        return HttpRequest(
            method=event.method.decode("ascii", "replace"),
            target=event.target.decode("ascii", "replace"),
            path=self._path,
            query=self._query,
            headers=headers,
            body=bytes(self._body),
        )

    def _fail(self, status: int, reason: str) -> HttpFailure:
        self._failed = True
        return HttpFailure(status, reason)

    def send_response(self, response: HttpResponse, now: datetime) -> bytes:
        """The response's bytes; with `Connection: close` when the connection must end."""
        headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
        # RFC 9110 6.6.1: an origin server with a clock MUST send Date.
        headers.append(("Date", format_datetime(now, usegmt=True)))
        headers.append(("Content-Length", str(len(response.body))))
        if self._failed:
            headers.append(("Connection", "close"))
        try:
            out = self._h11.send(
                h11.Response(
                    status_code=response.status,
                    headers=headers,
                    reason=reason_phrase(response.status).encode("ascii"),
                )
            )
            if response.body and not self._head:
                out += self._h11.send(h11.Data(data=response.body))
            out += self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            # After a broken request h11 may refuse to answer; write the reply ourselves.
            self._failed = True
            return _raw_response(response, headers, self._head)
        self._request = None
        return out

    def failure_response(self, failure: HttpFailure, now: datetime) -> bytes:
        """A plain-text answer to a failure; the connection must close after it."""
        body = f"{failure.status} {reason_phrase(failure.status)}: {failure.reason}\n".encode()
        return self.send_response(
            HttpResponse(failure.status, (("Content-Type", "text/plain; charset=utf-8"),), body),
            now,
        )

    def start_next_request(self) -> bool:
        """After a response: whether the next request may follow (and get ready for it)."""
        if self._failed:
            return False
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
            return True
        return self._h11.our_state is h11.IDLE

    @property
    def idle(self) -> bool:
        """No request has started since the last response (for a clean shutdown)."""
        return (
            self._request is None
            and self._h11.their_state is h11.IDLE
            and not self._h11.trailing_data[0]
        )


def _content_length(event: h11.Request) -> int | None:
    for name, value in event.headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _raw_response(response: HttpResponse, headers: list[tuple[str, str]], head: bool) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {reason_phrase(response.status)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if not any(k.lower() == "connection" for k, _ in headers):
        lines.append("Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head_bytes if head else head_bytes + response.body
