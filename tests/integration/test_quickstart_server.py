"""quickstart end to end: the server starts on its files and the account logs in with the
printed password (IMAP and SMTP submission), and no other password works."""

from __future__ import annotations

import imaplib
import io
import smtplib
import ssl
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from conftest import read_mailbox, with_free_ports, with_test_dns  # type: ignore[import-not-found]

from mailactors.actors.quickstart import quickstart
from mailactors.actors.supervisor import start_server
from mailactors.cli import main
from mailactors.conf import load_config
from mailactors.conf.check import run_config_test


def test_server_starts_and_account_logs_in(tmp_path: Path, client_tls: ssl.SSLContext) -> None:
    result = quickstart("you@example.com", directory=tmp_path, ips=["127.0.0.1"])
    out, err = io.StringIO(), io.StringIO()
    assert run_config_test(result.config_path, out, err) == 0, err.getvalue()
    config = with_test_dns(with_free_ports(load_config(result.config_path)))
    server = start_server(config)
    try:
        with imaplib.IMAP4_SSL(
            "127.0.0.1", server.port("imaps"), ssl_context=client_tls, timeout=10
        ) as m:
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                m.login("you@example.com", "not the password")
            typ, _ = m.login("you@example.com", result.password)
            assert typ == "OK"
            typ, boxes = m.list()
            assert typ == "OK" and any(b"inbox" in b.lower() for b in boxes if b)
            m.logout()
        with smtplib.SMTP_SSL(
            "127.0.0.1", server.port("submissions"), context=client_tls, timeout=10
        ) as smtp:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtp.login("you", "wrong")
            smtp.login("you", result.password)
            refused = smtp.sendmail(
                "you@example.com",
                ["you@example.com"],
                b"From: you@example.com\r\nTo: you@example.com\r\nSubject: hi\r\n\r\nhello\r\n",
            )
            assert refused == {}
    finally:
        server.stop()
    inbox = [data for _, data in read_mailbox(config, "you", "Inbox")]
    assert len(inbox) == 1 and b"Subject: hi" in inbox[0]


def test_cli_quickstart(tmp_path: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["quickstart", "-dir", str(tmp_path), "-hostname", "mx.example.net", "a@example.net"]) == 0
    text = out.getvalue()
    assert "example.net. 300 IN MX 10 mx.example.net." in text
    assert load_config(tmp_path / "mailactors.conf").static.hostname == "mx.example.net"
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["-config", str(tmp_path / "mailactors.conf"), "config", "dnsrecords", "example.net"]) == 0
    assert "_dmarc.example.net. 300 IN TXT" in out.getvalue()
