"""imaplib against a real in-process localserve: the IMAP server end to end."""

from __future__ import annotations

import imaplib
import re
import smtplib
import socket
import ssl
import time

import pytest
from conftest import Served, start_localserve  # type: ignore[import-not-found]

from mailactors.actors.limiter import MAX_AUTH_FAILURES
from mailactors.protocol.sasl.scram import ScramClient, new_nonce


def message(subject: str, body: bytes = b"Hello there.\r\n") -> bytes:
    return (
        b"From: Sender <sender@example.org>\r\n"
        b"To: mailactors@localhost\r\n"
        b"Subject: " + subject.encode() + b"\r\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        b"\r\n" + body
    )


def connect(served: Served) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", served.port("imap"), timeout=10)
    m.login("mailactors", "any password works in localserve")
    return m


def untagged(m: imaplib.IMAP4, name: str) -> list[bytes]:
    return [x for x in m.untagged_responses.pop(name, []) if isinstance(x, bytes)]


def test_login_select_append_fetch_store_expunge(localserve: Served) -> None:
    m = connect(localserve)
    try:
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"0"]
        typ, data = m.append("INBOX", r"(\Flagged)", None, message("one"))
        assert typ == "OK"
        assert re.match(rb"\[APPENDUID \d+ 1\]", data[0] or b"")
        m.append("INBOX", None, None, message("two", b"second body\r\n"))
        typ, data = m.noop()
        assert typ == "OK"
        typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE)")
        assert typ == "OK" and len(data) == 2
        first = data[0]
        assert isinstance(first, bytes)
        assert b"UID 1" in first and b"\\Flagged" in first and b'"one"' in first
        typ, data = m.fetch("2", "(BODY.PEEK[TEXT])")
        assert typ == "OK"
        part = data[0]
        assert isinstance(part, tuple) and part[1] == b"second body\r\n"
        typ, data = m.fetch("2", "(FLAGS)")
        assert b"\\Seen" not in (data[0] or b"")  # PEEK did not set \Seen
        typ, data = m.fetch("2", "(BODY[])")
        assert isinstance(data[0], tuple) and data[0][1] == message("two", b"second body\r\n")
        typ, data = m.fetch("2", "(FLAGS)")
        assert b"\\Seen" in (data[0] or b"")  # a non-PEEK body fetch sets \Seen
        typ, data = m.store("1", "+FLAGS", r"(\Deleted)")
        assert typ == "OK" and b"\\Deleted" in (data[0] or b"")
        typ, data = m.search(None, "DELETED")
        assert data == [b"1"]
        typ, data = m.search(None, "SUBJECT", "two")
        assert data == [b"2"]
        typ, data = m.uid("SEARCH", "UNDELETED", "TEXT", "second")
        assert data == [b"2"]
        typ, data = m.expunge()
        assert typ == "OK" and data == [b"1"]
        typ, data = m.fetch("1", "(UID)")
        assert data == [b"1 (UID 2)"]
        typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UNSEEN HIGHESTMODSEQ)")
        assert typ == "OK" and b"MESSAGES 1 UIDNEXT 3 UNSEEN 0" in (data[0] or b"")
    finally:
        m.logout()


