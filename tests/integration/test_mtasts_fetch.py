"""Fetching MTA-STS policies from a real HTTPS server on 127.0.0.1 (RFC 8461 section 3.3).

The server is http.server (threaded) behind TLS with a certificate chain from a
test CA; the resolver maps mta-sts.example.test to 127.0.0.1.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from unit.protocol.test_pkix import Issued
from unit.protocol.test_pkix import make_cert as _make_cert

from mailactors.net.https import PolicyFetchError, fetch_policy
from mailactors.net.tlstrust import TrustError, TrustStore, load_ca_file, load_trust
from mailactors.protocol.dns import InMemoryResolver
from mailactors.protocol.mtasts import StsMode, parse_policy

POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n"
HOST = "mta-sts.example.test"
# Certificates valid around the real time, so OpenSSL (which uses the clock) accepts them.
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


def make_cert(name: str, **kw: object) -> Issued:
    kw.setdefault("not_before", NOW - 30 * DAY)
    kw.setdefault("not_after", NOW + 60 * DAY)
    return _make_cert(name, **kw)  # type: ignore[arg-type]


RESOLVER = InMemoryResolver({(HOST, "A"): ["127.0.0.1"]})


def _http(status: str, headers: list[str], body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
    return head.encode() + body


def ok_response(body: bytes = POLICY, content_type: str = "text/plain; charset=utf-8") -> bytes:
    return _http("200 OK", [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"], body)


class _Handler(BaseHTTPRequestHandler):
    server: _TlsServer

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        self.close_connection = True
        response = self.server.respond()
        if response is None:
            self.server.release.wait(10)
            return
        self.wfile.write(response)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _TlsServer(ThreadingHTTPServer):
    """HTTPS: the TLS handshake runs in the request's thread."""

    def __init__(self, ctx: ssl.SSLContext, respond: Callable[[], bytes | None]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.ctx = ctx
        self.respond = respond
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()

    def finish_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
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


def _write_chain(path: Path, *certs: Issued) -> Path:
    path.write_bytes(b"".join(c.cert.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def _write_key(path: Path, issued: Issued) -> Path:
    path.write_bytes(
        issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


class Pki:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = make_cert("Test Root", ca=True, not_before=NOW - 400 * DAY)
        self.inter = make_cert("Test Intermediate", ca=True, issuer=self.root)
        self.root_file = _write_chain(tmp / "root.pem", self.root)

    def server_context(self, leaf: Issued, *chain: Issued) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        name = f"{id(leaf)}"
        ctx.load_cert_chain(
            _write_chain(self.tmp / f"{name}.pem", leaf, *chain),
            _write_key(self.tmp / f"{name}.key", leaf),
        )
        return ctx

    def good_context(self) -> ssl.SSLContext:
        leaf = make_cert(HOST, issuer=self.inter)
        return self.server_context(leaf, self.inter)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def serve() -> Iterator[Callable[..., _TlsServer]]:
    servers: list[tuple[_TlsServer, threading.Thread]] = []

    def start(ctx: ssl.SSLContext, respond: Callable[[], bytes | None]) -> _TlsServer:
        server = _TlsServer(ctx, respond)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def trust(pki: Pki) -> TrustStore:
    return load_trust([pki.root_file], system=False)


def _fetch(server: _TlsServer, trust: ssl.SSLContext | TrustStore, **kw: object) -> bytes:
    kw.setdefault("timeout", 5.0)
    return fetch_policy(
        "Example.test",
        resolver=RESOLVER,
        trust=trust,
        port=server.server_address[1],
        **kw,  # type: ignore[arg-type]
    )


def _fetch_error(
    server: _TlsServer, trust: ssl.SSLContext | TrustStore, **kw: object
) -> PolicyFetchError:
    with pytest.raises(PolicyFetchError) as info:
        _fetch(server, trust, **kw)
    return info.value


def test_fetch_ok_with_trust_store(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]
) -> None:
    server = serve(pki.good_context(), ok_response)
    body = _fetch(server, trust, now=NOW)
    assert body == POLICY
    assert parse_policy(body).mode is StsMode.ENFORCE
    assert server.requests == [("/.well-known/mta-sts.txt", HOST)]


def test_fetch_ok_with_ssl_context(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]
) -> None:
    server = serve(pki.good_context(), ok_response)
    assert _fetch(server, trust.client_context()) == POLICY


def test_fetch_chunked(pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]) -> None:
    chunks = (
        b"5;ext=1\r\nversi\r\n"
        + f"{len(POLICY) - 5:x}\r\n".encode()
        + POLICY[5:]
        + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    response = _http("200 OK", ["Content-Type: text/plain", "Transfer-Encoding: chunked"], chunks)
    server = serve(pki.good_context(), lambda: response)
    assert _fetch(server, trust, now=NOW) == POLICY


def test_fetch_body_until_close(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]
) -> None:
    response = _http("200 OK", ["Content-Type: text/plain"], POLICY)
    server = serve(pki.good_context(), lambda: response)
    assert _fetch(server, trust, now=NOW) == POLICY


@pytest.mark.parametrize("status", ["301 Moved Permanently", "302 Found", "307 Temporary Redirect"])
def test_redirect_refused(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer], status: str
) -> None:
    response = _http(status, [f"Location: https://{HOST}/other.txt", "Content-Length: 0"], b"")
    server = serve(pki.good_context(), lambda: response)
    error = _fetch_error(server, trust, now=NOW)
    assert error.result_type == "sts-policy-fetch-error"
    assert "redirect" in error.detail
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("response", "text"),
    [
        (_http("404 Not Found", ["Content-Type: text/plain", "Content-Length: 0"], b""), "404"),
        (ok_response(content_type="text/html"), "text/html"),
        (_http("200 OK", ["Content-Length: 3"], b"abc"), "Content-Type"),
        (b"SMTP/1.0 200 OK\r\n\r\n", "not an HTTP"),
        (_http("200 OK", ["Content-Type: text/plain", "Content-Length: 100"], b"short"), "closed"),
        (
            _http("200 OK", ["Content-Type: text/plain", "Transfer-Encoding: gzip"], b""),
            "Transfer-Encoding",
        ),
        (
            _http("200 OK", ["Content-Type: text/plain", "Transfer-Encoding: chunked"], b"zz\r\n"),
            "chunk size",
        ),
    ],
)
def test_bad_responses(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer], response: bytes, text: str
) -> None:
    server = serve(pki.good_context(), lambda: response)
    error = _fetch_error(server, trust, now=NOW)
    assert error.result_type == "sts-policy-fetch-error"
    assert text in error.detail


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_too_large(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer], framing: str
) -> None:
    body = POLICY + b"x: " + b"y" * (64 * 1024) + b"\r\n"
    if framing == "length":
        response = ok_response(body)
    elif framing == "chunked":
        chunk = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        response = _http(
            "200 OK", ["Content-Type: text/plain", "Transfer-Encoding: chunked"], chunk
        )
    else:
        response = _http("200 OK", ["Content-Type: text/plain"], body)
    server = serve(pki.good_context(), lambda: response)
    error = _fetch_error(server, trust, now=NOW)
    assert error.result_type == "sts-policy-fetch-error"
    assert "larger than 65536" in error.detail


