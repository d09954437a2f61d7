"""One account's mail: mailboxes and messages in index.db, message files in msg/.

Layout of an account directory:

    index.db              mailboxes, messages, modseq counter, subscriptions, password
    msg/<shard>/<id>      one file per message row; shard = hex(id // 4096)

Theory of operation. Only the StoreActor holds a writing AccountStore; IMAP
sessions that only read open one with readonly=True (their own WAL connection).
Every change takes the next value of one account-wide mod-sequence counter
(RFC 7162 3.1), so "what changed since N" is one indexed query per mailbox.
Expunged messages keep their row (uid + the modseq of the expunge, other columns
cleared) so QRESYNC can report VANISHED uids (RFC 7162 3.2.10); every query except
an explicit include_expunged one filters them out. Files are linked into msg/ and
their directory fsynced before the COMMIT that inserts their rows, so a crash
leaves at worst an orphan file, never a row without a file; files of expunged or
deleted messages are removed after the COMMIT.
"""

from __future__ import annotations

import logging
import posixpath
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Literal

import apsw

from mailactors.protocol.message import summarize
from mailactors.storage.changes import (
    Change,
    ChangeAddMailbox,
    ChangeAddUID,
    ChangeFlags,
    ChangeRemoveMailbox,
    ChangeRemoveUIDs,
    ChangeRenameMailbox,
)
from mailactors.storage.db import Database, DatabaseError, Migration
from mailactors.storage.files import (
    DeferredRemovals,
    DirectorySyncer,
    StorageFullError,
    link_or_copy,
    make_dirs,
    open_file,
    remove_file,
)

# Message files are spread over shard directories of this many ids each, so no
# directory grows without bound.
MESSAGES_PER_SHARD = 4096

INBOX = "Inbox"

# RFC 6154 2: the special-use attributes a mailbox may carry.
SPECIAL_USE = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)

DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    (INBOX, None),
    ("Sent", "\\Sent"),
    ("Archive", "\\Archive"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
)

# RFC 3501 2.3.2: system flags. \Recent is session state, never stored.
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
_SYSTEM_FLAGS_LOWER = {f.lower(): f for f in SYSTEM_FLAGS}

# RFC 3501 9: flag-keyword = atom; atom-specials may not appear in a keyword.
_ATOM_SPECIALS = frozenset('(){ %*"\\]')

# RFC 3501 2.3.1.1: a UID is a 32-bit value; a mailbox whose UIDs would exceed it
# would need a new UIDVALIDITY, which we refuse rather than wrap.
MAX_UID = 2**32 - 1

MIGRATIONS: list[Migration] = [
    # 0 -> 1: the initial schema.
    """
    CREATE TABLE mailbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        uidvalidity INTEGER NOT NULL,
        uidnext INTEGER NOT NULL DEFAULT 1,
        special_use TEXT
    );
    CREATE TABLE message (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        mailbox_id INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        createseq INTEGER NOT NULL,
        expunged INTEGER NOT NULL DEFAULT 0,
        flags TEXT NOT NULL DEFAULT '',
        size INTEGER NOT NULL DEFAULT 0,
        received INTEGER NOT NULL DEFAULT 0,
        UNIQUE (mailbox_id, uid)
    );
    -- UNIQUE (mailbox_id, uid) above is the (mailbox_id, uid) index.
    CREATE INDEX message_mailbox_modseq ON message (mailbox_id, modseq);
    CREATE TABLE modseq (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        value INTEGER NOT NULL
    );
    INSERT INTO modseq (id, value) VALUES (1, 1);
    CREATE TABLE uidvalidity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        next INTEGER NOT NULL
    );
    CREATE TABLE subscription (
        name TEXT PRIMARY KEY
    );
    CREATE TABLE password (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        salt BLOB NOT NULL,
        iterations INTEGER NOT NULL,
        stored_key BLOB NOT NULL,
        server_key BLOB NOT NULL
    );
    """,
    # 1 -> 2: a cached summary (protocol.message.Summary bytes) per message, so FETCH
    # ENVELOPE/BODYSTRUCTURE and section lookups read a row instead of parsing files.
    # A table of its own keeps message rows small (flag and uid scans stay fast);
    # the index answers "uids of a mailbox" without touching the rows.
    """
    CREATE TABLE message_summary (
        message_id INTEGER PRIMARY KEY REFERENCES message(id) ON DELETE CASCADE,
        summary BLOB NOT NULL
    );
    CREATE INDEX message_mailbox_expunged_uid ON message (mailbox_id, expunged, uid);
    """,
]


class AccountStoreError(Exception):
    """A request the account store cannot carry out (the IMAP layer maps it to NO)."""


class MailboxNotFoundError(AccountStoreError):
    """RFC 5530 NONEXISTENT (or TRYCREATE for a target mailbox)."""


class MailboxExistsError(AccountStoreError):
    """RFC 5530 ALREADYEXISTS."""


class MailboxNameError(AccountStoreError):
    """The name is not a valid mailbox name."""


class MailboxHasChildrenError(AccountStoreError):
    """Deleting a mailbox that has children is refused (RFC 3501 6.3.4 lets us)."""


