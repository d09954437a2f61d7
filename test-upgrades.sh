#!/usr/bin/env bash
# Upgrade test: every released version's data must be readable and upgradable by the current code.
#
# For each release tag vX.Y.Z (or the tags given as arguments): install that version into its own
# venv, let it write a data directory (`mailactors gentestdata`), then with the current code:
# `verifydata` (notices allowed), start the server once on that data as `mailactors localserve`
# (databases are migrated when opened), stop it with SIGTERM, and `verifydata` again (now no
# database may still have an older schema).
#
# Usage:  ./test-upgrades.sh [TAG...]
# Env:    PYTHON  interpreter whose environment has the current code's dependencies
#                 (default: .venv/bin/python if present, else python3); the current code is
#                 run as `$PYTHON -m mailactors` from this repository.
# Prints one line per step; exits non-zero at the first failure. Needs pip's index for the old
# versions' dependencies, nothing else from the network.
set -euo pipefail

repo="$(cd "$(dirname "$0")" && pwd)"
cd "$repo"

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON="$repo/.venv/bin/python"; else PYTHON="python3"; fi
fi
# The old versions must not see this checkout's package through PYTHONPATH.
unset PYTHONPATH

# How long the started server may take to answer on its SMTP port, and to stop, in seconds.
START_TIMEOUT=60
STOP_TIMEOUT=60

work="$(mktemp -d "${TMPDIR:-/tmp}/mailactors-upgrades.XXXXXX")"
cleanup() {
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf 'test-upgrades: %s\n' "$*"; }

fail() {
  printf 'test-upgrades: FAIL: %s\n' "$*" >&2
  exit 1
}

# Tags listed in RELEASES that the clone lacks (CI clones may not carry tags).
if [ -f RELEASES ]; then
  while read -r rel_tag rel_commit _; do
    case "$rel_tag" in ''|'#'*) continue ;; esac
    if ! git rev-parse -q --verify "refs/tags/$rel_tag" >/dev/null; then
      git rev-parse -q --verify "$rel_commit^{commit}" >/dev/null \
        || fail "RELEASES: $rel_tag: commit $rel_commit is not in this clone"
      git tag "$rel_tag" "$rel_commit"
      step "$rel_tag: tag recreated from RELEASES"
    fi
  done < RELEASES
fi

if [ "$#" -gt 0 ]; then
  tags=("$@")
else
  mapfile -t tags < <(git tag --list 'v[0-9]*.[0-9]*.[0-9]*' --sort=version:refname)
fi
if [ "${#tags[@]}" -eq 0 ]; then
  step "no release tags (vX.Y.Z): nothing to test"
  exit 0
fi

"$PYTHON" -c 'import mailactors.actors.supervisor' \
  || fail "$PYTHON cannot import the current mailactors (its dependencies missing?)"
current="$(git describe --tags --always --dirty 2>/dev/null || echo unknown)"
step "current code: $current, python: $PYTHON"

