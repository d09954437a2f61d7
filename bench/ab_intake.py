"""Interleaved A/B of SMTP intake for source trees of mailactors.

    python bench/ab_intake.py /path/to/old-tree /work/main --rounds 4
    git worktree add /tmp/old HEAD~1    # one way to get an old tree

Each round starts a fresh localserve from each tree in turn (PYTHONPATH and working
directory set to the tree) and runs one mailbench smtp-deliver run against it: 8
connections, 250 messages of 4 KiB by default. Data directories are kept until every
round is done, so no run pays for the previous run's file deletions (see
localserve_proc.DEFAULT_DATA_PARENT). This machine's speed drifts by 10% and more
between minutes; alternating the trees is what makes their medians comparable.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from localserve_proc import DEFAULT_DATA_PARENT, DEFAULT_MAILBENCH, DnsTestServer, localserve_in


def one_run(tree: Path, data: Path, nameserver: str, args: argparse.Namespace) -> dict[str, str]:
    """One mailbench smtp-deliver run against a fresh localserve from `tree`."""
    with localserve_in(data, nameserver, tree) as server:
        out = subprocess.run(
            [
                sys.executable, str(args.mailbench),
                "--smtp-port", str(server.smtp), "--imap-port", "0",
                "--rcpt", "mailactors@localhost", "--scenarios", "smtp-deliver",
                "--conns", str(args.conns), "--messages", str(args.messages),
                "--sizes", str(args.size), "--runs", "1", "--server-pid", str(server.pid),
                "--label", tree.name,
            ],
            capture_output=True, text=True, check=True,
        ).stdout
    for line in out.splitlines():
        if line.startswith("RESULT"):
            return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    raise RuntimeError(f"no RESULT line from mailbench:\n{out}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trees", nargs="+", type=Path, help="directories that hold a mailactors/ package")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--messages", type=int, default=250)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--mailbench", type=Path, default=DEFAULT_MAILBENCH)
    p.add_argument("--data-parent", type=Path, default=DEFAULT_DATA_PARENT)
    args = p.parse_args()
    trees = [t.resolve() for t in args.trees]
    args.data_parent.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="ab-", dir=args.data_parent))
    rates: dict[Path, list[float]] = {t: [] for t in trees}
    try:
        with DnsTestServer() as dns_server:
            for _ in range(args.rounds):
                for tree in trees:
                    data = Path(tempfile.mkdtemp(dir=base))
                    result = one_run(tree, data, dns_server.nameserver, args)
                    rates[tree].append(float(result["rate_msg_s"]))
                    print(
                        f"{tree} rate_msg_s={result['rate_msg_s']} p50_ms={result['p50_ms']}"
                        f" server_cpu_pct={result.get('server_cpu_pct', '?')}",
                        flush=True,
                    )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for tree, values in rates.items():
        values.sort()
        median = values[len(values) // 2] if values else float("nan")
        print(f"SUMMARY {tree} median_rate_msg_s={median:.1f} runs={values}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
