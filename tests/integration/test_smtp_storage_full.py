"""A full disk gets 452 4.3.1, never a 250 for a message that is not on disk.

The full disk is real: a small tmpfs mounted over the spool or the message directory
(needs root, as in CI). Crossing file systems also exercises copy-instead-of-link.
"""

from __future__ import annotations

import logging
import os
import smtplib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Served, read_mailbox, with_free_ports  # type: ignore[import-not-found]

from mailactors.actors.localserve import ensure_local_password, ensure_localserve_files
from mailactors.actors.supervisor import start_server
from mailactors.conf import load_config

log = logging.getLogger("mailactors.tests")

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a small tmpfs needs root"
)


def mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=True)


@pytest.fixture(params=["spool", "messages"])
def full_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Served, Path]]:
    directory = tmp_path / "ls"
    config = with_free_ports(load_config(ensure_localserve_files(directory, "127.0.0.1", log)))
    data = config.static.data_dir
    small = data / "tmp" if request.param == "spool" else data / "accounts" / "mailactors" / "msg"
    mount_tmpfs(small, "200k")
    try:
        server = start_server(config)
        served = Served(config, server, directory)
        try:
            ensure_local_password(server, config)
            yield served, small
        finally:
            served.stop()
    finally:
        umount(small)


def test_full_disk_gives_452_and_loses_nothing(full_server: tuple[Served, Path]) -> None:
    served, small = full_server
    big = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 400  # 400 KB > 200k tmpfs
    ok = b"Subject: small\r\n\r\nfits\r\n"
    with smtplib.SMTP("127.0.0.1", served.port("smtp"), timeout=10) as c:
        c.ehlo()
        c.mail("a@example.org")
        c.rcpt("mailactors@localhost")
        code, text = c.data(big)
        assert (code, text[:5]) == (452, b"4.3.1"), text
        c.sendmail("a@example.org", ["mailactors@localhost"], ok)
    served.server.stop()
    stored = read_mailbox(served.config, "mailactors", "Inbox")
    assert [data.endswith(ok) for _, data in stored] == [True]
    # Nothing half-written is left behind on the full file system.
    leftovers = [p for p in small.rglob("*") if p.is_file() and p.stat().st_size > 100_000]
    assert leftovers == []
