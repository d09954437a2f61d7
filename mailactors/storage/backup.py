"""backup: a consistent copy of a data directory, also while the server runs.

Theory of operation. A message file is linked (and its directory fsynced) before
the COMMIT that inserts its row, and removed only after the COMMIT that expunges
it. So each database is backed up in four passes:

1. hard-link (or copy, across file systems) every file of the database's file
   directory present now; then once more the ones that arrived meanwhile, right
   before the snapshot;
2. copy the database with SQLite's online backup API, inside one read
   transaction on the source, so the copy is one committed snapshot (in WAL mode
   that read transaction does not hold up the writer);
3. link the files the rows of the copy refer to that pass 1 missed (they arrived
   between pass 1 and the snapshot), or whose source changed since pass 1;
4. remove from the backup the files no row of the copy refers to (expunged
   between pass 1 and the snapshot, or orphans).

A file the snapshot refers to that is gone by pass 3 (delivered and expunged
within the window) makes the passes run again for that database, up to
BACKUP_ATTEMPTS times; after that it is reported as a problem, never silently
left out. Files and directories of the backup are fsynced. The -wal file is never
copied: the backup API reads through it, and every copy is switched to
journal_mode=delete so it is complete in one file.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import apsw

from mailactors.conf import ConfigErrors, load_config
from mailactors.storage.db import BUSY_TIMEOUT_MS, online_backup
from mailactors.storage.files import (
    StorageFullError,
    link_or_copy,
    open_file,
    remove_file,
    syncdir,
)
from mailactors.storage.verify import (
    DATABASE_KINDS,
    DatabaseKind,
    find_databases,
    open_readonly,
)

Progress = Callable[[str], None]

# Attempts at one database when files its snapshot refers to vanish before they are
# linked (delivered and expunged within the backup's window).
BACKUP_ATTEMPTS = 3


class BackupError(Exception):
    """The backup cannot be made (destination not empty, a database unreadable, ...)."""


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup did; `problems` non-empty means the backup is incomplete."""

    databases: int
    files_linked: int
    files_copied: int
    # Size of the backup: database copies plus message files, linked or copied.
    bytes: int
    seconds: float
    problems: tuple[str, ...]

    def __str__(self) -> str:
        text = (
            f"backup: {self.databases} databases, {self.files_linked} files linked, "
            f"{self.files_copied} files copied, {self.bytes} bytes, {self.seconds:.1f} seconds"
        )
        if self.problems:
            text += f", {len(self.problems)} problem(s)"
        return text


@dataclass(frozen=True, slots=True)
class _Placed:
    """A message file put into the backup: the source's identity then, and how."""

    source_key: tuple[int, int, int, int]
    linked: bool
    size: int


