"""Backups of a running server: deliveries and expunges go on while `backup` runs.

Each backup must pass verifydata, and a server started on it must serve every
message that was acknowledged (250) before that backup began, byte for byte.
"""

from __future__ import annotations

import imaplib
import logging
import os
import re
import shutil
import smtplib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import Served, start_localserve  # type: ignore[import-not-found]

from mailactors.storage.backup import backup_data_dir
from mailactors.storage.verify import verify_data_dir

log = logging.getLogger("mailactors.tests")

# Config files a restored directory needs besides its data/ (localserve layout).
CONFIG_FILES = ("mailactors.conf", "domains.conf", "localserve-cert.pem", "localserve-key.pem")


def message(n: int) -> bytes:
    body = "".join(f"line {i} of live message {n}\r\n" for i in range(n % 40))
    return (
        f"From: Sender <sender@example.org>\r\nTo: mailactors@localhost\r\n"
        f"Subject: live {n}\r\nMessage-ID: <live.{n}@example.org>\r\n\r\n{body}"
    ).encode()


@dataclass
class Traffic:
    """What the load thread did, with monotonic times."""

    acked: list[tuple[str, bytes, float]] = field(default_factory=list)  # subject, bytes, 250 at
    expunge_started: dict[str, float] = field(default_factory=dict)  # subject -> time
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kept(self, began: float, ended: float) -> dict[str, bytes]:
        """Messages a backup made from `began` to `ended` must hold: acknowledged before
        it began and not expunged before it ended. (One expunged while it ran may be
        in it or not: both are consistent states.)"""
        with self.lock:
            return {
                subject: data
                for subject, data, at in self.acked
                if at < began and self.expunge_started.get(subject, float("inf")) > ended
            }

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def load(served: Served, traffic: Traffic, stop: threading.Event) -> None:
    """Deliver over SMTP in a loop; every fifth message, expunge the oldest over IMAP."""
    try:
        smtp = smtplib.SMTP("127.0.0.1", served.port("smtp"), timeout=30)
        imap = imaplib.IMAP4("127.0.0.1", served.port("imap"), timeout=30)
        try:
            smtp.ehlo("load.example.org")
            imap.login("mailactors", "any password works in localserve")
            imap.select("INBOX")
            n = 0
            while not stop.is_set():
                data = message(n)
                assert smtp.sendmail("sender@example.org", ["mailactors@localhost"], data) == {}
                with traffic.lock:
                    traffic.acked.append((f"live {n}", data, time.monotonic()))
                n += 1
                if n % 5 == 0:
                    # NOOP: the session learns of the new messages (EXISTS).
                    assert imap.noop()[0] == "OK"
                    typ, fetched = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                    assert typ == "OK"
                    part = fetched[0]
                    assert isinstance(part, tuple)
                    subject = part[1].decode().split(":", 1)[1].strip()
                    with traffic.lock:
                        traffic.expunge_started[subject] = time.monotonic()
                    assert imap.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
                    assert imap.expunge()[0] == "OK"
        finally:
            smtp.quit()
            imap.logout()
    except BaseException as exc:
        traffic.errors.append(exc)


def wait_for(traffic: Traffic, count: int) -> None:
    deadline = time.monotonic() + 30
    while traffic.count() < count:
        assert not traffic.errors, traffic.errors
        assert time.monotonic() < deadline, f"only {traffic.count()} deliveries"
        time.sleep(0.01)


def restore_dir(live: Path, target: Path) -> Path:
    """A localserve directory whose data/ will be the backup: the live config copied."""
    target.mkdir()
    for name in CONFIG_FILES:
        shutil.copy2(live / name, target / name)
    return target / "data"


def served_messages(served: Served) -> dict[str, bytes]:
    """Every message of INBOX fetched over IMAP, by subject."""
    imap = imaplib.IMAP4("127.0.0.1", served.port("imap"), timeout=30)
    try:
        imap.login("mailactors", "any password works in localserve")
        typ, data = imap.select("INBOX")
        assert typ == "OK"
        out: dict[str, bytes] = {}
        if data[0] == b"0":
            return out
        typ, fetched = imap.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK"
        for part in fetched:
            if isinstance(part, tuple):
                found = re.search(rb"^Subject: (.*?)\r$", part[1], re.M)
                assert found is not None
                out[found.group(1).decode()] = part[1]
        return out
    finally:
        imap.logout()


def check_restored(directory: Path, expected: dict[str, bytes]) -> None:
    """verifydata passes, and a server on the backup serves every expected message."""
    assert verify_data_dir(directory / "data") == []
    restored = start_localserve(directory)
    try:
        served = served_messages(restored)
    finally:
        restored.stop()
    missing = sorted(set(expected) - set(served))
    assert missing == [], f"{len(missing)} acknowledged messages missing from the backup"
    for subject, data in expected.items():
        # The server prepends trace headers (Received, Authentication-Results); the
        # rest is the bytes we sent.
        assert served[subject].endswith(data), subject
        assert b"Received: " in served[subject][: -len(data)]


def test_backup_while_delivering_and_expunging(tmp_path: Path) -> None:
    live = start_localserve(tmp_path / "live")
    traffic = Traffic()
    stop = threading.Event()
    thread = threading.Thread(target=load, args=(live, traffic, stop), name="test-load")
    thread.start()
    try:
        wait_for(traffic, 30)

        # The function, in this process.
        first = tmp_path / "restore1"
        first_data = restore_dir(live.directory, first)
        began = time.monotonic()
        lines: list[str] = []
        summary = backup_data_dir(live.config.static.data_dir, first_data, log, lines.append)
        expected_first = traffic.kept(began, time.monotonic())
        during_first = traffic.count()
        assert summary.problems == (), summary.problems
        assert any(line.startswith("accounts/mailactors/index.db: ") for line in lines), lines

        # Enough messages in the mailbox that the expunges during the slower command
        # (a process start, with deliveries going on) leave plenty to check.
        wait_for(traffic, during_first + 60)

        # The command, in another process, while this one keeps delivering.
        second = tmp_path / "restore2"
        second_data = restore_dir(live.directory, second)
        env = {k: v for k, v in os.environ.items() if k != "MAILACTORS_CONF"}
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "mailactors", "-config", str(live.config.path),
             "backup", str(second_data)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )
        ended = time.monotonic()
        expected_second = traffic.kept(began, ended)
        # Deliveries did go on while the command ran (it takes a process start at least).
        with traffic.lock:
            assert any(began <= at <= ended for _, _, at in traffic.acked)
        assert result.returncode == 0, result.stderr
        assert re.search(r"^backup: \d+ databases, ", result.stdout, re.M), result.stdout
        wait_for(traffic, traffic.count() + 5)
    finally:
        stop.set()
        thread.join(30)
        live.stop()
    assert traffic.errors == []
    # Both backups have plenty to check, the second some messages the first never saw.
    assert len(expected_first) >= 20 and len(expected_second) >= 20
    assert set(expected_second) - set(expected_first)
    check_restored(first, expected_first)
    check_restored(second, expected_second)
