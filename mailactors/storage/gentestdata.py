"""gentestdata: write a deterministic data directory for upgrade and backup tests.

Each kind of database has its own generator in GENERATORS, called in order with
the data directory; running them twice gives the same accounts, mailboxes,
uids, flags, modseqs and message bytes. Clock-derived values (UIDVALIDITY) are
pinned so they too are the same every time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from mailactors.protocol.sasl.scram import derive_credentials
from mailactors.storage.account import INBOX, AccountStore, DeliveryRequest
from mailactors.storage.files import create_spool_file

# The localserve account comes first, so `localserve` can serve a generated directory.
TEST_ACCOUNTS = ("mailactors", "alice", "bob")

# The password every generated account gets (SCRAM-SHA-256 hash, fixed salt).
TEST_PASSWORD = "mailactors"

# The received time of the first generated message; each next one is a minute later.
_FIRST_RECEIVED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

# UIDVALIDITY normally comes from the clock (see AccountStore.init); pinned here.
_FIRST_UIDVALIDITY = 1000

Generator = Callable[[Path, logging.Logger], None]


class GenTestDataError(Exception):
    """The target directory cannot be used (it exists and is not empty)."""


@dataclass(frozen=True, slots=True)
class _Planned:
    mailbox: str
    subject: str
    body_lines: int
    flags: tuple[str, ...] = ()


def sample_message(account: str, index: int, subject: str, body_lines: int) -> bytes:
    """A small, deterministic RFC 5322 message."""
    date = (_FIRST_RECEIVED + timedelta(minutes=index)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    head = (
        f"From: Sender {index} <sender{index}@example.org>\r\n"
        f"To: {account}@localhost\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <{account}.{index}@gentestdata.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
    )
    body = "".join(f"line {n} of message {index} for {account}\r\n" for n in range(body_lines))
    return (head + body).encode()


def _plan(account: str) -> list[_Planned]:
    planned = [
        _Planned(INBOX, "hello", 3),
        _Planned(INBOX, "flagged one", 10, ("\\Flagged",)),
        _Planned(INBOX, "read one", 1, ("\\Seen",)),
        _Planned(INBOX, "to be expunged", 5, ("\\Deleted",)),
        _Planned(INBOX, "answered and keyword", 40, ("\\Answered", "$Important")),
        _Planned("Archive", "archived", 7, ("\\Seen",)),
        _Planned("Lists/Python", "a list message", 200),
        _Planned("Lists/Python", "another, expunged", 2, ("\\Deleted", "\\Seen")),
    ]
    if account == TEST_ACCOUNTS[0]:
        planned += [_Planned(INBOX, f"bulk {n}", n % 13, ("\\Flagged",) if n % 4 == 0 else ())
                    for n in range(12)]
    return planned


def generate_accounts(data_dir: Path, log: logging.Logger) -> None:
    """accounts/<name>/: default mailboxes plus Lists/Python, messages with flags,
    expunged messages, a COPY (two rows sharing a hard-linked file), a password."""
    spool_dir = data_dir / "tmp"
    spool_dir.mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(TEST_ACCOUNTS):
        store = AccountStore(data_dir / "accounts" / name, log)
        store.init()
        try:
            with store.db.transaction() as conn:
                conn.execute("UPDATE uidvalidity SET next = ?", (_FIRST_UIDVALIDITY + 100 * n,))
            store.ensure_default_mailboxes()
            store.create_mailbox("Lists/Python")
            store.subscribe("Lists/Python")
            for index, planned in enumerate(_plan(name)):
                data = sample_message(name, index, planned.subject, planned.body_lines)
                with create_spool_file(spool_dir) as spool:
                    spool.write(data)
                    spool.finish()
                    request = DeliveryRequest(
                        planned.mailbox,
                        spool.path,
                        _FIRST_RECEIVED + timedelta(minutes=index),
                        planned.flags,
                    )
                    outcome = store.deliver(request)
                if outcome.error is not None:
                    raise GenTestDataError(f"{name}: delivery failed: {outcome.error}")
            inbox = store.mailbox(INBOX)
            assert inbox is not None
            store.copy_messages(inbox.id, [1, 2], "Archive")
            for mailbox in store.list_mailboxes():
                store.expunge(mailbox.id)
            creds = derive_credentials(TEST_PASSWORD, f"gentestdata-{name}".encode(), 4096)
            store.set_password_credentials(
                creds.salt, creds.iterations, creds.stored_key, creds.server_key
            )
        finally:
            store.close()


# One generator per kind of database, in the order they run. A module adding a
# database (queue, DMARC evaluations, TLS results, received reports) adds its own.
GENERATORS: tuple[Generator, ...] = (generate_accounts,)


def generate_test_data(data_dir: Path, log: logging.Logger) -> None:
    """Write the test data directory; refuses a directory that is not empty."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise GenTestDataError(f"{data_dir} exists and is not an empty directory")
    data_dir.mkdir(parents=True, exist_ok=True)
    for generate in GENERATORS:
        generate(data_dir, log)


def run_gentestdata(data_dir: Path, stdout: TextIO, stderr: TextIO) -> int:
    """The `gentestdata DIR` command: returns the exit code."""
    try:
        generate_test_data(data_dir, logging.getLogger("mailactors.gentestdata"))
    except (GenTestDataError, OSError) as exc:
        print(f"gentestdata: {exc}", file=stderr)
        return 1
    print(f"test data written to {data_dir}", file=stdout)
    return 0
