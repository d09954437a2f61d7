"""SMTP intake benchmark: ../shared/mailbench.py smtp-deliver against a fresh localserve.

    python bench/smtp_intake.py                  # 4 KiB and 100 KiB, 8 connections, 3 runs
    python bench/smtp_intake.py --messages 100   # shorter

Starts `mailactors localserve` in a new directory under bench/.data (--data-parent;
see localserve_proc.DEFAULT_DATA_PARENT for why not /tmp) on free ports (one process,
every message fsynced and committed before its 250), runs mailbench, prints its
RESULT/SUMMARY lines, and stops the server with SIGINT.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from localserve_proc import DEFAULT_DATA_PARENT, DEFAULT_MAILBENCH, running_localserve


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mailbench", type=Path, default=DEFAULT_MAILBENCH)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--messages", type=int, default=250)
    p.add_argument("--sizes", default="4096,102400")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--data-parent", type=Path, default=DEFAULT_DATA_PARENT,
        help="directory for the server's data directory (default: bench/.data)",
    )
    args = p.parse_args()

    with running_localserve(parent=args.data_parent) as server:
        print(f"# data directory under {args.data_parent}", flush=True)
        cmd = [
            sys.executable, str(args.mailbench),
            "--smtp-port", str(server.smtp), "--imap-port", "0",
            "--rcpt", "mailactors@localhost", "--scenarios", "smtp-deliver",
            "--conns", str(args.conns), "--messages", str(args.messages),
            "--sizes", args.sizes, "--runs", str(args.runs),
            "--server-pid", str(server.pid), "--label", "mailactors",
        ]
        print("#", " ".join(cmd), flush=True)
        return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