def test_mailbox_management_copy_move(localserve: Served) -> None:
    m = connect(localserve)
    try:
        assert m.create("Lists/imap")[0] == "OK"
        typ, data = m.create("Lists/imap")
        assert typ == "NO" and b"ALREADYEXISTS" in (data[0] or b"")
        typ, data = m.list('""', "Lists*")
        assert data == [b'(\\HasChildren) "/" Lists', b'(\\HasNoChildren) "/" Lists/imap']
        assert m.subscribe("Lists/imap")[0] == "OK"
        typ, data = m.lsub('""', "Lists/*")
        assert data == [b'() "/" Lists/imap']
        assert m.rename("Lists", "Groups")[0] == "OK"
        typ, data = m.list('""', "%")
        names = [d.rsplit(b" ", 1)[1] for d in data if isinstance(d, bytes)]
        assert b"Groups" in names and b"Lists" not in names and b"INBOX" in names
        m.append("INBOX", None, None, message("copy me"))
        m.select("INBOX")
        typ, data = m.copy("1", "Groups/imap")
        assert typ == "OK" and re.match(rb"\[COPYUID \d+ 1 1\]", data[0] or b"")
        typ, data = m.copy("1", "Nonexistent")
        assert typ == "NO" and b"TRYCREATE" in (data[0] or b"")
        typ, data = m._simple_command("MOVE", "1", "Archive")
        assert typ == "OK"
        assert untagged(m, "EXPUNGE") == [b"1"]
        assert m.status("Archive", "(MESSAGES)")[1] == [b"Archive (MESSAGES 1)"]
        assert m.status("Groups/imap", "(MESSAGES)")[1] == [b"Groups/imap (MESSAGES 1)"]
        typ, data = m.delete("Groups")
        assert typ == "NO"  # it has children
        assert m.delete("Groups/imap")[0] == "OK"
        assert m.delete("Groups")[0] == "OK"
        typ, data = m.select("Groups/imap")
        assert typ == "NO" and b"NONEXISTENT" in (data[0] or b"")
    finally:
        m.logout()


def test_two_sessions_see_each_others_changes(localserve: Served) -> None:
    a = connect(localserve)
    b = connect(localserve)
    try:
        a.select("INBOX")
        b.select("INBOX")
        a.append("INBOX", None, None, message("from a"))
        a.append("INBOX", None, None, message("from a too"))
        b.noop()
        assert untagged(b, "EXISTS")[-1] == b"2"
        a.store("1", "+FLAGS", r"(\Flagged)")
        b.noop()
        fetches = untagged(b, "FETCH")
        assert fetches == [b"1 (FLAGS (\\Flagged))"]
        a.store("1", "+FLAGS", r"(\Deleted)")
        a.expunge()
        # RFC 3501 7.4.1: no EXPUNGE while answering a (non-UID) FETCH ...
        typ, data = b.fetch("1:*", "(UID)")
        assert untagged(b, "EXPUNGE") == []
        assert data == [b"2 (UID 2)"]
        # ... but after NOOP.
        b.noop()
        assert untagged(b, "EXPUNGE") == [b"1"]
        typ, data = b.fetch("1", "(UID)")
        assert data == [b"1 (UID 2)"]
    finally:
        a.logout()
        b.logout()


def test_idle_sees_smtp_delivery(localserve: Served) -> None:
    m = connect(localserve)
    try:
        m.select("INBOX")
        tag = m._new_tag()
        m.send(tag + b" IDLE\r\n")
        assert m.readline().startswith(b"+ ")
        with smtplib.SMTP("127.0.0.1", localserve.port("smtp"), timeout=10) as s:
            s.sendmail("sender@example.org", ["mailactors@localhost"], message("idle"))
        assert m.readline() == b"* 1 EXISTS\r\n"
        m.send(b"DONE\r\n")
        assert m.readline() == tag + b" OK IDLE terminated\r\n"
        typ, data = m.fetch("1", "(ENVELOPE)")
        assert b'"idle"' in (data[0] or b"")
    finally:
        m.logout()


