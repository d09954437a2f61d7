"""Tests for mailactors.storage.files: strict mode, spool files, links, atomic writes."""

from __future__ import annotations

import errno
import io
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from mailactors.storage import files
from mailactors.storage.files import (
    OpenFileError,
    SpoolOpener,
    StorageFullError,
    close_logged,
    create_spool_file,
    link_or_copy,
    open_file,
    open_files,
    remove_file,
    rename_file,
    syncdir,
    write_file_atomic,
)


def _mount_tmpfs(where: Path, size: str) -> bool:
    """Mount a small tmpfs at `where`; False if this host does not let us."""
    where.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", str(where)], check=True, timeout=10)


def _dev_full_opener(path: Path) -> BinaryIO:
    """Spool opener whose data goes to /dev/full (every write fails with ENOSPC).

    The spool's own path is still created exclusively, so discard() has a file
    to remove, as with a real spool file.
    """
    open_file(path, "xb").close()
    return open_file(Path("/dev/full"), "wb")


def _new_files_write_to_dev_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a small file system: files storage creates (mode "x") write to /dev/full."""
    real_open = files.open_file

    def full_open(path: Path, mode: str) -> BinaryIO:
        if "x" in mode:
            real_open(path, mode).close()
            return real_open(Path("/dev/full"), "wb")
        return real_open(path, mode)

    monkeypatch.setattr(files, "open_file", full_open)


@pytest.fixture
def full_fs(tmp_path: Path) -> Iterator[tuple[Path, SpoolOpener | None]]:
    """A directory whose file system is (nearly) full, and the spool opener to use.

    First choice: a real 64 KiB tmpfs (we run as root in CI). Otherwise /dev/full
    through create_spool_file's opener parameter.
    """
    mnt = tmp_path / "small"
    if _mount_tmpfs(mnt, "64k"):
        try:
            yield mnt, None
        finally:
            _umount(mnt)
    else:
        yield mnt, _dev_full_opener


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """A directory on another file system than tmp_path (a tmpfs, else /dev/shm)."""
    mnt = tmp_path / "other"
    if _mount_tmpfs(mnt, "4m"):
        try:
            yield mnt
        finally:
            _umount(mnt)
        return
    shm = Path("/dev/shm")
    assert shm.is_dir() and shm.stat().st_dev != tmp_path.stat().st_dev, "no second file system"
    d = shm / f"mailactors-test-{os.getpid()}"
    d.mkdir()
    try:
        yield d
    finally:
        shutil.rmtree(d)


# ---- open_file and strict mode ----------------------------------------------------


def test_open_file_registers_until_closed(tmp_path: Path) -> None:
    p = tmp_path / "a"
    with open_file(p, "wb") as f:
        f.write(b"x")
        assert p in open_files()
    assert p not in open_files()
    with open_file(p, "rb") as f:
        assert f.read() == b"x"
    with open_file(p, "r+b") as f:
        f.write(b"y")
    assert p.read_bytes() == b"y"
    assert open_files() == []


def test_open_file_is_binary_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="binary"):
        open_file(tmp_path / "a", "w")
    with pytest.raises(ValueError, match="binary"):
        open_file(tmp_path / "a", "rt")


def test_open_file_failure_registers_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_file(tmp_path / "missing", "rb")
    p = tmp_path / "exists"
    p.write_bytes(b"")
    with pytest.raises(FileExistsError):
        open_file(p, "xb")
    assert open_files() == []


def test_strict_mode_refuses_remove_of_open_file(tmp_path: Path) -> None:
    assert files.strict_mode_enabled()
    p = tmp_path / "a"
    f = open_file(p, "wb")
    with pytest.raises(OpenFileError):
        remove_file(p)
    assert p.exists()
    f.close()
    remove_file(p)
    assert not p.exists()


def test_strict_mode_sees_other_names_of_the_same_file(tmp_path: Path) -> None:
    p = tmp_path / "a"
    p.write_bytes(b"x")
    os.link(p, tmp_path / "hardlink")
    os.symlink(p, tmp_path / "symlink")
    with open_file(tmp_path / "symlink", "rb"):
        with pytest.raises(OpenFileError):
            remove_file(tmp_path / "hardlink")
        with pytest.raises(OpenFileError):
            rename_file(p, tmp_path / "b")
    rename_file(p, tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == b"x"


def test_strict_mode_refuses_rename_of_open_file_and_onto_open_file(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    with open_file(src, "rb"):
        with pytest.raises(OpenFileError):
            rename_file(src, dst)
    with open_file(dst, "rb"):
        with pytest.raises(OpenFileError):
            rename_file(src, dst)
    rename_file(src, dst)
    assert dst.read_bytes() == b"new"
    assert not src.exists()


def test_without_strict_mode_posix_semantics_apply(tmp_path: Path) -> None:
    files.disable_strict_mode()
    assert not files.strict_mode_enabled()
    p = tmp_path / "a"
    with open_file(p, "wb") as f:
        remove_file(p)
        f.write(b"still writable")
    assert not p.exists()


def test_open_file_error_is_a_permission_error() -> None:
    # Windows reports a sharing violation as PermissionError; code catching that
    # catches strict mode's error too.
    assert issubclass(OpenFileError, PermissionError)
    assert issubclass(StorageFullError, OSError)


# ---- spool files ----------------------------------------------------------------------


def test_spool_file_write_finish_keep(tmp_path: Path) -> None:
    with create_spool_file(tmp_path, prefix="smtp-") as spool:
        assert spool.path.parent == tmp_path
        assert spool.path.name.startswith("smtp-")
        spool.write(b"Subject: hi\r\n")
        spool.write(b"\r\nbody\r\n")
        assert spool.size == 21
        spool.finish()
        # finish keeps the file open, so it can be linked while still held.
        assert spool.path in open_files()
        assert not spool.closed
        assert spool.path.read_bytes() == b"Subject: hi\r\n\r\nbody\r\n"
        spool.keep()
    assert spool.closed
    assert spool.path.read_bytes() == b"Subject: hi\r\n\r\nbody\r\n"
    remove_file(spool.path)


def test_spool_file_context_manager_removes(tmp_path: Path) -> None:
    with create_spool_file(tmp_path) as spool:
        spool.write(b"data")
        path = spool.path
        assert path.exists()
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_spool_file_discard_closes_then_removes(tmp_path: Path) -> None:
    spool = create_spool_file(tmp_path)
    spool.write(b"data")
    # In strict mode removing an open file fails, so discard must close first.
    spool.discard()
    spool.discard()  # idempotent
    assert not spool.path.exists()
    with pytest.raises(ValueError, match="closed"):
        spool.write(b"more")
    with pytest.raises(ValueError, match="closed"):
        spool.finish()


def test_spool_files_get_unique_names(tmp_path: Path) -> None:
    spools = [create_spool_file(tmp_path) for _ in range(50)]
    try:
        assert len({s.path for s in spools}) == 50
    finally:
        for s in spools:
            s.discard()


def test_spool_opener_collision_is_retried(tmp_path: Path) -> None:
    calls: list[Path] = []

    def opener(path: Path) -> BinaryIO:
        calls.append(path)
        if len(calls) == 1:
            raise FileExistsError(errno.EEXIST, "taken", str(path))
        return open_file(path, "xb")

    with create_spool_file(tmp_path, opener=opener) as spool:
        assert spool.path == calls[1]
    assert len(calls) == 2


def test_spool_storage_full_on_full_file_system(full_fs: tuple[Path, SpoolOpener | None]) -> None:
    directory, opener = full_fs
    directory.mkdir(exist_ok=True)
    spool = create_spool_file(directory, prefix="smtp-", opener=opener)
    chunk = b"x" * 8192
    with pytest.raises(StorageFullError) as info:
        for _ in range(64):  # 512 KiB, far more than the 64 KiB file system
            spool.write(chunk)
        spool.finish()
    assert info.value.errno == errno.ENOSPC
    # The spool stays failed: no later write can look like it succeeded.
    with pytest.raises(StorageFullError):
        spool.write(b"y")
    with pytest.raises(StorageFullError):
        spool.finish()
    spool.discard()
    assert list(directory.iterdir()) == []
    assert open_files() == []


def test_spool_storage_full_through_dev_full_opener(tmp_path: Path) -> None:
    spool = create_spool_file(tmp_path, opener=_dev_full_opener)
    spool.write(b"small writes are buffered")
    with pytest.raises(StorageFullError) as info:
        spool.finish()
    assert info.value.errno == errno.ENOSPC
    spool.discard()
    assert list(tmp_path.iterdir()) == []
    assert open_files() == []


def test_spool_storage_full_when_creating(tmp_path: Path) -> None:
    def opener(path: Path) -> BinaryIO:
        raise OSError(errno.EDQUOT, "Disk quota exceeded", str(path))

    with pytest.raises(StorageFullError):
        create_spool_file(tmp_path, opener=opener)


# ---- link_or_copy ---------------------------------------------------------------------


def test_link_or_copy_links_and_creates_parents(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"message")
    dst = tmp_path / "msg" / "0" / "17"
    link_or_copy(src, dst)
    assert dst.read_bytes() == b"message"
    assert os.path.samefile(src, dst)
    assert src.stat().st_nlink == 2


def test_link_or_copy_refuses_existing_destination(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"a")
    dst.write_bytes(b"b")
    with pytest.raises(FileExistsError):
        link_or_copy(src, dst)
    assert dst.read_bytes() == b"b"


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP])
def test_link_or_copy_copies_when_link_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def refuse(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", refuse)
    src = tmp_path / "src"
    src.write_bytes(b"message" * 1000)
    dst = tmp_path / "d" / "dst"
    link_or_copy(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert not os.path.samefile(src, dst)
    assert sorted(p.name for p in dst.parent.iterdir()) == ["dst"]  # no temp file left
    assert open_files() == []


def test_link_or_copy_other_errors_propagate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "link", fail)
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(OSError) as info:
        link_or_copy(src, tmp_path / "dst")
    assert info.value.errno == errno.EIO
    assert not (tmp_path / "dst").exists()


def test_link_or_copy_without_os_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "link")
    src = tmp_path / "src"
    src.write_bytes(b"abc")
    link_or_copy(src, tmp_path / "dst")
    assert (tmp_path / "dst").read_bytes() == b"abc"


def test_link_or_copy_across_real_file_systems(tmp_path: Path, other_fs: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"across devices")
    assert src.stat().st_dev != other_fs.stat().st_dev
    dst = other_fs / "msg" / "1"
    link_or_copy(src, dst)  # os.link raises a real EXDEV here
    assert dst.read_bytes() == b"across devices"
    assert sorted(p.name for p in dst.parent.iterdir()) == ["1"]


def test_link_or_copy_across_two_directories(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    src = a / "m"
    src.write_bytes(b"m")
    link_or_copy(src, b / "m")
    assert (b / "m").read_bytes() == b"m"
    assert os.path.samefile(src, b / "m")


def test_link_or_copy_copy_storage_full(
    tmp_path: Path, full_fs: tuple[Path, SpoolOpener | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, opener = full_fs
    if opener is not None:
        _new_files_write_to_dev_full(monkeypatch)
        directory = tmp_path / "dst"

        def cross_device(src: object, dst: object) -> None:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

        monkeypatch.setattr(os, "link", cross_device)
    src = tmp_path / "big"
    src.write_bytes(b"z" * (256 * 1024))
    dst = directory / "msg" / "1"
    with pytest.raises(StorageFullError):
        link_or_copy(src, dst)  # across file systems: copy
    assert not dst.exists()
    assert list(dst.parent.iterdir()) == []  # the temp copy is gone
    assert open_files() == []


# ---- syncdir, write_file_atomic, close_logged -------------------------------------------


def test_syncdir(tmp_path: Path) -> None:
    syncdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        syncdir(tmp_path / "missing")


def test_syncdir_is_a_no_op_on_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "name", "nt")
    syncdir(tmp_path / "missing")  # would raise on POSIX, see above


def test_write_file_atomic(tmp_path: Path) -> None:
    p = tmp_path / "key.pem"
    write_file_atomic(p, b"first", mode=0o600)
    assert p.read_bytes() == b"first"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    write_file_atomic(p, b"second")
    assert p.read_bytes() == b"second"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["key.pem"]


def test_write_file_atomic_refuses_to_replace_open_file(tmp_path: Path) -> None:
    p = tmp_path / "conf"
    p.write_bytes(b"old")
    with open_file(p, "rb"):
        with pytest.raises(OpenFileError):
            write_file_atomic(p, b"new")
    assert p.read_bytes() == b"old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["conf"]


def test_write_file_atomic_storage_full(
    tmp_path: Path, full_fs: tuple[Path, SpoolOpener | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, opener = full_fs
    if opener is not None:
        _new_files_write_to_dev_full(monkeypatch)
        directory = tmp_path / "dst"
        directory.mkdir()
    with pytest.raises(StorageFullError):
        write_file_atomic(directory / "big", b"q" * (256 * 1024))
    assert list(directory.iterdir()) == []


class _FailingClose(io.BytesIO):
    def close(self) -> None:
        raise OSError(errno.EIO, "close failed")


def test_close_logged_logs_and_raises(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("mailactors.test.files")
    with caplog.at_level(logging.ERROR, logger="mailactors.test.files"):
        with pytest.raises(OSError, match="close failed"):
            close_logged(_FailingClose(), log, "spool")
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    ok = io.BytesIO()
    close_logged(ok, log, "ok")
    assert ok.closed


@pytest.mark.skipif(os.name == "nt", reason="directories are not fsynced on Windows")
def test_directory_syncer_keeps_a_few_descriptors(tmp_path: Path) -> None:
    dirs = [tmp_path / f"d{i}" for i in range(6)]
    for d in dirs:
        d.mkdir()
    syncer = files.DirectorySyncer(keep=2)
    before = len(os.listdir("/proc/self/fd"))
    for d in dirs:
        syncer.sync(d)
        syncer.sync(d)
    assert len(os.listdir("/proc/self/fd")) == before + 2
    syncer.forget(dirs[-1])
    assert len(os.listdir("/proc/self/fd")) == before + 1
    syncer.forget(dirs[0])  # not kept: nothing to do
    with pytest.raises(FileNotFoundError):
        syncer.sync(tmp_path / "missing")
    syncer.close()
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.skipif(os.name == "nt", reason="directories are not fsynced on Windows")
def test_directory_syncer_forgets_a_directory_made_again(tmp_path: Path) -> None:
    d = tmp_path / "shard"
    d.mkdir()
    syncer = files.DirectorySyncer()
    syncer.sync(d)
    d.rmdir()
    d.mkdir()
    syncer.forget(d)
    syncer.sync(d)  # opens the new directory
    (fd,) = syncer._fds.values()
    # The descriptor is the live directory, not the removed one (which has no links).
    assert os.fstat(fd).st_nlink > 0
    assert (os.fstat(fd).st_dev, os.fstat(fd).st_ino) == (os.stat(d).st_dev, os.stat(d).st_ino)
    syncer.close()


def test_write_spool_file_writes_fsyncs_and_closes(tmp_path: Path) -> None:
    spool = files.write_spool_file(tmp_path, "smtp-", (b"Header: 1\r\n", bytearray(b"body\r\n")))
    assert spool.closed and spool.size == 17
    assert spool.path.parent == tmp_path and spool.path.name.startswith("smtp-")
    assert spool.path.read_bytes() == b"Header: 1\r\nbody\r\n"
    assert files.open_files() == []
    spool.discard()
    assert not spool.path.exists()


@pytest.mark.skipif(not hasattr(os, "writev"), reason="no writev here")
def test_write_spool_file_finishes_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev

    def short_writev(fd: int, parts: list[bytes]) -> int:
        return real_writev(fd, [bytes(parts[0])[:3]])  # the kernel may write less

    monkeypatch.setattr(os, "writev", short_writev)
    spool = files.write_spool_file(tmp_path, "x-", (b"abcdef", b"ghij"))
    assert spool.path.read_bytes() == b"abcdefghij"
    spool.discard()


@pytest.mark.skipif(not hasattr(os, "writev"), reason="no writev here")
def test_write_spool_file_on_a_full_disk_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, parts: list[bytes]) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "writev", full)
    with pytest.raises(files.StorageFullError):
        files.write_spool_file(tmp_path, "x-", (b"data",))
    assert list(tmp_path.iterdir()) == []


def test_write_spool_file_without_writev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no os.writev: the parts are joined and written with os.write."""
    monkeypatch.delattr(os, "writev", raising=False)
    real_write = os.write
    sizes: list[int] = []

    def short_write(fd: int, data: bytes) -> int:
        sizes.append(len(data))
        return real_write(fd, bytes(data)[:4])  # short writes are finished in a loop

    monkeypatch.setattr(os, "write", short_write)
    spool = files.write_spool_file(tmp_path, "x-", (b"Header: 1\r\n", b"body"))
    assert spool.path.read_bytes() == b"Header: 1\r\nbody"
    assert sizes[0] == 15 and len(sizes) == 4
    spool.discard()
