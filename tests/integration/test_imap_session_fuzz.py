"""Hypothesis: the IMAP session answers any bytes with well-formed responses, never crashes.

Random bytes go to a real session (logged in, INBOX selected) over a socket. Every
line that comes back must be an untagged ("* "), continuation ("+ ") or tagged
response, never a BYE [SERVERBUG]; input without a literal marker must be answered;
and the server must still serve a fresh session afterwards.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

from conftest import start_localserve  # type: ignore[import-not-found]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_LINE = re.compile(rb"(\* |\+ |[!#$&',\-./0-9:;<=>?@A-Z\[\]^_`a-z|}~]+ (OK|NO|BAD)\b)")

FRAGMENTS = [
    b"a1 ", b"UID ", b"FETCH ", b"STORE ", b"SEARCH ", b"SELECT ", b"APPEND INBOX ",
    b"1:* ", b"(FLAGS) ", b"BODY[1.2.HEADER.FIELDS (To)]<0.10> ", b"+FLAGS (\\Seen) ",
    b"(CHANGEDSINCE 1 VANISHED) ", b"MODSEQ 1 ", b"OR SEEN NOT DELETED ", b"\"quoted\\\" ",
    b"$ ", b"*", b"(", b")", b" ", b"\r\n", b"\n", b"\x00", b"\xff", b"IDLE\r\n", b"DONE\r\n",
    b"EXPUNGE", b"COPY 1 Trash", b"MOVE 1:2 Archive", b"LIST \"\" *", b"STATUS INBOX (MESSAGES)",
]


def _session_input() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        st.lists(st.sampled_from(FRAGMENTS), max_size=12).map(b"".join),
    )


class Lines:
    """Lines from a socket, with timeouts that do not break later reads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def read(self, first_timeout: float) -> list[bytes]:
        """Lines until the server is quiet for 50 ms (waiting `first_timeout` for the first)."""
        lines: list[bytes] = []
        timeout = first_timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                lines.append(line + b"\n")
                timeout = 0.05
            self.sock.settimeout(timeout)
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, OSError):
                return lines
            if not data:
                return lines
            self.buf += data


def test_session_answers_any_bytes(tmp_path: Path) -> None:
    served = start_localserve(tmp_path / "fuzz")
    port = served.port("imap")
    try:
        # A message to work on.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            r = Lines(s)
            r.read(5)
            msg = b"Subject: x\r\n\r\nbody\r\n"
            s.sendall(b"a LOGIN u p\r\nb APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
            assert any(b"b OK" in line for line in r.read(5) + r.read(1))

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(_session_input())
        def check(data: bytes) -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                r = Lines(s)
                s.sendall(b"p1 LOGIN mailactors x\r\np2 SELECT INBOX\r\n")
                setup = r.read(5)
                while not any(line.startswith(b"p2 ") for line in setup):
                    more = r.read(5)
                    assert more, setup
                    setup += more
                assert setup[0].startswith(b"* OK") and setup[-1].startswith(b"p2 OK"), setup
                s.sendall(data + b"\r\n")
                lines = r.read(2.0 if b"{" not in data else 0.2)
                for line in lines:
                    assert b"SERVERBUG" not in line, (data, line)
                for line in lines:
                    if line.startswith((b"* ", b"+ ")) or _LINE.match(line):
                        continue
                    # Literal data inside a FETCH response: only after a "{n}" line.
                    assert any(re.search(rb"\{\d+\}\r\n$", x) for x in lines), (data, line)
                if b"{" not in data:
                    assert lines, data

        check()
        # The server still serves a new session normally.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            r = Lines(s)
            s.sendall(b"a LOGIN mailactors x\r\nb NOOP\r\n")
            got = r.read(5)
            got += r.read(1)
            assert any(line.startswith(b"b OK") for line in got), got
    finally:
        served.stop()