def test_condstore_qresync(localserve: Served) -> None:
    m = connect(localserve)
    other = connect(localserve)
    try:
        for i in range(4):
            m.append("INBOX", None, None, message(f"m{i}"))
        assert m._simple_command("ENABLE", "QRESYNC")[0] == "OK"
        assert untagged(m, "ENABLED") == [b"QRESYNC"]
        typ, _ = m.select("INBOX")
        uidvalidity = int(untagged(m, "UIDVALIDITY")[0])
        modseq = int(untagged(m, "HIGHESTMODSEQ")[0])
        typ, data = m.fetch("1:*", "(MODSEQ)")
        assert len(data) == 4 and all(b"MODSEQ" in (d or b"") for d in data)
        # STORE UNCHANGEDSINCE: message 1 passes, then fails once changed.
        typ, data = m._simple_command("STORE", "1", f"(UNCHANGEDSINCE {modseq})", "+FLAGS", r"(\Seen)")
        assert typ == "OK"
        typ, data = m._simple_command("STORE", "1", f"(UNCHANGEDSINCE {modseq})", "+FLAGS", r"(\Answered)")
        assert typ == "OK" and b"[MODIFIED 1]" in (data[0] or b"")
        m.untagged_responses.clear()
        m.close()
        # Changes while the client is away.
        other.select("INBOX")
        other.store("2", "+FLAGS", r"(\Flagged \Deleted)")
        other.store("3", "+FLAGS", r"(\Deleted)")
        other.expunge()
        other.append("INBOX", None, None, message("new"))
        typ, data = m._simple_command("SELECT", "INBOX", f"(QRESYNC ({uidvalidity} {modseq}))")
        assert typ == "OK"
        m.state = "SELECTED"
        assert untagged(m, "VANISHED") == [b"(EARLIER) 2:3"]
        fetches = untagged(m, "FETCH")
        assert any(f.startswith(b"1 (UID 1 FLAGS (\\Seen)") for f in fetches)
        assert any(b"UID 5 " in f for f in fetches)
        new_modseq = int(untagged(m, "HIGHESTMODSEQ")[0])
        assert new_modseq > modseq
        typ, data = m.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {new_modseq})")
        assert data == [None]
        typ, data = m.uid("SEARCH", "MODSEQ", str(modseq + 1))
        assert typ == "OK" and data[0] is not None and data[0].startswith(b"1 5 (MODSEQ")
        # Expunges reach a QRESYNC client as VANISHED, not EXPUNGE.
        other.store("1", "+FLAGS", r"(\Deleted)")
        other.expunge()
        m.noop()
        assert untagged(m, "VANISHED") == [b"1"]
        assert untagged(m, "EXPUNGE") == []
        typ, data = m._simple_command(
            "SELECT", "INBOX", f"(QRESYNC ({uidvalidity + 1} {modseq}))"
        )
        assert typ == "OK" and untagged(m, "VANISHED") == []  # UIDVALIDITY mismatch: no resync
    finally:
        m.logout()
        other.logout()


def test_starttls_and_scram(localserve: Served, client_tls: ssl.SSLContext) -> None:
    m = imaplib.IMAP4("127.0.0.1", localserve.port("imap"), timeout=10)
    try:
        assert "STARTTLS" in m.capabilities
        typ, _ = m.starttls(client_tls)
        assert typ == "OK"
        assert "STARTTLS" not in m.capabilities
        client = ScramClient("mailactors", "mailactors", new_nonce())
        steps = iter(
            [
                lambda _c: client.client_first(),
                lambda c: client.server_first(c),
                lambda c: (client.server_final(c), b"")[1],
            ]
        )
        typ, _ = m.authenticate("SCRAM-SHA-256", lambda c: next(steps)(c))
        assert typ == "OK"
        assert m.select("INBOX")[0] == "OK"
    finally:
        m.logout()


def test_imaps(localserve: Served, client_tls: ssl.SSLContext) -> None:
    m = imaplib.IMAP4_SSL("127.0.0.1", localserve.port("imaps"), ssl_context=client_tls, timeout=10)
    try:
        m.login("mailactors", "whatever")
        assert m.select("INBOX")[0] == "OK"
    finally:
        m.logout()


def test_plaintext_login_refused_outside_localserve(tmp_path, client_tls: ssl.SSLContext) -> None:  # type: ignore[no-untyped-def]
    served = start_localserve(tmp_path / "strict", localserve=False)
    try:
        m = imaplib.IMAP4("127.0.0.1", served.port("imap"), timeout=10)
        try:
            assert "LOGINDISABLED" in m.capabilities
            with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
                m.login("mailactors", "mailactors")
            m.starttls(client_tls)
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                m.login("mailactors", "wrong password")
            assert m.login("mailactors", "mailactors")[0] == "OK"
        finally:
            m.logout()
    finally:
        served.stop()