def _key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Backup:
    def __init__(self, data_dir: Path, dest: Path, log: logging.Logger, progress: Progress):
        self.data_dir = data_dir
        self.dest = dest
        self.log = log
        self.progress = progress
        self.placed: dict[Path, _Placed] = {}  # by path relative to the data directory
        self.dirs: set[Path] = set()  # backup directories to fsync
        self.problems: list[str] = []
        self.databases: list[Path] = []  # the copies made

    # ---- message files ---------------------------------------------------------

    def place(self, relative: Path) -> bool:
        """Link or copy one file into the backup; False if the source is gone."""
        src, dst = self.data_dir / relative, self.dest / relative
        try:
            st = os.stat(src)
            link_or_copy(src, dst)
        except FileNotFoundError:
            # Removed (expunged) since it was listed: link_or_copy left nothing behind.
            return False
        linked = os.path.samestat(st, os.stat(dst))
        self.placed[relative] = _Placed(_key(st), linked, st.st_size)
        self._note_dirs(dst.parent)
        return True

    def _note_dirs(self, directory: Path) -> None:
        # The new entry in each directory up to dest must be durable.
        while directory not in self.dirs and directory != self.dest.parent:
            self.dirs.add(directory)
            if directory == self.dest:
                break
            directory = directory.parent

    def link_files(self, path: Path, kind: DatabaseKind | None) -> None:
        """Pass 1: link each file of a database's file directory not yet in the backup."""
        files_dir = None if kind is None else kind.files_directory(path)
        if files_dir is None or not files_dir.is_dir():
            return
        for src in sorted(files_dir.rglob("*")):
            relative = src.relative_to(self.data_dir)
            if relative not in self.placed and src.is_file():
                self.place(relative)

    def complete_files(self, path: Path, kind: DatabaseKind) -> tuple[int, list[str]]:
        """Pass 3 and 4 for one database: make the backup's files match its rows.

        Returns how many files the rows refer to, and the files that could not be
        put into the backup.
        """
        files_dir = kind.files_directory(path)
        if kind.row_files is None or files_dir is None:
            return 0, []
        copy = self.dest / path.relative_to(self.data_dir)
        referenced: set[Path] = set()
        conn = open_readonly(copy)
        try:
            owned = list(kind.row_files(conn, copy.parent))
        finally:
            conn.close()
        problems: list[str] = []
        for f in owned:
            relative = f.path.relative_to(self.dest)
            referenced.add(relative)
            problem = self._complete_one(relative, path)
            if problem is not None:
                problems.append(problem)
        files_copy = self.dest / files_dir.relative_to(self.data_dir)
        if files_copy.is_dir():
            for present in sorted(files_copy.rglob("*")):
                relative = present.relative_to(self.dest)
                if present.is_file() and relative not in referenced:
                    remove_file(present)
                    self.placed.pop(relative, None)
                    self._note_dirs(present.parent)
        return len(owned), problems

    def _complete_one(self, relative: Path, database: Path) -> str | None:
        placed = self.placed.get(relative)
        try:
            st = os.stat(self.data_dir / relative)
        except FileNotFoundError:
            if placed is None:
                return (
                    f"{relative.as_posix()}: referenced by the backup of "
                    f"{database.relative_to(self.data_dir).as_posix()} but removed before it "
                    "could be copied (delivered and expunged during the backup)"
                )
            return None
        if placed is not None and placed.source_key == _key(st):
            return None
        if placed is not None:
            # The source changed since pass 1 (e.g. a rolled-back id handed out again).
            remove_file(self.dest / relative)
            del self.placed[relative]
        if not self.place(relative):
            return f"{relative.as_posix()}: removed while it was being copied"
        return None

    # ---- databases ---------------------------------------------------------------

    def copy_database(self, path: Path) -> int:
        """Pass 2 for one database: an online backup into the destination; returns pages."""
        dst = self.dest / path.relative_to(self.data_dir)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            remove_file(dst)  # an earlier attempt's copy
        pages = backup_database(path, dst)
        self._note_dirs(dst.parent)
        return pages

    def back_up(self, path: Path, kind: DatabaseKind | None) -> None:
        """All passes for one database, retried when files vanish in the window."""
        relative = path.relative_to(self.data_dir).as_posix()
        self.link_files(path, kind)
        for attempt in range(1, BACKUP_ATTEMPTS + 1):
            # Link what arrived during the bulk pass, right before the snapshot, so
            # the window in which a file can come and go is as short as can be.
            self.link_files(path, kind)
            pages = self.copy_database(path)
            if kind is None:
                self.progress(
                    f"notice: {relative}: unknown database kind, copied without checking "
                    "its files"
                )
                count, problems = 0, list[str]()
            else:
                count, problems = self.complete_files(path, kind)
            if not problems:
                break
            self.log.info(
                "backup: files vanished during the window",
                extra={"database": relative, "attempt": attempt, "files": len(problems)},
            )
            if attempt < BACKUP_ATTEMPTS:
                self.progress(
                    f"notice: {relative}: {len(problems)} file(s) delivered and expunged "
                    "during the backup, taking it again"
                )
        self.problems += problems
        self.databases.append(self.dest / path.relative_to(self.data_dir))
        owns_files = kind is not None and kind.row_files is not None
        files = f", {count} message files" if owns_files else ""
        self.progress(f"{relative}: {pages} pages{files}")

    def sync(self) -> None:
        # Deepest first, so each directory's entries are durable before its parent's.
        for directory in sorted(self.dirs, key=lambda d: len(d.parts), reverse=True):
            syncdir(directory)


