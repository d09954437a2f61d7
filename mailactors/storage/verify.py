"""verifydata: check a data directory (typically a backup) without changing it.

Theory of operation. DATABASE_KINDS is the registry of the databases a data
directory holds: a glob relative to the data directory, the migrations of that
kind (so the schema version can be judged), and, for kinds whose rows refer to
files, the directory (relative to the database's directory) holding those files
and a function listing the files the rows refer to. backup.py uses the same
registry to know which files belong to which database.

Every database is opened read-only without migrating: with `immutable=1` when
no -wal file exists (so no -wal/-shm file is created), else read-only through
the WAL. Each check that fails becomes a Problem; nothing raises for a broken
data directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TextIO

import apsw

from mailactors.storage import account, dmarcdb, mtastsdb, queue, tlsrptdb
from mailactors.storage.db import BUSY_TIMEOUT_MS, Migration

# Problem kinds that are notices: worth reading, not a reason to fail.
NOTICE_KINDS = frozenset({"tmp-leftover", "schema-older"})


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of verifydata: where, what kind, and a human-readable detail."""

    path: Path
    kind: str
    detail: str

    @property
    def is_error(self) -> bool:
        """False for notices (leftover spool files, a schema that will be migrated)."""
        return self.kind not in NOTICE_KINDS

    def __str__(self) -> str:
        label = "error" if self.is_error else "notice"
        return f"{label}: {self.path}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class OwnedFile:
    """A file a database row refers to, with the size the row records (None: unknown)."""

    path: Path
    size: int | None


# (read connection, directory of the database file) -> the files its rows refer to.
RowFiles = Callable[[apsw.Connection, Path], Iterator[OwnedFile]]


@dataclass(frozen=True, slots=True)
class DatabaseKind:
    """One kind of database file in a data directory."""

    name: str
    # Glob relative to the data directory, "/"-separated; "*" matches one path level.
    pattern: str
    migrations: tuple[Migration, ...]
    # Directory, relative to the database's directory, whose files the rows own.
    file_dir: str | None = None
    row_files: RowFiles | None = None

    def matches(self, relative: PurePosixPath) -> bool:
        """Whether a data-directory-relative path is a database of this kind."""
        parts = PurePosixPath(self.pattern).parts
        return len(relative.parts) == len(parts) and relative.match(self.pattern)

    def files_directory(self, database: Path) -> Path | None:
        """The directory holding the files of `database`, if this kind owns files."""
        return None if self.file_dir is None else database.parent / self.file_dir


