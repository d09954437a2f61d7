"""Transcript tests of the SMTP server state machine: bytes in, events and bytes out."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest

from mailactors.protocol.sasl.plain import make_plain
from mailactors.protocol.sasl.scram import ScramClient, ScramCredentials, derive_credentials
from mailactors.protocol.smtp.server import (
    NEED_DATA,
    PAUSED,
    AuthCredentialsNeeded,
    Authenticated,
    AuthenticationFailed,
    ConnectionClosed,
    DataStart,
    Event,
    Hello,
    LocalProtocolError,
    MailFrom,
    MessageData,
    MessageEnd,
    MessageRejected,
    Quit,
    RcptTo,
    Reply,
    Reset,
    ServerSettings,
    SmtpServer,
    StartTls,
)

MX = ServerSettings(
    hostname="mx.example.org",
    submission=False,
    implicit_tls=False,
    starttls_available=True,
    max_message_size=1000,
)
SUBMISSION = ServerSettings(
    hostname="mail.example.org",
    submission=True,
    implicit_tls=True,
    starttls_available=False,
    max_message_size=1000,
)
CREDS = derive_credentials("secret password", b"0123456789abcdef", 4096)
QUEUED = Reply(250, "2.0.0", "queued as Q1")


@dataclass
class Session:
    """Drives an SmtpServer like a session actor would, with a simple answering policy."""

    server: SmtpServer
    events: list[Event] = field(default_factory=list)
    reject_rcpt: set[str] = field(default_factory=set)
    credentials: dict[str, ScramCredentials] = field(default_factory=lambda: {"mjl": CREDS})
    auto_tls: bool = True
    accept_any_password: bool = False

    def feed(self, data: bytes) -> bytes:
        """Feed data (b"" for EOF), answer every decision, return what the server sends."""
        self.server.receive_data(data)
        self.pump()
        return self.server.data_to_send()

    def pump(self) -> None:
        server = self.server
        while True:
            event = server.next_event()
            if event is NEED_DATA or event is PAUSED:
                return
            self.events.append(event)
            if isinstance(event, MailFrom):
                server.respond()
            elif isinstance(event, RcptTo):
                if event.address in self.reject_rcpt:
                    server.respond(Reply(550, "5.1.1", "no such user"))
                else:
                    server.respond()
            elif isinstance(event, MessageEnd):
                server.respond(QUEUED)
            elif isinstance(event, AuthCredentialsNeeded):
                server.auth_credentials(
                    self.credentials.get(event.username),
                    accept_any_password=self.accept_any_password,
                )
            elif isinstance(event, StartTls) and self.auto_tls:
                # The actor sends the 220 first, then handshakes.
                server.tls_started()


def start(settings: ServerSettings = MX) -> tuple[Session, bytes]:
    server = SmtpServer(settings, scram_nonce=lambda: "servernonce")
    server.greeting()
    session = Session(server)
    return session, server.data_to_send()


def merged(events: list[Event]) -> list[Event]:
    """Events with adjacent MessageData joined (their split depends on how bytes arrive)."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, MessageData) and out and isinstance(out[-1], MessageData):
            out[-1] = MessageData(out[-1].data + event.data)
        else:
            out.append(event)
    return out


EHLO_MX = (
    b"250-mx.example.org\r\n"
    b"250-PIPELINING\r\n"
    b"250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n"
    b"250-SIZE 1000\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n"
    b"250-CHUNKING\r\n"
    b"250 STARTTLS\r\n"
)


