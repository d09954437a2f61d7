"""Transcript tests of the SMTP client state machine: server bytes in, events and bytes out."""

from __future__ import annotations

import pytest

from mailactors.protocol.smtp.client import (
    NEED_DATA,
    Closed,
    DataAccepted,
    DataReady,
    DataRejected,
    EhloDone,
    GreetingReceived,
    HelloRejected,
    LocalProtocolError,
    MailAccepted,
    MailRejected,
    RecipientResult,
    RecipientsRejected,
    RemoteProtocolError,
    Reply,
    SmtpClient,
    StartTlsReady,
    StartTlsRejected,
    Timeouts,
)
from mailactors.protocol.smtp.client_reply import MAX_REPLY_LINES, take_reply

EHLO_PIPELINING = (
    b"250-mx.example.org hello\r\n"
    b"250-PIPELINING\r\n"
    b"250-8BITMIME\r\n"
    b"250-SIZE 1000\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n"
    b"250-SMTPUTF8\r\n"
    b"250 STARTTLS\r\n"
)
EHLO_BASIC = b"250-mx.example.org\r\n250 SIZE\r\n"


def events(client: SmtpClient, data: bytes = b"") -> list[object]:
    if data:
        client.receive_data(data)
    out: list[object] = []
    while (event := client.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def greeted(ehlo: bytes = EHLO_PIPELINING, *, want_starttls: bool = False) -> SmtpClient:
    client = SmtpClient("client.example.net", want_starttls=want_starttls)
    assert events(client) == []
    assert client.data_to_send() == b""
    got = events(client, b"220 mx.example.org ESMTP\r\n")
    assert got == [GreetingReceived(Reply(220, None, "mx.example.org ESMTP"))]
    assert client.data_to_send() == b"EHLO client.example.net\r\n"
    got = events(client, ehlo)
    assert len(got) == 1 and isinstance(got[0], EhloDone)
    return client


def test_pipelined_transaction_sends_one_group_and_reads_every_reply() -> None:
    client = greeted()
    assert client.ready
    caps = client.capabilities
    assert caps is not None and caps.pipelining and caps.size == 1000 and caps.eightbitmime
    assert caps.domain == "mx.example.org" and caps.starttls and caps.smtputf8
    client.send_mail(
        "sender@example.net",
        ["a@example.org", "b@example.org", "c@example.org"],
        500,
        needs_8bit=True,
        needs_smtputf8=False,
    )
    assert client.data_to_send() == (
        b"MAIL FROM:<sender@example.net> SIZE=500 BODY=8BITMIME\r\n"
        b"RCPT TO:<a@example.org>\r\n"
        b"RCPT TO:<b@example.org>\r\n"
        b"RCPT TO:<c@example.org>\r\n"
        b"DATA\r\n"
    )
    got = events(
        client,
        b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n"
        b"452 4.2.2 mailbox full\r\n354 go ahead\r\n",
    )
    assert got == [
        MailAccepted(Reply(250, "2.1.0", "ok")),
        RecipientResult("a@example.org", Reply(250, "2.1.5", "ok")),
        RecipientResult("b@example.org", Reply(550, "5.1.1", "no such user")),
        RecipientResult("c@example.org", Reply(452, "4.2.2", "mailbox full")),
        DataReady(Reply(354, None, "go ahead")),
    ]
    assert client.timeout == Timeouts().data_block
    client.send_body(b"Subject: x\n\n.hidden\nlast line")
    assert client.data_to_send() == b"Subject: x\r\n\r\n..hidden\r\nlast line\r\n.\r\n"
    assert client.timeout == 600.0
    got = events(client, b"250 2.0.0 queued as X\r\n")
    assert got == [DataAccepted(Reply(250, "2.0.0", "queued as X"))]
    assert client.ready
    client.quit()
    assert client.data_to_send() == b"QUIT\r\n"
    got = events(client, b"221 2.0.0 bye\r\n")
    assert got == [Closed(Reply(221, "2.0.0", "bye"), "QUIT")]
    assert client.closed and client.timeout is None


def test_without_pipelining_one_command_per_reply() -> None:
    client = greeted(EHLO_BASIC)
    assert client.timeout is None
    client.send_mail(
        "", ["a@example.org", "b@example.org"], 10, needs_8bit=False, needs_smtputf8=False
    )
    # SIZE is offered without a limit: the parameter is sent, nothing is refused.
    assert client.data_to_send() == b"MAIL FROM:<> SIZE=10\r\n"
    assert client.timeout == 300.0
    assert events(client, b"250 ok\r\n") == [MailAccepted(Reply(250, None, "ok"))]
    assert client.data_to_send() == b"RCPT TO:<a@example.org>\r\n"
    assert events(client, b"550 no\r\n") == [
        RecipientResult("a@example.org", Reply(550, None, "no"))
    ]
    assert client.data_to_send() == b"RCPT TO:<b@example.org>\r\n"
    assert events(client, b"250 ok\r\n") == [
        RecipientResult("b@example.org", Reply(250, None, "ok"))
    ]
    assert client.data_to_send() == b"DATA\r\n"
    assert client.timeout == 120.0
    assert events(client, b"354 send\r\n") == [DataReady(Reply(354, None, "send"))]
    client.send_body(b"line\r\n", end=False)
    client.send_body(b".dot\r", end=False)
    client.send_body(b"\n", end=True)
    assert client.data_to_send() == b"line\r\n..dot\r\n.\r\n"
    assert events(client, b"554 5.7.1 spam\r\n") == [DataRejected(Reply(554, "5.7.1", "spam"))]
    assert client.ready


def test_second_transaction_starts_with_rset() -> None:
    client = greeted()
    client.send_mail("s@example.net", ["a@example.org"], 1, needs_8bit=False, needs_smtputf8=False)
    client.data_to_send()
    events(client, b"250 ok\r\n250 ok\r\n354 go\r\n")
    client.send_body(b"x")
    client.data_to_send()
    events(client, b"250 ok\r\n")
    client.send_mail("s@example.net", ["b@example.org"], 1, needs_8bit=False, needs_smtputf8=False)
    assert client.data_to_send() == (
        b"RSET\r\nMAIL FROM:<s@example.net> SIZE=1\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
    )
    got = events(client, b"250 flushed\r\n250 ok\r\n250 ok\r\n354 go\r\n")
    assert [type(e) for e in got] == [MailAccepted, RecipientResult, DataReady]


def test_all_recipients_refused_without_pipelining_sends_no_data() -> None:
    client = greeted(EHLO_BASIC)
    client.send_mail("s@example.net", ["a@example.org"], 1, needs_8bit=False, needs_smtputf8=False)
    client.data_to_send()
    events(client, b"250 ok\r\n")
    client.data_to_send()
    got = events(client, b"550 5.1.1 unknown\r\n")
    assert got == [
        RecipientResult("a@example.org", Reply(550, "5.1.1", "unknown")),
        RecipientsRejected(),
    ]
    assert client.data_to_send() == b""
    assert client.ready


def test_pipelined_all_recipients_refused_and_server_says_354_anyway() -> None:
    client = greeted()
    client.send_mail("s@example.net", ["a@example.org"], 1, needs_8bit=False, needs_smtputf8=False)
    client.data_to_send()
    got = events(client, b"250 ok\r\n550 no\r\n354 go\r\n")
    assert got == [
        MailAccepted(Reply(250, None, "ok")),
        RecipientResult("a@example.org", Reply(550, None, "no")),
    ]
    # RFC 2920: the client ends the empty message with a lone dot and ignores the result.
    assert client.data_to_send() == b".\r\n"
    assert events(client, b"554 no valid recipients\r\n") == [RecipientsRejected()]
    assert client.ready


def test_pipelined_mail_refused_consumes_the_whole_group() -> None:
    client = greeted()
    client.send_mail(
        "s@example.net",
        ["a@example.org", "b@example.org"],
        1,
        needs_8bit=False,
        needs_smtputf8=False,
    )
    client.data_to_send()
    got = events(client, b"550 5.7.1 sender refused\r\n503 5.5.1 no\r\n503 5.5.1 no\r\n")
    assert got == []
    assert not client.ready
    got = events(client, b"503 5.5.1 need MAIL\r\n")
    assert got == [MailRejected(Reply(550, "5.7.1", "sender refused"))]
    assert client.ready


def test_mail_refused_without_pipelining() -> None:
    client = greeted(EHLO_BASIC)
    client.send_mail("s@example.net", ["a@example.org"], 1, needs_8bit=False, needs_smtputf8=False)
    client.data_to_send()
    assert events(client, b"451 4.3.0 try later\r\n") == [
        MailRejected(Reply(451, "4.3.0", "try later"))
    ]
    assert client.data_to_send() == b""


@pytest.mark.parametrize(
    ("ehlo", "kwargs", "status"),
    [
        (EHLO_PIPELINING, {"message_size": 1001}, "5.3.4"),
        (EHLO_BASIC, {"needs_8bit": True}, "5.6.3"),
        (EHLO_BASIC, {"needs_smtputf8": True}, "5.6.7"),
        (EHLO_BASIC, {"recipients": ["jöran@example.org"]}, "5.6.7"),
        (EHLO_PIPELINING, {"requiretls": True}, "5.7.30"),
    ],
)
def test_local_refusals_send_nothing(ehlo: bytes, kwargs: dict[str, object], status: str) -> None:
    client = greeted(ehlo)
    args: dict[str, object] = {
        "mail_from": "s@example.net",
        "recipients": ["a@example.org"],
        "message_size": 10,
        "needs_8bit": False,
        "needs_smtputf8": False,
    }
    args.update(kwargs)
    client.send_mail(**args)  # type: ignore[arg-type]
    assert client.data_to_send() == b""
    (event,) = events(client)
    assert isinstance(event, MailRejected) and event.local
    assert event.reply.enhanced == status and event.reply.code >= 500
    assert client.ready


def test_smtputf8_sends_parameters() -> None:
    client = greeted()
    client.send_mail(
        "s@example.net", ["jöran@bücher.example"], 5, needs_8bit=False, needs_smtputf8=False
    )
    assert (
        client.data_to_send()
        == (
            "MAIL FROM:<s@example.net> SIZE=5 BODY=8BITMIME SMTPUTF8\r\n"
            "RCPT TO:<jöran@bücher.example>\r\nDATA\r\n"
        ).encode()
    )


def test_starttls_then_ehlo_again_and_requiretls() -> None:
    client = greeted(want_starttls=True)
    assert not client.ready
    assert client.data_to_send() == b"STARTTLS\r\n"
    # Injected plaintext after the 220 must never be read as a reply.
    got = events(client, b"220 2.0.0 go ahead\r\n250 injected\r\n")
    assert got == [StartTlsReady()]
    client.receive_data(b"250 more injected\r\n")
    assert events(client) == []
    client.tls_started()
    assert client.tls_active and client.capabilities is None
    assert client.data_to_send() == b"EHLO client.example.net\r\n"
    got = events(client, b"250-mx.example.org\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n")
    assert len(got) == 1 and isinstance(got[0], EhloDone) and got[0].tls
    assert client.ready
    client.send_mail(
        "s@example.net",
        ["a@example.org"],
        5,
        needs_8bit=False,
        needs_smtputf8=False,
        requiretls=True,
    )
    assert client.data_to_send().startswith(b"MAIL FROM:<s@example.net> REQUIRETLS\r\n")


def test_starttls_refused_continues_in_plaintext() -> None:
    client = greeted(want_starttls=True)
    client.data_to_send()
    assert events(client, b"454 4.7.0 TLS not available\r\n") == [
        StartTlsRejected(Reply(454, "4.7.0", "TLS not available"))
    ]
    assert client.ready and not client.tls_active


def test_no_starttls_offered_means_ready_in_plaintext() -> None:
    client = greeted(EHLO_BASIC, want_starttls=True)
    assert client.ready and client.data_to_send() == b""


def test_ehlo_refused_falls_back_to_helo() -> None:
    client = SmtpClient("client.example.net", want_starttls=True)
    events(client, b"220 old.example.org\r\n")
    client.data_to_send()
    assert events(client, b"502 command not recognized\r\n") == []
    assert client.data_to_send() == b"HELO client.example.net\r\n"
    (event,) = events(client, b"250 old.example.org\r\n")
    assert isinstance(event, EhloDone) and not event.extended and not event.capabilities.keywords
    assert client.ready


def test_helo_refused_too_quits() -> None:
    client = SmtpClient("client.example.net", want_starttls=False)
    events(client, b"220 x\r\n")
    events(client, b"500 no\r\n")
    client.data_to_send()
    assert events(client, b"550 go away\r\n") == [HelloRejected(Reply(550, None, "go away"))]
    assert client.data_to_send() == b"QUIT\r\n"
    assert events(client, b"221 bye\r\n") == [Closed(Reply(221, None, "bye"), "QUIT")]


def test_554_greeting_quits() -> None:
    client = SmtpClient("client.example.net", want_starttls=False)
    got = events(client, b"554-no service\r\n554 for you\r\n")
    assert got == [GreetingReceived(Reply(554, None, ("no service", "for you")))]
    assert client.data_to_send() == b"QUIT\r\n"
    client.receive_data(b"")
    assert events(client) == [Closed(None, "connection closed after QUIT")]


def test_421_closes_anywhere() -> None:
    client = greeted()
    client.send_mail("s@example.net", ["a@example.org"], 1, needs_8bit=False, needs_smtputf8=False)
    client.data_to_send()
    got = events(client, b"250 ok\r\n421 4.3.2 shutting down\r\n")
    assert got == [
        MailAccepted(Reply(250, None, "ok")),
        Closed(Reply(421, "4.3.2", "shutting down"), "server closing the connection"),
    ]
    assert client.closed
    assert events(client, b"") == []


def test_unsolicited_421_while_idle_closes() -> None:
    client = greeted()
    assert events(client, b"421 idle too long\r\n") == [
        Closed(Reply(421, None, "idle too long"), "server closing the connection")
    ]


def test_eof_mid_reply() -> None:
    client = greeted()
    client.receive_data(b"250-partial")
    client.receive_data(b"")
    assert events(client) == [Closed(None, "connection closed by the server")]


@pytest.mark.parametrize(
    "data",
    [
        b"250 unsolicited\r\n",
        b"2500 bad\r\n",
        b"25\r\n",
        b"650 bad code\r\n",
        b"260 bad code\r\n",
        b"250x\r\n",
        b"250-a\r\n251 b\r\n",
        b"250-" + b"x" * 600 + b"\r\n",
        b"x" * 600,
        b"250-a\r\n" * (MAX_REPLY_LINES + 1),
    ],
)
def test_server_misbehaviour_is_a_remote_protocol_error(data: bytes) -> None:
    client = greeted()
    with pytest.raises(RemoteProtocolError) as info:
        events(client, data)
    assert info.value.reply.code == 451 and info.value.reply.enhanced == "4.5.0"
    assert client.closed
    assert events(client, b"250 more\r\n") == []


def test_wrong_reply_kinds_are_protocol_errors() -> None:
    client = greeted()
    client.send_mail("s@example.net", ["a@example.org"], 1, needs_8bit=False, needs_smtputf8=False)
    with pytest.raises(RemoteProtocolError):
        events(client, b"354 not for MAIL\r\n")
    client = greeted(EHLO_BASIC)
    client.send_mail("s@example.net", ["a@example.org"], 1, needs_8bit=False, needs_smtputf8=False)
    events(client, b"250 ok\r\n250 ok\r\n")
    with pytest.raises(RemoteProtocolError):
        events(client, b"250 DATA is not 250\r\n")


def test_misuse_is_a_local_protocol_error() -> None:
    with pytest.raises(LocalProtocolError):
        SmtpClient("bad name", want_starttls=False)
    with pytest.raises(LocalProtocolError):
        SmtpClient("bad_label-.example", want_starttls=False)
    client = SmtpClient("client.example.net", want_starttls=False)
    with pytest.raises(LocalProtocolError):
        client.send_mail(
            "s@example.net", ["a@example.org"], 1, needs_8bit=False, needs_smtputf8=False
        )
    with pytest.raises(LocalProtocolError):
        client.tls_started()
    with pytest.raises(LocalProtocolError):
        client.send_body(b"x")
    with pytest.raises(LocalProtocolError):
        client.quit()
    client = greeted()
    with pytest.raises(LocalProtocolError):
        client.send_mail("s@example.net", [], 1, needs_8bit=False, needs_smtputf8=False)
    with pytest.raises(LocalProtocolError):
        client.send_mail("s@example.net", ["a@b@c"], 1, needs_8bit=False, needs_smtputf8=False)
    with pytest.raises(LocalProtocolError):
        client.send_mail(
            "s@example.net", ["a@example.org>\r\nRSET"], 1, needs_8bit=False, needs_smtputf8=False
        )
    client.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        client.receive_data(b"x")


def test_timeouts_follow_rfc5321_4_5_3_2() -> None:
    t = Timeouts()
    assert (t.greeting, t.mail, t.rcpt, t.data_init, t.data_block, t.data_final) == (
        300.0,
        300.0,
        300.0,
        120.0,
        180.0,
        600.0,
    )
    client = SmtpClient("client.example.net", want_starttls=False, timeouts=Timeouts(greeting=7))
    assert client.timeout == 7


def test_reply_parser_enhanced_codes_and_resumption() -> None:
    buf = bytearray(b"550-5.1.1 first\r\n550-5.1.1 second\r\n550 5.1.1")
    assert take_reply(buf) is None
    buf += b" third\r\n250 next\r\n"
    assert take_reply(buf) == Reply(550, "5.1.1", ("first", "second", "third"))
    assert take_reply(buf) == Reply(250, None, "next")
    assert buf == b""
    # An enhanced code whose class differs from the reply code's is plain text.
    buf = bytearray(b"250 5.0.0 odd\r\n")
    assert take_reply(buf) == Reply(250, None, "5.0.0 odd")
    # A bare LF ends a line too; "250" alone is a complete reply.
    buf = bytearray(b"250\n")
    assert take_reply(buf) == Reply(250, None, "")
    buf = bytearray(b"250 2.0.0 ok\r\n")
    assert take_reply(buf, enhanced=False) == Reply(250, None, "2.0.0 ok")
