"""The admin pages, MTA-STS policy host and TLS report POST over real sockets.

A server with http and https listeners runs in this process on 127.0.0.1; the
clients are http.client, and mailactors' own MTA-STS policy fetcher.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from browser.websetup import (  # type: ignore[import-not-found]
    ADMIN_PASSWORD,
    DOMAIN,
    WebServer,
    start_web_server,
    web_config,
)
from support.dnsserver import DnsTestServer  # type: ignore[import-not-found]

from mailactors.actors.supervisor import start_server
from mailactors.net.https import fetch_policy
from mailactors.protocol.dns import InMemoryResolver
from mailactors.protocol.mtasts import StsMode, parse_policy
from mailactors.protocol.tlsrpt import (
    FailureDetails,
    Policy,
    PolicyType,
    Report,
    TlsResult,
    report_json,
)
from mailactors.storage.queue import QueueRequest, QueueStore

TIMEOUT = 10


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    with DnsTestServer() as server:
        yield server.nameserver


@pytest.fixture
def web(tmp_path: Path, nameserver: str) -> Iterator[WebServer]:
    server = start_web_server(tmp_path / "web", nameserver)
    try:
        yield server
    finally:
        server.stop()


def http_conn(web: WebServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", web.http_port, timeout=TIMEOUT)


def https_conn(web: WebServer) -> http.client.HTTPSConnection:
    conn = http.client.HTTPSConnection(
        "localhost", web.https_port, timeout=TIMEOUT, context=web.client_context()
    )
    return conn


def origin(web: WebServer) -> str:
    return f"http://127.0.0.1:{web.http_port}"


def login(
    web: WebServer, conn: http.client.HTTPConnection, password: str
) -> http.client.HTTPResponse:
    conn.request(
        "POST",
        "/login",
        body=urlencode({"password": password, "next": "/"}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": origin(web),
        },
    )
    response = conn.getresponse()
    response.read()
    return response


def admin_cookie(web: WebServer, conn: http.client.HTTPConnection) -> str:
    response = login(web, conn, ADMIN_PASSWORD)
    assert response.status == 303
    cookie = response.getheader("Set-Cookie")
    assert cookie is not None
    return cookie.split(";", 1)[0]


def fetch(
    conn: http.client.HTTPConnection, path: str, cookie: str, method: str = "GET"
) -> tuple[int, bytes]:
    conn.request(method, path, headers={"Cookie": cookie})
    response = conn.getresponse()
    return response.status, response.read()


def test_login_pages_and_keep_alive(web: WebServer) -> None:
    conn = http_conn(web)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        assert response.status == 303
        assert response.getheader("Location") == "/login?next=/"
        sock = conn.sock
        assert login(web, conn, "wrong").status == 403
        cookie = admin_cookie(web, conn)
        status, body = fetch(conn, f"/domains/{DOMAIN}/dns", cookie)
        assert status == 200
        assert b"_smtp._tls.localhost" in body
        # Every request so far went over the one connection (keep-alive).
        assert conn.sock is sock
        conn.request("HEAD", "/", headers={"Cookie": cookie})
        head = conn.getresponse()
        assert head.status == 200
        assert int(head.getheader("Content-Length") or 0) > 0
        assert head.read() == b""
        status, body = fetch(conn, "/metrics", cookie)
        assert status == 200 and b"mailactors_sessions" in body
    finally:
        conn.close()


def test_mta_sts_policy_fetched_with_our_fetcher(web: WebServer) -> None:
    resolver = InMemoryResolver({(f"mta-sts.{DOMAIN}", "A"): ["127.0.0.1"]})
    body = fetch_policy(
        DOMAIN, resolver=resolver, trust=web.client_context(), port=web.https_port, timeout=TIMEOUT
    )
    policy = parse_policy(body)
    assert policy.mode is StsMode.ENFORCE
    assert policy.max_age == 86400


def make_report(org: str) -> Report:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    policy = Policy(PolicyType.STS, DOMAIN, ("version: STSv1", "mode: enforce"), (DOMAIN,))
    detail = FailureDetails("sts-webpki-invalid", 3, receiving_mx_hostname="mx.localhost")
    return Report(
        org,
        start,
        start + timedelta(days=1),
        "mailto:tlsrpt@reporter.test",
        "2026-11-23T00:00:00Z_localhost",
        (TlsResult(policy, 97, 3, (detail,)),),
    )


def test_tls_report_posted_over_https_then_listed(web: WebServer) -> None:
    report = make_report("Reporter Org")
    conn = https_conn(web)
    try:
        conn.request(
            "POST",
            "/tlsrpt",
            body=report_json(report),
            headers={"Content-Type": "application/tlsrpt+json"},
        )
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"report stored\n")
        conn.request(
            "POST", "/tlsrpt", body=b"{}", headers={"Content-Type": "application/tlsrpt+json"}
        )
        response = conn.getresponse()
        assert response.status == 400
        response.read()
    finally:
        conn.close()
    admin = http_conn(web)
    try:
        cookie = admin_cookie(web, admin)
        status, listing = fetch(admin, "/tlsrpt/reports", cookie)
        assert status == 200
        assert b"Reporter Org" in listing and b"via https" in listing
        link = re.search(rb'href="(/tlsrpt/reports/\d+)"', listing)
        assert link is not None
        status, detail = fetch(admin, link.group(1).decode(), cookie)
        assert status == 200
        assert b"sts-webpki-invalid" in detail and b"97 successful" in detail
    finally:
        admin.close()


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_limits_and_bad_requests(web: WebServer) -> None:
    too_big = raw_exchange(
        web.http_port,
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
    )
    assert too_big.startswith(b"HTTP/1.1 413 ")
    garbage = raw_exchange(web.http_port, b"HELLO THERE\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.1 400 ")
    # The connection closes after the error answer (raw_exchange read to EOF).
    wrong_method = raw_exchange(
        web.http_port, b"DELETE /tlsrpt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert wrong_method.startswith(b"HTTP/1.1 405 ")


def test_https_without_tls_client_gets_nothing(web: WebServer) -> None:
    answer = raw_exchange(web.https_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not answer.startswith(b"HTTP/")


def test_queue_list_and_drop(tmp_path: Path, nameserver: str) -> None:
    # The queue is written before the server starts: its QueueActor is then the only writer.
    config, cert = web_config(tmp_path / "web", nameserver)
    source = tmp_path / "msg.eml"
    source.write_bytes(b"From: a@localhost\r\nSubject: queued\r\n\r\nhi\r\n")
    store = QueueStore(config.static.data_dir / "queue", logging.getLogger("mailactors.tests"))
    store.init()
    try:
        request = QueueRequest(sender="a@localhost", recipients=("x@example.invalid",))
        message_id = store.enqueue(source, request, int(datetime.now(UTC).timestamp() * 1000))
        ids = [r.id for r in store.recipients(message_id)]
        store.hold(ids)
    finally:
        store.close()
    web = WebServer(config, start_server(config), cert)
    conn = http_conn(web)
    try:
        cookie = admin_cookie(web, conn)
        status, page = fetch(conn, "/queue", cookie)
        assert status == 200
        assert b"x@example.invalid" in page and b"(held)" in page
        token = re.search(rb'name="csrf" value="([^"]+)"', page)
        assert token is not None
        conn.request(
            "POST",
            "/queue",
            body=urlencode({"csrf": token.group(1).decode(), "action": "drop", "id": str(ids[0])}),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": origin(web),
                "Cookie": cookie,
            },
        )
        response = conn.getresponse()
        response.read()
        assert response.status == 303
        assert "1%20recipient%28s%29%20dropped" in (response.getheader("Location") or "")
        status, page = fetch(conn, "/queue", cookie)
        assert b"x@example.invalid" not in page
        assert b"The queue is empty" in page
    finally:
        conn.close()
        web.stop()


def test_self_signed_certificate_refused_by_default_context(web: WebServer) -> None:
    ctx = ssl.create_default_context()
    conn = http.client.HTTPSConnection("localhost", web.https_port, timeout=TIMEOUT, context=ctx)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            conn.request("GET", "/login")
    finally:
        conn.close()


def test_slow_request_gets_408(web: WebServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import mailactors.actors.web as web_actor

    monkeypatch.setattr(web_actor, "HTTP_REQUEST_TIMEOUT", 0.2)
    with socket.create_connection(("127.0.0.1", web.http_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        time.sleep(0.4)
        sock.sendall(b"Host: x\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def test_pipelined_requests_answered_in_order(web: WebServer) -> None:
    answer = raw_exchange(
        web.http_port,
        b"GET /static/style.css HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    statuses = re.findall(rb"^HTTP/1.1 (\d{3}) ", answer, re.MULTILINE)
    assert statuses == [b"200", b"303", b"200"]
