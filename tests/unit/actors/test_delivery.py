"""actors/delivery: the decisions of one delivery attempt, with InMemoryResolver and fake SMTP servers.

The fake servers (`FakeSmtp`) are real sockets on 127.0.0.x, all on one port, speaking
just enough SMTP (optional STARTTLS with a given certificate, REQUIRETLS, per-recipient
replies); tests/integration/test_delivery_tls.py uses them too.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st
from unit.protocol.test_pkix import Issued
from unit.protocol.test_pkix import make_cert as _make_cert

from mailactors.actors.delivery import REPORT_KINDS, Deliverer, _Recipient
from mailactors.actors.delivery_policy import (
    LocalPolicyCache,
    StsState,
    current_policy,
    policy_strings,
)
from mailactors.actors.messages import RecipientOutcome
from mailactors.actors.queue import DeliveryJob
from mailactors.net.https import PolicyFetchError
from mailactors.net.tlstrust import TrustStore
from mailactors.protocol.dns import InMemoryResolver, MxRecord, TlsaRecord
from mailactors.protocol.mtasts import StsMode
from mailactors.protocol.smtp.client import Reply, Timeouts
from mailactors.protocol.tlsrpt import PolicyType
from mailactors.storage.mtastsdb import PolicyCache
from mailactors.storage.queue import QueuedMessage, QueuedRecipient
from mailactors.storage.tlsrptdb import ResultEntry

log = logging.getLogger("test.delivery")

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
DAY = datetime.timedelta(days=1)
DOMAIN = "example.test"
POLICY_ENFORCE = b"version: STSv1\r\nmode: enforce\r\nmx: mx2.example.test\r\nmax_age: 86400\r\n"


def make_cert(name: str, **kw: object) -> Issued:
    kw.setdefault("not_before", NOW - 30 * DAY)
    kw.setdefault("not_after", NOW + 60 * DAY)
    return _make_cert(name, **kw)  # type: ignore[arg-type]


# --- a small SMTP server ------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    data: bytes
    tls: bool


@dataclass
class Behavior:
    """How a FakeSmtp answers."""

    tls: ssl.SSLContext | None = None  # offer STARTTLS with this context
    requiretls: bool = False  # offer REQUIRETLS after STARTTLS
    rcpt: Callable[[str], str] = lambda address: "250 2.1.5 ok"
    data_reply: str = "250 2.0.0 queued"


def _line(f: socket.socket, buf: bytearray) -> bytes | None:
    while b"\n" not in buf:
        chunk = f.recv(4096)
        if not chunk:
            return None
        buf += chunk
    end = buf.index(b"\n") + 1
    line = bytes(buf[:end])
    del buf[:end]
    return line


class FakeSmtp:
    """A sequential SMTP server on (ip, port) in a thread; `received` holds the messages."""

    def __init__(self, ip: str, port: int, behavior: Behavior) -> None:
        self.ip = ip
        self.behavior = behavior
        self.received: list[Received] = []
        self.connections = 0
        self.tls_handshakes = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, name=f"fake-smtp-{ip}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.sock.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(5)
            try:
                self._session(conn)
            except (OSError, ValueError):
                pass
            finally:
                conn.close()

    def _session(self, conn: socket.socket) -> None:
        self.current: socket.socket = conn
        try:
            self._dialog(conn)
        finally:
            if self.current is not conn:
                self.current.close()

    def _dialog(self, conn: socket.socket) -> None:
        b = self.behavior
        sock: socket.socket = conn
        buf = bytearray()
        tls = False
        mail_from, rcpts = "", list[str]()

        def send(text: str) -> None:
            sock.sendall(text.encode() + b"\r\n")

        send("220 fake.example ESMTP")
        while True:
            raw = _line(sock, buf)
            if raw is None:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                caps = ["fake.example", "8BITMIME", "SMTPUTF8"]
                if b.tls is not None and not tls:
                    caps.append("STARTTLS")
                if b.requiretls and tls:
                    caps.append("REQUIRETLS")
                send("\r\n".join(f"250-{c}" for c in caps[:-1]) + f"\r\n250 {caps[-1]}")
            elif verb == "STARTTLS" and b.tls is not None and not tls:
                send("220 2.0.0 go ahead")
                sock = self.current = b.tls.wrap_socket(conn, server_side=True)
                self.tls_handshakes += 1
                tls, buf = True, bytearray()
            elif verb == "MAIL":
                mail_from, rcpts = line[10:].split(">", 1)[0].lstrip("<"), []
                send("250 2.1.0 ok")
            elif verb == "RCPT":
                address = line[8:].split(">", 1)[0].lstrip("<")
                reply = b.rcpt(address)
                if reply.startswith("2"):
                    rcpts.append(address)
                send(reply)
            elif verb == "DATA":
                send("354 go on")
                data = bytearray()
                while True:
                    got = _line(sock, buf)
                    if got is None:
                        return
                    if got == b".\r\n":
                        break
                    data += got
                self.received.append(Received(mail_from, rcpts, bytes(data), tls))
                send(b.data_reply)
            elif verb == "RSET":
                send("250 2.0.0 ok")
            elif verb == "QUIT":
                send("221 2.0.0 bye")
                return
            else:
                send("502 5.5.2 unknown command")


class Servers:
    """FakeSmtp servers on several 127.0.0.x addresses sharing one port."""

    def __init__(self) -> None:
        self.port = 0
        self.servers: list[FakeSmtp] = []

    def start(self, ip: str, behavior: Behavior | None = None) -> FakeSmtp:
        server = FakeSmtp(ip, self.port, behavior or Behavior())
        self.port = server.port
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in self.servers:
            server.close()


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.close()


def server_context(tmp: Path, leaf: Issued, *chain: Issued) -> ssl.SSLContext:
    cert, key = tmp / f"c{id(leaf)}.pem", tmp / f"k{id(leaf)}.pem"
    cert.write_bytes(
        b"".join(c.cert.public_bytes(serialization.Encoding.PEM) for c in (leaf, *chain))
    )
    key.write_bytes(
        leaf.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


# --- jobs and the deliverer ----------------------------------------------------------------

MESSAGE = b"From: <a@sender.test>\r\nTo: <b@example.test>\r\nSubject: hi\r\n\r\nHello.\r\n"


def make_job(
    tmp: Path,
    recipients: Sequence[str] = ("b@example.test",),
    *,
    domain: str = DOMAIN,
    kind: str = "mail",
    requiretls: bool = False,
    tls_required_no: bool = False,
) -> DeliveryJob:
    path = tmp / "msg"
    path.write_bytes(MESSAGE)
    message = QueuedMessage(
        id=7,
        queued_at=0,
        sender="a@sender.test",
        size=len(MESSAGE),
        kind=kind,
        account=None,
        smtputf8=False,
        has_8bit=False,
        requiretls=requiretls,
        tls_required_no=tls_required_no,
        envelope_id=None,
    )
    rcpts = tuple(
        QueuedRecipient(i + 1, 7, a, domain, 0, 0, None, None, False, False)
        for i, a in enumerate(recipients)
    )
    return DeliveryJob(1, message, rcpts, str(path), domain)


@dataclass
class Harness:
    resolver: InMemoryResolver
    cache: LocalPolicyCache
    trust: TrustStore
    port: int
    recorded: list[ResultEntry] = field(default_factory=list)
    ours: frozenset[str] = frozenset()
    local_target: tuple[str, int] | None = None

    def deliverer(self) -> Deliverer:
        return Deliverer(
            hostname="sender.test",
            resolver=self.resolver,
            trust=self.trust,
            policies=self.cache,
            record_tls=self.recorded.extend,
            our_domains=lambda d: d in self.ours,
            log=log,
            local_target=self.local_target,
            smtp_port=self.port,
            mtasts_port=1,  # nothing listens there: a fetch fails quickly
            connect_timeout=2,
            fetch_timeout=2,
            timeouts=Timeouts(*(5.0,) * 7),
        )

    def deliver(self, job: DeliveryJob) -> list[RecipientOutcome]:
        return self.deliverer().deliver(job)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[LocalPolicyCache]:
    store = PolicyCache(tmp_path / "mtasts.db", log)
    store.init()
    try:
        yield LocalPolicyCache(store)
    finally:
        store.close()


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_cert("Delivery Test CA", ca=True, not_before=NOW - 400 * DAY)


def mx(*hosts: tuple[int, str], ips: dict[str, str]) -> dict[tuple[str, str], list[object]]:
    records: dict[tuple[str, str], list[object]] = {
        (DOMAIN, "MX"): [MxRecord(p, h) for p, h in hosts]
    }
    for host, ip in ips.items():
        records[(host, "A")] = [ip]
    return records


def harness(
    records: dict[tuple[str, str], list[object]],
    cache: LocalPolicyCache,
    ca: Issued,
    port: int,
    **kw: object,
) -> Harness:
    resolver = InMemoryResolver(records, **kw)  # type: ignore[arg-type]
    return Harness(
        resolver,
        cache,
        TrustStore.from_der([ca.cert.public_bytes(serialization.Encoding.DER)]),
        port,
    )


# --- tests: outcomes ---------------------------------------------------------------------


def test_plain_delivery_records_starttls_not_supported(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    server = servers.start("127.0.0.2")
    h = harness(
        mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"}), cache, ca, servers.port
    )
    outcomes = h.deliver(make_job(tmp_path))
    assert [o.status for o in outcomes] == ["delivered"]
    assert outcomes[0].remote_mta == "mx1.example.test" and outcomes[0].code == 250
    assert len(server.received) == 1 and server.received[0].data.endswith(b"Hello.\r\n")
    assert not server.received[0].tls
    [entry] = h.recorded
    assert entry.result.policy.policy_type is PolicyType.NO_POLICY_FOUND
    assert entry.policy_domain == DOMAIN and entry.send_report and not entry.is_host
    [detail] = entry.result.failure_details
    assert detail.result_type == "starttls-not-supported"
    assert detail.receiving_ip == "127.0.0.2" and detail.receiving_mx_hostname == "mx1.example.test"
    assert detail.sending_mta_ip == "127.0.0.1"
    assert detail.receiving_mx_helo == "fake.example"


def test_one_connection_for_all_recipients_with_mixed_replies(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    def rcpt(address: str) -> str:
        if address.startswith("gone"):
            return "550 5.1.1 no such user"
        if address.startswith("full"):
            return "452 4.2.2 mailbox full"
        return "250 2.1.5 ok"

    server = servers.start("127.0.0.2", Behavior(rcpt=rcpt))
    h = harness(
        mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"}), cache, ca, servers.port
    )
    job = make_job(tmp_path, ("b@example.test", "gone@example.test", "full@example.test"))
    outcomes = h.deliver(job)
    assert [(o.recipient_id, o.status) for o in outcomes] == [
        (1, "delivered"),
        (2, "permanent"),
        (3, "temporary"),
    ]
    assert outcomes[1].code == 550 and outcomes[1].enhanced == "5.1.1"
    assert outcomes[2].code == 452 and outcomes[2].enhanced == "4.2.2"
    assert server.connections == 1
    assert server.received[0].recipients == ["b@example.test"]


def test_temporary_failure_moves_on_to_next_mx(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    first = servers.start("127.0.0.2", Behavior(rcpt=lambda a: "451 4.3.0 try later"))
    second = servers.start("127.0.0.3")
    records = mx(
        (10, "mx1.example.test"),
        (20, "mx2.example.test"),
        ips={"mx1.example.test": "127.0.0.2", "mx2.example.test": "127.0.0.3"},
    )
    h = harness(records, cache, ca, servers.port)
    outcomes = h.deliver(make_job(tmp_path))
    assert outcomes[0].status == "delivered" and outcomes[0].remote_mta == "mx2.example.test"
    assert first.received == [] and len(second.received) == 1
    assert len(h.recorded) == 2  # one TLS result per host that was attempted


def test_dead_host_is_temporary_and_not_reported(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    servers.start("127.0.0.2")  # fixes the port; 127.0.0.9 has no listener on it
    h = harness(
        mx((10, "mx9.example.test"), ips={"mx9.example.test": "127.0.0.9"}), cache, ca, servers.port
    )
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "temporary" and outcome.code == 451
    assert outcome.enhanced == "4.4.1"
    assert h.recorded == []  # no session, nothing about TLS to report


@pytest.mark.parametrize(
    ("records", "temporary", "status", "code", "enhanced"),
    [
        ({(DOMAIN, "MX"): [MxRecord(0, "")]}, frozenset(), "permanent", 556, "5.1.10"),
        ({("other.test", "A"): ["127.0.0.2"]}, frozenset(), "permanent", 550, "5.1.2"),
        ({}, frozenset({(DOMAIN, "MX")}), "temporary", 451, "4.4.3"),
    ],
    ids=["null-mx", "nxdomain", "servfail"],
)
def test_mx_lookup_failures(
    tmp_path: Path,
    cache: LocalPolicyCache,
    ca: Issued,
    records: dict[tuple[str, str], list[object]],
    temporary: frozenset[tuple[str, str]],
    status: str,
    code: int,
    enhanced: str,
) -> None:
    h = harness(records, cache, ca, 1, temporary=temporary)
    [outcome] = h.deliver(make_job(tmp_path))
    assert (outcome.status, outcome.code, outcome.enhanced) == (status, code, enhanced)
    assert h.recorded == []


def test_mx_host_without_address_is_skipped(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    server = servers.start("127.0.0.3")
    records = mx(
        (10, "gone.example.test"), (20, "mx2.example.test"), ips={"mx2.example.test": "127.0.0.3"}
    )
    h = harness(records, cache, ca, servers.port)
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "delivered" and len(server.received) == 1


def test_local_target_skips_dns_and_records_nothing(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    self_signed = make_cert("localhost")
    server = servers.start("127.0.0.2", Behavior(tls=server_context(tmp_path, self_signed)))
    h = harness({}, cache, ca, 25)
    h.local_target = ("127.0.0.2", servers.port)
    outcomes = h.deliver(make_job(tmp_path, ("x@far.test", "y@far.test"), domain="far.test"))
    assert [o.status for o in outcomes] == ["delivered", "delivered"]
    assert server.received[0].tls  # opportunistic TLS, certificate not checked
    assert h.resolver.queries == [] and h.recorded == []


# --- tests: TLS results ------------------------------------------------------------------


def test_opportunistic_tls_with_untrusted_certificate_delivers_and_records(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    stranger = make_cert("mx1.example.test")  # self-signed: not from our CA
    server = servers.start("127.0.0.2", Behavior(tls=server_context(tmp_path, stranger)))
    h = harness(
        mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"}), cache, ca, servers.port
    )
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "delivered" and server.received[0].tls
    [entry] = h.recorded
    assert [d.result_type for d in entry.result.failure_details] == ["certificate-not-trusted"]


@pytest.mark.parametrize("kind", sorted(REPORT_KINDS))
def test_report_messages_are_counted_not_reported(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued, kind: str
) -> None:
    leaf = make_cert("mx1.example.test", issuer=ca)
    servers.start("127.0.0.2", Behavior(tls=server_context(tmp_path, leaf)))
    h = harness(
        mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"}), cache, ca, servers.port
    )
    h.deliver(make_job(tmp_path, kind=kind))
    [entry] = h.recorded
    assert entry.result.successful == 1 and not entry.send_report


def test_our_own_domain_is_not_reported(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    servers.start("127.0.0.2")
    h = harness(
        mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"}), cache, ca, servers.port
    )
    h.ours = frozenset({DOMAIN})
    h.deliver(make_job(tmp_path))
    assert [e.send_report for e in h.recorded] == [False]


def _cached_policy(cache: LocalPolicyCache, text: bytes, record_id: str = "1") -> None:
    cache.put(DOMAIN, record_id, text, NOW - datetime.timedelta(hours=1))


def test_enforced_policy_skips_unlisted_mx(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    unlisted = servers.start("127.0.0.2")
    listed = servers.start(
        "127.0.0.3",
        Behavior(tls=server_context(tmp_path, make_cert("mx2.example.test", issuer=ca))),
    )
    records = mx(
        (10, "mx1.example.test"),
        (20, "mx2.example.test"),
        ips={"mx1.example.test": "127.0.0.2", "mx2.example.test": "127.0.0.3"},
    )
    records[("_mta-sts." + DOMAIN, "TXT")] = ["v=STSv1; id=1"]
    _cached_policy(cache, POLICY_ENFORCE)
    h = harness(records, cache, ca, servers.port)
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "delivered" and outcome.remote_mta == "mx2.example.test"
    assert unlisted.connections == 0 and listed.received[0].tls
    rejected, ok = h.recorded
    assert rejected.result.policy.policy_type is PolicyType.STS
    assert rejected.result.policy.mx_hosts == ("mx2.example.test",)
    assert "mode: enforce" in rejected.result.policy.policy_strings
    assert rejected.result.failure_details[0].result_type == "validation-failure"
    assert rejected.result.failure_details[0].receiving_mx_hostname == "mx1.example.test"
    assert ok.result.successful == 1 and ok.result.policy == rejected.result.policy
    assert cache.get(DOMAIN) is not None and cache.get(DOMAIN).last_use is not None  # type: ignore[union-attr]


def test_enforced_policy_without_matching_mx_is_temporary(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    server = servers.start("127.0.0.2")
    records = mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"})
    records[("_mta-sts." + DOMAIN, "TXT")] = ["v=STSv1; id=1"]
    _cached_policy(cache, POLICY_ENFORCE)
    h = harness(records, cache, ca, servers.port)
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "temporary" and outcome.enhanced == "4.7.0"
    assert server.connections == 0
    assert [e.result.failure_details[0].result_type for e in h.recorded] == ["validation-failure"]


def test_policy_fetch_error_is_recorded_on_the_session(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    servers.start("127.0.0.2")
    records = mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"})
    records[("_mta-sts." + DOMAIN, "TXT")] = ["v=STSv1; id=1"]
    records[("mta-sts." + DOMAIN, "A")] = ["127.0.0.1"]
    h = harness(records, cache, ca, servers.port)
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "delivered"  # no policy: delivery goes on
    [entry] = h.recorded
    assert (
        entry.result.policy.policy_type is PolicyType.STS
        and entry.result.policy.policy_strings == ()
    )
    assert entry.result.failure_details[0].result_type == "sts-policy-fetch-error"
    assert cache.get(DOMAIN) is None


def test_policy_fetch_error_without_session_is_still_recorded(
    tmp_path: Path, cache: LocalPolicyCache, ca: Issued
) -> None:
    records: dict[tuple[str, str], list[object]] = {
        (DOMAIN, "MX"): [MxRecord(0, "")],
        ("_mta-sts." + DOMAIN, "TXT"): ["v=STSv1; id=1"],
    }
    h = harness(records, cache, ca, 1)
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "permanent"
    assert [e.result.failure_details[0].result_type for e in h.recorded] == [
        "sts-policy-fetch-error"
    ]


def test_requiretls_without_verified_tls_fails_permanently(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    stranger = make_cert("mx1.example.test")
    server = servers.start(
        "127.0.0.2", Behavior(tls=server_context(tmp_path, stranger), requiretls=True)
    )
    records = mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"})
    h = harness(
        records, cache, ca, servers.port, authenticated=frozenset({DOMAIN, "mx1.example.test"})
    )
    [outcome] = h.deliver(make_job(tmp_path, requiretls=True))
    assert (outcome.status, outcome.code, outcome.enhanced) == ("permanent", 550, "5.7.30")
    assert server.received == []
    [entry] = h.recorded
    assert entry.result.failure_details[0].result_type == "certificate-not-trusted"


def test_requiretls_needs_authenticated_mx_or_sts(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    leaf = make_cert("mx1.example.test", issuer=ca)
    server = servers.start(
        "127.0.0.2", Behavior(tls=server_context(tmp_path, leaf), requiretls=True)
    )
    records = mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"})
    h = harness(records, cache, ca, servers.port)
    [outcome] = h.deliver(make_job(tmp_path, requiretls=True))
    assert (outcome.status, outcome.enhanced) == ("permanent", "5.7.30")
    assert server.connections == 0
    # With a DNSSEC-validated MX answer the same server gets the message.
    h = harness(records, cache, ca, servers.port, authenticated=frozenset({DOMAIN}))
    [outcome] = h.deliver(make_job(tmp_path, requiretls=True))
    assert outcome.status == "delivered" and server.received[0].tls


def test_requiretls_server_without_extension_then_next_mx(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    no_ext = servers.start(
        "127.0.0.2",
        Behavior(tls=server_context(tmp_path, make_cert("mx1.example.test", issuer=ca))),
    )
    good = servers.start(
        "127.0.0.3",
        Behavior(
            tls=server_context(tmp_path, make_cert("mx2.example.test", issuer=ca)), requiretls=True
        ),
    )
    records = mx(
        (10, "mx1.example.test"),
        (20, "mx2.example.test"),
        ips={"mx1.example.test": "127.0.0.2", "mx2.example.test": "127.0.0.3"},
    )
    h = harness(records, cache, ca, servers.port, authenticated=frozenset({DOMAIN}))
    [outcome] = h.deliver(make_job(tmp_path, requiretls=True))
    assert outcome.status == "delivered" and outcome.remote_mta == "mx2.example.test"
    assert no_ext.received == [] and good.received[0].tls


def _tlsa_for(issued: Issued) -> TlsaRecord:
    spki = issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TlsaRecord(3, 1, 1, hashlib.sha256(spki).digest())


def test_dane_tempfail_defers_host(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    server = servers.start("127.0.0.2")
    records = mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"})
    secure = frozenset({DOMAIN, "mx1.example.test"})
    failing = frozenset({("_25._tcp.mx1.example.test", "TLSA")})
    h = harness(records, cache, ca, servers.port, authenticated=secure, temporary=failing)
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "temporary" and server.connections == 0
    [entry] = h.recorded
    assert entry.is_host and entry.result.policy.policy_type is PolicyType.TLSA
    assert entry.result.failure_details[0].result_type == "dnssec-invalid"
    # "TLS-Required: No" ignores DANE: the message goes out.
    [outcome] = h.deliver(make_job(tmp_path, tls_required_no=True))
    assert outcome.status == "delivered"


def test_dane_ee_in_memory(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    leaf = make_cert("whatever.invalid")  # DANE-EE: neither name nor issuer matter
    server = servers.start("127.0.0.2", Behavior(tls=server_context(tmp_path, leaf)))
    records = mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"})
    records[("_25._tcp.mx1.example.test", "TLSA")] = [_tlsa_for(leaf)]
    secure = frozenset({DOMAIN, "mx1.example.test", "_25._tcp.mx1.example.test"})
    h = harness(records, cache, ca, servers.port, authenticated=secure)
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "delivered" and server.received[0].tls
    domain_entry, host_entry = h.recorded
    assert domain_entry.result.successful == 1 and not domain_entry.is_host
    assert host_entry.is_host and host_entry.policy_domain == "mx1.example.test"
    assert host_entry.result.successful == 1
    assert host_entry.result.policy.policy_strings == (f"3 1 1 {_tlsa_for(leaf).data.hex()}",)


# --- tests: the MTA-STS policy at delivery time ---------------------------------------------


POLICY_TESTING = b"version: STSv1\nmode: testing\nmx: *.example.test\nmax_age: 600\n"


class Fetcher:
    def __init__(self, result: bytes | PolicyFetchError) -> None:
        self.result = result
        self.calls = 0

    def __call__(self, domain: str) -> bytes:
        self.calls += 1
        if isinstance(self.result, PolicyFetchError):
            raise self.result
        return self.result


def _state(
    cache: LocalPolicyCache, txt: list[object], fetch: Fetcher, now: datetime.datetime = NOW
) -> StsState:
    resolver = InMemoryResolver({("_mta-sts." + DOMAIN, "TXT"): txt} if txt else {})
    return current_policy(DOMAIN, resolver=resolver, cache=cache, fetch=fetch, now=now)


def test_policy_fetched_parsed_and_stored(cache: LocalPolicyCache) -> None:
    fetch = Fetcher(POLICY_TESTING)
    state = _state(cache, ["v=STSv1; id=abc"], fetch)
    assert state.policy is not None and state.policy.mode is StsMode.TESTING
    assert state.error is None and not state.from_cache and fetch.calls == 1
    cached = cache.get(DOMAIN)
    assert cached is not None and cached.record_id == "abc"
    # The same id again: the cached policy, no fetch.
    state = _state(cache, ["v=STSv1; id=abc"], fetch)
    assert state.from_cache and fetch.calls == 1
    # The record is gone: the cached policy still applies until max_age runs out.
    assert _state(cache, [], fetch).from_cache
    assert _state(cache, [], fetch, NOW + datetime.timedelta(seconds=601)).policy is None


def test_policy_fetch_failure_keeps_valid_cached_policy(cache: LocalPolicyCache) -> None:
    _state(cache, ["v=STSv1; id=old"], Fetcher(POLICY_TESTING))
    failing = Fetcher(PolicyFetchError("sts-webpki-invalid", "bad certificate"))
    state = _state(cache, ["v=STSv1; id=new"], failing)
    assert failing.calls == 1 and state.from_cache
    assert state.policy is not None and state.error == "sts-webpki-invalid"
    assert cache.get(DOMAIN).record_id == "old"  # type: ignore[union-attr]


def test_policy_invalid(cache: LocalPolicyCache) -> None:
    state = _state(cache, ["v=STSv1; id=1"], Fetcher(b"version: STSv1\nmode: sometimes\n"))
    assert state.policy is None and state.error == "sts-policy-invalid"
    assert cache.get(DOMAIN) is None


def test_policy_strings_are_lines() -> None:
    assert policy_strings(POLICY_ENFORCE) == (
        "version: STSv1",
        "mode: enforce",
        "mx: mx2.example.test",
        "max_age: 86400",
    )


# --- the outcome of a recipient over several hosts ---------------------------------------

_REPLIES = st.sampled_from(
    [
        Reply(451, "4.4.1", "refused"),
        Reply(550, "5.7.30", "no REQUIRETLS"),
        Reply(452, None, "full"),
    ]
)


@given(st.lists(_REPLIES, max_size=6))
def test_recipient_outcome_is_temporary_unless_every_failure_was_permanent(
    replies: list[Reply],
) -> None:
    rcpt = _Recipient(1, "b@example.test")
    for reply in replies:
        rcpt.note(reply, permanent=reply.code >= 500)
    outcome = rcpt.outcome()
    if replies and all(r.code >= 500 for r in replies):
        assert outcome.status == "permanent" and outcome.code == 550
    else:
        assert outcome.status == "temporary" and 400 <= outcome.code < 500


def test_dane_with_only_unusable_tlsa_requires_tls_without_authentication(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    plain = servers.start("127.0.0.2")
    stranger = make_cert("mx2.example.test")  # untrusted, but TLS is all that is asked
    tls = servers.start("127.0.0.3", Behavior(tls=server_context(tmp_path, stranger)))
    records = mx(
        (10, "mx1.example.test"),
        (20, "mx2.example.test"),
        ips={"mx1.example.test": "127.0.0.2", "mx2.example.test": "127.0.0.3"},
    )
    unusable = TlsaRecord(1, 1, 1, b"\x00" * 32)  # PKIX-EE: unusable for SMTP (RFC 7672 3.1.3)
    records[("_25._tcp.mx1.example.test", "TLSA")] = [unusable]
    records[("_25._tcp.mx2.example.test", "TLSA")] = [unusable]
    h = harness(
        records,
        cache,
        ca,
        servers.port,
        authenticated=frozenset(
            {
                DOMAIN,
                "mx1.example.test",
                "mx2.example.test",
                "_25._tcp.mx1.example.test",
                "_25._tcp.mx2.example.test",
            }
        ),
    )
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "delivered" and outcome.remote_mta == "mx2.example.test"
    assert plain.received == [] and tls.received[0].tls
    host_results = [
        (e.policy_domain, e.result.failure_details[0].result_type) for e in h.recorded if e.is_host
    ]
    assert host_results == [
        ("mx1.example.test", "starttls-not-supported"),
        ("mx2.example.test", "tlsa-invalid"),
    ]


def test_failed_handshake_falls_back_to_plaintext_when_opportunistic(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    broken = server_context(tmp_path, make_cert("mx1.example.test", issuer=ca))
    broken.set_ciphers("aNULL")  # no cipher suite the client accepts for TLS 1.2
    broken.maximum_version = ssl.TLSVersion.TLSv1_2
    server = servers.start("127.0.0.2", Behavior(tls=broken))
    h = harness(
        mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"}), cache, ca, servers.port
    )
    [outcome] = h.deliver(make_job(tmp_path))
    assert outcome.status == "delivered"
    assert server.connections == 2 and not server.received[0].tls
    [entry] = h.recorded
    assert entry.result.failure_details[0].result_type == "validation-failure"


def test_recording_failure_does_not_undo_delivery(
    tmp_path: Path, servers: Servers, cache: LocalPolicyCache, ca: Issued
) -> None:
    servers.start("127.0.0.2")
    h = harness(
        mx((10, "mx1.example.test"), ips={"mx1.example.test": "127.0.0.2"}), cache, ca, servers.port
    )
    deliverer = h.deliverer()

    def broken(entries: Sequence[ResultEntry]) -> None:
        raise RuntimeError("database actor gone")

    deliverer.record_tls = broken
    [outcome] = deliverer.deliver(make_job(tmp_path))
    assert outcome.status == "delivered"
