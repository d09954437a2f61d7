"""Every file open, remove and rename of storage/ goes through this module.

Windows refuses to remove or rename a file that is open. Strict mode reproduces
that on Linux: remove_file and rename_file raise OpenFileError when the file (any
path naming the same inode, hard links included) is still open through
open_file. The test suite turns strict mode on, so a close-after-remove bug shows
up on every platform.

Durability helpers: SpoolFile (temp write + fsync), link_or_copy (hard link, or a
copy when links are impossible), syncdir and write_file_atomic.
"""

from __future__ import annotations

import collections
import errno
import io
import logging
import os
import random
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TypeVar

# errno values that mean "no space left": the file system, the user's quota, or
# the maximum file size.
_FULL_ERRNOS = frozenset(
    e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if e is not None
)

# os.link failures after which a copy is the way to go: another file system,
# links not permitted or not supported, or the inode's link count is at its limit.
_LINK_FALLBACK_ERRNOS = frozenset(
    e
    for e in (
        errno.EXDEV,
        errno.EPERM,
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
        errno.EMLINK,
    )
    if e is not None
)

# Chunk size for copies.
_COPY_CHUNK = 1 << 20

# Attempts to find an unused temporary name before giving up.
_TEMP_NAME_ATTEMPTS = 100
_Opened = TypeVar("_Opened")


class StorageFullError(OSError):
    """A write failed for lack of space (ENOSPC, EDQUOT or EFBIG)."""


class OpenFileError(PermissionError):
    """Strict mode: removing or renaming a file that is still open (Windows refuses)."""


def _is_full(exc: OSError) -> bool:
    return exc.errno in _FULL_ERRNOS


def _as_full(exc: OSError, path: Path | None = None) -> StorageFullError:
    filename = exc.filename if exc.filename is not None else (str(path) if path else None)
    return StorageFullError(exc.errno, exc.strerror or os.strerror(exc.errno or 0), filename)


# ---- registry of open files -------------------------------------------------

_lock = threading.Lock()
_strict = False
# (st_dev, st_ino) -> paths opened through open_file (one entry per open file).
_open: dict[tuple[int, int], list[Path]] = {}


def enable_strict_mode() -> None:
    """Make remove_file/rename_file refuse files that are open (Windows semantics)."""
    global _strict
    _strict = True


def disable_strict_mode() -> None:
    """Back to POSIX semantics: open files may be removed and renamed."""
    global _strict
    _strict = False


def strict_mode_enabled() -> bool:
    """Whether strict mode is on."""
    return _strict


