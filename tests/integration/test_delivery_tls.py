"""Delivery attempts over real sockets, real TLS and real DNS: the recorded TLS result types.

The recipient domain example.test is served by a DnsTestServer (DNSSEC-validated where
a test says so), its MX hosts are FakeSmtp servers on 127.0.0.x with certificates from
a test CA, and its MTA-STS policy comes from an HTTPS server on 127.0.0.1. The
Deliverer talks to them through DnsResolver, fetch_policy and net/smtpclient.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from support.dnsserver import DnsTestServer
from unit.actors.test_delivery import (
    DAY,
    NOW,
    Behavior,
    FakeSmtp,
    Servers,
    log,
    make_cert,
    make_job,
    server_context,
)
from unit.protocol.test_pkix import Issued

from mailactors.actors.delivery import Deliverer
from mailactors.actors.delivery_policy import LocalPolicyCache
from mailactors.actors.messages import RecipientOutcome
from mailactors.actors.queue import DeliveryJob
from mailactors.net.resolver import DnsResolver
from mailactors.net.tlstrust import TrustStore
from mailactors.protocol.smtp.client import Timeouts
from mailactors.protocol.tlsrpt import PolicyType
from mailactors.storage.mtastsdb import PolicyCache
from mailactors.storage.tlsrptdb import ResultEntry

DOMAIN = "example.test"
MX1, MX2 = "mx1.example.test", "mx2.example.test"
IP1, IP2 = "127.0.0.2", "127.0.0.3"


# --- the MTA-STS policy server -------------------------------------------------------------


class _PolicyHandler(BaseHTTPRequestHandler):
    server: _PolicyServer

    def do_GET(self) -> None:
        self.close_connection = True
        body = self.server.policy
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _PolicyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext, policy: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _PolicyHandler)
        self.ctx = ctx
        self.policy = policy
        self.fetches = 0

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.fetches += 1
            self.RequestHandlerClass(tls, client_address, self)
        except OSError:
            pass
        finally:
            tls.close()


# --- the world of one test ------------------------------------------------------------------


@dataclass
class World:
    tmp: Path
    ca: Issued
    servers: Servers
    cache: LocalPolicyCache
    recorded: list[ResultEntry] = field(default_factory=list)
    policy_port: int = 1
    # The zone (zone-file lines) and the DNSSEC-validated names of the DNS server that
    # each delivery starts, and the queries it saw.
    zone: list[str] = field(default_factory=list)
    authenticated: set[str] = field(default_factory=set)
    queries: list[tuple[str, str, str]] = field(default_factory=list)

    def smtp(
        self, ip: str, host: str | None, *, leaf: Issued | None = None, **kw: object
    ) -> FakeSmtp:
        """A FakeSmtp for MX `host` at ip; with STARTTLS and a CA-issued cert for host unless
        host is None (no STARTTLS) or another leaf is given."""
        tls = None
        if host is not None:
            tls = server_context(self.tmp, leaf or make_cert(host, issuer=self.ca))
        return self.servers.start(ip, Behavior(tls=tls, **kw))  # type: ignore[arg-type]

    def add(self, name: str, rdtype: str, value: str) -> None:
        self.zone.append(f"{name}. {rdtype} {value}")

    def mx(self, *hosts: tuple[int, str, str]) -> None:
        for preference, host, ip in hosts:
            self.add(DOMAIN, "MX", f"{preference} {host}.")
            self.add(host, "A", ip)

    def sts(self, mode: str, mx: Sequence[str] = ("*.example.test",)) -> _PolicyServer:
        lines = ["version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), "max_age: 86400"]
        policy = ("\r\n".join(lines) + "\r\n").encode()
        leaf = make_cert("mta-sts." + DOMAIN, issuer=self.ca)
        server = _PolicyServer(server_context(self.tmp, leaf), policy)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()
        self._policy_servers.append((server, thread))
        self.policy_port = server.server_address[1]
        self.add("_mta-sts." + DOMAIN, "TXT", '"v=STSv1; id=20260101"')
        self.add("mta-sts." + DOMAIN, "A", "127.0.0.1")
        return server

    def deliver(self, job: DeliveryJob | None = None) -> list[RecipientOutcome]:
        with DnsTestServer("\n".join(self.zone), authenticated=self.authenticated) as dns:
            try:
                return self._deliver(dns, job)
            finally:
                self.queries = list(dns.queries)

    def _deliver(self, dns: DnsTestServer, job: DeliveryJob | None) -> list[RecipientOutcome]:
        deliverer = Deliverer(
            hostname="sender.test",
            resolver=DnsResolver([dns.nameserver], timeout=2, lifetime=4),
            trust=TrustStore.from_der([self.ca.der]),
            policies=self.cache,
            record_tls=self.recorded.extend,
            our_domains=lambda d: False,
            log=log,
            smtp_port=self.servers.port,
            mtasts_port=self.policy_port,
            connect_timeout=2,
            fetch_timeout=5,
            timeouts=Timeouts(*(5.0,) * 7),
        )
        return deliverer.deliver(job or make_job(self.tmp))

    def result_types(self, *, is_host: bool = False) -> list[str]:
        """The result type of each recorded session ("success" for successes)."""
        out = []
        for entry in self.recorded:
            if entry.is_host != is_host:
                continue
            if entry.result.successful:
                out.append("success")
            out.extend(d.result_type for d in entry.result.failure_details)
        return out

    _policy_servers: list[tuple[_PolicyServer, threading.Thread]] = field(default_factory=list)

    def close(self) -> None:
        for server, thread in self._policy_servers:
            server.shutdown()
            thread.join(5)
            server.server_close()


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_cert("Delivery Integration CA", ca=True, not_before=NOW - 400 * DAY)


@pytest.fixture
def world(tmp_path: Path, ca: Issued) -> Iterator[World]:
    store = PolicyCache(tmp_path / "mtasts.db", log)
    store.init()
    servers = Servers()
    w = World(tmp_path, ca, servers, LocalPolicyCache(store))
    try:
        yield w
    finally:
        w.close()
        servers.close()
        store.close()


def _tlsa(issued: Issued) -> str:
    spki = issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"3 1 1 {hashlib.sha256(spki).hexdigest()}"


# --- PKIX, opportunistic ---------------------------------------------------------------------


def test_pkix_success(world: World) -> None:
    server = world.smtp(IP1, MX1)
    world.mx((10, MX1, IP1))
    [outcome] = world.deliver()
    assert outcome.status == "delivered" and server.received[0].tls
    assert world.result_types() == ["success"]
    [entry] = world.recorded
    assert entry.result.policy.policy_type is PolicyType.NO_POLICY_FOUND


def test_expired_certificate_still_delivers_opportunistically(world: World) -> None:
    expired = make_cert(MX1, issuer=world.ca, not_before=NOW - 90 * DAY, not_after=NOW - DAY)
    server = world.smtp(IP1, MX1, leaf=expired)
    world.mx((10, MX1, IP1))
    [outcome] = world.deliver()
    assert outcome.status == "delivered" and server.received[0].tls
    assert world.result_types() == ["certificate-expired"]


def test_wrong_host_name(world: World) -> None:
    server = world.smtp(IP1, MX1, leaf=make_cert("other.example.test", issuer=world.ca))
    world.mx((10, MX1, IP1))
    [outcome] = world.deliver()
    assert outcome.status == "delivered" and server.received[0].tls
    assert world.result_types() == ["certificate-host-mismatch"]
    [detail] = world.recorded[0].result.failure_details
    assert (detail.receiving_mx_hostname, detail.receiving_ip) == (MX1, IP1)


def test_no_starttls(world: World) -> None:
    server = world.smtp(IP1, None)
    world.mx((10, MX1, IP1))
    [outcome] = world.deliver()
    assert outcome.status == "delivered" and not server.received[0].tls
    assert world.result_types() == ["starttls-not-supported"]


# --- MTA-STS ---------------------------------------------------------------------------------


def _bad_and_good(world: World) -> tuple[FakeSmtp, FakeSmtp]:
    expired = make_cert(MX1, issuer=world.ca, not_before=NOW - 90 * DAY, not_after=NOW - DAY)
    bad = world.smtp(IP1, MX1, leaf=expired)
    good = world.smtp(IP2, MX2)
    world.mx((10, MX1, IP1), (20, MX2, IP2))
    return bad, good


def test_mta_sts_enforce_refuses_bad_host_and_delivers_to_good(world: World) -> None:
    bad, good = _bad_and_good(world)
    policy_server = world.sts("enforce")
    [outcome] = world.deliver()
    assert outcome.status == "delivered" and outcome.remote_mta == MX2
    assert bad.received == [] and good.received[0].tls
    assert world.result_types() == ["certificate-expired", "success"]
    assert {e.result.policy.policy_type for e in world.recorded} == {PolicyType.STS}
    assert "mode: enforce" in world.recorded[0].result.policy.policy_strings
    assert policy_server.fetches == 1
    cached = world.cache.get(DOMAIN)
    assert cached is not None and cached.record_id == "20260101"
    # The next delivery uses the cached policy without fetching it again.
    world.recorded.clear()
    world.deliver()
    assert policy_server.fetches == 1
    assert world.result_types() == ["certificate-expired", "success"]


def test_mta_sts_testing_delivers_anyway_and_records_failure(world: World) -> None:
    bad, good = _bad_and_good(world)
    world.sts("testing")
    [outcome] = world.deliver()
    assert outcome.status == "delivered" and outcome.remote_mta == MX1
    assert bad.received[0].tls and good.connections == 0
    assert world.result_types() == ["certificate-expired"]
    assert world.recorded[0].result.policy.policy_type is PolicyType.STS


def test_mta_sts_enforce_only_bad_host_is_temporary(world: World) -> None:
    expired = make_cert(MX1, issuer=world.ca, not_before=NOW - 90 * DAY, not_after=NOW - DAY)
    bad = world.smtp(IP1, MX1, leaf=expired)
    world.mx((10, MX1, IP1))
    world.sts("enforce")
    [outcome] = world.deliver()
    assert outcome.status == "temporary" and outcome.enhanced == "4.7.5"
    assert bad.received == []


def test_tls_required_no_delivers_despite_bad_certificate(world: World) -> None:
    expired = make_cert(MX1, issuer=world.ca, not_before=NOW - 90 * DAY, not_after=NOW - DAY)
    bad = world.smtp(IP1, MX1, leaf=expired)
    world.mx((10, MX1, IP1))
    world.sts("enforce")
    [outcome] = world.deliver(make_job(world.tmp, tls_required_no=True))
    assert outcome.status == "delivered" and bad.received[0].tls
    # The failure is still reported (RFC 8689 section 5 only stops acting on it).
    assert world.result_types() == ["certificate-expired"]


# --- DANE --------------------------------------------------------------------------------------


def test_dane_ee_match(world: World) -> None:
    leaf = make_cert("not-the-mx.invalid")  # self-signed, other name: DANE-EE does not care
    server = world.smtp(IP1, MX1, leaf=leaf)
    world.mx((10, MX1, IP1))
    world.add(f"_25._tcp.{MX1}", "TLSA", _tlsa(leaf))
    world.authenticated.add(DOMAIN)
    [outcome] = world.deliver()
    assert outcome.status == "delivered" and server.received[0].tls
    assert world.result_types(is_host=True) == ["success"]
    [host_entry] = [e for e in world.recorded if e.is_host]
    assert host_entry.policy_domain == MX1
    assert host_entry.result.policy.policy_type is PolicyType.TLSA
    assert host_entry.result.policy.policy_strings == (_tlsa(leaf),)
    assert world.result_types() == ["success"]


def test_dane_ee_mismatch_refuses_host(world: World) -> None:
    server = world.smtp(IP1, MX1)  # a PKIX-valid certificate, but not the one in TLSA
    world.mx((10, MX1, IP1))
    world.add(f"_25._tcp.{MX1}", "TLSA", _tlsa(make_cert("someone-else")))
    world.authenticated.add(DOMAIN)
    [outcome] = world.deliver()
    assert outcome.status == "temporary" and outcome.enhanced == "4.7.5"
    assert server.received == []
    assert world.result_types(is_host=True) == ["validation-failure"]
    assert world.result_types() == ["validation-failure"]


def test_insecure_tlsa_is_ignored(world: World) -> None:
    server = world.smtp(IP1, MX1)
    world.mx((10, MX1, IP1))
    # The TLSA RRset lives in an unsigned zone (reached by a CNAME): RFC 7672 section
    # 2.2 says it does not count, so the wrong digest in it changes nothing.
    world.add(f"_25._tcp.{MX1}", "CNAME", "tlsa.unsigned.test.")
    world.add("tlsa.unsigned.test", "TLSA", _tlsa(make_cert("someone-else")))
    world.authenticated.add(DOMAIN)
    [outcome] = world.deliver()
    assert outcome.status == "delivered" and server.received[0].tls
    assert world.result_types(is_host=True) == []
    assert world.result_types() == ["success"]
    assert any(q[:2] == (f"_25._tcp.{MX1}", "TLSA") for q in world.queries)


# --- REQUIRETLS, dead hosts, refusals ------------------------------------------------------------


def test_requiretls_refused_without_verified_tls(world: World) -> None:
    server = world.smtp(IP1, MX1, leaf=make_cert(MX1), requiretls=True)  # untrusted issuer
    world.mx((10, MX1, IP1))
    world.authenticated.add(DOMAIN)
    [outcome] = world.deliver(make_job(world.tmp, requiretls=True))
    assert (outcome.status, outcome.code, outcome.enhanced) == ("permanent", 550, "5.7.30")
    assert server.received == []
    assert world.result_types() == ["certificate-not-trusted"]


def test_requiretls_delivered_with_verified_tls(world: World) -> None:
    server = world.smtp(IP1, MX1, requiretls=True)
    world.mx((10, MX1, IP1))
    world.authenticated.add(DOMAIN)
    [outcome] = world.deliver(make_job(world.tmp, requiretls=True))
    assert outcome.status == "delivered" and server.received[0].tls


def test_dead_host_is_temporary(world: World) -> None:
    world.smtp(IP2, MX2)  # fixes the port; nothing listens on IP1
    world.mx((10, MX1, IP1))
    [outcome] = world.deliver()
    assert outcome.status == "temporary" and outcome.code == 451
    assert world.recorded == []


def test_550_is_permanent(world: World) -> None:
    server = world.smtp(IP1, MX1, rcpt=lambda a: "550 5.1.1 no such user here")
    world.mx((10, MX1, IP1))
    [outcome] = world.deliver()
    assert (outcome.status, outcome.code, outcome.enhanced) == ("permanent", 550, "5.1.1")
    assert "no such user" in outcome.text and server.received == []
    assert world.result_types() == ["success"]  # TLS itself went fine


def test_dane_ta_with_private_ca(world: World) -> None:
    private = make_cert("Private Mail CA", ca=True, not_before=NOW - 400 * DAY)
    leaf = make_cert(MX1, issuer=private)
    server = world.servers.start(IP1, Behavior(tls=server_context(world.tmp, leaf, private)))
    world.mx((10, MX1, IP1))
    spki = private.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    world.add(f"_25._tcp.{MX1}", "TLSA", f"2 1 1 {hashlib.sha256(spki).hexdigest()}")
    world.authenticated.add(DOMAIN)
    [outcome] = world.deliver()
    # The private CA is not a PKIX trust anchor, but the TLSA record makes it one.
    assert outcome.status == "delivered" and server.received[0].tls
    assert world.result_types(is_host=True) == ["success"]
