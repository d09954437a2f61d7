"""Known mail-server attacks and policy, against a real server with localserve off."""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Served, start_localserve  # type: ignore[import-not-found]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    served = start_localserve(tmp_path / "server", localserve=False)
    try:
        yield served
    finally:
        served.stop()


def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def read_reply(f) -> tuple[int, list[bytes]]:  # type: ignore[no-untyped-def]
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed"
        lines.append(line)
        if line[3:4] != b"-":
            return int(line[:3]), lines


def test_never_an_open_relay(server: Served) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as c:
        c.ehlo()
        c.mail("spammer@example.com")
        code, text = c.rcpt("victim@example.net")
        assert code == 550 and b"5.7.1" in text
        code, text = c.rcpt("nobody@localhost")
        assert code == 550 and b"5.1.1" in text
        assert c.rcpt("mailactors@localhost")[0] == 250


def test_submission_requires_auth_and_tls(server: Served, client_tls: ssl.SSLContext) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as c:
        c.ehlo()
        code, text = c.docmd("AUTH", "PLAIN " + plain("mailactors", "mailactors"))
        assert code == 538, text
        code, _ = c.docmd("MAIL", "FROM:<mailactors@localhost>")
        assert code == 530
        c.starttls(context=client_tls)
        c.ehlo()
        code, _ = c.docmd("MAIL", "FROM:<mailactors@localhost>")
        assert code == 530
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.login("mailactors", "wrong password")
        c.login("mailactors", "mailactors")
        code, text = c.docmd("MAIL", "FROM:<someoneelse@localhost>")
        assert code == 550 and b"5.7.1" in text
        assert c.docmd("MAIL", "FROM:<mailactors@localhost>")[0] == 250


def test_auth_brute_force_is_rate_limited(server: Served, client_tls: ssl.SSLContext) -> None:
    port = server.port("submissions")
    codes = []
    for i in range(12):
        with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=client_tls) as c:
            c.ehlo()
            code, _ = c.docmd("AUTH", "PLAIN " + plain("mailactors", f"guess{i}"))
            codes.append(code)
    assert codes[:10] == [535] * 10
    assert codes[10:] == [454, 454]
    # Even the right password is refused while the IP is locked out.
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=client_tls) as c:
        c.ehlo()
        code, _ = c.docmd("AUTH", "PLAIN " + plain("mailactors", "mailactors"))
        assert code == 454


def test_starttls_command_injection_is_discarded(server: Served, client_tls: ssl.SSLContext) -> None:
    """Plaintext pipelined after STARTTLS must not be executed inside TLS (RFC 3207 sec. 4)."""
    with socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=10) as raw:
        f = raw.makefile("rb")
        assert read_reply(f)[0] == 220
        raw.sendall(b"EHLO attacker.example\r\n")
        assert read_reply(f)[0] == 250
        raw.sendall(b"STARTTLS\r\nHELP\r\n")
        assert read_reply(f)[0] == 220
        with client_tls.wrap_socket(raw, server_hostname="localhost") as tls:
            tf = tls.makefile("rb")
            tls.sendall(b"NOOP\r\n")
            code, lines = read_reply(tf)
            # Had the injected HELP run, its 214 would come first.
            assert code == 250, lines
            tls.sendall(b"QUIT\r\n")
            assert read_reply(tf)[0] == 221


@pytest.mark.parametrize("fake_end", [b"\r\n.\n", b"\n.\r\n", b"\n.\n"])
def test_smtp_smuggling_bare_lf_dot(server: Served, fake_end: bytes) -> None:
    """A bare-LF dot line never ends DATA; the message with it is rejected, nothing smuggled."""
    with socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=10) as s:
        f = s.makefile("rb")
        assert read_reply(f)[0] == 220
        s.sendall(b"EHLO sender.example\r\n")
        assert read_reply(f)[0] == 250
        s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<mailactors@localhost>\r\nDATA\r\n")
        assert [read_reply(f)[0] for _ in range(3)] == [250, 250, 354]
        smuggled = (
            b"Subject: first\r\n\r\nhello" + fake_end +
            b"MAIL FROM:<admin@localhost>\r\nRCPT TO:<mailactors@localhost>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nevil\r\n.\r\n"
        )
        s.sendall(smuggled)
        code, lines = read_reply(f)
        assert code == 550, lines
        s.sendall(b"QUIT\r\n")
        assert read_reply(f)[0] == 221
    server.stop()
    assert server.inbox() == []


def test_too_many_errors_disconnects(server: Served) -> None:
    with socket.create_connection(("127.0.0.1", server.port("smtp")), timeout=10) as s:
        f = s.makefile("rb")
        read_reply(f)
        codes = []
        for _ in range(30):
            try:
                s.sendall(b"BOGUS\r\n")
            except OSError:
                break
            line = f.readline()
            if not line:
                break
            codes.append(int(line[:3]))
        assert codes[-1] == 421
        assert all(c == 500 for c in codes[:-1])