def write_spool_file(
    directory: Path, prefix: str, parts: Sequence[bytes | bytearray]
) -> SpoolFile:
    """Create a new, uniquely named file in `directory` holding `parts`, fsynced and
    closed; returned as a closed SpoolFile (discard() removes it).

    The short path for a message held in memory: open, one writev, fsync, close.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    path, fd = _create_unique(directory, prefix, lambda p: os.open(p, flags, 0o666))
    size = sum(len(p) for p in parts)
    try:
        try:
            _write_all(fd, parts, size)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        _remove_quietly(path)
        if _is_full(exc):
            raise _as_full(exc, path) from exc
        raise
    return SpoolFile(path, None, size)


def _write_all(fd: int, parts: Sequence[bytes | bytearray], size: int) -> None:
    """Write every part: writev where there is one, and again after short writes."""
    writev = getattr(os, "writev", None)
    if writev is not None:
        written = writev(fd, parts)
        if written == size:
            return
        rest = memoryview(b"".join(parts))[written:]
    else:
        rest = memoryview(b"".join(parts))
    while rest:
        rest = rest[os.write(fd, rest) :]


def open_files() -> list[Path]:
    """Paths of every file currently open through open_file (for leak checks)."""
    with _lock:
        return [p for paths in _open.values() for p in paths]


def _register(key: tuple[int, int], path: Path) -> None:
    with _lock:
        _open.setdefault(key, []).append(path)


def _unregister(key: tuple[int, int], path: Path) -> None:
    with _lock:
        paths = _open.get(key)
        if paths is None:
            return
        try:
            paths.remove(path)
        except ValueError:
            return
        if not paths:
            del _open[key]


class _TrackedFileIO(io.FileIO):
    """A FileIO that leaves the open-file registry when it closes."""

    _track_key: tuple[int, int] | None = None
    _track_path: Path | None = None

    def track(self, path: Path) -> None:
        st = os.fstat(self.fileno())
        self._track_key = (st.st_dev, st.st_ino)
        self._track_path = path
        _register(self._track_key, path)

    def close(self) -> None:
        try:
            super().close()
        finally:
            key, path = self._track_key, self._track_path
            if key is not None and path is not None:
                self._track_key = None
                _unregister(key, path)


def open_file(path: Path, mode: str) -> BinaryIO:
    """Open `path` in a binary mode ("rb", "wb", "ab", "xb", "r+b", ...) and track it.

    Closing the returned file removes it from the registry.
    """
    if "b" not in mode or "t" in mode:
        raise ValueError(f"open_file is binary only, got mode {mode!r}")
    raw = _TrackedFileIO(os.fspath(path), mode.replace("b", ""))
    try:
        raw.track(path)
        buffered: io.BufferedIOBase
        if "+" in mode:
            buffered = io.BufferedRandom(raw)
        elif "r" in mode:
            buffered = io.BufferedReader(raw)
        else:
            buffered = io.BufferedWriter(raw)
    except BaseException:
        raw.close()
        raise
    return buffered


def _key_of(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def _check_not_open(path: Path, action: str) -> None:
    if not _strict:
        return
    key = _key_of(path)
    if key is None:
        return
    with _lock:
        paths = list(_open.get(key, ()))
    if paths:
        opened = ", ".join(str(p) for p in paths)
        raise OpenFileError(
            errno.EACCES, f"cannot {action} a file that is still open (open as {opened})", str(path)
        )


def remove_file(path: Path) -> None:
    """Remove a file; in strict mode refuse if it is still open."""
    _check_not_open(path, "remove")
    os.remove(path)


def rename_file(src: Path, dst: Path) -> None:
    """Rename `src` to `dst`, replacing `dst`; in strict mode refuse open files."""
    _check_not_open(src, "rename")
    _check_not_open(dst, "replace")
    os.replace(src, dst)


def close_logged(f: BinaryIO, log: logging.Logger, what: str) -> None:
    """Close `f`; a failure is logged and raised again, never swallowed."""
    try:
        f.close()
    except OSError:
        log.exception("closing file failed", extra={"file": what})
        raise


# ---- directories --------------------------------------------------------------


def syncdir(path: Path) -> None:
    """fsync a directory, so entries created or removed in it are durable.

    A no-op on Windows, which neither can nor needs to open a directory for fsync.
    """
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectorySyncer:
    """syncdir through directory descriptors kept open (the `keep` most recent).

    A writer that fsyncs the same few directories after every commit saves an open
    and a close per call. Forget a directory that may have been removed and made
    again, so its new inode is synced, not the old one. A no-op on Windows.
    """

    def __init__(self, keep: int = 4) -> None:
        self._keep = keep
        self._fds: collections.OrderedDict[Path, int] = collections.OrderedDict()

    def sync(self, path: Path) -> None:
        if os.name == "nt":
            return
        fd = self._fds.pop(path, None)
        if fd is None:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        self._fds[path] = fd
        while len(self._fds) > self._keep:
            os.close(self._fds.popitem(last=False)[1])
        try:
            os.fsync(fd)
        except OSError:
            self.forget(path)
            raise

    def forget(self, path: Path) -> None:
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])


# Temporary names need to be unique, not secret (they are created with O_EXCL and
# retried): a seeded PRNG spares a getrandom() system call per name.
_names = random.Random()


def _temp_path(directory: Path, prefix: str) -> Path:
    return directory / f"{prefix}{_names.getrandbits(64):016x}.tmp"


def _create_unique(
    directory: Path, prefix: str, open_new: Callable[[Path], _Opened]
) -> tuple[Path, _Opened]:
    """Create a new, uniquely named file in `directory` with `open_new(path)`, which
    must create exclusively (O_EXCL) and raise FileExistsError for a taken name. A
    full disk is raised as StorageFullError."""
    for _ in range(_TEMP_NAME_ATTEMPTS):
        path = _temp_path(directory, prefix)
        try:
            return path, open_new(path)
        except FileExistsError:
            continue
        except OSError as exc:
            if _is_full(exc):
                raise _as_full(exc, path) from exc
            raise
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(directory))


# ---- spool files ----------------------------------------------------------------

SpoolOpener = Callable[[Path], BinaryIO]


def _default_spool_opener(path: Path) -> BinaryIO:
    return open_file(path, "xb")


class SpoolFile:
    """A uniquely named temporary file being written, e.g. a message being received.

    `finish()` flushes and fsyncs (the file stays open, so it can be linked into a
    mailbox); `discard()` closes, then removes. Used as a context manager, it is
    closed and removed on exit unless `keep()` was called.

    A write failing for lack of space raises StorageFullError; the spool is then
    marked failed, further writes raise again, and `discard()` still removes it.
    """

    def __init__(self, path: Path, file: BinaryIO | None, size: int = 0) -> None:
        self._path = path
        self._file: BinaryIO | None = file
        self._size = size
        self._kept = False
        self._removed = False
        self._failed: StorageFullError | None = None

    @property
    def path(self) -> Path:
        """Where the spool file lives."""
        return self._path

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def closed(self) -> bool:
        """Whether the file has been closed."""
        return self._file is None

    def _translate(self, exc: OSError) -> OSError:
        if _is_full(exc):
            self._failed = _as_full(exc, self._path)
            return self._failed
        return exc

    def write(self, data: bytes | bytearray) -> None:
        """Append `data`."""
        if self._failed is not None:
            raise StorageFullError(self._failed.errno, self._failed.strerror, str(self._path))
        if self._file is None:
            raise ValueError(f"spool file {self._path} is closed")
        try:
            self._file.write(data)
        except OSError as exc:
            raise self._translate(exc) from exc
        self._size += len(data)

    def finish(self) -> None:
        """Flush and fsync; the file stays open."""
        if self._failed is not None:
            raise StorageFullError(self._failed.errno, self._failed.strerror, str(self._path))
        if self._file is None:
            raise ValueError(f"spool file {self._path} is closed")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise self._translate(exc) from exc

    def keep(self) -> None:
        """Do not remove the file when the context manager exits."""
        self._kept = True

    def close(self) -> None:
        """Close the file (idempotent). Buffered data that cannot be written raises."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            f.close()
        except OSError as exc:
            if self._failed is not None and _is_full(exc):
                # The failure was already reported by write/finish; the file is
                # closed regardless (BufferedWriter closes its raw file after a
                # failing flush).
                return
            raise self._translate(exc) from exc

    def discard(self) -> None:
        """Close, then remove the file (idempotent). A failure to close is raised after removing."""
        try:
            self.close()
        finally:
            if not self._removed:
                self._removed = True
                try:
                    remove_file(self._path)
                except FileNotFoundError:
                    pass

    def __enter__(self) -> SpoolFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._kept:
            self.close()
        else:
            self.discard()


