"""IMAP benchmark: ../shared/mailbench.py imap-fetch, imap-store-search and idle-conns
against a fresh localserve.

    python bench/imap_bench.py                    # 10,000 messages, 500 IDLE sessions
    python bench/imap_bench.py --messages 1000 --idle-conns 100   # shorter

Starts `mailactors localserve` in a temporary directory on free ports, fills INBOX
over SMTP (mailbench smtp-deliver, 8 connections), then runs the IMAP scenarios with
--server-pid so mailbench samples the server's memory, and prints the RESULT lines.
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
CONNS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mailbench", type=Path, default=DEFAULT_MAILBENCH)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--idle-conns", type=int, default=500)
    p.add_argument("--fetch-bodies", type=int, default=200)
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="mailactors-imapbench-") as tmp:
        d = Path(tmp)
        subprocess.run(
            [sys.executable, "-c",
             "import logging, pathlib, sys; from mailactors.actors.localserve import ensure_localserve_files;"
             "ensure_localserve_files(pathlib.Path(sys.argv[1]), '127.0.0.1', logging.getLogger('bench'))", str(d)],
            check=True,
        )
        conf = d / "mailactors.conf"
        text = conf.read_text()
        ports: dict[int, int] = {}
        for old in (1025, 1587, 1465, 1143, 1993, 1080, 1443):
            ports[old] = free_port()
            text = re.sub(rf"port: {old}\b", f"port: {ports[old]}", text)
        conf.write_text(text.replace("log_level: info", "log_level: warn"))
        server = subprocess.Popen(
            [sys.executable, "-m", "mailactors", "-config", str(conf), "localserve"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", ports[1143]), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        print("localserve did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            common = [
                sys.executable, str(args.mailbench),
                "--smtp-port", str(ports[1025]), "--imap-port", str(ports[1143]),
                "--user", "mailactors", "--password", "mailactors",
                "--rcpt", "mailactors@localhost",
                "--server-pid", str(server.pid), "--label", "mailactors",
            ]
            fill = common + [
                "--scenarios", "smtp-deliver", "--conns", str(CONNS),
                "--messages", str(max(1, args.messages // CONNS)), "--sizes", "4096",
            ]
            print("#", " ".join(fill), flush=True)
            if subprocess.run(fill).returncode != 0:
                return 1
            run = common + [
                "--scenarios", "imap-fetch,imap-store-search,idle-conns",
                "--idle-conns", str(args.idle_conns), "--fetch-bodies", str(args.fetch_bodies),
                "--runs", str(args.runs),
            ]
            print("#", " ".join(run), flush=True)
            return subprocess.run(run).returncode
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    sys.exit(main())
