"""Hypothesis stateful test: a QRESYNC client that comes back sees exactly the mailbox.

Several imaplib sessions APPEND, STORE, EXPUNGE and MOVE at random in one mailbox; a
client that caches (uid -> flags, modseq) goes away and comes back with SELECT
(QRESYNC (uidvalidity modseq known-uids)). After applying VANISHED (EARLIER) and the
FETCH responses, its cache must equal a fresh full FETCH, and HIGHESTMODSEQ never
goes down. One server serves every example (started once in the test).
"""

from __future__ import annotations

import imaplib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

_spec = importlib.util.spec_from_file_location(
    "imap_integration_conftest", Path(__file__).resolve().parents[1] / "integration" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_conftest = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _conftest
_spec.loader.exec_module(_conftest)

FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "$Work", "$Later"]
_FETCH = re.compile(rb"(\d+) \((.*)\)$")
_UID = re.compile(rb"UID (\d+)")
_MODSEQ = re.compile(rb"MODSEQ \((\d+)\)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")

View = dict[int, tuple[frozenset[str], int]]


def parse_fetches(lines: list[Any]) -> View:
    out: View = {}
    for line in lines:
        if not isinstance(line, bytes):
            continue
        m = _FETCH.match(line)
        assert m is not None, line
        body = m.group(2)
        uid = _UID.search(body)
        modseq = _MODSEQ.search(body)
        flags = _FLAGS.search(body)
        assert uid is not None and modseq is not None and flags is not None, line
        out[int(uid.group(1))] = (
            frozenset(flags.group(1).decode().split()),
            int(modseq.group(1)),
        )
    return out


def message(n: int) -> bytes:
    return b"Subject: m%d\r\n\r\nbody %d\r\n" % (n, n)


class QresyncMachine(RuleBasedStateMachine):
    served: Any = None
    counter = 0

    def __init__(self) -> None:
        super().__init__()
        port = self.served.port("imap")
        # A fresh mailbox per example.
        QresyncMachine.counter += 1
        self.mailbox = f"Box{QresyncMachine.counter}"
        self.writers = [imaplib.IMAP4("127.0.0.1", port, timeout=10) for _ in range(2)]
        for w in self.writers:
            w.login("mailactors", "x")
        self.writers[0].create(self.mailbox)
        for w in self.writers:
            assert w.select(self.mailbox)[0] == "OK"
        self.client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        self.client.login("mailactors", "x")
        self.client._simple_command("ENABLE", "QRESYNC")
        self.client.select(self.mailbox)
        self.uidvalidity = int(self.client.untagged_responses["UIDVALIDITY"][-1])
        self.cache: View = self.full_fetch(self.client)
        self.modseq = int(self.client.untagged_responses["HIGHESTMODSEQ"][-1])
        self.highest_seen = self.modseq
        self.client.logout()
        self.n = 0

    def full_fetch(self, m: imaplib.IMAP4) -> View:
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS MODSEQ)")
        assert typ == "OK"
        return parse_fetches([d for d in data if d is not None])

    def teardown(self) -> None:
        for w in self.writers:
            w.logout()

    @rule(w=st.integers(0, 1), flags=st.sets(st.sampled_from(FLAGS), max_size=2))
    def append(self, w: int, flags: set[str]) -> None:
        self.n += 1
        typ, _ = self.writers[w].append(self.mailbox, "(" + " ".join(sorted(flags)) + ")", None, message(self.n))
        assert typ == "OK"

    @rule(
        w=st.integers(0, 1),
        pick=st.integers(1, 6),
        mode=st.sampled_from(["+FLAGS", "-FLAGS", "FLAGS"]),
        flags=st.sets(st.sampled_from([*FLAGS, "\\Deleted"]), max_size=3),
    )
    def store(self, w: int, pick: int, mode: str, flags: set[str]) -> None:
        m = self.writers[w]
        m.noop()
        count = int(m.untagged_responses.get("EXISTS", [b"0"])[-1]) if "EXISTS" in m.untagged_responses else None
        m.untagged_responses.clear()
        typ, data = m.uid("SEARCH", "ALL")
        uids = (data[0] or b"").split()
        if not uids:
            return
        uid = uids[pick % len(uids)].decode()
        typ, _ = m.uid("STORE", uid, mode, "(" + " ".join(sorted(flags)) + ")")
        assert typ == "OK", (count, uid)

    @rule(w=st.integers(0, 1))
    def expunge(self, w: int) -> None:
        assert self.writers[w].expunge()[0] == "OK"

    @rule(w=st.integers(0, 1), pick=st.integers(1, 6))
    def move_out(self, w: int, pick: int) -> None:
        m = self.writers[w]
        typ, data = m.uid("SEARCH", "ALL")
        uids = (data[0] or b"").split()
        if not uids:
            return
        typ, _ = m.uid("MOVE", uids[pick % len(uids)].decode(), "Archive")
        assert typ == "OK"

    @rule()
    def resync(self) -> None:
        c = imaplib.IMAP4("127.0.0.1", self.served.port("imap"), timeout=10)
        try:
            c.login("mailactors", "x")
            c._simple_command("ENABLE", "QRESYNC")
            known = ",".join(str(u) for u in sorted(self.cache)) or "1"
            typ, _ = c._simple_command(
                "SELECT", self.mailbox, f"(QRESYNC ({self.uidvalidity} {self.modseq} {known}))"
            )
            assert typ == "OK"
            c.state = "SELECTED"
            for v in c.untagged_responses.pop("VANISHED", []):
                assert isinstance(v, bytes) and v.startswith(b"(EARLIER) ")
                for part in v[len(b"(EARLIER) ") :].decode().split(","):
                    lo, _, hi = part.partition(":")
                    for uid in range(int(lo), int(hi or lo) + 1):
                        self.cache.pop(uid, None)
            self.cache.update(parse_fetches(c.untagged_responses.pop("FETCH", [])))
            highest = int(c.untagged_responses["HIGHESTMODSEQ"][-1])
            assert highest >= self.highest_seen
            self.highest_seen = highest
            fresh = self.full_fetch(c)
            # New messages show up in the FETCH responses of the resync (changed since).
            assert self.cache == fresh
            self.modseq = highest
        finally:
            c.logout()

    @invariant()
    def modseq_never_decreases(self) -> None:
        typ, data = self.writers[0].status(self.mailbox, "(HIGHESTMODSEQ)")
        assert typ == "OK"
        m = re.search(rb"HIGHESTMODSEQ (\d+)", data[0] or b"")
        assert m is not None
        value = int(m.group(1))
        assert value >= self.highest_seen
        self.highest_seen = value


def test_qresync_resync_equals_full_fetch(tmp_path: Path) -> None:
    served = _conftest.start_localserve(tmp_path / "qresync")
    QresyncMachine.served = served
    try:
        run_state_machine_as_test(
            QresyncMachine,
            settings=settings(
                max_examples=25,
                stateful_step_count=15,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        QresyncMachine.served = None
        served.stop()
