"""`mailactors localserve` as a real process: first run, Ctrl-C, and SIGKILL durability."""

from __future__ import annotations

import logging
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import read_mailbox, write_localserve_files  # type: ignore[import-not-found]

from mailactors.actors.localserve import ensure_localserve_files
from mailactors.conf import load_config

log = logging.getLogger("mailactors.tests")

LOCALSERVE_PORTS = (1025, 1587, 1465, 1143, 1993, 1080, 1443)


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def prepare(directory: Path) -> dict[int, int]:
    """Write localserve's first-run files, then move its ports to free ones."""
    conf = write_localserve_files(directory)
    mapping = dict(zip(LOCALSERVE_PORTS, free_ports(len(LOCALSERVE_PORTS)), strict=True))
    text = conf.read_text()
    for old, new in mapping.items():
        assert f"port: {old}}}" in text
        text = text.replace(f"port: {old}}}", f"port: {new}}}")
    conf.write_text(text)
    return mapping


def start(directory: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailactors", "-config", str(directory / "mailactors.conf"), "localserve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"220 "):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("localserve did not start listening")


def stop(proc: subprocess.Popen[bytes], sig: int) -> bytes:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError("localserve did not stop") from None
    return err


def test_first_run_and_clean_stop(tmp_path: Path) -> None:
    d = tmp_path / "ls"
    ports = prepare(d)
    proc = start(d)
    try:
        wait_listening(ports[1025], proc)
        with smtplib.SMTP("127.0.0.1", ports[1025], timeout=10) as c:
            c.sendmail("a@example.org", ["anyone@localhost"], b"Subject: hi\r\n\r\nhello\r\n")
    finally:
        err = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, err.decode()
    assert b"l=error" not in err, err.decode()
    config = load_config(d / "mailactors.conf")
    data = config.static.data_dir
    # Clean stop: no spool files left, every database checkpointed and closed.
    assert list((data / "tmp").iterdir()) == []
    assert not list(data.rglob("*.db-wal")), list(data.rglob("*"))
    stored = read_mailbox(config, "mailactors", "Inbox")
    assert len(stored) == 1 and stored[0][1].endswith(b"Subject: hi\r\n\r\nhello\r\n")


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_message(tmp_path: Path) -> None:
    d = tmp_path / "ls"
    ports = prepare(d)
    proc = start(d)
    acked: list[str] = []
    lock = threading.Lock()
    stop_sending = threading.Event()

    def sender(n: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", ports[1025], timeout=10) as c:
                i = 0
                while not stop_sending.is_set():
                    mid = f"<{n}.{i}@crash.test>"
                    body = f"Message-ID: {mid}\r\nSubject: crash {n} {i}\r\n\r\n".encode() + b"x" * 2000 + b"\r\n"
                    c.sendmail("a@example.org", ["mailactors@localhost"], body)
                    with lock:
                        acked.append(mid)
                    i += 1
        except (smtplib.SMTPException, OSError):
            return  # the server died under us: expected

    try:
        wait_listening(ports[1025], proc)
        threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_sending.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= 300
    config = load_config(d / "mailactors.conf")
    stored = read_mailbox(config, "mailactors", "Inbox")
    stored_ids = set()
    for _, data in stored:
        header = data.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        stored_ids.add(header)
        assert data.endswith(b"x" * 2000 + b"\r\n"), "a stored message is incomplete"
    missing = [m for m in acked if m not in stored_ids]
    assert missing == [], f"{len(missing)} acknowledged messages lost"


def test_ip_is_written_on_first_run_and_overridden_later(tmp_path: Path) -> None:
    from mailactors.actors.localserve import override_ip

    d = tmp_path / "ls"
    conf = ensure_localserve_files(d, "127.0.0.2", log)
    config = load_config(conf)
    assert [listener.ips for listener in config.static.listeners.values()] == [("127.0.0.2",)]
    # A second first-run call does not rewrite the files.
    assert ensure_localserve_files(d, "127.0.0.3", log) == conf
    assert load_config(conf).static.listeners["local"].ips == ("127.0.0.2",)
    # -ip given again overrides for that run only.
    assert override_ip(config, "127.0.0.3").static.listeners["local"].ips == ("127.0.0.3",)
    assert load_config(conf).static.listeners["local"].ips == ("127.0.0.2",)