def test_full_session_transcript() -> None:
    session, greeting = start()
    assert greeting == b"220 mx.example.org ESMTP mailactors\r\n"
    assert session.feed(b"EHLO client.example.net\r\n") == EHLO_MX
    assert session.feed(b"MAIL FROM:<alice@Example.NET> BODY=8BITMIME SIZE=20\r\n") == (
        b"250 2.1.0 sender OK\r\n"
    )
    assert session.feed(b"RCPT TO:<bob@example.org>\r\n") == b"250 2.1.5 recipient OK\r\n"
    assert session.feed(b"DATA\r\n") == b"354 start mail input; end with <CRLF>.<CRLF>\r\n"
    assert session.feed(b"Subject: hi\r\n\r\n..leading dot\r\n.\r\n") == QUEUED.to_bytes()
    assert session.feed(b"QUIT\r\n") == b"221 2.0.0 mx.example.org closing connection\r\n"
    assert session.events == [
        Hello("client.example.net", True),
        MailFrom(
            "alice@example.net",
            (("BODY", "8BITMIME"), ("SIZE", "20")),
            20,
            "8BITMIME",
            False,
            False,
        ),
        RcptTo("bob@example.org", ()),
        DataStart(),
        MessageData(b"Subject: hi\r\n\r\n"),
        MessageData(b".leading dot\r\n"),
        MessageEnd(29),
        Quit(),
    ]
    # After QUIT nothing more is processed.
    assert session.feed(b"NOOP\r\n") == b""


def test_pipelining_replies_in_order_one_packet() -> None:
    session, _ = start()
    session.reject_rcpt = {"nobody@example.org"}
    out = session.feed(
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
        b"DATA\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n"
    )
    assert out == (
        EHLO_MX
        + b"250 2.1.0 sender OK\r\n"
        + b"550 5.1.1 no such user\r\n"
        + b"250 2.1.5 recipient OK\r\n"
        + b"354 start mail input; end with <CRLF>.<CRLF>\r\n"
        + QUEUED.to_bytes()
        + b"250 2.0.0 OK\r\n"
        + b"221 2.0.0 mx.example.org closing connection\r\n"
    )
    assert session.events[1] == MailFrom("", (), None, None, False, False)


def test_pipelining_byte_by_byte_gives_same_output() -> None:
    script = (
        b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
        b"line one\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
        b"BDAT 5 LAST\r\nabcdeRSET\r\n"
    )
    whole, _ = start()
    expected = whole.feed(script)
    split, _ = start()
    out = b"".join(split.feed(script[i : i + 1]) for i in range(len(script)))
    assert out == expected
    assert merged(split.events) == merged(whole.events)
    assert MessageData(b"abcde") in merged(whole.events)