def _fsync_file(path: Path) -> None:
    """Make a file's data durable (SQLite syncs its commits; this says so explicitly)."""
    f = open_file(path, "r+b")
    try:
        os.fsync(f.fileno())
    finally:
        f.close()


def backup_database(src: Path, dst: Path) -> int:
    """Copy one database with the online backup API; returns the number of pages.

    The source is opened read-only (never migrated) and held in one read
    transaction, so every step copies from the same snapshot and the backup never
    restarts, however busy the writer is. Steps that find the source busy are
    retried for up to BACKUP_BUSY_DEADLINE_S seconds.
    """
    if dst.exists():
        raise BackupError(f"backup destination {dst} exists")
    try:
        # Not immutable: a server may start writing while the backup runs.
        source = open_readonly(src, immutable_if_no_wal=False)
    except apsw.Error as exc:
        raise BackupError(f"cannot open {src}: {exc}") from exc
    try:
        target = apsw.Connection(str(dst))
        try:
            target.set_busy_timeout(BUSY_TIMEOUT_MS)
            source.execute("BEGIN")
            # A read starts the transaction: from here on one snapshot.
            source.execute("SELECT count(*) FROM sqlite_schema").fetchall()
            pages = online_backup(source, target)
            # Complete in one file: no -wal needs to go with the copy.
            target.pragma("journal_mode", "delete")
        finally:
            target.close()
        _fsync_file(dst)
    except apsw.FullError as exc:
        raise StorageFullError(errno.ENOSPC, f"backup: disk full: {exc}", str(dst)) from exc
    except apsw.Error as exc:
        raise BackupError(f"backing up {src} failed: {exc}") from exc
    finally:
        source.close()
    return int(pages)


def backup_data_dir(
    data_dir: Path,
    dest: Path,
    log: logging.Logger,
    progress: Progress | None = None,
    *,
    kinds: tuple[DatabaseKind, ...] = DATABASE_KINDS,
) -> BackupSummary:
    """Back up `data_dir` into `dest` (which must not exist or be empty).

    `progress` gets one line per database and notices. Problems that make the
    backup incomplete are in the summary; errors that stop it raise BackupError.
    """
    started = time.monotonic()
    say: Progress = progress or (lambda line: None)
    data_dir = data_dir.resolve()
    if not data_dir.is_dir():
        raise BackupError(f"data directory {data_dir} does not exist")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"destination {dest} exists and is not an empty directory")
    dest = dest.resolve()
    if dest == data_dir or dest.is_relative_to(data_dir):
        raise BackupError(f"destination {dest} is inside the data directory {data_dir}")
    dest.mkdir(parents=True, exist_ok=True)
    syncdir(dest.parent)

    job = _Backup(data_dir, dest, log, say)
    databases = find_databases(data_dir, kinds)
    for path, kind in databases:
        job.back_up(path, kind)
    job.sync()
    linked = sum(1 for p in job.placed.values() if p.linked)
    summary = BackupSummary(
        databases=len(databases),
        files_linked=linked,
        files_copied=len(job.placed) - linked,
        bytes=sum(os.stat(p).st_size for p in job.databases) + sum(p.size for p in job.placed.values()),
        seconds=time.monotonic() - started,
        problems=tuple(job.problems),
    )
    log.info(
        "backup done",
        extra={
            "data_dir": str(data_dir),
            "dest": str(dest),
            "databases": summary.databases,
            "problems": len(summary.problems),
        },
    )
    return summary


def run_backup(config_file: Path, dest: Path, stdout: TextIO, stderr: TextIO) -> int:
    """The `backup DESTDIR` command: back up the configured data directory."""
    try:
        config = load_config(config_file)
    except ConfigErrors as exc:
        for error in exc.errors:
            print(error, file=stderr)
        return 1

    def say(line: str) -> None:
        print(line, file=stdout, flush=True)

    try:
        summary = backup_data_dir(
            config.static.data_dir, dest, logging.getLogger("mailactors.backup"), say
        )
    except (BackupError, OSError) as exc:
        print(f"backup failed: {exc}", file=stderr)
        return 1
    for problem in summary.problems:
        print(f"problem: {problem}", file=stderr)
    print(summary, file=stdout)
    return 1 if summary.problems else 0
