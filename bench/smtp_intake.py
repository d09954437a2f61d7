"""SMTP intake benchmark: ../shared/mailbench.py smtp-deliver against a fresh localserve.

    python bench/smtp_intake.py                  # 4 KiB and 100 KiB, 8 connections, 3 runs
    python bench/smtp_intake.py --messages 100   # shorter

Starts `mailactors localserve` in a temporary directory on free ports (one process,
every message fsynced and committed before its 250), runs mailbench, prints its
RESULT/SUMMARY lines, and stops the server with SIGINT.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MAILBENCH = ROOT.parent / "shared" / "mailbench.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mailbench", type=Path, default=DEFAULT_MAILBENCH)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--messages", type=int, default=250)
    p.add_argument("--sizes", default="4096,102400")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="mailactors-bench-") as tmp:
        d = Path(tmp)
        first = subprocess.run(
            [sys.executable, "-c",
             "import logging, pathlib, sys; from mailactors.actors.localserve import ensure_localserve_files;"
             "ensure_localserve_files(pathlib.Path(sys.argv[1]), '127.0.0.1', logging.getLogger('bench'))", str(d)],
            check=True,
        )
        assert first.returncode == 0
        conf = d / "mailactors.conf"
        text = conf.read_text()
        ports: dict[int, int] = {}
        for old in (1025, 1587, 1465, 1143, 1993, 1080, 1443):
            ports[old] = free_port()
            text = re.sub(rf"port: {old}\b", f"port: {ports[old]}", text)
        conf.write_text(text)
        server = subprocess.Popen(
            [sys.executable, "-m", "mailactors", "-config", str(conf), "localserve"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", ports[1025]), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        print("localserve did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            cmd = [
                sys.executable, str(args.mailbench),
                "--smtp-port", str(ports[1025]), "--imap-port", "0",
                "--rcpt", "mailactors@localhost", "--scenarios", "smtp-deliver",
                "--conns", str(args.conns), "--messages", str(args.messages),
                "--sizes", args.sizes, "--runs", str(args.runs),
                "--server-pid", str(server.pid), "--label", "mailactors",
            ]
            print("#", " ".join(cmd), flush=True)
            return subprocess.run(cmd).returncode
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    sys.exit(main())
