"""The supervisor restarts a dead StoreActor; SMTP sessions get the new one."""

from __future__ import annotations

import smtplib
import time

from conftest import Served  # type: ignore[import-not-found]


def test_store_restart_keeps_smtp_working(localserve: Served) -> None:
    old = localserve.server.store("mailactors")
    old.stop(block=True, timeout=10)  # as if it had crashed
    accepted: list[int] = []
    codes: list[int] = []
    deadline = time.monotonic() + 20
    i = 0
    while time.monotonic() < deadline and not accepted:
        body = f"Subject: after restart {i}\r\n\r\nhello\r\n".encode()
        with smtplib.SMTP("127.0.0.1", localserve.port("smtp"), timeout=10) as c:
            c.ehlo()
            c.mail("a@example.org")
            code, _ = c.rcpt("mailactors@localhost")
            if code == 250:
                code, _ = c.data(body)
            codes.append(code)
            if code == 250:
                accepted.append(i)
        i += 1
        time.sleep(0.1)
    assert accepted, f"no delivery after the restart: {codes}"
    # Until the restart, the session refused temporarily; it never claimed success.
    assert all(c in (250, 451) for c in codes), codes
    new = localserve.server.store("mailactors")
    assert new.actor_urn != old.actor_urn
    localserve.stop()
    stored = localserve.inbox()
    assert len(stored) == len(accepted)
    assert stored[0].endswith(f"Subject: after restart {accepted[0]}\r\n\r\nhello\r\n".encode())


def test_idle_session_follows_a_restarted_store(localserve: Served) -> None:
    """An IDLE session resubscribes to the new StoreActor and sees later deliveries."""
    from imapclient import IMAPClient  # type: ignore[import-untyped]

    client = IMAPClient("127.0.0.1", port=localserve.port("imap"), ssl=False, timeout=10)
    try:
        client.login("mailactors", "any")
        client.select_folder("INBOX")
        client.idle()
        old = localserve.server.store("mailactors")
        old.stop(block=True, timeout=10)
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "store was not restarted"
            try:
                if localserve.server.store("mailactors").actor_urn != old.actor_urn:
                    break
            except LookupError:
                pass  # between death and restart
            time.sleep(0.1)
        code = 0
        while code != 250:
            assert time.monotonic() < deadline, "no delivery after the restart"
            with smtplib.SMTP("127.0.0.1", localserve.port("smtp"), timeout=10) as c:
                c.ehlo()
                c.mail("a@example.org")
                c.rcpt("mailactors@localhost")
                code, _ = c.data(b"Subject: seen while idle\r\n\r\nhi\r\n")
            time.sleep(0.05)
        responses = client.idle_check(timeout=10)
        assert (1, b"EXISTS") in responses, responses
        client.idle_done()
    finally:
        client.logout()
