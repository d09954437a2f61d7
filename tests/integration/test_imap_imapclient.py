"""imapclient against a real in-process localserve."""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from pathlib import Path

import pytest
from conftest import Served, start_localserve  # type: ignore[import-not-found]
from imapclient import IMAPClient  # type: ignore[import-untyped]
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]


def message(subject: str) -> bytes:
    return (
        b"From: Sender <sender@example.org>\r\n"
        b"To: mailactors@localhost\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b"Content-Type: multipart/mixed; boundary=b1\r\n"
        b"\r\n--b1\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
        b"--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\nAQIDBA==\r\n--b1--\r\n"
    )


def client(served: Served) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=served.port("imap"), ssl=False, timeout=10)
    c.login("mailactors", "x")
    return c


def test_fetch_structure_sections_and_binary(localserve: Served) -> None:
    c = client(localserve)
    try:
        c.append("INBOX", message("parts"), flags=[b"$Label1"])
        info = c.select_folder("INBOX")
        assert info[b"EXISTS"] == 1 and b"HIGHESTMODSEQ" in info
        data = c.fetch([1], ["ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[1]", "BINARY.PEEK[2]", "FLAGS"])
        msg = data[1]
        assert msg[b"ENVELOPE"].subject == b"parts"
        assert msg[b"BODYSTRUCTURE"].is_multipart
        assert msg[b"BODY[1]"] == b"first part"
        assert msg[b"BINARY[2]"] == b"\x01\x02\x03\x04"
        assert b"$Label1" in msg[b"FLAGS"]
        assert c.search(["KEYWORD", "$Label1"]) == [1]
        assert c.search(["NOT", "KEYWORD", "$Label1"]) == []
        assert c.search(["SENTON", "23-Nov-2026"]) == []
        assert c.search(["LARGER", "10"]) == [1]
        c.add_flags([1], [b"\\Answered"])
        assert b"\\Answered" in c.get_flags([1])[1]
        c.remove_flags([1], [b"\\Answered"])
        assert b"\\Answered" not in c.get_flags([1])[1]
        folders = {f[2] for f in c.list_folders()}
        assert {"INBOX", "Sent", "Trash"} <= folders
        assert c.find_special_folder(b"\\Trash") == "Trash"
        status = c.folder_status("INBOX", ["MESSAGES", "UNSEEN", "SIZE"])
        assert status[b"MESSAGES"] == 1 and status[b"UNSEEN"] == 1
        assert c.namespace().personal[0][0] == ""
        assert c.id_({"name": "test"}) == ((b"name", b"mailactors"),)
    finally:
        c.logout()


def wait_for(c: IMAPClient, kind: bytes) -> list[tuple[object, ...]]:
    """IDLE responses until one of `kind` arrives (at most 5 s)."""
    seen: list[tuple[object, ...]] = []
    for _ in range(10):
        seen += c.idle_check(timeout=0.5)
        if any(len(r) > 1 and r[1] == kind for r in seen):
            return seen
    raise AssertionError(f"no {kind!r} in {seen}")


def test_idle_two_clients(localserve: Served, client_tls: ssl.SSLContext) -> None:
    watcher = IMAPClient(
        "127.0.0.1", port=localserve.port("imaps"), ssl=True, ssl_context=client_tls, timeout=10
    )
    watcher.login("mailactors", "x")
    writer = client(localserve)
    try:
        watcher.select_folder("INBOX")
        writer.select_folder("INBOX")
        watcher.idle()
        with smtplib.SMTP("127.0.0.1", localserve.port("smtp"), timeout=10) as s:
            s.sendmail("sender@example.org", ["mailactors@localhost"], message("one"))
        assert (1, b"EXISTS") in wait_for(watcher, b"EXISTS")
        writer.noop()
        writer.add_flags([1], [b"\\Flagged"])
        assert any(r[0] == 1 for r in wait_for(watcher, b"FETCH"))
        writer.delete_messages([1])
        writer.expunge()
        assert (1, b"EXPUNGE") in wait_for(watcher, b"EXPUNGE")
        watcher.idle_done()
        assert watcher.search() == []
    finally:
        watcher.logout()
        writer.logout()


def test_server_stop_says_bye(tmp_path: Path) -> None:
    served = start_localserve(tmp_path / "bye")
    try:
        sock = socket.create_connection(("127.0.0.1", served.port("imap")), timeout=10)
        f = sock.makefile("rb")
        sock.sendall(b"a LOGIN mailactors x\r\nb SELECT INBOX\r\nc IDLE\r\n")
        while not f.readline().startswith(b"+ "):
            pass
    finally:
        served.stop()
    try:
        # RFC 9051 7.1.5: the server says BYE before it closes the connection.
        assert f.readline().startswith(b"* BYE [UNAVAILABLE]")
        assert f.readline() == b""
    finally:
        f.close()
        sock.close()


def test_store_restart_ends_sessions_that_use_it(localserve: Served) -> None:
    c = client(localserve)
    c.select_folder("INBOX")
    localserve.server.store("mailactors").stop(block=True, timeout=10)
    with pytest.raises(IMAPClientError, match="UNAVAILABLE"):
        c.create_folder("Other")
    c.shutdown()  # the server said BYE after the NO
    # Once the supervisor has restarted the store, new sessions work again.
    deadline = time.monotonic() + 15
    while True:
        d = IMAPClient("127.0.0.1", port=localserve.port("imap"), ssl=False, timeout=10)
        try:
            d.login("mailactors", "x")
            d.create_folder("Other")
            d.logout()
            break
        except (IMAPClientError, OSError):
            d.shutdown()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