class UidSpaceExhaustedError(AccountStoreError):
    """The mailbox has used all 32-bit UIDs (RFC 3501 2.3.1.1)."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    name: str
    uidvalidity: int
    uidnext: int
    special_use: str | None
    subscribed: bool


@dataclass(frozen=True, slots=True)
class MessageInfo:
    id: int
    mailbox_id: int
    uid: int
    modseq: int
    createseq: int
    flags: tuple[str, ...]
    size: int
    received: datetime
    expunged: bool


@dataclass(frozen=True, slots=True)
class DeliveryRequest:
    """Deliver the file `source` (never moved or removed by the store) into `mailbox`."""

    mailbox: str
    source: Path
    received: datetime
    flags: tuple[str, ...] = ()
    # protocol.message.summarize() of the file, when the caller already made it
    # (sessions do, off the store's thread); None: the store reads and parses the file.
    summary: bytes | None = None
    # The file's size when the caller knows it; None: the store stats the file.
    size: int | None = None
    # Create the mailbox (and its parents) when missing: mail to a configured
    # destination (Postmaster, report mailboxes, Junk) never fails for lack of it.
    create: bool = False


@dataclass(slots=True)
class _BatchCounters:
    """modseq and per-mailbox uidnext advanced in memory during one deliver_many."""

    start_modseq: int
    modseq: int = 0
    uidnext: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.modseq = self.start_modseq


class _AllOrNothingError(Exception):
    """An atomic deliver_many had a failing request: roll everything back."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """Result of one DeliveryRequest: `message` on success, else `error`."""

    request_index: int
    message: MessageInfo | None
    error: str | None
    changes: tuple[Change, ...]


def normalize_mailbox_name(name: str) -> str:
    """Validate a "/"-separated mailbox name; "INBOX" in any case becomes "Inbox".

    RFC 3501 5.1: "The case-insensitive mailbox name INBOX is a special name
    reserved to mean 'the primary mailbox for this user on this server'."
    """
    if not name:
        raise MailboxNameError("empty mailbox name")
    parts = name.split("/")
    if any(p == "" for p in parts):
        raise MailboxNameError(f"mailbox name {name!r} has an empty hierarchy level")
    for ch in name:
        # RFC 3501 5.1: "%" and "*" are LIST wildcards; control characters are unusable.
        if ch in "%*" or ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise MailboxNameError(f"mailbox name {name!r} contains {ch!r}")
    if parts[0].lower() == "inbox":
        parts[0] = INBOX
    return "/".join(parts)


def normalize_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """Canonical system-flag case, keywords deduplicated case-insensitively, sorted."""
    seen: dict[str, str] = {}
    for flag in flags:
        if not flag:
            raise ValueError("empty flag")
        if flag.startswith("\\"):
            canonical = _SYSTEM_FLAGS_LOWER.get(flag.lower())
            if canonical is None:
                # \Recent included: RFC 3501 2.3.2 says it cannot be stored by clients.
                raise ValueError(f"not a storable system flag: {flag!r}")
            seen.setdefault(canonical.lower(), canonical)
            continue
        if any(c in _ATOM_SPECIALS or ord(c) <= 0x20 or ord(c) >= 0x7F for c in flag):
            raise ValueError(f"not a valid flag keyword: {flag!r}")
        seen.setdefault(flag.lower(), flag)
    return tuple(sorted(seen.values(), key=str.lower))


def _flags_text(flags: tuple[str, ...]) -> str:
    return " ".join(flags)


def _flags_tuple(text: str) -> tuple[str, ...]:
    return tuple(text.split()) if text else ()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _ms(dt: datetime) -> int:
    """Unix time in milliseconds, exactly (no float rounding)."""
    if dt.tzinfo is None:
        raise ValueError("received time must be timezone-aware")
    return (dt - _EPOCH) // _MS


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


# Up to this many uids are looked up with one "uid IN (?, ...)" query; more are
# filtered from a scan of the mailbox (SQLite allows 32766 bound parameters).
_MAX_IN_LIST = 500

_MESSAGE_COLUMNS = "id, mailbox_id, uid, modseq, createseq, flags, size, received, expunged"


def _message_from_row(row: tuple[Any, ...]) -> MessageInfo:
    id_, mailbox_id, uid, modseq, createseq, flags, size, received, expunged = row
    assert isinstance(flags, str)
    return MessageInfo(
        id=int(id_),
        mailbox_id=int(mailbox_id),
        uid=int(uid),
        modseq=int(modseq),
        createseq=int(createseq),
        flags=_flags_tuple(flags),
        size=int(size),
        received=_from_ms(int(received)),
        expunged=bool(expunged),
    )


_MAILBOX_SELECT = (
    "SELECT m.id, m.name, m.uidvalidity, m.uidnext, m.special_use,"
    " EXISTS (SELECT 1 FROM subscription s WHERE s.name = m.name)"
    " FROM mailbox m"
)


def _mailbox_from_row(row: tuple[Any, ...]) -> Mailbox:
    id_, name, uidvalidity, uidnext, special_use, subscribed = row
    return Mailbox(
        id=int(id_),
        name=str(name),
        uidvalidity=int(uidvalidity),
        uidnext=int(uidnext),
        special_use=None if special_use is None else str(special_use),
        subscribed=bool(subscribed),
    )


class AccountStore:
    """Mailboxes and messages of one account directory.

    With readonly=True it opens its own read-only connection and every method that
    would write raises DatabaseError.
    """

    def __init__(self, directory: Path, log: logging.Logger, *, readonly: bool = False) -> None:
        self.directory = directory
        self.log = log
        self.readonly = readonly
        self.db = Database(directory / "index.db", MIGRATIONS, log, readonly=readonly)
        # Files whose removal failed because they were still open (Windows, or
        # strict mode): retried after later commits and at close.
        self._removals = DeferredRemovals(log, "message file")
        self._shard_dirs: set[Path] = set()  # shard directories known to exist
        self._dirs = DirectorySyncer()
        # The modseq counter as the last deliver_many committed it; None: read it.
        self._modseq_cache: int | None = None
        # While deliver_many runs: counters kept here, written once per batch.
        self._batch: _BatchCounters | None = None

    # ---- lifecycle ------------------------------------------------------------

    def init(self) -> None:
        """Create the directory (writers) and open and migrate the database."""
        if not self.readonly:
            (self.directory / "msg").mkdir(parents=True, exist_ok=True)
        self.db.init()
        if self.readonly:
            return
        try:
            with self.db.transaction() as conn:
                if conn.execute("SELECT 1 FROM uidvalidity").fetchone() is None:
                    # RFC 3501 2.3.1.1: UIDVALIDITY must grow if a mailbox name is
                    # reused; seeding from the clock keeps that true even if the whole
                    # account is deleted and created again.
                    conn.execute(
                        "INSERT INTO uidvalidity (id, next) VALUES (1, ?)", (int(time.time()),)
                    )
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        """Retry pending file removals, then close the database (idempotent)."""
        self._removals.close()
        self._dirs.close()
        self.db.close()

    @property
    def _conn(self) -> apsw.Connection:
        return self.db.connection

    def _require_writer(self) -> None:
        if self.readonly:
            raise DatabaseError(f"account store {self.directory} is open read-only")

    # ---- counters ---------------------------------------------------------------

    def _next_modseq(self) -> int:
        if self._batch is not None:
            self._batch.modseq += 1
            return self._batch.modseq
        self._modseq_cache = None
        row = self._conn.execute("UPDATE modseq SET value = value + 1 RETURNING value").fetchone()
        assert row is not None
        return int(row[0])

    def current_modseq(self) -> int:
        """The account-wide mod-sequence counter (the last value handed out)."""
        row = self._conn.execute("SELECT value FROM modseq").fetchone()
        assert row is not None
        return int(row[0])

    def _next_uidvalidity(self) -> int:
        row = self._conn.execute(
            "UPDATE uidvalidity SET next = next + 1 RETURNING next - 1"
        ).fetchone()
        assert row is not None
        return int(row[0])

    # ---- mailboxes ------------------------------------------------------------------

    def mailbox(self, name: str) -> Mailbox | None:
        """The mailbox called `name` ("INBOX" matches case-insensitively), or None."""
        name = normalize_mailbox_name(name)
        row = self._conn.execute(_MAILBOX_SELECT + " WHERE m.name = ?", (name,)).fetchone()
        return None if row is None else _mailbox_from_row(row)

    def mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        """The mailbox with this id, or None."""
        row = self._conn.execute(_MAILBOX_SELECT + " WHERE m.id = ?", (mailbox_id,)).fetchone()
        return None if row is None else _mailbox_from_row(row)

    def list_mailboxes(self) -> list[Mailbox]:
        """Every mailbox, ordered by name."""
        rows = self._conn.execute(_MAILBOX_SELECT + " ORDER BY m.name").fetchall()
        return [_mailbox_from_row(r) for r in rows]

    def _require_mailbox(self, name: str) -> Mailbox:
        mb = self.mailbox(name)
        if mb is None:
            raise MailboxNotFoundError(f"mailbox {name!r} does not exist")
        return mb

    def _insert_mailbox(self, name: str, special_use: str | None, changes: list[Change]) -> Mailbox:
        uidvalidity = self._next_uidvalidity()
        row = self._conn.execute(
            "INSERT INTO mailbox (name, uidvalidity, uidnext, special_use) VALUES (?, ?, 1, ?)"
            " RETURNING id",
            (name, uidvalidity, special_use),
        ).fetchone()
        assert row is not None
        changes.append(ChangeAddMailbox(int(row[0]), name, special_use))
        mb = self.mailbox(name)
        assert mb is not None
        return mb

    def _create_parents(self, name: str, changes: list[Change]) -> None:
        parent = posixpath.dirname(name)
        missing: list[str] = []
        while parent:
            if self.mailbox(parent) is not None:
                break
            missing.append(parent)
            parent = posixpath.dirname(parent)
        for p in reversed(missing):
            self._insert_mailbox(p, None, changes)

    def create_mailbox(
        self, name: str, special_use: str | None = None
    ) -> tuple[Mailbox, list[Change]]:
        """Create a mailbox, and its missing parents (RFC 3501 6.3.3)."""
        self._require_writer()
        name = normalize_mailbox_name(name)
        if special_use is not None and special_use not in SPECIAL_USE:
            raise ValueError(f"unknown special-use attribute {special_use!r} (RFC 6154 2)")
        changes: list[Change] = []
        with self.db.transaction():
            if self.mailbox(name) is not None:
                raise MailboxExistsError(f"mailbox {name!r} already exists")
            self._create_parents(name, changes)
            mb = self._insert_mailbox(name, special_use, changes)
        return mb, changes

    def ensure_default_mailboxes(self) -> list[Change]:
        """Create the default mailboxes that are missing, subscribed."""
        self._require_writer()
        changes: list[Change] = []
        with self.db.transaction() as conn:
            for name, special_use in DEFAULT_MAILBOXES:
                if self.mailbox(name) is None:
                    self._insert_mailbox(name, special_use, changes)
                    conn.execute("INSERT OR IGNORE INTO subscription (name) VALUES (?)", (name,))
        return changes

    def delete_mailbox(self, name: str) -> list[Change]:
        """Delete a mailbox and its messages (RFC 3501 6.3.4).

        Deleting INBOX is an error (RFC 3501 6.3.4), and so, here, is deleting a
        mailbox that has children: the RFC allows refusing, and it keeps every
        mailbox's parents in existence. Subscriptions stay (RFC 3501 6.3.6).
        """
        self._require_writer()
        name = normalize_mailbox_name(name)
        if name == INBOX:
            raise MailboxNameError("INBOX cannot be deleted (RFC 3501 6.3.4)")
        with self.db.transaction() as conn:
            mb = self._require_mailbox(name)
            child = conn.execute(
                "SELECT 1 FROM mailbox WHERE substr(name, 1, ?) = ? LIMIT 1",
                (len(name) + 1, name + "/"),
            ).fetchone()
            if child is not None:
                raise MailboxHasChildrenError(f"mailbox {name!r} has children")
            ids = [
                int(r[0])
                for r in conn.execute(
                    "SELECT id FROM message WHERE mailbox_id = ? AND expunged = 0", (mb.id,)
                )
            ]
            conn.execute("DELETE FROM message WHERE mailbox_id = ?", (mb.id,))
            conn.execute("DELETE FROM mailbox WHERE id = ?", (mb.id,))
        self._remove_files([self._path_for_id(i) for i in ids])
        return [ChangeRemoveMailbox(mb.id, name)]

    def rename_mailbox(self, old: str, new: str) -> list[Change]:
        """Rename a mailbox and its children (RFC 3501 6.3.5).

        Renaming INBOX creates the new mailbox and moves INBOX's messages into it,
        leaving INBOX empty; INBOX's children do not move.
        """
        self._require_writer()
        old = normalize_mailbox_name(old)
        new = normalize_mailbox_name(new)
        if new == INBOX:
            raise MailboxExistsError("INBOX always exists")
        if new == old or (old != INBOX and new.startswith(old + "/")):
            raise MailboxNameError(f"cannot rename {old!r} to {new!r}")
        changes: list[Change] = []
        removed: list[Path] = []
        with self.db.transaction() as conn:
            src = self._require_mailbox(old)
            if self.mailbox(new) is not None:
                raise MailboxExistsError(f"mailbox {new!r} already exists")
            if old == INBOX:
                self._create_parents(new, changes)
                dst = self._insert_mailbox(new, None, changes)
                uids = [m.uid for m in self.messages(src.id)]
                dirs: set[Path] = set()
                linked: list[Path] = []
                try:
                    self._copy_rows(src.id, uids, dst, changes, linked, dirs, removed, move=True)
                    for d in sorted(dirs):
                        self._dirs.sync(d)
                except BaseException:
                    self._undo_links(linked)
                    raise
            else:
                rows = conn.execute(
                    "SELECT id, name FROM mailbox WHERE name = ? OR substr(name, 1, ?) = ?"
                    " ORDER BY name",
                    (old, len(old) + 1, old + "/"),
                ).fetchall()
                self._create_parents(new, changes)
                for id_, name in rows:
                    assert isinstance(id_, int)
                    renamed = new + str(name)[len(old) :]
                    if self.mailbox(renamed) is not None:
                        raise MailboxExistsError(f"mailbox {renamed!r} already exists")
                    conn.execute("UPDATE mailbox SET name = ? WHERE id = ?", (renamed, id_))
                    changes.append(ChangeRenameMailbox(int(id_), str(name), renamed))
        self._remove_files(removed)
        return changes

    def subscribe(self, name: str) -> None:
        """Add `name` to the subscriptions; it need not exist (RFC 3501 6.3.6)."""
        self._require_writer()
        name = normalize_mailbox_name(name)
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO subscription (name) VALUES (?)", (name,))

    def unsubscribe(self, name: str) -> None:
        """Remove `name` from the subscriptions (RFC 3501 6.3.7)."""
        self._require_writer()
        name = normalize_mailbox_name(name)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM subscription WHERE name = ?", (name,))

    def subscriptions(self) -> list[str]:
        """Subscribed names, sorted; some may name mailboxes that do not exist."""
        return [
            str(r[0]) for r in self._conn.execute("SELECT name FROM subscription ORDER BY name")
        ]

    # ---- message files -----------------------------------------------------------------

    def _path_for_id(self, message_id: int) -> Path:
        shard = format(message_id // MESSAGES_PER_SHARD, "x")
        return self.directory / "msg" / shard / str(message_id)

    def message_path(self, info: MessageInfo) -> Path:
        """Where the file of a (not expunged) message lives."""
        return self._path_for_id(info.id)

    def open_message(self, info: MessageInfo) -> BinaryIO:
        """Open a message file for reading (through files.open_file); the caller closes."""
        if info.expunged:
            raise AccountStoreError(f"message uid {info.uid} is expunged")
        return open_file(self._path_for_id(info.id), "rb")

    def _link_message(
        self, source: Path, message_id: int, linked: list[Path], dirs: set[Path]
    ) -> None:
        """Link (or copy) `source` as the file of `message_id`, noting what to fsync.

        Shard directories seen once are remembered, so the common case is a single
        link() call.
        """
        dst = self._path_for_id(message_id)
        shard_dir = dst.parent
        if shard_dir not in self._shard_dirs:
            if not shard_dir.exists():
                # A new entry in msg/ must be made durable too.
                dirs.add(shard_dir.parent)
                make_dirs(shard_dir)
            self._shard_dirs.add(shard_dir)
        try:
            link_or_copy(source, dst, make_parents=False)
        except FileExistsError:
            # Ids come from AUTOINCREMENT, so a file under a fresh id is an orphan
            # left by a crash between linking and COMMIT.
            self.log.warning("removing orphan message file", extra={"path": str(dst)})
            remove_file(dst)
            link_or_copy(source, dst, make_parents=False)
        except FileNotFoundError:
            if not source.exists():
                raise
            # The shard directory went away (removed by hand): make it again.
            self._shard_dirs.discard(shard_dir)
            self._dirs.forget(shard_dir)
            dirs.add(shard_dir.parent)
            make_dirs(shard_dir)
            self._shard_dirs.add(shard_dir)
            link_or_copy(source, dst, make_parents=False)
        linked.append(dst)
        dirs.add(shard_dir)

    def _remove_files(self, paths: Sequence[Path]) -> None:
        """Remove message files after a commit; open ones are retried later."""
        self._removals.remove(paths)

    def check_files(self) -> tuple[list[Path], list[Path]]:
        """(rows without a file, files without a row), for verifydata.

        Files without a row are what a crash between linking and COMMIT leaves; they
        are harmless and may be removed while the account's writer is stopped.
        """
        expected: dict[Path, int] = {}
        for (id_,) in self._conn.execute("SELECT id FROM message WHERE expunged = 0"):
            expected[self._path_for_id(int(id_))] = int(id_)
        msg = self.directory / "msg"
        present = {p for p in msg.rglob("*") if p.is_file()} if msg.is_dir() else set()
        missing = sorted(p for p in expected if p not in present)
        orphans = sorted(p for p in present if p not in expected)
        return missing, orphans

    # ---- messages -------------------------------------------------------------------------

    def messages(self, mailbox_id: int, *, include_expunged: bool = False) -> list[MessageInfo]:
        """Messages of a mailbox ordered by uid; expunged rows only when asked."""
        sql = f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE mailbox_id = ?"
        if not include_expunged:
            sql += " AND expunged = 0"
        rows = self._conn.execute(sql + " ORDER BY uid", (mailbox_id,)).fetchall()
        return [_message_from_row(r) for r in rows]

    def message(self, mailbox_id: int, uid: int) -> MessageInfo | None:
        """One message that is not expunged, or None."""
        row = self._conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM message"
            " WHERE mailbox_id = ? AND uid = ? AND expunged = 0",
            (mailbox_id, uid),
        ).fetchone()
        return None if row is None else _message_from_row(row)

    def _messages_by_uid(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageInfo]:
        """Messages (not expunged) with these uids, ordered by uid."""
        wanted = sorted(set(uids))
        if len(wanted) > _MAX_IN_LIST:
            keep = set(wanted)
            return [m for m in self.messages(mailbox_id) if m.uid in keep]
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        rows = self._conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM message"
            f" WHERE mailbox_id = ? AND expunged = 0 AND uid IN ({marks}) ORDER BY uid",
            (mailbox_id, *wanted),
        ).fetchall()
        return [_message_from_row(r) for r in rows]

    def _take_uid(self, mailbox_id: int) -> int:
        batch = self._batch
        if batch is not None:
            uid = batch.uidnext.get(mailbox_id)
            if uid is None:
                row = self._conn.execute(
                    "SELECT uidnext FROM mailbox WHERE id = ?", (mailbox_id,)
                ).fetchone()
                assert row is not None
                uid = int(row[0])
            if uid > MAX_UID:
                raise UidSpaceExhaustedError(f"mailbox {mailbox_id} has no UIDs left")
            batch.uidnext[mailbox_id] = uid + 1
            return uid
        row = self._conn.execute(
            "UPDATE mailbox SET uidnext = uidnext + 1 WHERE id = ? RETURNING uidnext - 1",
            (mailbox_id,),
        ).fetchone()
        assert row is not None
        uid = int(row[0])
        if uid > MAX_UID:
            raise UidSpaceExhaustedError(f"mailbox {mailbox_id} has no UIDs left")
        return uid

    def _insert_message(
        self,
        mailbox_id: int,
        flags: tuple[str, ...],
        size: int,
        received_ms: int,
        summary: bytes | None = None,
    ) -> MessageInfo:
        modseq = self._next_modseq()
        uid = self._take_uid(mailbox_id)
        row = self._conn.execute(
            "INSERT INTO message (mailbox_id, uid, modseq, createseq, flags, size, received)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {_MESSAGE_COLUMNS}",
            (mailbox_id, uid, modseq, modseq, _flags_text(flags), size, received_ms),
        ).fetchone()
        assert row is not None
        if summary is not None:
            self._conn.execute(
                "INSERT INTO message_summary (message_id, summary) VALUES (?, ?)",
                (row[0], summary),
            )
        return _message_from_row(row)

    def deliver_many(
        self, requests: Sequence[DeliveryRequest], *, atomic: bool = False
    ) -> list[DeliveryOutcome]:
        """Group commit: deliver every request in ONE transaction.

        Each message gets its own modseq (createseq = modseq). Files are linked,
        their directories fsynced, then the transaction commits. A request that
        cannot be delivered (unknown mailbox, bad flags, unreadable source) gets an
        error and the others still commit. If the transaction as a whole fails
        (storage full, I/O error) nothing is committed, linked files are removed, and
        every outcome carries the error ("storage full: ..." for StorageFullError).
        With `atomic` (IMAP MULTIAPPEND, RFC 3502 sec. 6: "If the server cannot append
        all messages, none of them are appended"), one failing request fails them all.
        """
        self._require_writer()
        outcomes: list[DeliveryOutcome] = []
        linked: list[Path] = []
        dirs: set[Path] = set()
        try:
            with self.db.transaction():
                start = self._modseq_cache
                self._batch = _BatchCounters(self.current_modseq() if start is None else start)
                self._modseq_cache = None
                mailboxes: dict[str, Mailbox] = {}
                for i, req in enumerate(requests):
                    outcomes.append(self._deliver_one(i, req, linked, dirs, mailboxes))
                failed = [o.error for o in outcomes if o.error is not None]
                if atomic and failed:
                    raise _AllOrNothingError(failed[0])
                modseq = self._write_batch_counters()
                for d in sorted(dirs):
                    self._dirs.sync(d)
            self._modseq_cache = modseq
        except Exception as exc:
            self._undo_links(linked)
            if isinstance(exc, _AllOrNothingError):
                error = str(exc)
            elif isinstance(exc, StorageFullError):
                error = f"storage full: {exc}"
                self.log.error("delivery failed: storage full", extra={"err": str(exc)})
            else:
                error = f"delivery failed: {exc}"
                self.log.exception("delivery transaction failed")
            return [DeliveryOutcome(i, None, error, ()) for i in range(len(requests))]
        finally:
            self._batch = None
        self._retry_removals()
        return outcomes

    def _write_batch_counters(self) -> int:
        """Store the counters deliver_many advanced, one statement per counter; returns
        the modseq counter."""
        batch = self._batch
        assert batch is not None
        self._batch = None
        if batch.modseq != batch.start_modseq:
            self._conn.execute("UPDATE modseq SET value = ?", (batch.modseq,))
        for mailbox_id, uidnext in batch.uidnext.items():
            self._conn.execute(
                "UPDATE mailbox SET uidnext = ? WHERE id = ?", (uidnext, mailbox_id)
            )
        return batch.modseq

    def _deliver_one(
        self,
        index: int,
        req: DeliveryRequest,
        linked: list[Path],
        dirs: set[Path],
        mailboxes: dict[str, Mailbox],
    ) -> DeliveryOutcome:
        try:
            name = normalize_mailbox_name(req.mailbox)
            flags = normalize_flags(req.flags)
            received_ms = _ms(req.received)
        except (AccountStoreError, ValueError) as exc:
            return DeliveryOutcome(index, None, str(exc), ())
        mb = mailboxes.get(name) or self.mailbox(name)
        created: list[Change] = []
        if mb is None and req.create:
            self._create_parents(name, created)
            mb = self._insert_mailbox(name, None, created)
            self._conn.execute("INSERT OR IGNORE INTO subscription (name) VALUES (?)", (name,))
        if mb is None:
            return DeliveryOutcome(index, None, f"mailbox {name!r} does not exist", ())
        mailboxes[name] = mb
        batch = self._batch
        assert batch is not None  # deliver_many's
        if batch.uidnext.get(mb.id, mb.uidnext) > MAX_UID:
            return DeliveryOutcome(index, None, f"mailbox {name!r} has no UIDs left", ())
        size = req.size
        if size is None:
            try:
                size = req.source.stat().st_size
            except OSError as exc:
                return DeliveryOutcome(index, None, f"cannot read message source: {exc}", ())
        info = self._insert_message(
            mb.id,
            flags,
            size,
            received_ms,
            req.summary if req.summary is not None else self._summary_of_file(req.source),
        )
        self._link_message(req.source, info.id, linked, dirs)
        change = ChangeAddUID(mb.id, info.uid, info.modseq, info.flags, info.size)
        return DeliveryOutcome(index, info, None, (*created, change))

    def deliver(self, request: DeliveryRequest) -> DeliveryOutcome:
        """deliver_many of one request."""
        return self.deliver_many([request])[0]

    def append(
        self,
        mailbox: str,
        source: Path,
        received: datetime,
        flags: tuple[str, ...] = (),
    ) -> DeliveryOutcome:
        """IMAP APPEND (RFC 3501 6.3.11): deliver one message."""
        return self.deliver(DeliveryRequest(mailbox, source, received, flags))

    def set_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        flags: Sequence[str],
        mode: Literal["add", "remove", "replace"],
        unchangedsince: int | None = None,
    ) -> tuple[list[MessageInfo], list[int], list[Change]]:
        """STORE flags (RFC 3501 6.4.6) with CONDSTORE's UNCHANGEDSINCE (RFC 7162 3.1.3).

        Returns (messages whose flags changed, uids that failed the UNCHANGEDSINCE
        test, changes). RFC 7162 3.1.3: a message whose mod-sequence is greater than
        UNCHANGEDSINCE is not changed and is reported as modified. Each changed
        message gets a new modseq; a message whose flags stay the same keeps its
        modseq. Unknown or expunged uids are ignored.
        """
        self._require_writer()
        wanted = normalize_flags(flags)
        wanted_lower = {f.lower() for f in wanted}
        updated: list[MessageInfo] = []
        modified: list[int] = []
        changes: list[Change] = []
        with self.db.transaction() as conn:
            for m in self._messages_by_uid(mailbox_id, uids):
                if unchangedsince is not None and m.modseq > unchangedsince:
                    modified.append(m.uid)
                    continue
                if mode == "replace":
                    new = wanted
                elif mode == "add":
                    new = normalize_flags([*m.flags, *wanted])
                elif mode == "remove":
                    new = tuple(f for f in m.flags if f.lower() not in wanted_lower)
                else:
                    raise ValueError(f"unknown flag mode {mode!r}")
                if new == m.flags:
                    continue
                modseq = self._next_modseq()
                conn.execute(
                    "UPDATE message SET flags = ?, modseq = ? WHERE id = ?",
                    (_flags_text(new), modseq, m.id),
                )
                info = MessageInfo(
                    m.id,
                    m.mailbox_id,
                    m.uid,
                    modseq,
                    m.createseq,
                    new,
                    m.size,
                    m.received,
                    False,
                )
                updated.append(info)
                changes.append(ChangeFlags(mailbox_id, m.uid, modseq, new))
        return updated, modified, changes

    def _expunge_rows(self, mailbox_id: int, rows: Sequence[MessageInfo]) -> tuple[list[int], int]:
        """Mark rows expunged, each with a new modseq; return (uids, last modseq)."""
        modseq = 0
        for m in rows:
            modseq = self._next_modseq()
            self._conn.execute(
                "UPDATE message SET expunged = 1, modseq = ?, flags = '', size = 0, received = 0"
                " WHERE id = ?",
                (modseq, m.id),
            )
            self._conn.execute("DELETE FROM message_summary WHERE message_id = ?", (m.id,))
        return [m.uid for m in rows], modseq

    def expunge(
        self, mailbox_id: int, uids: Sequence[int] | None = None
    ) -> tuple[list[int], list[Change]]:
        """Expunge messages: uids=None means every message flagged \\Deleted (RFC 3501
        6.4.3); given uids are expunged as they are, so for UID EXPUNGE (RFC 4315
        2.1) the caller passes only uids that have \\Deleted.

        An expunged row keeps its uid and gets a new modseq; its file is removed
        after the commit.
        """
        self._require_writer()
        with self.db.transaction():
            if uids is None:
                rows = [m for m in self.messages(mailbox_id) if "\\Deleted" in m.flags]
            else:
                rows = self._messages_by_uid(mailbox_id, uids)
            expunged, modseq = self._expunge_rows(mailbox_id, rows)
        self._remove_files([self._path_for_id(m.id) for m in rows])
        if not expunged:
            return [], []
        return expunged, [ChangeRemoveUIDs(mailbox_id, tuple(expunged), modseq)]

    def _copy_rows(
        self,
        src_mailbox_id: int,
        uids: Sequence[int],
        dst: Mailbox,
        changes: list[Change],
        linked: list[Path],
        dirs: set[Path],
        removed: list[Path],
        *,
        move: bool,
    ) -> list[tuple[int, int]]:
        rows = self._messages_by_uid(src_mailbox_id, uids)
        if dst.uidnext + len(rows) - 1 > MAX_UID:
            raise UidSpaceExhaustedError(f"mailbox {dst.name!r} has no UIDs left")
        pairs: list[tuple[int, int]] = []
        for m in rows:
            received_ms = _ms(m.received)
            info = self._insert_message(dst.id, m.flags, m.size, received_ms)
            self._conn.execute(
                "INSERT INTO message_summary (message_id, summary)"
                " SELECT ?, summary FROM message_summary WHERE message_id = ?",
                (info.id, m.id),
            )
            self._link_message(self._path_for_id(m.id), info.id, linked, dirs)
            pairs.append((m.uid, info.uid))
            changes.append(ChangeAddUID(dst.id, info.uid, info.modseq, info.flags, info.size))
        if move and rows:
            expunged, modseq = self._expunge_rows(src_mailbox_id, rows)
            changes.append(ChangeRemoveUIDs(src_mailbox_id, tuple(expunged), modseq))
            removed.extend(self._path_for_id(m.id) for m in rows)
        return pairs

    def _copy_or_move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox: str, *, move: bool
    ) -> tuple[list[tuple[int, int]], list[Change]]:
        self._require_writer()
        changes: list[Change] = []
        linked: list[Path] = []
        dirs: set[Path] = set()
        removed: list[Path] = []
        try:
            with self.db.transaction():
                dst = self.mailbox(dst_mailbox)
                if dst is None:
                    # RFC 3501 6.4.7: the client gets NO [TRYCREATE].
                    raise MailboxNotFoundError(f"mailbox {dst_mailbox!r} does not exist")
                pairs = self._copy_rows(
                    src_mailbox_id, uids, dst, changes, linked, dirs, removed, move=move
                )
                for d in sorted(dirs):
                    self._dirs.sync(d)
        except BaseException:
            self._undo_links(linked)
            raise
        self._remove_files(removed)
        return pairs, changes

    def copy_messages(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox: str
    ) -> tuple[list[tuple[int, int]], list[Change]]:
        """COPY (RFC 3501 6.4.7): returns ([(source uid, new uid)], changes).

        The new messages hard-link the source files. Unknown uids are ignored.
        """
        return self._copy_or_move(src_mailbox_id, uids, dst_mailbox, move=False)

    def move_messages(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox: str
    ) -> tuple[list[tuple[int, int]], list[Change]]:
        """MOVE (RFC 6851 3.3): copy, then expunge the source rows, in one transaction."""
        return self._copy_or_move(src_mailbox_id, uids, dst_mailbox, move=True)

    def highest_modseq(self, mailbox_id: int) -> int:
        """HIGHESTMODSEQ (RFC 7162 3.1.2.1) of a mailbox.

        The highest modseq among the mailbox's rows, expunged ones included, so an
        expunge raises it. A mailbox without rows reports the account's counter: a
        positive value (RFC 7162 7 "mod-sequence-value") that no later change can go
        below, as every change takes a higher value.
        """
        row = self._conn.execute(
            "SELECT max(modseq) FROM message WHERE mailbox_id = ?", (mailbox_id,)
        ).fetchone()
        if row is not None and row[0] is not None:
            return int(row[0])
        return self.current_modseq()

    def changes_since(self, mailbox_id: int, modseq: int) -> tuple[list[MessageInfo], list[int]]:
        """Messages changed after `modseq` and uids expunged after it (RFC 7162 3.1.4.1,
        3.2.5.2), both ordered by uid."""
        changed: list[MessageInfo] = []
        vanished: list[int] = []
        with self.db.read_transaction() as conn:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE mailbox_id = ? AND modseq > ?"
                " ORDER BY uid",
                (mailbox_id, modseq),
            ).fetchall()
        for r in rows:
            m = _message_from_row(r)
            if m.expunged:
                vanished.append(m.uid)
            else:
                changed.append(m)
        return changed, vanished

    def _summary_of_file(self, path: Path) -> bytes | None:
        """The cached summary of a message file; None when it cannot be read or parsed
        (readers then parse the file themselves)."""
        try:
            f = open_file(path, "rb")
            try:
                data = f.read()
            finally:
                f.close()
            return summarize(data)
        except Exception:
            self.log.warning("summarizing message failed", extra={"path": str(path)}, exc_info=True)
            return None

    def uids(self, mailbox_id: int) -> array[int]:
        """The uids of a mailbox's messages (not expunged), ascending, as a compact array."""
        out = array("I")
        for (uid,) in self._conn.execute(
            "SELECT uid FROM message WHERE mailbox_id = ? AND expunged = 0 ORDER BY uid",
            (mailbox_id,),
        ):
            out.append(uid)
        return out

    def snapshot(self, mailbox_id: int) -> tuple[array[int], int]:
        """(uids, HIGHESTMODSEQ) of a mailbox from one consistent read (IMAP SELECT)."""
        with self.db.read_transaction():
            uids = self.uids(mailbox_id)
            return uids, self.highest_modseq(mailbox_id)

    def mailbox_counts(self, mailbox_id: int) -> tuple[int, int, int, int]:
        """(messages, unseen, deleted, total size) of a mailbox (IMAP STATUS)."""
        row = self._conn.execute(
            "SELECT count(*),"
            " sum(CASE WHEN instr(' ' || flags || ' ', ' \\Seen ') = 0 THEN 1 ELSE 0 END),"
            " sum(CASE WHEN instr(' ' || flags || ' ', ' \\Deleted ') > 0 THEN 1 ELSE 0 END),"
            " sum(size)"
            " FROM message WHERE mailbox_id = ? AND expunged = 0",
            (mailbox_id,),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0)

    def first_unseen_uid(self, mailbox_id: int) -> int | None:
        """The lowest uid without \\Seen (RFC 3501 6.3.1 UNSEEN), or None."""
        row = self._conn.execute(
            "SELECT min(uid) FROM message WHERE mailbox_id = ? AND expunged = 0"
            " AND instr(' ' || flags || ' ', ' \\Seen ') = 0",
            (mailbox_id,),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def messages_by_uid(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageInfo]:
        """Messages (not expunged) with these uids, ordered by uid."""
        return self._messages_by_uid(mailbox_id, uids)

    def summaries(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        """Cached summaries by uid for those of `uids` that have one."""
        wanted = sorted(set(uids))
        out: dict[int, bytes] = {}
        if not wanted:
            return out
        if len(wanted) > _MAX_IN_LIST:
            keep = set(wanted)
            rows = self._conn.execute(
                "SELECT m.uid, s.summary FROM message m"
                " JOIN message_summary s ON s.message_id = m.id"
                " WHERE m.mailbox_id = ? AND m.expunged = 0",
                (mailbox_id,),
            )
            for uid, summary in rows:
                if uid in keep:
                    out[int(uid)] = bytes(summary)
            return out
        marks = ", ".join("?" * len(wanted))
        for uid, summary in self._conn.execute(
            "SELECT m.uid, s.summary FROM message m"
            " JOIN message_summary s ON s.message_id = m.id"
            f" WHERE m.mailbox_id = ? AND m.expunged = 0 AND m.uid IN ({marks})",
            (mailbox_id, *wanted),
        ):
            out[int(uid)] = bytes(summary)
        return out

    def _undo_links(self, linked: Sequence[Path]) -> None:
        """After a rollback: remove the files linked for rows that were not committed.

        The rolled-back ids would be handed out again; if a file under such an id
        cannot be removed yet (still open: a hard link of a spool file the caller has
        not closed), those ids are reserved so a later message never lands on it.
        """
        self._remove_files(linked)
        stuck = [int(p.name) for p in linked if p in self._removals]
        if not stuck or self.db.connection.in_transaction:
            return
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'message'",
                    (max(stuck),),
                )
                conn.execute(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT 'message', ?"
                    " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'message')",
                    (max(stuck),),
                )
        except Exception:
            self.log.exception("reserving message ids of unremoved files failed")

    def _retry_removals(self) -> None:
        self._removals.retry()

    # ---- password ---------------------------------------------------------------------

    def set_password_credentials(
        self, salt: bytes, iterations: int, stored_key: bytes, server_key: bytes
    ) -> None:
        """Store the salted SCRAM hash (RFC 5802 3); never a plain password."""
        self._require_writer()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO password (id, salt, iterations, stored_key, server_key)"
                " VALUES (1, ?, ?, ?, ?)",
                (salt, iterations, stored_key, server_key),
            )

    def password_credentials(self) -> tuple[bytes, int, bytes, bytes] | None:
        """(salt, iterations, stored_key, server_key), or None if no password is set."""
        row = self._conn.execute(
            "SELECT salt, iterations, stored_key, server_key FROM password"
        ).fetchone()
        if row is None:
            return None
        salt, iterations, stored_key, server_key = row
        return bytes(salt), int(iterations), bytes(stored_key), bytes(server_key)
