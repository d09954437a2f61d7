"""Property tests: the SMTP server state machine survives any input with bounded memory."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailactors.protocol.sasl.scram import derive_credentials
from mailactors.protocol.smtp.server import (
    MAX_AUTH_LINE,
    NEED_DATA,
    PAUSED,
    AuthCredentialsNeeded,
    ConnectionClosed,
    MailFrom,
    MessageEnd,
    Quit,
    RcptTo,
    Reply,
    ServerSettings,
    SmtpServer,
    StartTls,
)

CREDS = derive_credentials("pw", b"salt", 4096)
MX = ServerSettings("mx.example", False, False, True, 2000, max_line=512)
SUBMISSION = ServerSettings("sub.example", True, True, False, 2000)
PREFIXES = [
    b"",
    b"EHLO c\r\n",
    b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n",
    b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 100\r\n",
    b"EHLO c\r\nAUTH SCRAM-SHA-256\r\n",
    b"EHLO c\r\nAUTH PLAIN\r\n",
]


def drain(server: SmtpServer, step: int) -> bool:
    """Answer every decision until NEED_DATA; False once the session ended."""
    while True:
        event = server.next_event()
        if event is NEED_DATA:
            return True
        assert event is not PAUSED, "every decision was answered, nothing may stay paused"
        if isinstance(event, MailFrom | RcptTo):
            if step % 3 == 0:
                server.respond(Reply(550, "5.7.1", "refused"))
            else:
                server.respond()
        elif isinstance(event, MessageEnd):
            server.respond(Reply(250, "2.0.0", "queued"))
        elif isinstance(event, AuthCredentialsNeeded):
            server.auth_credentials(CREDS if step % 2 else None)
        elif isinstance(event, StartTls):
            server.tls_started()
        elif isinstance(event, Quit | ConnectionClosed):
            return False


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.sampled_from(PREFIXES),
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    submission=st.booleans(),
)
def test_any_bytes_in_any_chunking(
    prefix: bytes, data: bytes, cuts: list[int], submission: bool
) -> None:
    server = SmtpServer(SUBMISSION if submission else MX)
    server.greeting()
    alive = True
    for step, piece in enumerate(chunked(prefix + data, cuts)):
        server.receive_data(piece)
        alive = drain(server, step)
        # Memory stays bounded: at most one unfinished command or SASL line is held.
        assert server.buffered_bytes <= MAX_AUTH_LINE
        server.data_to_send()
        if not alive:
            break
    if alive:
        server.receive_data(b"")
        assert not drain(server, 0)


@settings(max_examples=100, deadline=None)
@given(
    prefix=st.sampled_from(PREFIXES),
    pattern=st.binary(min_size=1, max_size=50),
    cut=st.integers(1, 5000),
)
def test_endless_line_memory_bounded(prefix: bytes, pattern: bytes, cut: int) -> None:
    server = SmtpServer(SUBMISSION)
    server.greeting()
    # 40 kB without a CRLF: an endless command, SASL or message line.
    junk = prefix + (pattern.replace(b"\r", b"") * (40_000 // len(pattern) + 1))[:40_000]
    for i in range(0, len(junk), cut):
        server.receive_data(junk[i : i + cut])
        if not drain(server, 1):
            break
        assert server.buffered_bytes <= MAX_AUTH_LINE


SAFE_VERBS = ["EHLO", "HELO", "MAIL", "RCPT", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "FOO"]
# Commands that change the input mode (DATA/BDAT/AUTH/STARTTLS/QUIT) are left out so that
# every line is a command that gets exactly one reply.
MODE_VERBS = {"DATA", "BDAT", "AUTH", "STARTTLS", "QUIT"}
ARG_WORDS = st.sampled_from(
    [
        "c.example",
        "FROM:<a@b.example>",
        "FROM:<>",
        "TO:<c@d.example>",
        "TO:<Postmaster>",
        "SIZE=10",
        "SIZE=99999",
        "BODY=8BITMIME",
        "SMTPUTF8",
        "FROM:<bad",
        'TO:<"q"@x.example>',
        "X=Y",
    ]
)
ARG_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30)


@st.composite
def command_line(draw: st.DrawFn) -> bytes:
    verb = draw(st.sampled_from(SAFE_VERBS) | st.from_regex(r"\A[A-Za-z]{1,8}\Z"))
    if verb.upper() in MODE_VERBS:
        verb = "NOOP"
    words = draw(st.lists(ARG_WORDS | ARG_TEXT, max_size=3))
    return " ".join([verb, *words]).encode("utf-8")[:400] + b"\r\n"


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(command_line(), min_size=1, max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=10),
)
def test_every_pipelined_command_gets_one_reply(lines: list[bytes], cuts: list[int]) -> None:
    server = SmtpServer(
        ServerSettings("mx.example", False, False, False, 2000, max_errors=10**6, max_line=512)
    )
    server.greeting()
    out = b""
    for step, piece in enumerate(chunked(b"".join(lines), cuts)):
        server.receive_data(piece)
        assert drain(server, step)
        out += server.data_to_send()
    final_lines = [line for line in out.split(b"\r\n") if re.match(rb"\A[2-5]\d\d ", line)]
    assert len(final_lines) == len(lines) + 1  # + the greeting
    assert out.endswith(b"\r\n")