# start_once DATADIR DIR: run the current `mailactors localserve` on DATADIR (every account found
# there, free ports, a local DNS stub that answers NXDOMAIN), wait for its SMTP greeting, SIGTERM it;
# fail when it does not come up, does not exit 0, or logs an error.
start_once() {
  "$PYTHON" - "$1" "$2" "$START_TIMEOUT" "$STOP_TIMEOUT" <<'PY'
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import dns.exception
import dns.message
import dns.rcode

from mailactors.conf.localserve import (
    LOCALSERVE_CERT_FILE,
    LOCALSERVE_KEY_FILE,
    localserve_config_texts,
)
from mailactors.conf.tlscert import self_signed_certificate

data, conf_dir = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
start_timeout, stop_timeout = float(sys.argv[3]), float(sys.argv[4])
conf_dir.mkdir(parents=True)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


texts = localserve_config_texts(ip="127.0.0.1", data_dir=str(data))
static = texts["mailactors.conf"]
wanted = re.findall(r"port: \d+\}", static)
ports = iter(free_ports(len(wanted)))
static = re.sub(r"port: \d+\}", lambda _m: f"port: {next(ports)}}}", static)
smtp_port = int(re.search(r"smtp: \{port: (\d+)\}", static).group(1))
# A local name server that answers NXDOMAIN to everything: no query leaves the machine, and
# none waits for a timeout (a session waiting on DNS would slow the stop down).
dns_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns_sock.bind(("127.0.0.1", 0))


def answer_nxdomain() -> None:
    while True:
        try:
            wire, peer = dns_sock.recvfrom(65535)
            reply = dns.message.make_response(dns.message.from_wire(wire))
        except OSError:
            return
        except dns.exception.DNSException:
            continue
        reply.set_rcode(dns.rcode.NXDOMAIN)
        dns_sock.sendto(reply.to_wire(), peer)


threading.Thread(target=answer_nxdomain, daemon=True).start()
static += f'dns:\n  nameservers: ["127.0.0.1:{dns_sock.getsockname()[1]}"]\n'
accounts = sorted(p.name for p in (data / "accounts").iterdir() if p.is_dir())
if not accounts:
    sys.exit(f"no accounts in {data}")
domains = "domains:\n  localhost:\n    description: upgrade test\naccounts:\n" + "".join(
    f"  {a}:\n    domain: localhost\n    destinations:\n      {a}@localhost:\n"
    "        mailbox: Inbox\n"
    for a in accounts
)
cert, key = self_signed_certificate(
    hostnames=["localhost"], ips=["127.0.0.1"], now=datetime.now(UTC)
)
(conf_dir / LOCALSERVE_CERT_FILE).write_bytes(cert)
(conf_dir / LOCALSERVE_KEY_FILE).write_bytes(key)
(conf_dir / "domains.conf").write_text(domains)
(conf_dir / "mailactors.conf").write_text(static)

log_path = conf_dir / "localserve.log"
with log_path.open("wb") as log:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailactors", "-config", str(conf_dir / "mailactors.conf"),
         "localserve"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + start_timeout
        greeted = False
        while not greeted and proc.poll() is None and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", smtp_port), timeout=5) as s:
                    greeted = s.recv(100).startswith(b"220 ")
            except OSError:
                time.sleep(0.1)
        # Let it run a moment (the queue and the reporter start their work), then stop it.
        time.sleep(1)
        stopping = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            rc = None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
output = log_path.read_text(errors="replace")
errors = [line for line in output.splitlines() if "l=error" in line or "Traceback" in line]
problem = (
    "did not greet on its SMTP port" if not greeted
    else "did not stop after SIGTERM" if rc is None
    else f"exited {rc}" if rc != 0
    else "logged errors" if errors
    else ""
)
if problem:
    sys.stderr.write(output)
    sys.exit(f"localserve on {data} {problem}")
print(
    f"started and stopped cleanly ({len(accounts)} accounts, SMTP port {smtp_port}, "
    f"stopped {time.monotonic() - stopping:.1f} s after SIGTERM)"
)
PY
}

for tag in "${tags[@]}"; do
  git rev-parse -q --verify "refs/tags/$tag^{commit}" >/dev/null || fail "$tag: no such tag"
  dir="$work/$tag"
  mkdir -p "$dir/src"

  step "$tag: extracting source"
  git archive "$tag" | tar -x -C "$dir/src"

  step "$tag: installing into its own venv"
  "$PYTHON" -m venv "$dir/venv"
  if ! "$dir/venv/bin/python" -m pip install -q "$dir/src" >"$dir/pip.log" 2>&1; then
    cat "$dir/pip.log" >&2
    fail "$tag: pip install failed"
  fi

  step "$tag: gentestdata with $tag"
  (cd "$dir" && "$dir/venv/bin/mailactors" gentestdata "$dir/data") \
    || fail "$tag: gentestdata of $tag failed"

  step "$tag: verifydata with the current code"
  "$PYTHON" -m mailactors verifydata "$dir/data" || fail "$tag: verifydata before starting failed"

  step "$tag: starting the current server once on the data"
  start_once "$dir/data" "$dir/conf" || fail "$tag: starting the current server failed"

  step "$tag: verifydata again after the start"
  "$PYTHON" -m mailactors verifydata "$dir/data" >"$dir/verify.out" \
    || { cat "$dir/verify.out"; fail "$tag: verifydata after starting failed"; }
  cat "$dir/verify.out"
  if grep -q ': schema-older: ' "$dir/verify.out"; then
    fail "$tag: a database still has an older schema after the server ran on it"
  fi

  step "$tag: OK"
done
step "all ${#tags[@]} tag(s) upgrade cleanly"
