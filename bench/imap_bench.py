"""IMAP benchmark: ../shared/mailbench.py imap-fetch, imap-store-search and idle-conns
against a fresh localserve.

    python bench/imap_bench.py                    # 10,000 messages, 500 IDLE sessions
    python bench/imap_bench.py --messages 1000 --idle-conns 100   # shorter

Starts `mailactors localserve` in a new directory under bench/.data on free ports, fills INBOX
over SMTP (mailbench smtp-deliver, 8 connections), then runs the IMAP scenarios with
--server-pid so mailbench samples the server's memory, and prints the RESULT lines.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from localserve_proc import DEFAULT_MAILBENCH, running_localserve

CONNS = 8


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mailbench", type=Path, default=DEFAULT_MAILBENCH)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--idle-conns", type=int, default=500)
    p.add_argument("--fetch-bodies", type=int, default=200)
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()

    with running_localserve(prefix="mailactors-imapbench-") as server:
        common = [
            sys.executable, str(args.mailbench),
            "--smtp-port", str(server.smtp), "--imap-port", str(server.imap),
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


if __name__ == "__main__":
    sys.exit(main())
