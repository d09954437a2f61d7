"""Outgoing delivery on a running server (clock injected, nothing sleeps for schedule times):
a message submitted to a domain whose only MX is dead is retried on the queue's schedule,
its sender gets a delay DSN after the 4th failed attempt and a failure DSN after 4 days.

The helpers here (`outbound_server`, `Outbound`) also serve test_tlsrpt_e2e.py and
test_outbound_cli.py: a localserve configuration that delivers to MX hosts
(deliver_to_mx), with a test DNS server, optional test CA (tls.ca_certs), DKIM key
for the host's domain and tlsrpt address, and the queue's SMTP port pointed at a port
of our choosing (FakeSmtp servers on 127.0.0.x share one port).
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from conftest import read_mailbox, with_free_ports  # type: ignore[import-not-found]
from cryptography.hazmat.primitives import serialization
from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]
from unit.protocol.test_pkix import Issued  # type: ignore[import-not-found]

from mailactors.actors.localserve import ensure_local_password, ensure_localserve_files
from mailactors.actors.messages import QueueTick
from mailactors.actors.queue import DELAY_NOTIFY_ATTEMPTS, FIRST_RETRY_MS, MAX_QUEUE_AGE_MS
from mailactors.actors.supervisor import RunningServer, start_server
from mailactors.conf import Config, load_config
from mailactors.net.control import control_request
from mailactors.protocol.dsn import parse_dsn
from mailactors.storage.account import MessageInfo

log = logging.getLogger("mailactors.tests")
T = TypeVar("T")

ACCOUNT = "mailactors"
SENDER = "mailactors@localhost"


class Clock:
    """time.time() moved by `offset` seconds; the server's queue and reporter use it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def set(self, when: float) -> None:
        self.offset = when - time.time()


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def closed_port(ip: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound once, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


@dataclass
class Outbound:
    config: Config
    server: RunningServer
    clock: Clock
    dns: DnsTestServer
    directory: Path

    @property
    def data_dir(self) -> Path:
        return self.config.static.data_dir

    def submit(self, recipients: list[str], subject: str, body: str = "Hello.") -> bytes:
        """Submit a message from the local account (AUTH after STARTTLS; localserve takes
        any password for it)."""
        message = (
            f"From: <{SENDER}>\r\nTo: {', '.join(f'<{r}>' for r in recipients)}\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@localhost>\r\n"
            f"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n\r\n{body}\r\n"
        ).encode()
        with smtplib.SMTP("127.0.0.1", self.server.port("submission"), timeout=10) as c:
            c.starttls(context=ssl._create_unverified_context())
            c.login(SENDER, "any password")
            c.sendmail(SENDER, recipients, message)
        return message

    def queue(self) -> list[dict[str, Any]]:
        """`queue list` through the control socket."""
        result = control_request(self.data_dir, "queue.list")
        assert isinstance(result, list)
        return result

    def tick_queue(self) -> None:
        self.server.actor("queue").ask(QueueTick(), timeout=30)

    def mailbox(self, name: str) -> list[tuple[MessageInfo, bytes]]:
        try:
            return read_mailbox(self.config, ACCOUNT, name)
        except AssertionError:  # no such mailbox (yet)
            return []


def write_ca(directory: Path, ca: Issued) -> Path:
    path = directory / "test-ca.pem"
    path.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    return path


@contextlib.contextmanager
def outbound_server(
    directory: Path,
    zone: str,
    *,
    delivery_port: int,
    ca: Issued | None = None,
    dkim_pem: bytes | None = None,
    tls_reports: bool = False,
    authenticated: tuple[str, ...] = (),
) -> Iterator[Outbound]:
    """localserve delivering to MX hosts found in the test DNS `zone` on `delivery_port`."""
    with DnsTestServer(zone, authenticated=authenticated) as dns:
        conf_path = ensure_localserve_files(directory, "127.0.0.1", log)
        static = conf_path.read_text()
        static = static.replace("deliver_to_mx: false", "deliver_to_mx: true")
        if tls_reports:
            static = static.replace(
                "no_outgoing_tls_reports: true", "no_outgoing_tls_reports: false"
            )
        if ca is not None:
            write_ca(directory, ca)
            static = static.replace("\ntls:\n", "\ntls:\n  ca_certs: [test-ca.pem]\n", 1)
        conf_path.write_text(static + f'dns:\n  nameservers: ["{dns.nameserver}"]\n')
        domains_conf = directory / "domains.conf"
        anchor = "    description: Local development domain\n"
        extra = "    tlsrpt: {localpart: tls-reports, account: mailactors, mailbox: TLSRPT}\n"
        if dkim_pem is not None:
            (directory / "rep.pem").write_bytes(dkim_pem)
            extra += "    dkim: {selectors: {rep: {private_key_file: rep.pem}}}\n"
        text = domains_conf.read_text()
        assert anchor in text
        domains_conf.write_text(text.replace(anchor, anchor + extra))
        config = with_free_ports(load_config(conf_path))
        clock = Clock()
        server = start_server(config, clock=clock, delivery_port=delivery_port)
        try:
            ensure_local_password(server, config)
            yield Outbound(config, server, clock, dns, directory)
        finally:
            server.stop()


# --- the dead host ---------------------------------------------------------------------------

DEAD_IP = "127.0.0.77"
DEAD_ZONE = f"""
dead.example. MX 10 mx.dead.example.
mx.dead.example. A {DEAD_IP}
"""


def _recipient(world: Outbound) -> dict[str, Any] | None:
    messages = [m for m in world.queue() if m["kind"] != "dsn"]
    if not messages:
        return None
    assert len(messages) == 1
    (rcpt,) = messages[0]["recipients"]
    assert isinstance(rcpt, dict)
    return rcpt


def _dsns(world: Outbound) -> list[bytes]:
    return [data for _, data in world.mailbox("Inbox") if b"report-type=delivery-status" in data]


def test_dead_host_retried_on_schedule_then_delay_and_failure_dsn(tmp_path: Path) -> None:
    with outbound_server(tmp_path / "ls", DEAD_ZONE, delivery_port=closed_port(DEAD_IP)) as world:
        start = world.clock()
        world.submit(["someone@dead.example"], "to a dead host")
        # The first attempt happens at once and fails (connection refused).
        first = wait_for(
            lambda: (r := _recipient(world)) is not None and r["attempts"] == 1 and r,
            "the first failed attempt",
        )
        queued_at = world.queue()[0]["queued_at"]
        assert abs(queued_at / 1000 - start) < 5
        assert first["address"] == "someone@dead.example"
        assert first["last_error"].startswith("451 4.4.1 connection refused")
        assert abs(first["next_attempt"] - queued_at - FIRST_RETRY_MS) < 2000
        rcpt = first
        delay_dsn: bytes | None = None
        attempts_seen = [1]
        while True:
            attempts = rcpt["attempts"]
            if attempts == DELAY_NOTIFY_ATTEMPTS - 1:
                assert _dsns(world) == [], "no delay DSN before the 4th failure"
            # Just before the retry is due, a tick starts nothing.
            world.clock.set(rcpt["next_attempt"] / 1000 - 60)
            world.tick_queue()
            time.sleep(0.1)
            assert _recipient(world) == rcpt
            # Once it is due, the next tick tries again.
            world.clock.set(rcpt["next_attempt"] / 1000 + 1)
            world.tick_queue()
            nxt = wait_for(
                lambda a=attempts: (
                    "gone" if (r := _recipient(world)) is None else (r["attempts"] > a and r)
                ),
                f"attempt {attempts + 1}",
            )
            if nxt == "gone":
                attempts_seen.append(attempts + 1)
                break
            assert isinstance(nxt, dict)
            assert nxt["attempts"] == attempts + 1
            attempts_seen.append(nxt["attempts"])
            # The wait doubles after each failure, up to the 4-day limit.
            last = rcpt["next_attempt"] + 1000
            expires = queued_at + MAX_QUEUE_AGE_MS
            expected = min(last + (FIRST_RETRY_MS << attempts), expires)
            assert abs(nxt["next_attempt"] - expected) < 2000, (attempts, nxt, expected)
            if nxt["attempts"] == DELAY_NOTIFY_ATTEMPTS:
                delay_dsn = wait_for(lambda: _dsns(world), "the delay DSN")[0]
            rcpt = nxt
        assert delay_dsn is not None
        # Attempts: 7.5 min, then doubling waits, until the last one at 4 days.
        assert attempts_seen == list(range(1, len(attempts_seen) + 1))
        assert len(attempts_seen) == 11
        assert world.clock() - start >= MAX_QUEUE_AGE_MS / 1000
        dsns = wait_for(lambda: len(_dsns(world)) == 2 and _dsns(world), "the failure DSN")
        assert world.queue() == []

    delayed = parse_dsn(delay_dsn)
    (status,) = delayed.recipients
    assert status.action == "delayed"
    assert status.address == "someone@dead.example"
    assert status.status == "4.4.1"
    assert status.diagnostic is not None and "connection refused" in status.diagnostic
    assert status.will_retry_until is not None
    until = datetime.fromtimestamp((queued_at + MAX_QUEUE_AGE_MS) / 1000, UTC)
    assert abs(status.will_retry_until - until) < timedelta(seconds=2)
    assert delayed.reporting_mta == "localhost"
    assert delayed.original is not None and b"Subject: to a dead host" in delayed.original

    failed = parse_dsn(next(d for d in dsns if d != delay_dsn))
    (status,) = failed.recipients
    assert status.action == "failed"
    assert status.address == "someone@dead.example"
    # Given up after 4 days; the status is that of the actual problem, as RFC 3463
    # 3.5 (X.4.7) asks: the last attempt's temporary error.
    assert status.status == "4.4.1"
    assert status.last_attempt is not None
    assert status.last_attempt >= until - timedelta(seconds=2)
    assert status.will_retry_until is None
    assert failed.original is not None and b"Hello." in failed.original