def test_next_event_pauses_until_answered() -> None:
    server = SmtpServer(MX)
    server.greeting()
    server.receive_data(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nNOOP\r\n")
    assert isinstance(server.next_event(), Hello)
    assert isinstance(server.next_event(), MailFrom)
    assert server.next_event() is PAUSED
    assert server.next_event() is PAUSED
    server.respond(Reply(451, "4.7.1", "greylisted"))
    assert server.next_event() is NEED_DATA
    assert server.data_to_send().endswith(b"451 4.7.1 greylisted\r\n250 2.0.0 OK\r\n")
    # The refused MAIL keeps no transaction.
    server.receive_data(b"RCPT TO:<c@d.example>\r\n")
    assert server.next_event() is NEED_DATA
    assert server.data_to_send() == b"503 5.5.1 need MAIL command\r\n"


def test_wrong_answers_raise_local_protocol_error() -> None:
    server = SmtpServer(MX)
    server.greeting()
    with pytest.raises(LocalProtocolError):
        server.respond()
    with pytest.raises(LocalProtocolError):
        server.tls_started()
    with pytest.raises(LocalProtocolError):
        server.greeting()
    server.receive_data(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\n")
    server.next_event()
    assert isinstance(server.next_event(), MailFrom)
    with pytest.raises(LocalProtocolError):
        server.auth_credentials(None)
    with pytest.raises(LocalProtocolError):
        server.auth_refused(Reply(454, "4.7.0", "later"))
    server.respond()
    server.receive_data(b"RCPT TO:<c@d.example>\r\nDATA\r\n.\r\n")
    server.next_event()
    server.respond()
    assert isinstance(server.next_event(), DataStart)
    assert isinstance(server.next_event(), MessageEnd)
    with pytest.raises(LocalProtocolError):
        server.respond()  # MessageEnd needs an explicit reply
    server.respond(QUEUED)  # still pending after the failed attempt
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed("connection closed by peer")
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"more")


@pytest.mark.parametrize(
    ("lines", "reply"),
    [
        # 500 5.5.1 unknown command
        (b"FOO\r\n", b"500 5.5.1 command not recognized\r\n"),
        # 503 5.5.1 bad sequence
        (b"RCPT TO:<a@b.example>\r\n", b"503 5.5.1 need MAIL command\r\n"),
        (b"DATA\r\n", b"503 5.5.1 need MAIL command\r\n"),
        (b"MAIL FROM:<a@b.example>\r\nDATA\r\n", b"503 5.5.1 need RCPT command\r\n"),
        (
            b"MAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\n",
            b"503 5.5.1 nested MAIL command\r\n",
        ),
        # 501 syntax errors
        (
            b"MAIL FROM:<not an@address.example>\r\n",
            b"501 5.1.7 bad address: invalid local-part\r\n",
        ),
        (b"MAIL FROM:a@b.example\r\n", b"501 5.1.7 path must start with '<'\r\n"),
        (b"MAIL TO:<a@b.example>\r\n", b"501 5.5.4 expected FROM:<address>\r\n"),
        (b"MAIL FROM:<a@b.example> SIZE=abc\r\n", b"501 5.5.4 invalid SIZE value\r\n"),
        (b"MAIL FROM:<a@b.example> BODY=BINARYMIME\r\n", b"501 5.5.4 invalid BODY value\r\n"),
        (b"MAIL FROM:<a@b.example> SIZE=1 SIZE=2\r\n", b"501 5.5.4 duplicate parameter\r\n"),
        (b"MAIL FROM:<a@b.example> =x\r\n", b"501 5.5.4 invalid parameter keyword\r\n"),
        (
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<>\r\n",
            b"501 5.1.3 null forward-path not allowed\r\n",
        ),
        (
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<bad>\r\n",
            b"501 5.1.3 bad address: address needs '@'\r\n",
        ),
        (b"RSET now\r\n", b"501 5.5.4 RSET takes no arguments\r\n"),
        (
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA x\r\n",
            b"501 5.5.4 DATA takes no arguments\r\n",
        ),
        # 552 5.3.4 SIZE over the limit
        (
            b"MAIL FROM:<a@b.example> SIZE=1001\r\n",
            b"552 5.3.4 message size exceeds fixed maximum message size\r\n",
        ),
        # 555 5.5.4 unknown MAIL/RCPT parameters
        (b"MAIL FROM:<a@b.example> RET=HDRS\r\n", b"555 5.5.4 unsupported parameter RET\r\n"),
        (
            b"MAIL FROM:<a@b.example> REQUIRETLS\r\n",
            b"555 5.5.4 unsupported parameter REQUIRETLS\r\n",
        ),
        (
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example> NOTIFY=NEVER\r\n",
            b"555 5.5.4 unsupported parameter NOTIFY\r\n",
        ),
        # UTF-8 in addresses only with SMTPUTF8
        (
            "MAIL FROM:<jöran@example.org>\r\n".encode(),
            b"501 5.1.7 bad address: non-ASCII local-part requires SMTPUTF8\r\n",
        ),
        # VRFY/EXPN never reveal users
        (b"VRFY bob\r\n", b"252 2.5.0 cannot VRFY user, but will accept message for delivery\r\n"),
        (b"EXPN list\r\n", b"502 5.5.1 EXPN not available\r\n"),
        (
            b"HELP\r\n",
            b"214 2.0.0 commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n",
        ),
        # AUTH is not offered on an MX
        (b"AUTH PLAIN\r\n", b"502 5.5.1 AUTH not available on this port\r\n"),
        # bare LF inside a command line, invalid UTF-8
        (b"NOOP\nRSET\r\n", b"500 5.5.2 invalid characters in command line\r\n"),
        (b"NOOP \xff\r\n", b"500 5.5.2 invalid characters in command line\r\n"),
    ],
)
def test_error_replies(lines: bytes, reply: bytes) -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\n")
    out = session.feed(lines)
    assert out.endswith(reply), out


def test_commands_before_ehlo() -> None:
    session, _ = start()
    assert session.feed(b"MAIL FROM:<a@b.example>\r\n") == b"503 5.5.1 send EHLO first\r\n"
    assert session.feed(b"EHLO\r\n") == b"501 5.5.4 EHLO/HELO needs a domain\r\n"
    assert session.feed(b"HELO c.example\r\n") == b"250 mx.example.org\r\n"
    # ESMTP parameters need EHLO (RFC 1869).
    assert session.feed(b"MAIL FROM:<a@b.example> SIZE=1\r\n") == (
        b"555 5.5.4 parameters need EHLO\r\n"
    )
    assert session.events == [Hello("c.example", False)]


def test_smtputf8_address() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\n")
    out = session.feed(
        "MAIL FROM:<jöran@Bücher.example> SMTPUTF8\r\nRCPT TO:<ü@例え.jp>\r\n".encode()
    )
    assert out == b"250 2.1.0 sender OK\r\n250 2.1.5 recipient OK\r\n"
    assert session.events[1:] == [
        MailFrom("jöran@bücher.example", (("SMTPUTF8", None),), None, None, True, False),
        RcptTo("ü@例え.jp", ()),
    ]


def test_rcpt_postmaster_and_source_route() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\nMAIL FROM:<@relay.example:a@b.example>\r\n")
    assert session.feed(b"RCPT TO:<Postmaster>\r\n") == b"250 2.1.5 recipient OK\r\n"
    assert session.events[1].address == "a@b.example"  # type: ignore[union-attr]
    assert session.events[2] == RcptTo("postmaster", ())


def test_too_many_recipients() -> None:
    settings = ServerSettings("mx.example.org", False, False, False, 1000, max_recipients=100)
    session, _ = start(settings)
    session.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\n")
    out = session.feed(b"".join(b"RCPT TO:<u%d@d.example>\r\n" % i for i in range(101)))
    assert out == b"250 2.1.5 recipient OK\r\n" * 100 + b"452 4.5.3 too many recipients\r\n"
    assert session.feed(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"  # 452 is not counted as an error


def test_too_many_errors_closes_with_421() -> None:
    settings = ServerSettings("mx.example.org", False, False, False, 1000, max_errors=3)
    session, _ = start(settings)
    out = session.feed(b"A\r\nB\r\nC\r\nD\r\n")
    assert out == (
        b"500 5.5.1 command not recognized\r\n" * 3
        + b"421 4.7.0 mx.example.org too many errors\r\n"
    )
    assert session.events == [ConnectionClosed("too many errors")]


def test_overlong_command_line_is_discarded() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\n")
    long_line = b"NOOP " + b"x" * 5000 + b"\r\n"
    assert session.feed(long_line[:3000]) == b""  # still within the limit: waits for more
    out = session.feed(long_line[3000:4500])
    assert out == b"500 5.5.2 line too long\r\n"
    assert session.server.buffered_bytes <= 4096
    # The rest of that line is ignored; the next line is a fresh command.
    assert session.feed(long_line[4500:] + b"NOOP\r\n") == b"250 2.0.0 OK\r\n"
    # A complete line just over the limit also gets 500 5.5.2.
    assert session.feed(b"NOOP " + b"y" * 4090 + b"\r\n") == b"500 5.5.2 line too long\r\n"
    # A line of exactly 4096 octets including CRLF is fine.
    assert session.feed(b"NOOP " + b"z" * 4089 + b"\r\n") == b"250 2.0.0 OK\r\n"


def test_rset_and_ehlo_reset_transaction() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n")
    assert session.feed(b"RSET\r\n") == b"250 2.0.0 OK\r\n"
    assert session.feed(b"DATA\r\n") == b"503 5.5.1 need MAIL command\r\n"
    session.feed(b"MAIL FROM:<a@b.example>\r\n")
    session.events.clear()
    assert session.feed(b"EHLO again\r\n") == EHLO_MX
    assert session.events == [Reset(), Hello("again", True)]


def test_data_dot_stuffing_and_chunking() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
    session.events.clear()
    message = b"..\r\n...x\r\n.\r\n"  # stuffed "." and "..x" lines, then the end
    out = session.feed(message[:2])
    out += session.feed(message[2:])
    assert out == QUEUED.to_bytes()
    data = b"".join(e.data for e in session.events if isinstance(e, MessageData))
    assert data == b".\r\n..x\r\n"
    assert session.events[-1] == MessageEnd(len(data))


def test_data_empty_message_and_crlf_split_across_feeds() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
    session.events.clear()
    assert session.feed(b"a\r") == b""
    assert session.feed(b"\n.") == b""
    assert session.feed(b"\r") == b""
    assert session.feed(b"\n") == QUEUED.to_bytes()
    assert b"".join(e.data for e in session.events if isinstance(e, MessageData)) == b"a\r\n"
    session.feed(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
    session.events.clear()
    assert session.feed(b".\r\n") == QUEUED.to_bytes()
    assert session.events == [MessageEnd(0)]


@pytest.mark.parametrize("separator", [b"\r\n.\n", b"\n.\r\n", b"\n.\n", b"\r.\r\n", b"\r\n.\r"])
def test_smtp_smuggling_never_ends_message(separator: bytes) -> None:
    """Regression (SMTP smuggling): only CRLF.CRLF ends DATA; bare LF/CR rejects the message."""
    session, _ = start()
    session.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
    session.events.clear()
    smuggled = b"MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@d.example>\r\nDATA\r\n"
    out = session.feed(b"Subject: x\r\n\r\nbody" + separator + smuggled + b"evil\r\n.\r\n")
    assert out == b"550 5.6.0 bare LF/CR not allowed in message, use CRLF line endings\r\n"
    assert not any(isinstance(e, MailFrom | MessageEnd) for e in session.events)
    assert session.events[-1] == MessageRejected(
        Reply(550, "5.6.0", "bare LF/CR not allowed in message, use CRLF line endings")
    )
    # The transaction is over; the session continues normally.
    assert session.feed(b"RCPT TO:<c@d.example>\r\n") == b"503 5.5.1 need MAIL command\r\n"


def test_oversized_message_counted_and_rejected_after_final_dot() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
    session.events.clear()
    out = b""
    for _ in range(100):
        out += session.feed(b"x" * 98 + b"\r\n")
        assert session.server.buffered_bytes < 4
    assert out == b""
    assert (
        session.feed(b".\r\n") == b"552 5.3.4 message size exceeds fixed maximum message size\r\n"
    )
    streamed = sum(len(e.data) for e in session.events if isinstance(e, MessageData))
    assert streamed <= 1000
    assert isinstance(session.events[-1], MessageRejected)
    assert session.feed(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_bdat_chunks() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n")
    session.events.clear()
    out = session.feed(b"BDAT 7\r\nline\r\n.BDAT 0\r\nBDAT 5 LAST\r\n.\r\nab")
    assert (
        out == b"250 2.0.0 7 octets received\r\n250 2.0.0 7 octets received\r\n" + QUEUED.to_bytes()
    )
    data = b"".join(e.data for e in session.events if isinstance(e, MessageData))
    assert data == b"line\r\n..\r\nab"  # no dot-unstuffing, exact byte counts
    assert session.events[0] == DataStart()
    assert session.events[-1] == MessageEnd(12)
    # DATA is not allowed within a BDAT transaction.
    session.feed(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 1\r\nx")
    assert session.feed(b"DATA\r\n") == b"503 5.5.1 DATA not allowed during BDAT transaction\r\n"
    assert session.feed(b"BDAT 0 LAST\r\n") == QUEUED.to_bytes()


def test_bdat_out_of_sequence_skips_chunk_bytes() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\n")
    out = session.feed(b"BDAT 6\r\nQUIT\r\nNOOP\r\n")
    assert out == b"503 5.5.1 need MAIL command\r\n250 2.0.0 OK\r\n"
    assert (
        session.feed(b"BDAT x\r\n") == b"501 5.5.4 BDAT needs a chunk size and optionally LAST\r\n"
    )


def test_bdat_oversized() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n")
    out = session.feed(b"BDAT 800\r\n" + b"x" * 800 + b"BDAT 800 LAST\r\n" + b"y" * 800)
    assert out == (
        b"250 2.0.0 800 octets received\r\n"
        b"552 5.3.4 message size exceeds fixed maximum message size\r\n"
    )
    assert sum(len(e.data) for e in session.events if isinstance(e, MessageData)) == 800


def test_starttls_flow_and_command_injection() -> None:
    """Regression (STARTTLS command injection): pipelined plaintext after STARTTLS is dropped."""
    session, _ = start()
    session.auto_tls = False
    session.feed(b"EHLO c\r\n")
    out = session.feed(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x.example>\r\n")
    assert out == b"220 2.0.0 ready to start TLS\r\n"
    assert session.events[-1] == StartTls()
    server = session.server
    assert server.next_event() is PAUSED
    server.receive_data(b"NOOP\r\n")  # arrives before the handshake finished: dropped too
    server.tls_started()
    assert server.tls_active
    assert session.feed(b"") == b""  # nothing left to answer: RSET/MAIL/NOOP were discarded
    assert session.events[-2:] == [StartTls(), ConnectionClosed("connection closed by peer")]
    assert not any(isinstance(e, Reset | MailFrom) for e in session.events)


def test_starttls_resets_to_before_ehlo() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\nSTARTTLS\r\n")
    assert session.feed(b"MAIL FROM:<a@b.example>\r\n") == b"503 5.5.1 send EHLO first\r\n"
    out = session.feed(b"EHLO c\r\n")
    assert b"STARTTLS" not in out and b"250 REQUIRETLS\r\n" in out and b"AUTH" not in out
    assert session.feed(b"STARTTLS\r\n") == b"503 5.5.1 TLS already active\r\n"
    assert session.feed(b"MAIL FROM:<a@b.example> REQUIRETLS\r\n") == b"250 2.1.0 sender OK\r\n"
    assert isinstance(session.events[-1], MailFrom) and session.events[-1].requiretls


def test_starttls_not_available_and_mid_transaction() -> None:
    settings = ServerSettings("mx.example.org", False, False, False, 1000)
    session, _ = start(settings)
    assert b"STARTTLS" not in session.feed(b"EHLO c\r\n")
    assert session.feed(b"STARTTLS\r\n") == b"502 5.5.1 STARTTLS not available\r\n"
    session2, _ = start()
    session2.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\n")
    assert session2.feed(b"STARTTLS\r\n") == b"503 5.5.1 STARTTLS not allowed now\r\n"


# -- AUTH on submission ------------------------------------------------------------------


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def test_submission_requires_auth_and_offers_mechanisms() -> None:
    session, _ = start(SUBMISSION)
    out = session.feed(b"EHLO c\r\n")
    assert b"250-AUTH PLAIN SCRAM-SHA-256\r\n" in out and b"STARTTLS" not in out
    assert session.feed(b"MAIL FROM:<a@b.example>\r\n") == b"530 5.7.0 authentication required\r\n"


def test_submission_without_tls_refuses_auth() -> None:
    settings = ServerSettings("mail.example.org", True, False, True, 1000)
    session, _ = start(settings)
    out = session.feed(b"EHLO c\r\n")
    assert b"AUTH" not in out
    assert session.feed(b"AUTH PLAIN " + b64(make_plain("mjl", "secret password")) + b"\r\n") == (
        b"538 5.7.11 encryption required for requested authentication mechanism\r\n"
    )
    session.feed(b"STARTTLS\r\n")
    assert b"250-AUTH PLAIN SCRAM-SHA-256\r\n" in session.feed(b"EHLO c\r\n")
    assert session.feed(b"AUTH PLAIN " + b64(make_plain("mjl", "secret password")) + b"\r\n") == (
        b"235 2.7.0 authentication successful\r\n"
    )


def test_auth_plain_initial_response() -> None:
    session, _ = start(SUBMISSION)
    session.feed(b"EHLO c\r\n")
    out = session.feed(b"AUTH PLAIN " + b64(make_plain("mjl", "secret password")) + b"\r\n")
    assert out == b"235 2.7.0 authentication successful\r\n"
    assert session.events[-2:] == [AuthCredentialsNeeded("PLAIN", "mjl"), Authenticated("mjl")]
    assert session.server.authenticated_as == "mjl"
    assert session.feed(b"MAIL FROM:<mjl@example.org>\r\n") == b"250 2.1.0 sender OK\r\n"
    assert session.feed(b"RSET\r\nAUTH PLAIN\r\n") == (
        b"250 2.0.0 OK\r\n503 5.5.1 already authenticated\r\n"
    )


def test_auth_plain_continuation_wrong_password_and_cancel() -> None:
    session, _ = start(SUBMISSION)
    session.feed(b"EHLO c\r\n")
    assert session.feed(b"AUTH plain\r\n") == b"334 \r\n"
    out = session.feed(b64(make_plain("mjl", "wrong")) + b"\r\n")
    assert out == b"535 5.7.8 authentication credentials invalid\r\n"
    assert session.events[-1] == AuthenticationFailed("mjl")
    assert session.feed(b"AUTH PLAIN\r\n*\r\n") == b"334 \r\n501 5.0.0 authentication cancelled\r\n"
    assert session.feed(b"AUTH PLAIN\r\n!!!\r\n") == (
        b"334 \r\n501 5.5.2 cannot decode base64 response\r\n"
    )
    # Unknown user, and an authzid other than the user.
    assert session.feed(b"AUTH PLAIN " + b64(make_plain("nobody", "x")) + b"\r\n") == (
        b"535 5.7.8 authentication credentials invalid\r\n"
    )
    assert (
        session.feed(
            b"AUTH PLAIN " + b64(make_plain("mjl", "secret password", authzid="admin")) + b"\r\n"
        )
        == b"535 5.7.8 authentication credentials invalid\r\n"
    )
    assert session.feed(b"AUTH LOGIN\r\n") == b"504 5.5.4 unrecognized authentication type\r\n"
    assert session.server.authenticated_as is None


def test_auth_plain_accept_any_password() -> None:
    session, _ = start(SUBMISSION)
    session.accept_any_password = True
    session.feed(b"EHLO c\r\n")
    out = session.feed(b"AUTH PLAIN " + b64(make_plain("mjl", "anything")) + b"\r\n")
    assert out == b"235 2.7.0 authentication successful\r\n"


def test_auth_refused_by_caller() -> None:
    server = SmtpServer(SUBMISSION)
    server.greeting()
    server.receive_data(b"EHLO c\r\nAUTH PLAIN " + b64(make_plain("mjl", "x")) + b"\r\nNOOP\r\n")
    server.next_event()
    assert server.next_event() == AuthCredentialsNeeded("PLAIN", "mjl")
    with pytest.raises(LocalProtocolError):
        server.respond()
    server.auth_refused(Reply(454, "4.7.0", "too many failed attempts, try later"))
    assert server.next_event() is NEED_DATA
    assert server.data_to_send().endswith(
        b"454 4.7.0 too many failed attempts, try later\r\n250 2.0.0 OK\r\n"
    )
    server.receive_data(b"AUTH PLAIN " + b64(make_plain("mjl", "x")) + b"\r\n")
    server.next_event()
    server.auth_refused(Reply(421, "4.7.0", "go away"))
    assert server.next_event() == ConnectionClosed("closing after 421 reply")


def test_auth_scram_full_exchange() -> None:
    session, _ = start(SUBMISSION)
    session.feed(b"EHLO c\r\n")
    client = ScramClient("mjl", "secret password", "clientnonce")
    assert session.feed(b"AUTH SCRAM-SHA-256\r\n") == b"334 \r\n"
    out = session.feed(b64(client.client_first()) + b"\r\n")
    assert out.startswith(b"334 ") and out.endswith(b"\r\n")
    server_first = base64.b64decode(out[4:-2])
    assert server_first == b"r=clientnonceservernonce,s=" + b64(CREDS.salt) + b",i=4096"
    out = session.feed(b64(client.server_first(server_first)) + b"\r\n")
    assert out.startswith(b"334 ")
    client.server_final(base64.b64decode(out[4:-2]))  # raises if the server is not authentic
    assert session.feed(b"\r\n") == b"235 2.7.0 authentication successful\r\n"
    assert session.events[-2:] == [
        AuthCredentialsNeeded("SCRAM-SHA-256", "mjl"),
        Authenticated("mjl"),
    ]


def test_auth_scram_initial_response_bad_password_and_unknown_user() -> None:
    for user, password in (("mjl", "wrong"), ("nobody", "secret password")):
        session, _ = start(SUBMISSION)
        session.feed(b"EHLO c\r\n")
        client = ScramClient(user, password, "cn")
        out = session.feed(b"AUTH SCRAM-SHA-256 " + b64(client.client_first()) + b"\r\n")
        assert out.startswith(b"334 ")  # unknown users look the same at this step
        out = session.feed(b64(client.server_first(base64.b64decode(out[4:-2]))) + b"\r\n")
        assert out == b"535 5.7.8 authentication credentials invalid\r\n"
        assert session.events[-1] == AuthenticationFailed(user)
        assert session.server.authenticated_as is None


def test_auth_scram_channel_binding_refused_and_cancel_at_end() -> None:
    session, _ = start(SUBMISSION)
    session.feed(b"EHLO c\r\n")
    out = session.feed(b"AUTH SCRAM-SHA-256 " + b64(b"p=tls-exporter,,n=mjl,r=abc") + b"\r\n")
    assert out.startswith(b"501 5.5.2 malformed SASL response: channel binding is not supported")
    client = ScramClient("mjl", "secret password", "cn")
    out = session.feed(b"AUTH SCRAM-SHA-256 " + b64(client.client_first()) + b"\r\n")
    out = session.feed(b64(client.server_first(base64.b64decode(out[4:-2]))) + b"\r\n")
    assert out.startswith(b"334 ") and base64.b64decode(out[4:-2]).startswith(b"v=")
    assert session.feed(b"*\r\n") == b"501 5.0.0 authentication cancelled\r\n"
    assert session.server.authenticated_as is None


def test_auth_response_line_limit() -> None:
    session, _ = start(SUBMISSION)
    session.feed(b"EHLO c\r\nAUTH PLAIN\r\n")
    out = session.feed(b"A" * 13000)
    assert out == b"500 5.5.6 authentication exchange line too long\r\n"
    assert session.feed(b"AAAA\r\nNOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_auth_payload_not_in_errors_or_reprs() -> None:
    secret = "hunter2-very-secret"
    session, _ = start(SUBMISSION)
    session.feed(b"EHLO c\r\n")
    out = session.feed(b"AUTH PLAIN " + b64(make_plain("mjl", secret)) + b"\r\n")
    assert secret.encode() not in out
    assert all(secret not in repr(e) for e in session.events)
    assert "stored_key" not in repr(CREDS) and CREDS.stored_key.hex() not in repr(CREDS)


def test_eof_mid_command_and_mid_data() -> None:
    session, _ = start()
    session.feed(b"EHLO c\r\nNOO")
    session.feed(b"")
    assert session.events[-1] == ConnectionClosed("connection closed by peer")
    session, _ = start()
    session.feed(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\npartial")
    session.feed(b"")
    assert session.events[-1] == ConnectionClosed("connection closed by peer")
    assert not any(isinstance(e, MessageEnd) for e in session.events)


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="4.5.3.1.8"):
        ServerSettings("h", False, False, False, 10, max_recipients=99)
    with pytest.raises(ValueError):
        ServerSettings("h", False, False, False, 10, max_line=100)