def test_wrong_host_certificate(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]
) -> None:
    leaf = make_cert("www.example.test", issuer=pki.inter)
    server = serve(pki.server_context(leaf, pki.inter), ok_response)
    error = _fetch_error(server, trust, now=NOW)
    assert error.result_type == "sts-webpki-invalid"
    assert error.verdict is not None and error.verdict.result_type == "certificate-host-mismatch"
    error = _fetch_error(server, trust.client_context())
    assert error.result_type == "sts-webpki-invalid"
    assert server.requests == []


def test_untrusted_ca(pki: Pki, tmp_path: Path, serve: Callable[..., _TlsServer]) -> None:
    server = serve(pki.good_context(), ok_response)
    other = load_trust(
        [_write_chain(tmp_path / "other.pem", make_cert("Other", ca=True))], system=False
    )
    error = _fetch_error(server, other, now=NOW)
    assert error.result_type == "sts-webpki-invalid"
    assert error.verdict is not None and error.verdict.result_type == "certificate-not-trusted"
    error = _fetch_error(server, other.client_context())
    assert error.result_type == "sts-webpki-invalid"
    assert server.requests == []


def test_expired_certificate(pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]) -> None:
    server = serve(pki.good_context(), ok_response)
    error = _fetch_error(server, trust, now=NOW + 365 * DAY)
    assert error.verdict is not None and error.verdict.result_type == "certificate-expired"


