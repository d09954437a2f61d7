"""smtplib against a real in-process localserve: plain SMTP, STARTTLS, implicit TLS."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import time

import pytest
from conftest import Served  # type: ignore[import-not-found]

from mailactors.protocol.message import summarize
from mailactors.protocol.sasl.scram import ScramClient, new_nonce
from mailactors.storage.account import AccountStore

log = logging.getLogger("mailactors.tests")


def message(subject: str, body: bytes = b"Hello there.\r\n") -> bytes:
    return (
        b"From: Sender <sender@example.org>\r\n"
        b"To: mailactors@localhost\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b"Message-ID: <" + subject.encode() + b"@example.org>\r\n"
        b"\r\n" + body
    )


def scram_auth_object(username: str, password: str):  # type: ignore[no-untyped-def]
    """An smtplib auth object running SCRAM-SHA-256 with our client."""
    client = ScramClient(username, password, new_nonce())
    state = {"step": 0}

    def auth_object(challenge: bytes | None = None) -> str:
        state["step"] += 1
        if state["step"] == 1:
            return client.client_first().decode()
        if state["step"] == 2:
            return client.server_first(challenge or b"").decode()
        client.server_final(challenge or b"")  # the server proves it knows the password too
        return ""

    return auth_object


def assert_stored(stored: bytes, original: bytes) -> None:
    """Byte-identical apart from the trace fields we prepend: Received, and for mail from
    other servers (not submission) the Authentication-Results of our checks."""
    assert stored.endswith(original)
    added = stored[: len(stored) - len(original)]
    lines = added.split(b"\r\n")
    assert lines[-1] == b""
    names = []
    for line in lines[:-1]:
        if line[:1] in (b" ", b"\t"):
            assert names, f"continuation without a field: {line!r}"
            continue
        names.append(line.split(b":", 1)[0])
    assert names in (
        [b"Received"],
        [b"Authentication-Results", b"Received"],
        # Submitted for another domain: queued, then delivered to localserve's own SMTP
        # listener, which adds its checks and Received to the submission's Received.
        [b"Authentication-Results", b"Received", b"Received"],
    ), names


def test_plain_smtp_delivery(localserve: Served) -> None:
    msg = message("plain", b"Line one\r\n.leading dot\r\n..two dots\r\n")
    with smtplib.SMTP("127.0.0.1", localserve.port("smtp"), timeout=10) as c:
        code, _ = c.ehlo("client.example.org")
        assert code == 250
        assert c.has_extn("pipelining") and c.has_extn("chunking") and c.has_extn("smtputf8")
        refused = c.sendmail("sender@example.org", ["mailactors@localhost"], msg)
        assert refused == {}
    localserve.stop()
    stored = localserve.inbox()
    assert len(stored) == 1
    assert_stored(stored[0], msg)
    assert b"from client.example.org" in stored[0]
    assert b"with ESMTP" in stored[0]


def test_starttls_submission_with_auth_plain(localserve: Served, client_tls: ssl.SSLContext) -> None:
    msg = message("starttls")
    with smtplib.SMTP("127.0.0.1", localserve.port("submission"), timeout=10) as c:
        c.ehlo()
        assert not c.has_extn("auth"), "AUTH must not be offered before TLS"
        c.starttls(context=client_tls)
        c.ehlo()
        assert "PLAIN" in c.esmtp_features["auth"] and "SCRAM-SHA-256" in c.esmtp_features["auth"]
        c.login("mailactors@localhost", "any password works in localserve")
        c.sendmail("mailactors@localhost", ["someone@elsewhere.example"], msg)
    # Mail for another domain goes through the queue to localserve's own SMTP listener.
    deadline = time.monotonic() + 20
    while not localserve.inbox() and time.monotonic() < deadline:
        time.sleep(0.05)
    localserve.stop()
    stored = localserve.inbox()
    assert len(stored) == 1
    assert_stored(stored[0], msg)
    assert b"with ESMTPSA" in stored[0]
    assert b"TLS1." in stored[0]


def test_implicit_tls_submission_with_scram(localserve: Served, client_tls: ssl.SSLContext) -> None:
    msg = message("implicit", b"x" * 100_000 + b"\r\n")
    with smtplib.SMTP_SSL("127.0.0.1", localserve.port("submissions"), timeout=10, context=client_tls) as c:
        c.ehlo()
        auth_object = scram_auth_object("mailactors", "mailactors")
        code, _ = c.auth("SCRAM-SHA-256", auth_object, initial_response_ok=False)
        assert code == 235
        c.sendmail("mailactors@localhost", ["a@localhost", "b@localhost"], msg)
    localserve.stop()
    stored = localserve.inbox()
    assert len(stored) == 2  # one copy per recipient
    for s in stored:
        assert_stored(s, msg)


def test_scram_wrong_password_fails(localserve: Served, client_tls: ssl.SSLContext) -> None:
    with smtplib.SMTP_SSL("127.0.0.1", localserve.port("submissions"), timeout=10, context=client_tls) as c:
        c.ehlo()
        auth_object = scram_auth_object("mailactors", "wrong")

        with pytest.raises(smtplib.SMTPAuthenticationError) as err:
            c.auth("SCRAM-SHA-256", auth_object, initial_response_ok=False)
        assert err.value.smtp_code == 535


@pytest.mark.parametrize(
    ("rcpt", "at", "code"),
    [
        ("rcpttotemperror@localhost", "rcpt", 451),
        ("rcpttopermerror@localhost", "rcpt", 550),
        ("rcptto421@localhost", "rcpt", 421),
        ("temperror@localhost", "data", 451),
        ("permerror@localhost", "data", 550),
        ("user554@localhost", "data", 554),
    ],
)
def test_localserve_error_localparts(localserve: Served, rcpt: str, at: str, code: int) -> None:
    with smtplib.SMTP("127.0.0.1", localserve.port("smtp"), timeout=10) as c:
        c.ehlo()
        assert c.mail("sender@example.org")[0] == 250
        rcode, _ = c.rcpt(rcpt)
        if at == "rcpt":
            assert rcode == code
            return
        assert rcode == 250
        dcode, _ = c.data(message("err"))
        assert dcode == code


def test_localserve_mailfrom_error(localserve: Served) -> None:
    with smtplib.SMTP("127.0.0.1", localserve.port("smtp"), timeout=10) as c:
        c.ehlo()
        assert c.mail("mailfrom451@example.org")[0] == 451
        assert c.mail("mailfrompermerror@example.org")[0] == 550
        assert c.mail("fine@example.org")[0] == 250


def test_pipelined_transaction_over_raw_socket(localserve: Served) -> None:
    """All commands in one write (RFC 2920); replies come back in order."""
    with socket.create_connection(("127.0.0.1", localserve.port("smtp")), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        s.sendall(
            b"EHLO pipe.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<mailactors@localhost>\r\n"
            b"RCPT TO:<x@localhost>\r\nDATA\r\n"
        )
        codes = []
        while len(codes) < 5:
            line = f.readline()
            if line[3:4] == b" ":
                codes.append(int(line[:3]))
        assert codes == [250, 250, 250, 250, 354]
        s.sendall(b"Subject: pipe\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        assert f.readline().startswith(b"250 ")
        assert f.readline().startswith(b"221 ")
    localserve.stop()
    assert len(localserve.inbox()) == 2


def test_session_summary_matches_stored_file(localserve: Served) -> None:
    """The summary the session computes describes the file exactly as stored."""
    msg = message("summary", b"--b\r\n")
    with smtplib.SMTP("127.0.0.1", localserve.port("smtp"), timeout=10) as c:
        c.sendmail("sender@example.org", ["mailactors@localhost"], msg)
    localserve.stop()
    store = AccountStore(localserve.config.static.data_dir / "accounts" / "mailactors", log, readonly=True)
    store.init()
    try:
        mb = store.mailbox("Inbox")
        assert mb is not None
        (info,) = store.messages(mb.id)
        f = store.open_message(info)
        try:
            data = f.read()
        finally:
            f.close()
        assert store.summaries(mb.id, [info.uid]) == {info.uid: summarize(data)}
    finally:
        store.close()


def test_large_messages_spill_to_disk_and_arrive_whole(localserve: Served) -> None:
    """Messages over the in-memory limit are spooled while they arrive; one just under it
    stays in memory; both are stored byte for byte (after our trace fields)."""
    from mailactors.actors.session import SUMMARY_IN_SESSION_MAX

    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"
    big = message("big", line * (3 * SUMMARY_IN_SESSION_MAX // len(line)))
    small = message("small", line * ((SUMMARY_IN_SESSION_MAX - 4096) // len(line)))
    with smtplib.SMTP("127.0.0.1", localserve.port("smtp"), timeout=30) as c:
        c.sendmail("sender@example.org", ["mailactors@localhost"], big)
        c.sendmail("sender@example.org", ["mailactors@localhost"], small)
    localserve.stop()
    stored = localserve.inbox()
    assert len(stored) == 2
    assert_stored(stored[0], big)
    assert_stored(stored[1], small)
    spool = localserve.config.static.data_dir / "tmp"
    assert list(spool.iterdir()) == []
