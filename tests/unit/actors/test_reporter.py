"""ReporterActor's hourly MTA-STS step: cached policies close to expiry are fetched again
(RFC 8461 10.2) over real HTTPS from a policy server on 127.0.0.1 whose certificate comes
from a test CA listed in tls.ca_certs; a failed refresh keeps the cached policy.

`PolicyHttpsServer` is used by tests/integration too."""

from __future__ import annotations

import dataclasses
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pykka
import pytest
from cryptography.hazmat.primitives import serialization
from unit.actors.test_delivery import make_cert, server_context
from unit.protocol.test_pkix import Issued

from mailactors.actors.dbactor import DatabaseActor
from mailactors.actors.dkimsign import DkimSigner
from mailactors.actors.localserve import ensure_localserve_files
from mailactors.actors.reporter import ReporterActor, ReporterTick
from mailactors.actors.services import Services
from mailactors.conf import Config, load_config
from mailactors.protocol.dns import InMemoryResolver
from mailactors.storage.mtastsdb import CachedPolicy, PolicyCache

log = logging.getLogger("test.reporter")


def sts_policy(mode: str, mx: str, max_age: int) -> bytes:
    return f"version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: {max_age}\r\n".encode()


# --- an HTTPS server for MTA-STS policies (and report POSTs) -------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: PolicyHttpsServer

    def do_GET(self) -> None:
        self.close_connection = True
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        self.server.gets.append(host)
        status, body = self.server.policies.get(host, (404, b"not found\n"))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.close_connection = True
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.server.posts.append((self.path, self.headers.get("Content-Type") or "", body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class PolicyHttpsServer(ThreadingHTTPServer):
    """HTTPS on (ip, port 0): GET answers `policies[host]` = (status, body); POST bodies
    are kept in `posts` as (path, content type, body)."""

    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext, ip: str = "127.0.0.1") -> None:
        super().__init__((ip, 0), _Handler)
        self.ctx = ctx
        self.policies: dict[str, tuple[int, bytes]] = {}
        self.gets: list[str] = []
        self.posts: list[tuple[str, str, bytes]] = []
        self.port: int = self.server_address[1]
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def finish_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except OSError:
            pass
        finally:
            tls.close()

    def close(self) -> None:
        self.shutdown()
        self.thread.join(5)
        self.server_close()


def write_ca(tmp: Path, ca: Issued) -> Path:
    path = tmp / "test-ca.pem"
    path.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    return path


# --- the reporter with its mtasts.db actor -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class World:
    config: Config
    clock: Clock
    resolver: InMemoryResolver
    db: pykka.ActorRef[Any]
    https: PolicyHttpsServer
    reporter: pykka.ActorRef[Any] | None = None

    def put(self, domain: str, record_id: str, text: bytes, fetched_at: float) -> None:
        from mailactors.actors.reportdbs import PutPolicy

        when = datetime.fromtimestamp(fetched_at, UTC)
        self.db.ask(PutPolicy(domain, record_id, text, when), timeout=10)

    def get(self, domain: str) -> CachedPolicy | None:
        from mailactors.actors.reportdbs import GetPolicy

        result = self.db.ask(GetPolicy(domain), timeout=10)
        assert result is None or isinstance(result, CachedPolicy)
        return result

    def start(self) -> pykka.ActorRef[Any]:
        services = Services(
            config=self.config,
            stores={},
            limiter=self.db,
            tls_contexts={},
            spool_dir=self.config.static.data_dir / "tmp",
            accounts_dir=self.config.static.data_dir / "accounts",
            log=log,
            databases={"mtasts": self.db},
        )
        self.reporter = ReporterActor.start(
            self.config,
            services,
            self.resolver,
            DkimSigner(self.config.domains),
            log,
            clock=self.clock,
            tick_interval=None,
            mtasts_port=self.https.port,
        )
        return self.reporter

    def hourly_step(self) -> None:
        """Move the clock past the hour after the start and tick."""
        assert self.reporter is not None
        self.clock.now += 3601
        self.reporter.ask(ReporterTick(), timeout=30)


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_cert("Reporter Test CA", ca=True, not_before=datetime.now(UTC) - 400 * timedelta(1))


@pytest.fixture
def world(tmp_path: Path, ca: Issued) -> Iterator[World]:
    conf_path = ensure_localserve_files(tmp_path / "ls", "127.0.0.1", log)
    config = load_config(conf_path)
    config = dataclasses.replace(
        config,
        static=dataclasses.replace(config.static, tls_ca_certs=(write_ca(tmp_path, ca),)),
    )
    config.static.data_dir.mkdir(parents=True, exist_ok=True)
    path = config.static.data_dir / "mtasts.db"
    db = DatabaseActor.start("mtasts", lambda: PolicyCache(path, log), log)
    names = ("soon.example", "later.example", "gone.example", "broken.example")
    leaf = make_cert("policy host", sans=tuple(f"mta-sts.{n}" for n in names), issuer=ca)
    https = PolicyHttpsServer(server_context(tmp_path, leaf))
    resolver = InMemoryResolver(
        {
            **{(f"mta-sts.{n}", "A"): ["127.0.0.1"] for n in names},
            ("_mta-sts.soon.example", "TXT"): ["v=STSv1; id=new1"],
            ("_mta-sts.later.example", "TXT"): ["v=STSv1; id=same"],
            ("_mta-sts.broken.example", "TXT"): ["v=STSv1; id=new2"],
            ("gone.example", "MX"): [],
        }
    )
    w = World(config, Clock(), resolver, db, https)
    try:
        yield w
    finally:
        if w.reporter is not None:
            w.reporter.stop(timeout=10)
        db.stop(timeout=10)
        https.close()


OLD = sts_policy("testing", "mx.old.example", 86400)


def test_policy_close_to_expiry_is_fetched_again(world: World) -> None:
    new = sts_policy("enforce", "mx.soon.example", 604800)
    world.https.policies["mta-sts.soon.example"] = (200, new)
    world.https.policies["mta-sts.later.example"] = (200, new)
    # Valid for 4 more hours: refreshed. Valid for 6 more days: left alone.
    world.put("soon.example", "old1", OLD, world.clock.now - 20 * 3600)
    world.put("later.example", "same", sts_policy("enforce", "mx", 604800), world.clock.now)
    world.start()
    world.hourly_step()
    assert world.https.gets == ["mta-sts.soon.example"]
    soon = world.get("soon.example")
    assert soon is not None
    assert (soon.record_id, soon.policy_text) == ("new1", new)
    assert soon.fetched_at == datetime.fromtimestamp(int(world.clock.now), UTC)
    assert soon.valid_until == soon.fetched_at + timedelta(seconds=604800)
    assert soon.last_error is None
    later = world.get("later.example")
    assert later is not None and later.record_id == "same"
    # The next hour, nothing is due any more.
    world.hourly_step()
    assert world.https.gets == ["mta-sts.soon.example"]


def test_failed_refresh_keeps_the_cached_policy(world: World) -> None:
    world.https.policies["mta-sts.broken.example"] = (500, b"oops\n")
    fetched = world.clock.now - 20 * 3600
    world.put("broken.example", "old2", OLD, fetched)
    world.put("gone.example", "old3", OLD, fetched)
    world.start()
    world.hourly_step()
    # gone.example publishes no record any more: nothing is fetched, the policy stays
    # until max_age runs out (RFC 8461 5.1).
    assert world.https.gets == ["mta-sts.broken.example"]
    broken = world.get("broken.example")
    assert broken is not None
    assert (broken.record_id, broken.policy_text) == ("old2", OLD)
    assert broken.fetched_at == datetime.fromtimestamp(int(fetched), UTC)
    assert broken.last_error is not None and "HTTP 500" in broken.last_error
    gone = world.get("gone.example")
    assert gone is not None and gone.policy_text == OLD and gone.last_error is None


def test_untrusted_policy_host_is_not_taken(world: World, tmp_path: Path) -> None:
    # The policy host's certificate is self-signed: not in the system CAs nor tls.ca_certs.
    world.https.ctx = server_context(tmp_path, make_cert("mta-sts.soon.example"))
    world.https.policies["mta-sts.soon.example"] = (200, sts_policy("enforce", "evil", 86400))
    world.put("soon.example", "old1", OLD, world.clock.now - 20 * 3600)
    world.start()
    world.hourly_step()
    soon = world.get("soon.example")
    assert soon is not None and soon.policy_text == OLD
    assert soon.last_error is not None and "sts-webpki-invalid" in soon.last_error


def test_invalid_policy_is_not_taken(world: World) -> None:
    world.https.policies["mta-sts.soon.example"] = (200, b"version: STSv1\r\nmode: bogus\r\n")
    world.put("soon.example", "old1", OLD, world.clock.now - 20 * 3600)
    world.start()
    world.hourly_step()
    soon = world.get("soon.example")
    assert soon is not None and soon.policy_text == OLD and soon.record_id == "old1"
    assert soon.last_error is not None