def test_missing_intermediate_not_trusted(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]
) -> None:
    leaf = make_cert(HOST, issuer=pki.inter)
    server = serve(pki.server_context(leaf), ok_response)
    error = _fetch_error(server, trust, now=NOW)
    assert error.verdict is not None and error.verdict.result_type == "certificate-not-trusted"


def test_timeout(pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]) -> None:
    server = serve(pki.good_context(), lambda: None)
    start = time.monotonic()
    error = _fetch_error(server, trust, now=NOW, timeout=0.5)
    assert time.monotonic() - start < 3
    assert error.result_type == "sts-policy-fetch-error"
    assert "timeout" in error.detail


def test_slow_tls_handshake_times_out(trust: TrustStore) -> None:
    # A listener that accepts but never speaks TLS.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(PolicyFetchError) as info:
            fetch_policy(
                "example.test", resolver=RESOLVER, trust=trust, port=port, timeout=0.5, now=NOW
            )
        assert time.monotonic() - start < 3
        assert "timeout" in info.value.detail
        conn, _ = listener.accept()
        conn.close()


def test_no_address(trust: TrustStore) -> None:
    with pytest.raises(PolicyFetchError) as info:
        fetch_policy("nowhere.test", resolver=InMemoryResolver({}), trust=trust, now=NOW)
    assert info.value.result_type == "sts-policy-fetch-error"
    assert "no address" in info.value.detail


def test_connection_refused(trust: TrustStore) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    with pytest.raises(PolicyFetchError) as info:
        fetch_policy("example.test", resolver=RESOLVER, trust=trust, port=port, timeout=2, now=NOW)
    assert info.value.result_type == "sts-policy-fetch-error"


def test_fetch_through_real_dns(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]
) -> None:
    from support.dnsserver import DnsTestServer

    from mailactors.net.resolver import DnsResolver

    server = serve(pki.good_context(), ok_response)
    with DnsTestServer(f"{HOST}. A 127.0.0.1") as dns:
        resolver = DnsResolver([dns.nameserver], timeout=2, lifetime=2)
        body = fetch_policy(
            "example.test", resolver=resolver, trust=trust, port=server.server_address[1], now=NOW
        )
    assert body == POLICY


# ---- tlstrust ------------------------------------------------------------------------


def test_load_trust_files(pki: Pki, tmp_path: Path) -> None:
    der = pki.root.der
    (tmp_path / "root.der").write_bytes(der)
    bundle = _write_chain(tmp_path / "bundle.pem", pki.root, pki.inter)
    assert load_ca_file(tmp_path / "root.der") == [der]
    assert load_ca_file(bundle) == [pki.root.der, pki.inter.der]
    store = load_trust([bundle, tmp_path / "root.der"], system=False)
    assert store.anchors_der == (pki.root.der, pki.inter.der)
    assert len(store.anchors.certificates) == 2


@pytest.mark.parametrize(
    "content", [None, b"", b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n", b"junk"]
)
def test_load_trust_bad_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TrustError):
        load_trust([path], system=False)


def test_system_trust_includes_configured(pki: Pki) -> None:
    store = load_trust([pki.root_file])
    assert pki.root.der in store.anchors_der
    ctx = store.client_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert len(ctx.get_ca_certs()) == len(store.anchors_der)


def test_now_defaults_to_current_time(
    pki: Pki, trust: TrustStore, serve: Callable[..., _TlsServer]
) -> None:
    server = serve(pki.good_context(), ok_response)
    assert _fetch(server, trust) == POLICY
