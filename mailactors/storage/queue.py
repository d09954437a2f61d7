"""The outgoing queue: messages waiting for delivery to other servers.

Layout of the queue directory:

    index.db              messages and their recipients
    msg/<shard>/<id>      one file per message row; shard = hex(id // 4096)

Theory of operation. A queued message is one file plus one row per recipient;
each recipient has its own attempt count, next attempt time and last error, so a
message to three domains is retried per domain. Only the QueueActor writes. As in
the account store, a file is linked into msg/ and its directory fsynced before the
COMMIT that inserts its rows, and removed after the COMMIT that deletes the last
of its recipients: a crash leaves at worst an orphan file, never a row without a
file. Times are milliseconds since the epoch, passed in by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import apsw

from mailactors.storage.db import Database, DatabaseError, Migration
from mailactors.storage.files import (
    DeferredRemovals,
    link_or_copy,
    open_file,
    remove_file,
    syncdir,
)

MESSAGES_PER_SHARD = 4096

# The kinds of queued message; DSNs and reports get no DSN about themselves
# (RFC 3461 6.2: no DSN for a null reverse-path) and failed reports are kept
# quietly for the postmaster instead.
KINDS = ("mail", "dsn", "dmarc-report", "tls-report")

MIGRATIONS: list[Migration] = [
    # 0 -> 1: the initial schema.
    """
    CREATE TABLE message (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queued_at INTEGER NOT NULL,
        sender TEXT NOT NULL,
        size INTEGER NOT NULL,
        kind TEXT NOT NULL,
        account TEXT,
        smtputf8 INTEGER NOT NULL DEFAULT 0,
        has_8bit INTEGER NOT NULL DEFAULT 0,
        requiretls INTEGER NOT NULL DEFAULT 0,
        tls_required_no INTEGER NOT NULL DEFAULT 0,
        envelope_id TEXT
    );
    CREATE TABLE recipient (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id INTEGER NOT NULL REFERENCES message(id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        domain TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt INTEGER NOT NULL,
        last_attempt INTEGER,
        last_error TEXT,
        delay_notified INTEGER NOT NULL DEFAULT 0,
        held INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX recipient_due ON recipient (held, next_attempt);
    CREATE INDEX recipient_message ON recipient (message_id);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


class QueueError(DatabaseError):
    """A queue operation named something that does not exist."""


@dataclass(frozen=True, slots=True)
class QueueRequest:
    """A message to queue: the envelope and what the delivery must honour."""

    sender: str  # reverse-path; "" for the null sender (DSNs, reports)
    recipients: tuple[str, ...]
    kind: str = "mail"
    account: str | None = None  # the submitting account, who gets DSNs
    smtputf8: bool = False
    has_8bit: bool = False
    requiretls: bool = False  # RFC 8689 REQUIRETLS
    tls_required_no: bool = False  # RFC 8689 "TLS-Required: No" header
    envelope_id: str | None = None  # RFC 3461 ENVID


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    queued_at: int
    sender: str
    size: int
    kind: str
    account: str | None
    smtputf8: bool
    has_8bit: bool
    requiretls: bool
    tls_required_no: bool
    envelope_id: str | None


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    id: int
    message_id: int
    address: str
    domain: str
    attempts: int
    next_attempt: int
    last_attempt: int | None
    last_error: str | None
    delay_notified: bool
    held: bool


_MESSAGE_COLUMNS = (
    "id, queued_at, sender, size, kind, account, smtputf8, has_8bit, requiretls,"
    " tls_required_no, envelope_id"
)
_RECIPIENT_COLUMNS = (
    "id, message_id, address, domain, attempts, next_attempt, last_attempt, last_error,"
    " delay_notified, held"
)


def _message(row: Sequence[Any]) -> QueuedMessage:
    return QueuedMessage(
        id=row[0],
        queued_at=row[1],
        sender=row[2],
        size=row[3],
        kind=row[4],
        account=row[5],
        smtputf8=bool(row[6]),
        has_8bit=bool(row[7]),
        requiretls=bool(row[8]),
        tls_required_no=bool(row[9]),
        envelope_id=row[10],
    )


def _recipient(row: Sequence[Any]) -> QueuedRecipient:
    return QueuedRecipient(
        id=row[0],
        message_id=row[1],
        address=row[2],
        domain=row[3],
        attempts=row[4],
        next_attempt=row[5],
        last_attempt=row[6],
        last_error=row[7],
        delay_notified=bool(row[8]),
        held=bool(row[9]),
    )


def recipient_domain(address: str) -> str:
    """The domain part of an address, lower case (the unit of delivery)."""
    return address.rpartition("@")[2].lower()


class QueueStore:
    """The queue directory. With readonly=True every writing method raises."""

    def __init__(self, directory: Path, log: logging.Logger, *, readonly: bool = False) -> None:
        self.directory = directory
        self.log = log
        self.readonly = readonly
        self.db = Database(directory / "index.db", MIGRATIONS, log, readonly=readonly)
        self._removals = DeferredRemovals(log, "queue file")

    def init(self) -> None:
        if not self.readonly:
            (self.directory / "msg").mkdir(parents=True, exist_ok=True)
        self.db.init()

    def close(self) -> None:
        self._removals.close()
        self.db.close()

    @property
    def _conn(self) -> apsw.Connection:
        return self.db.connection

    def _require_writer(self) -> None:
        if self.readonly:
            raise DatabaseError(f"queue {self.directory} is open read-only")

    # ---- files ----------------------------------------------------------------------

    def path_for(self, message_id: int) -> Path:
        """The file of a queued message."""
        return self.directory / "msg" / f"{message_id // MESSAGES_PER_SHARD:x}" / str(message_id)

    def open_message(self, message_id: int) -> BinaryIO:
        """Open a queued message's file for reading (the caller closes it)."""
        return open_file(self.path_for(message_id), "rb")

    def _remove_files(self, paths: Sequence[Path]) -> None:
        """Remove files after a commit; open ones are retried later."""
        self._removals.remove(paths)

    # ---- writing ----------------------------------------------------------------------

    def enqueue(self, source: Path, request: QueueRequest, now: int) -> int:
        """Queue the file `source` (linked or copied, never moved) for `request.recipients`."""
        self._require_writer()
        if not request.recipients:
            raise QueueError("a queued message needs at least one recipient")
        if request.kind not in KINDS:
            raise QueueError(f"unknown queue message kind {request.kind!r}")
        size = source.stat().st_size
        linked: Path | None = None
        try:
            with self.db.transaction() as conn:
                row = conn.execute(
                    "INSERT INTO message (queued_at, sender, size, kind, account, smtputf8,"
                    " has_8bit, requiretls, tls_required_no, envelope_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        now,
                        request.sender,
                        size,
                        request.kind,
                        request.account,
                        int(request.smtputf8),
                        int(request.has_8bit),
                        int(request.requiretls),
                        int(request.tls_required_no),
                        request.envelope_id,
                    ),
                ).fetchone()
                assert row is not None
                message_id = int(row[0])
                for address in request.recipients:
                    conn.execute(
                        "INSERT INTO recipient (message_id, address, domain, next_attempt)"
                        " VALUES (?, ?, ?, ?)",
                        (message_id, address, recipient_domain(address), now),
                    )
                dst = self.path_for(message_id)
                new_shard = not dst.parent.exists()
                if dst.exists():
                    self.log.warning("removing orphan queue file", extra={"path": str(dst)})
                    remove_file(dst)
                link_or_copy(source, dst)
                linked = dst
                syncdir(dst.parent)
                if new_shard:
                    syncdir(dst.parent.parent)
        except BaseException:
            if linked is not None:
                self._remove_files([linked])
            raise
        return message_id

    def _delete_recipients(self, conn: apsw.Connection, ids: Sequence[int]) -> list[Path]:
        """Delete recipients; messages left without any are deleted too. Returns their files."""
        message_ids: set[int] = set()
        for rid in ids:
            row = conn.execute(
                "DELETE FROM recipient WHERE id = ? RETURNING message_id", (rid,)
            ).fetchone()
            if row is not None:
                message_ids.add(int(row[0]))
        gone: list[Path] = []
        for mid in sorted(message_ids):
            left = conn.execute(
                "SELECT 1 FROM recipient WHERE message_id = ? LIMIT 1", (mid,)
            ).fetchone()
            if left is None:
                conn.execute("DELETE FROM message WHERE id = ?", (mid,))
                gone.append(self.path_for(mid))
        return gone

    def remove_recipients(self, ids: Sequence[int]) -> None:
        """Recipients delivered or given up on; files of finished messages are removed."""
        self._require_writer()
        with self.db.transaction() as conn:
            gone = self._delete_recipients(conn, ids)
        self._remove_files(gone)

    def record_failure(
        self, ids: Sequence[int], *, now: int, next_attempt: int, error: str
    ) -> None:
        """A temporary failure: count the attempt and schedule the next one."""
        self._require_writer()
        with self.db.transaction() as conn:
            for rid in ids:
                conn.execute(
                    "UPDATE recipient SET attempts = attempts + 1, last_attempt = ?,"
                    " next_attempt = ?, last_error = ? WHERE id = ?",
                    (now, next_attempt, error, rid),
                )

    def mark_delay_notified(self, ids: Sequence[int]) -> None:
        self._require_writer()
        with self.db.transaction() as conn:
            for rid in ids:
                conn.execute("UPDATE recipient SET delay_notified = 1 WHERE id = ?", (rid,))

    def kick(self, ids: Sequence[int] | None, now: int) -> int:
        """Make recipients due now (all when `ids` is None) and release held ones; returns the count."""
        self._require_writer()
        with self.db.transaction() as conn:
            if ids is None:
                conn.execute("UPDATE recipient SET next_attempt = ?, held = 0", (now,))
                return int(conn.changes())
            count = 0
            for rid in ids:
                conn.execute(
                    "UPDATE recipient SET next_attempt = ?, held = 0 WHERE id = ?", (now, rid)
                )
                count += conn.changes()
            return count

    def hold(self, ids: Sequence[int]) -> int:
        """Keep recipients from being attempted until kicked."""
        self._require_writer()
        with self.db.transaction() as conn:
            count = 0
            for rid in ids:
                conn.execute("UPDATE recipient SET held = 1 WHERE id = ?", (rid,))
                count += conn.changes()
            return count

    def drop(self, ids: Sequence[int]) -> int:
        """Remove recipients without delivering or notifying; returns how many existed."""
        self._require_writer()
        with self.db.transaction() as conn:
            existing = [
                rid
                for rid in ids
                if conn.execute("SELECT 1 FROM recipient WHERE id = ?", (rid,)).fetchone()
            ]
            gone = self._delete_recipients(conn, existing)
        self._remove_files(gone)
        return len(existing)

    # ---- reading -----------------------------------------------------------------------

    def message(self, message_id: int) -> QueuedMessage | None:
        row = self._conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE id = ?", (message_id,)
        ).fetchone()
        return _message(row) if row is not None else None

    def recipients(self, message_id: int | None = None) -> list[QueuedRecipient]:
        """Recipients of one message, or all, in id order."""
        if message_id is None:
            rows = self._conn.execute(f"SELECT {_RECIPIENT_COLUMNS} FROM recipient ORDER BY id")
        else:
            rows = self._conn.execute(
                f"SELECT {_RECIPIENT_COLUMNS} FROM recipient WHERE message_id = ? ORDER BY id",
                (message_id,),
            )
        return [_recipient(r) for r in rows]

    def messages(self) -> list[QueuedMessage]:
        return [
            _message(r)
            for r in self._conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM message ORDER BY id")
        ]

    def due(self, now: int, limit: int = 1000) -> list[QueuedRecipient]:
        """Recipients not held whose next attempt is due, oldest first."""
        rows = self._conn.execute(
            f"SELECT {_RECIPIENT_COLUMNS} FROM recipient WHERE held = 0 AND next_attempt <= ?"
            " ORDER BY next_attempt, id LIMIT ?",
            (now, limit),
        )
        return [_recipient(r) for r in rows]

    def next_due(self) -> int | None:
        """The earliest next attempt of a recipient that is not held."""
        row = self._conn.execute(
            "SELECT MIN(next_attempt) FROM recipient WHERE held = 0"
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def message_ids_with_files(self) -> list[int]:
        """Every message id (for verifydata: each must have its file)."""
        return [int(r[0]) for r in self._conn.execute("SELECT id FROM message ORDER BY id")]