def create_spool_file(
    directory: Path, prefix: str = "", *, opener: SpoolOpener | None = None
) -> SpoolFile:
    """Create a new, uniquely named spool file in `directory`, opened for writing.

    `opener(path)` opens the new file; it must create `path` exclusively (O_EXCL)
    and return a writable binary file, raising FileExistsError if `path` exists.
    The default is `open_file(path, "xb")`. Tests pass an opener that sends the
    data elsewhere, e.g. to /dev/full, to exercise full-disk handling.
    """
    path, f = _create_unique(directory, prefix, opener or _default_spool_opener)
    return SpoolFile(path, f)


# ---- links, copies, atomic writes ----------------------------------------------


class DeferredRemovals:
    """Files to remove after a commit. A file still open (Windows refuses to remove it;
    strict mode does too) is kept and retried after later commits and at close."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what  # "message file", "queue file": for the log
        self.pending: list[Path] = []

    def remove(self, paths: Sequence[Path]) -> None:
        """Remove `paths` and whatever earlier calls could not."""
        todo, self.pending = [*self.pending, *paths], []
        for path in todo:
            try:
                remove_file(path)
            except FileNotFoundError:
                continue
            except PermissionError as exc:
                self.log.info(
                    f"{self.what} still open, removal postponed",
                    extra={"path": str(path), "err": str(exc)},
                )
                self.pending.append(path)
            except OSError:
                self.log.exception(f"removing {self.what} failed", extra={"path": str(path)})
                self.pending.append(path)

    def retry(self) -> None:
        if self.pending:
            self.remove([])

    def close(self) -> None:
        """A last try; what is still there is logged and forgotten."""
        self.retry()
        for path in self.pending:
            self.log.warning(f"{self.what} left behind", extra={"path": str(path)})
        self.pending = []

    def __contains__(self, path: object) -> bool:
        return path in self.pending


def link_or_copy(src: Path, dst: Path, *, make_parents: bool = True) -> None:
    """Hard link `src` as `dst`, or copy when a link is impossible.

    The copy is written to a temporary name in dst's directory, fsynced, closed and
    then renamed. Parent directories of `dst` are created unless the caller knows
    they exist (`make_parents=False`). `dst` must not exist (FileExistsError). The
    caller fsyncs dst's directory (syncdir) when the link must be durable.
    """
    if make_parents:
        make_dirs(dst.parent)
    link = getattr(os, "link", None)
    if link is not None:
        try:
            link(src, dst)
            return
        except OSError as exc:
            if _is_full(exc):
                raise _as_full(exc, dst) from exc
            if exc.errno not in _LINK_FALLBACK_ERRNOS:
                raise
    _copy_file(src, dst)


def make_dirs(path: Path) -> None:
    """mkdir -p; a full disk is raised as StorageFullError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if _is_full(exc):
            raise _as_full(exc, path) from exc
        raise