def test_bad_input_keeps_session(localserve: Served) -> None:
    with socket.create_connection(("127.0.0.1", localserve.port("imap")), timeout=10) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"* OK")

        def cmd(line: bytes) -> list[bytes]:
            sock.sendall(line)
            out = []
            while True:
                got = f.readline()
                out.append(got)
                if not got.startswith(b"*") and not got.startswith(b"+"):
                    return out

        assert cmd(b"a1 FETCH 1 FLAGS\r\n")[-1].startswith(b"a1 BAD")  # not selected
        assert cmd(b"a2 LOGIN mailactors x\r\n")[-1].startswith(b"a2 OK")
        assert cmd(b"a3 SELECT INBOX\r\n")[-1].startswith(b"a3 OK")
        assert cmd(b"a4 FETCH 1 FLAGS\r\n")[-1].startswith(b"a4 BAD")  # no message 1
        assert cmd(b"a5 UID FETCH 1:* FLAGS\r\n")[-1].startswith(b"a5 OK")
        assert cmd(b"a6 FROB\r\n")[-1].startswith(b"a6 BAD")
        assert cmd(b"a7 SEARCH CHARSET KOI8-R ALL\r\n")[-1].startswith(b"a7 NO [BADCHARSET")
        assert cmd(b"a8 APPEND INBOX {99999999999}\r\n")[-1].startswith(b"a8 NO [TOOBIG]")
        assert cmd(b"a9 SELECT INBOX (QRESYNC (1 1))\r\n")[-1].startswith(b"a9 BAD")
        assert cmd(b"b1 NOOP\r\n")[-1] == b"b1 OK NOOP completed\r\n"
        sock.sendall(b"b2 LOGOUT\r\n")
        assert f.readline().startswith(b"* BYE")
        time.sleep(0)


def test_store_answers_every_message_and_silent(localserve: Served) -> None:
    m = connect(localserve)
    try:
        m.append("INBOX", r"(\Seen)", None, message("a"))
        m.append("INBOX", None, None, message("b"))
        m.select("INBOX")
        typ, data = m.store("1:2", "+FLAGS", r"(\Seen)")
        # Message 1 did not change; it is reported all the same.
        assert sorted(d for d in data if isinstance(d, bytes)) == [
            b"1 (FLAGS (\\Seen))",
            b"2 (FLAGS (\\Seen))",
        ]
        typ, data = m.store("1:2", "-FLAGS.SILENT", r"(\Seen)")
        assert typ == "OK" and data == [None]
        typ, data = m.uid("STORE", "2", "+FLAGS", r"(\Answered)")
        assert data == [b"2 (UID 2 FLAGS (\\Answered))"]
    finally:
        m.logout()


def test_starttls_discards_pipelined_plaintext(
    localserve: Served, client_tls: ssl.SSLContext
) -> None:
    with socket.create_connection(("127.0.0.1", localserve.port("imap")), timeout=10) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"* OK")
        # RFC 9051 6.2.1: commands injected behind STARTTLS must not run after TLS starts.
        sock.sendall(b"a STARTTLS\r\nb LOGIN mailactors x\r\n")
        assert f.readline() == b"a OK begin TLS negotiation now\r\n"
        with client_tls.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"c CAPABILITY\r\n")
            tf = tls.makefile("rb")
            caps = tf.readline()
            assert caps.startswith(b"* CAPABILITY") and b"AUTH=PLAIN" in caps
            assert tf.readline() == b"c OK CAPABILITY completed\r\n"
            tls.sendall(b"d SELECT INBOX\r\n")
            assert tf.readline().startswith(b"d BAD")  # not logged in: "b" never ran


def test_select_reports_first_unseen(localserve: Served) -> None:
    m = connect(localserve)
    try:
        m.append("INBOX", r"(\Seen)", None, message("read"))
        m.append("INBOX", None, None, message("unread"))
        m.select("INBOX")
        assert untagged(m, "UNSEEN") == [b"2"]
    finally:
        m.logout()


