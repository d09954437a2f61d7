"""Open, migrate, back up and close one SQLite database file (APSW, WAL).

A writer (the StoreActor's connection) migrates the schema on init and writes
with BEGIN IMMEDIATE. Readers open their own read-only connection; with WAL
they see the last committed state and never block the writer.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Protocol, Self, TypeVar

import apsw
import apsw.bestpractice

from mailactors.storage.files import StorageFullError

# Migration i brings the schema from user_version i to i + 1: SQL text (may hold
# several statements) or a function given the connection, run in a transaction.
Migration = Callable[[apsw.Connection], None] | str

# How long a connection waits for a lock held by another connection.
BUSY_TIMEOUT_MS = 5000

# Pages copied per backup step; between steps the writer may proceed.
BACKUP_PAGES_PER_STEP = 256

# How long a backup keeps retrying steps that find the source busy or locked.
BACKUP_BUSY_DEADLINE_S = 60.0
_BACKUP_RETRY_SLEEP_S = 0.05


def online_backup(source: apsw.Connection, target: apsw.Connection) -> int:
    """Copy `source` into `target` with SQLite's online backup API; returns the pages.

    Copies BACKUP_PAGES_PER_STEP pages per step so writers are not held up; steps
    that find the source busy or locked are retried for up to BACKUP_BUSY_DEADLINE_S
    seconds.
    """
    backup = target.backup("main", source, "main")
    try:
        deadline = time.monotonic() + BACKUP_BUSY_DEADLINE_S
        while not backup.done:
            try:
                backup.step(BACKUP_PAGES_PER_STEP)
            except (apsw.BusyError, apsw.LockedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(_BACKUP_RETRY_SLEEP_S)
        return int(backup.page_count)
    finally:
        backup.finish()


class DatabaseError(Exception):
    """A database could not be opened, migrated or used as asked."""


class SchemaTooNewError(DatabaseError):
    """The database file has a schema version newer than this code knows."""


_registry_lock = threading.Lock()
_registry: dict[int, Path] = {}


def open_databases() -> list[Path]:
    """Paths of every Database initialised and not yet closed (for leak checks)."""
    with _registry_lock:
        return list(_registry.values())


class Database:
    """One connection to one SQLite database file, used from one thread."""

    def __init__(
        self,
        path: Path,
        migrations: Sequence[Migration],
        log: logging.Logger,
        *,
        readonly: bool = False,
    ) -> None:
        self.path = path
        self.migrations = list(migrations)
        self.log = log
        self.readonly = readonly
        self._conn: apsw.Connection | None = None

    @property
    def connection(self) -> apsw.Connection:
        """The open connection; raises DatabaseError before init or after close."""
        if self._conn is None:
            raise DatabaseError(f"database {self.path} is not open")
        return self._conn

    def init(self) -> None:
        """Open the file, apply our settings and (writers only) migrate the schema."""
        if self._conn is not None:
            raise DatabaseError(f"database {self.path} is already open")
        if self.readonly:
            flags = apsw.SQLITE_OPEN_READONLY
        else:
            flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        try:
            conn = apsw.Connection(str(self.path), flags=flags)
        except apsw.CantOpenError as exc:
            raise DatabaseError(f"cannot open database {self.path}: {exc}") from exc
        try:
            self._configure(conn)
            self._conn = conn
            self._check_and_migrate()
        except BaseException:
            self._conn = None
            conn.close()
            raise
        with _registry_lock:
            _registry[id(self)] = self.path
        self.log.debug(
            "database opened",
            extra={
                "path": str(self.path),
                "readonly": self.readonly,
                "schema": self.schema_version(),
            },
        )

    def _configure(self, conn: apsw.Connection) -> None:
        # The per-connection parts of apsw.bestpractice.recommended, applied to this
        # connection only (apsw.bestpractice.apply would install process-wide hooks).
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        apsw.bestpractice.connection_enable_foreign_keys(conn)
        apsw.bestpractice.connection_dqs(conn)
        apsw.bestpractice.connection_recursive_triggers(conn)
        if self.readonly:
            return
        mode = conn.pragma("journal_mode", "wal")
        if str(mode).lower() != "wal":
            raise DatabaseError(f"database {self.path}: cannot enable WAL (journal_mode={mode})")
        # In WAL mode, NORMAL may lose the last commits on power loss; FULL syncs the
        # WAL at every commit, so a committed delivery is durable.
        conn.pragma("synchronous", "FULL")
        apsw.bestpractice.connection_optimize(conn)

    def _check_and_migrate(self) -> None:
        known = len(self.migrations)
        version = self.schema_version()
        if version > known:
            raise SchemaTooNewError(
                f"database {self.path} has schema version {version}, this code knows up to {known}"
            )
        if version == known:
            return
        if self.readonly:
            raise DatabaseError(
                f"database {self.path} has schema version {version}, older than {known}; "
                "a read-only handle does not migrate, open it for writing first"
            )
        for i in range(version, known):
            migration = self.migrations[i]
            with self.transaction() as conn:
                if isinstance(migration, str):
                    conn.execute(migration)
                else:
                    migration(conn)
                conn.pragma("user_version", i + 1)
            self.log.info(
                "database migrated", extra={"path": str(self.path), "from": i, "to": i + 1}
            )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with _registry_lock:
            _registry.pop(id(self), None)
        try:
            if not self.readonly:
                # Refresh query planner statistics (apsw.bestpractice); failing to is
                # no reason to fail the close.
                conn.pragma("optimize")
        except apsw.Error:
            self.log.warning("PRAGMA optimize failed at close", exc_info=True)
        finally:
            conn.close()
        self.log.debug("database closed", extra={"path": str(self.path)})

    @contextmanager
    def transaction(self) -> Iterator[apsw.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; ROLLBACK if the block raises.

        A disk-full failure (SQLITE_FULL) is raised as StorageFullError.
        """
        if self.readonly:
            raise DatabaseError(f"database {self.path} is open read-only")
        conn = self.connection
        if conn.in_transaction:
            raise DatabaseError(f"database {self.path}: transactions do not nest")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except apsw.FullError as exc:
            raise StorageFullError(
                errno.ENOSPC, f"database or disk is full: {exc}", str(self.path)
            ) from exc

    @contextmanager
    def read_transaction(self) -> Iterator[apsw.Connection]:
        """A deferred transaction: every query inside sees one consistent snapshot."""
        conn = self.connection
        if conn.in_transaction:
            raise DatabaseError(f"database {self.path}: transactions do not nest")
        conn.execute("BEGIN DEFERRED")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def schema_version(self) -> int:
        """PRAGMA user_version."""
        return int(self.connection.pragma("user_version"))

    def backup_to(self, dest: Path) -> None:
        """Write a consistent copy of the database to `dest` (SQLite online backup).

        Copies BACKUP_PAGES_PER_STEP pages per step so writers are not held up;
        steps that find the source busy or locked are retried for up to
        BACKUP_BUSY_DEADLINE_S seconds.
        """
        source = self.connection
        if dest.exists():
            raise DatabaseError(f"backup destination {dest} exists")
        target = apsw.Connection(str(dest))
        try:
            online_backup(source, target)
            # Make the copy self-contained: no WAL file needs to go with it.
            target.pragma("journal_mode", "delete")
        except apsw.FullError as exc:
            raise StorageFullError(errno.ENOSPC, f"backup: disk full: {exc}", str(dest)) from exc
        finally:
            target.close()
        self.log.info("database backed up", extra={"path": str(self.path), "dest": str(dest)})

    def integrity_check(self) -> list[str]:
        """Problems found by PRAGMA integrity_check and foreign_key_check; [] if none."""
        conn = self.connection
        # Some damage (e.g. a broken b-tree page) makes the check itself fail with
        # SQLITE_CORRUPT instead of returning rows: that is a finding too.
        try:
            problems = [
                str(row[0]) for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"
            ]
        except (apsw.CorruptError, apsw.NotADBError) as exc:
            return [f"database is corrupt: {exc}"]
        try:
            for table, rowid, parent, _fkid in conn.execute("PRAGMA foreign_key_check"):
                problems.append(
                    f"foreign key violation: {table} row {rowid} refers to missing {parent}"
                )
        except (apsw.CorruptError, apsw.NotADBError) as exc:
            problems.append(f"database is corrupt: {exc}")
        return problems