def _write_via_temp(
    dst: Path, prefix: str, fill: Callable[[BinaryIO], object], mode: int | None = None
) -> None:
    """Write a temp file in dst's directory with `fill`, fsync, close, then rename.

    The temp file is closed before the rename (Windows semantics) and removed on any
    failure; a full disk is raised as StorageFullError.
    """
    tmp, out = _create_unique(dst.parent, prefix, lambda p: open_file(p, "xb"))
    try:
        try:
            if mode is not None:
                os.chmod(tmp, mode)
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        finally:
            out.close()
        rename_file(tmp, dst)
    except OSError as exc:
        _remove_quietly(tmp)
        if _is_full(exc):
            raise _as_full(exc, dst) from exc
        raise
    except BaseException:
        _remove_quietly(tmp)
        raise


def _copy_file(src: Path, dst: Path) -> None:
    if dst.exists():
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))

    def copy_into(out: BinaryIO) -> None:
        with open_file(src, "rb") as inp:
            shutil.copyfileobj(inp, out, _COPY_CHUNK)

    _write_via_temp(dst, ".copy-", copy_into)


def _remove_quietly(path: Path) -> None:
    """Remove a temporary file during error handling; the original error wins."""
    try:
        remove_file(path)
    except FileNotFoundError:
        pass
    except OSError:
        logging.getLogger(__name__).exception("removing temporary file failed: %s", path)


def write_file_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` atomically: temp write, fsync, close, rename, syncdir.

    `mode` sets the permission bits (e.g. 0o600 for private keys) before any data is
    written.
    """
    _write_via_temp(path, f".{path.name}.", lambda f: f.write(data), mode)
    syncdir(path.parent)