def _account_message_files(conn: apsw.Connection, directory: Path) -> Iterator[OwnedFile]:
    # Same layout as AccountStore: msg/<hex(id // MESSAGES_PER_SHARD)>/<id>; expunged
    # rows keep their uid for QRESYNC but have no file.
    for id_, size in conn.execute("SELECT id, size FROM message WHERE expunged = 0 ORDER BY id"):
        shard = format(int(id_) // account.MESSAGES_PER_SHARD, "x")
        yield OwnedFile(directory / "msg" / shard / str(id_), int(size))


ACCOUNT_KIND = DatabaseKind(
    name="account",
    pattern="accounts/*/index.db",
    migrations=tuple(account.MIGRATIONS),
    file_dir="msg",
    row_files=_account_message_files,
)

def _queue_message_files(conn: apsw.Connection, directory: Path) -> Iterator[OwnedFile]:
    # Same layout as the queue store: msg/<hex(id // MESSAGES_PER_SHARD)>/<id>; a
    # message row exists as long as one of its recipients is queued.
    for id_, size in conn.execute("SELECT id, size FROM message ORDER BY id"):
        shard = format(int(id_) // queue.MESSAGES_PER_SHARD, "x")
        yield OwnedFile(directory / "msg" / shard / str(id_), int(size))


QUEUE_KIND = DatabaseKind(
    name="queue",
    pattern="queue/index.db",
    migrations=tuple(queue.MIGRATIONS),
    file_dir="msg",
    row_files=_queue_message_files,
)

# Every kind of database a data directory may hold. A module adding a database adds
# its kind here.
DATABASE_KINDS: tuple[DatabaseKind, ...] = (
    ACCOUNT_KIND,
    QUEUE_KIND,
    DatabaseKind("dmarc evaluations", "dmarceval.db", tuple(dmarcdb.EVALUATION_MIGRATIONS)),
    DatabaseKind("dmarc reports", "dmarcrpt.db", tuple(dmarcdb.REPORT_MIGRATIONS)),
    DatabaseKind("tls reports", "tlsrpt.db", tuple(tlsrptdb.RECEIVED_MIGRATIONS)),
    DatabaseKind("tls results", "tlsrptresult.db", tuple(tlsrptdb.RESULT_MIGRATIONS)),
    DatabaseKind("mta-sts policies", "mtasts.db", tuple(mtastsdb.MIGRATIONS)),
)

# The spool directory: files there belong to deliveries in progress.
SPOOL_DIR = "tmp"


def find_databases(
    data_dir: Path, kinds: Sequence[DatabaseKind] = DATABASE_KINDS
) -> list[tuple[Path, DatabaseKind | None]]:
    """Every *.db file below `data_dir`, sorted, with its kind (None: unknown)."""
    found: list[tuple[Path, DatabaseKind | None]] = []
    for path in sorted(data_dir.rglob("*.db")):
        if not path.is_file():
            continue
        relative = PurePosixPath(path.relative_to(data_dir).as_posix())
        kind = next((k for k in kinds if k.matches(relative)), None)
        found.append((path, kind))
    return found


def open_readonly(path: Path, *, immutable_if_no_wal: bool = True) -> apsw.Connection:
    """Open a database read-only without migrating.

    Without a -wal file the database is complete in its main file, and
    `immutable=1` reads it without creating -wal/-shm files; with one (a running or
    crashed server) the connection reads through the WAL. A caller that must be
    safe against a writer starting meanwhile passes immutable_if_no_wal=False (an
    immutable connection takes no locks).
    """
    uri = path.resolve().as_uri() + "?mode=ro"
    if immutable_if_no_wal and not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    try:
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    except BaseException:
        conn.close()
        raise
    return conn


def _integrity(conn: apsw.Connection) -> list[str]:
    """PRAGMA integrity_check and foreign_key_check findings; [] when clean."""
    found = [str(row[0]) for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
    for table, rowid, parent, _fkid in conn.execute("PRAGMA foreign_key_check"):
        found.append(f"foreign key violation: {table} row {rowid} refers to missing {parent}")
    return found


def _check_schema(path: Path, conn: apsw.Connection, kind: DatabaseKind) -> list[Problem]:
    version = int(conn.pragma("user_version"))
    known = len(kind.migrations)
    if version > known:
        return [
            Problem(
                path,
                "schema-too-new",
                f"schema version {version}, this version of mailactors knows up to {known}",
            )
        ]
    if version == 0:
        return [Problem(path, "schema-missing", "schema version 0: the database was never set up")]
    if version < known:
        return [
            Problem(
                path,
                "schema-older",
                f"schema version {version}, will be migrated to {known} when opened",
            )
        ]
    return []


def _check_files(
    path: Path, conn: apsw.Connection, kind: DatabaseKind
) -> list[Problem]:
    files_dir = kind.files_directory(path)
    if kind.row_files is None or files_dir is None:
        return []
    problems: list[Problem] = []
    owned: set[Path] = set()
    for f in kind.row_files(conn, path.parent):
        owned.add(f.path)
        try:
            st = f.path.stat()
        except FileNotFoundError:
            problems.append(Problem(f.path, "missing-file", f"referenced by {path}, not found"))
            continue
        if not f.path.is_file():
            problems.append(Problem(f.path, "missing-file", "not a regular file"))
        elif f.size is not None and st.st_size != f.size:
            problems.append(
                Problem(
                    f.path,
                    "size-mismatch",
                    f"{st.st_size} bytes, the row in {path} says {f.size}",
                )
            )
    if files_dir.is_dir():
        for present in sorted(files_dir.rglob("*")):
            if present.is_file() and present not in owned:
                problems.append(
                    Problem(present, "orphan-file", f"no row in {path} refers to this file")
                )
    return problems


def verify_database(path: Path, kind: DatabaseKind) -> list[Problem]:
    """Integrity, schema version and (for kinds owning files) rows against files."""
    try:
        conn = open_readonly(path)
    except apsw.Error as exc:
        return [Problem(path, "open-failed", f"cannot open: {exc}")]
    try:
        try:
            problems = _check_schema(path, conn, kind)
            problems += [Problem(path, "corrupt", finding) for finding in _integrity(conn)]
        except apsw.Error as exc:
            # Some damage (a broken page 1, a broken b-tree) makes the query itself fail.
            return [Problem(path, "corrupt", f"database is corrupt: {exc}")]
        if any(p.kind in ("schema-too-new", "schema-missing") for p in problems):
            return problems
        try:
            problems += _check_files(path, conn, kind)
        except apsw.Error as exc:
            problems.append(Problem(path, "corrupt", f"reading rows failed: {exc}"))
        return problems
    finally:
        conn.close()


def verify_data_dir(
    data_dir: Path, kinds: Sequence[DatabaseKind] = DATABASE_KINDS
) -> list[Problem]:
    """Every problem of a data directory; [] when it is sound. Changes nothing."""
    if not data_dir.is_dir():
        return [Problem(data_dir, "missing-data-dir", "not a directory")]
    problems: list[Problem] = []
    for path, kind in find_databases(data_dir, kinds):
        if kind is None:
            problems.append(
                Problem(path, "unknown-database", "not a database kind this version knows")
            )
            continue
        problems += verify_database(path, kind)
    spool = data_dir / SPOOL_DIR
    if spool.is_dir():
        for leftover in sorted(spool.rglob("*")):
            if leftover.is_file():
                problems.append(
                    Problem(
                        leftover,
                        "tmp-leftover",
                        "spool file of an interrupted delivery; safe to remove when stopped",
                    )
                )
    return problems


def run_verifydata(data_dir: Path, stdout: TextIO, stderr: TextIO) -> int:
    """Print each problem on a line; return 1 if any is an error, else 0."""
    problems = verify_data_dir(data_dir)
    for problem in problems:
        print(problem, file=stdout if not problem.is_error else stderr)
    errors = sum(1 for p in problems if p.is_error)
    databases = len(find_databases(data_dir)) if data_dir.is_dir() else 0
    if errors:
        print(f"{errors} error(s) in {data_dir}", file=stderr)
        return 1
    print(f"{data_dir}: OK ({databases} databases checked)", file=stdout)
    return 0