def test_failed_logins_are_limited(localserve: Served) -> None:
    """AUTH brute force: after MAX_AUTH_FAILURES failures the peer is refused."""

    with socket.create_connection(("127.0.0.1", localserve.port("imap")), timeout=10) as sock:
        f = sock.makefile("rb")
        f.readline()
        replies = []
        for i in range(MAX_AUTH_FAILURES + 2):
            # PLAIN with an authzid that differs from the user is always refused.
            sock.sendall(b"a%d AUTHENTICATE PLAIN b3RoZXIAbWFpbGFjdG9ycwB4\r\n" % i)
            replies.append(f.readline())
        assert all(b"NO" in r for r in replies)
        assert b"AUTHENTICATIONFAILED" in replies[0]
        assert b"UNAVAILABLE" in replies[-1]  # locked out after too many failures


def test_autologout(localserve: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    import mailactors.actors.imap.session as session

    monkeypatch.setattr(session, "IMAP_IDLE_TIMEOUT", 0.3)
    with socket.create_connection(("127.0.0.1", localserve.port("imap")), timeout=10) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"* OK")
        assert f.readline().startswith(b"* BYE")
        assert f.readline() == b""


def test_list_extended(localserve: Served) -> None:
    m = connect(localserve)
    try:
        m.create("Work/Projects/Alpha")
        m.subscribe("Work/Projects/Alpha")
        typ, data = m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "Work/%")
        assert typ == "OK"
        assert untagged(m, "LIST") == [
            b'(\\HasChildren) "/" Work/Projects ("CHILDINFO" ("SUBSCRIBED"))'
        ]
        typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
        listed = untagged(m, "LIST")
        assert len(listed) == 5 and all(b"\\HasNoChildren \\" in x for x in listed)
        typ, data = m._simple_command(
            "LIST", '""', "Work/Projects/*", "RETURN", "(SUBSCRIBED STATUS (MESSAGES UIDNEXT))"
        )
        assert untagged(m, "LIST") == [b'(\\HasNoChildren \\Subscribed) "/" Work/Projects/Alpha']
        assert untagged(m, "STATUS") == [b"Work/Projects/Alpha (MESSAGES 0 UIDNEXT 1)"]
        typ, data = m.list('""', '""')
        assert data == [b'(\\Noselect) "/" ""']
    finally:
        m.logout()


def test_imap4rev2(localserve: Served) -> None:
    m = connect(localserve)
    try:
        m.append("INBOX", None, None, message("rev2"))
        assert m._simple_command("ENABLE", "IMAP4rev2")[0] == "OK"
        assert untagged(m, "ENABLED") == [b"IMAP4rev2"]
        m.untagged_responses.clear()
        m.select("INBOX")
        assert untagged(m, "LIST") == [b'(\\HasNoChildren) "/" INBOX']
        assert "RECENT" not in m.untagged_responses
        typ, _ = m._simple_command("SEARCH", "ALL")
        # RFC 9051 6.4.4: IMAP4rev2 answers SEARCH with ESEARCH.
        esearch = untagged(m, "ESEARCH")
        assert typ == "OK" and len(esearch) == 1 and esearch[0].endswith(b" ALL 1")
    finally:
        m.logout()


def test_utf8_accept_mailbox_names(localserve: Served) -> None:
    m = connect(localserve)
    try:
        # Before UTF8=ACCEPT, names travel in modified UTF-7 (RFC 3501 5.1.3).
        assert m.create("&ANwAbgDv-cod&AOk-")[0] == "OK"
        m.enable("UTF8=ACCEPT")
        typ, data = m.list('""', "*cod*")
        assert data == ['(\\HasNoChildren) "/" "Ünïcodé"'.encode()]
        assert m.select('"Ünïcodé"')[0] == "OK"
    finally:
        m.logout()
