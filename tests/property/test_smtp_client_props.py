"""Hypothesis: whatever a server sends, the SMTP client only ever raises RemoteProtocolError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol.smtp.client import (
    NEED_DATA,
    Closed,
    DataReady,
    RemoteProtocolError,
    SmtpClient,
    StartTlsReady,
)
from mailactors.protocol.smtp.client_reply import take_reply

# Reply-shaped fragments make deep paths likely; raw bytes cover the rest.
_FRAGMENTS = [
    b"220 mx.example.org ESMTP\r\n",
    b"250-mx.example.org\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-SIZE 100\r\n250 8BITMIME\r\n",
    b"250-mx.example.org\r\n250 REQUIRETLS\r\n",
    b"250 2.0.0 ok\r\n",
    b"250 ok\r\n",
    b"220 2.0.0 go\r\n",
    b"354 go\r\n",
    b"550 5.1.1 no\r\n",
    b"452 4.5.3 too many\r\n",
    b"421 4.3.2 bye\r\n",
    b"500 what\r\n",
    b"221 bye\r\n",
    b"250-",
    b"\r\n",
    b"\n",
]

server_bytes = st.lists(
    st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=40)),
    max_size=30,
)


def drive(chunks: list[bytes], *, want_starttls: bool, transactions: int) -> None:
    """Act like a delivery driver: react to every event with a legal API call."""
    client = SmtpClient("client.example.net", want_starttls=want_starttls)
    left = transactions
    for chunk in [*chunks, b""]:
        client.receive_data(chunk)
        while True:
            event = client.next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, StartTlsReady):
                client.tls_started()
            elif isinstance(event, DataReady):
                client.send_body(b"Subject: hi\n\n.body\r\n", end=True)
            elif isinstance(event, Closed):
                assert client.closed
            if client.ready:
                if left:
                    left -= 1
                    client.send_mail(
                        "s@example.net",
                        ["a@example.org", "b@example.org"],
                        50,
                        needs_8bit=left % 2 == 0,
                        needs_smtputf8=False,
                        requiretls=left == 3,
                    )
                else:
                    client.quit()
            client.data_to_send()
        if client.closed:
            return


@settings(max_examples=300, deadline=None)
@given(server_bytes, st.booleans(), st.integers(min_value=0, max_value=4))
def test_arbitrary_server_bytes_never_crash_the_client(
    chunks: list[bytes], want_starttls: bool, transactions: int
) -> None:
    try:
        drive(chunks, want_starttls=want_starttls, transactions=transactions)
    except RemoteProtocolError as exc:
        # The error carries a temporary failure to record for the recipients.
        assert exc.reply.code == 451 and exc.reply.enhanced == "4.5.0"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_reply_parser_takes_bytes_or_raises_remote_error(data: bytes) -> None:
    buf = bytearray(data)
    try:
        while take_reply(buf) is not None:
            pass
    except RemoteProtocolError:
        return
    # Without an error the parser stops only at an incomplete reply whose unfinished
    # line is still bounded.
    assert len(buf) - (buf.rfind(b"\n") + 1) <= 512