class _Store(Protocol):
    def init(self) -> None: ...

    def close(self) -> None: ...


StoreT = TypeVar("StoreT", bound=_Store)


@contextmanager
def reading(
    factory: Callable[..., StoreT], path: Path, log: logging.Logger | None = None
) -> Iterator[StoreT | None]:
    """A store opened read-only on `path` (its own connection), or None when the database
    does not exist yet; closed on exit. For stores built as `factory(path, log, readonly=True)`."""
    if not path.exists():
        yield None
        return
    store = factory(path, log, readonly=True)
    store.init()
    try:
        yield store
    finally:
        store.close()


class DatabaseStore:
    """A store kept in one database file: its Database, init/close and `with`.

    Subclasses name their MIGRATIONS and the LOGGER used when none is passed. With
    readonly=True the store opens its own read-only connection; writing methods then
    raise DatabaseError.
    """

    MIGRATIONS: ClassVar[Sequence[Migration]]
    LOGGER: ClassVar[str]

    def __init__(
        self, path: Path, log: logging.Logger | None = None, *, readonly: bool = False
    ) -> None:
        self.path = path
        self.readonly = readonly
        self.db = Database(
            path, self.MIGRATIONS, log or logging.getLogger(self.LOGGER), readonly=readonly
        )

    def init(self) -> None:
        """Open (and, for a writer, create and migrate) the database."""
        self.db.init()

    def close(self) -> None:
        """Close the database (idempotent)."""
        self.db.close()

    def __enter__(self) -> Self:
        self.init()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
