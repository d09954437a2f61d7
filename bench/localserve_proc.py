"""Start a fresh `mailactors localserve` process on free ports, for the benchmarks."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.dnsserver import DnsTestServer  # noqa: E402

DEFAULT_MAILBENCH = ROOT.parent / "shared" / "mailbench.py"
# Where the benchmarks keep their server's data directory. Not the system temp
# directory: test suites create and delete thousands of files there, and on ext4
# without a journal every file created in the same block group within the next
# minutes pays for a scan of the recently deleted inodes (measured here: 0.45-0.73 ms
# per create in /tmp right after a test run, 0.03 ms elsewhere), which would measure
# the test suite's cleanup instead of the server.
DEFAULT_DATA_PARENT = ROOT / "bench" / ".data"
LOCALSERVE_PORTS = (1025, 1587, 1465, 1143, 1993, 1080, 1443)


@dataclass(frozen=True)
class Localserve:
    pid: int
    ports: dict[int, int]  # localserve's default port -> the free port it got

    @property
    def smtp(self) -> int:
        return self.ports[1025]

    @property
    def imap(self) -> int:
        return self.ports[1143]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_localserve(
    prefix: str = "mailactors-bench-", parent: Path | None = DEFAULT_DATA_PARENT
) -> Iterator[Localserve]:
    """A localserve in a new directory under `parent` (None: the system temp
    directory), removed afterwards; stopped with SIGINT on exit."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as tmp,
        DnsTestServer() as dns_server,
        localserve_in(Path(tmp), dns_server.nameserver) as server,
    ):
        yield server


@contextmanager
def localserve_in(data: Path, nameserver: str, tree: Path | None = None) -> Iterator[Localserve]:
    """A localserve with its files in `data` (made here) on free ports, asking the DNS
    server `nameserver`; run from the source tree `tree` (PYTHONPATH and working
    directory) when given, else from the installed package. Stopped with SIGINT."""
    env = None if tree is None else dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run(
        [sys.executable, "-c",
         "import logging, pathlib, sys; from mailactors.actors.localserve import ensure_localserve_files;"
         "ensure_localserve_files(pathlib.Path(sys.argv[1]), '127.0.0.1', logging.getLogger('bench'))", str(data)],
        check=True, env=env, cwd=tree,
    )
    conf = data / "mailactors.conf"
    text = conf.read_text()
    ports: dict[int, int] = {}
    for old in LOCALSERVE_PORTS:
        ports[old] = free_port()
        text = re.sub(rf"port: {old}\b", f"port: {ports[old]}", text)
    # A DNS server on 127.0.0.1 that knows nothing, like a local caching resolver
    # answering NXDOMAIN: the SPF/DKIM/DMARC checks run, nothing leaves the machine.
    text += f'dns:\n  nameservers: ["{nameserver}"]\n'
    conf.write_text(text)
    server = subprocess.Popen(
        [sys.executable, "-m", "mailactors", "-config", str(conf), "localserve"],
        env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        for port in (ports[1025], ports[1143]):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("localserve did not start") from None
                    time.sleep(0.1)
        yield Localserve(server.pid, ports)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
