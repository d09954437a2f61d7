"""The admin pages in headless Chromium: login, DNS records, a TLS report, the queue."""

from __future__ import annotations

import http.client
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from websetup import (  # type: ignore[import-not-found]
    ADMIN_PASSWORD,
    DOMAIN,
    WebServer,
    start_web_server,
    web_config,
)

from mailactors.actors.supervisor import start_server
from mailactors.protocol.tlsrpt import (
    FailureDetails,
    Policy,
    PolicyType,
    Report,
    TlsResult,
    report_json,
)
from mailactors.storage.queue import QueueRequest, QueueStore


@pytest.fixture
def web(tmp_path: Path, nameserver: str) -> Iterator[WebServer]:
    server = start_web_server(tmp_path / "web", nameserver)
    try:
        yield server
    finally:
        server.stop()


def log_in(page: Page, web: WebServer, password: str = ADMIN_PASSWORD) -> None:
    page.goto(web.base_url + "/")
    expect(page.locator("h1")).to_have_text("Admin login")
    page.fill("#password", password)
    page.click("#login")


def test_login_wrong_password_refused_right_one_accepted(page: Page, web: WebServer) -> None:
    log_in(page, web, "not the password")
    expect(page.locator("#login-error")).to_have_text("Wrong password.")
    assert page.context.cookies() == []
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#login")
    expect(page.locator("h1")).to_have_text("Overview")
    cookie = page.context.cookies()[0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.click("text=Log out")
    expect(page.locator("h1")).to_have_text("Admin login")
    page.goto(web.base_url + "/queue")
    expect(page.locator("h1")).to_have_text("Admin login")


def test_dns_records_page_shows_host_tlsrpt_record(page: Page, web: WebServer) -> None:
    log_in(page, web)
    page.click(f"a[href='/domains/{DOMAIN}/dns']")
    expect(page.locator("h1")).to_have_text(f"DNS records of {DOMAIN}")
    # The domain and the host are both "localhost": the per-host record is the one
    # whose reports go to host_tlsrpt's address.
    row = page.locator("table.records tr", has_text="rua=mailto:tlsrpt@localhost")
    expect(row).to_have_count(1)
    expect(row.locator("td.name")).to_have_text("_smtp._tls.localhost")
    expect(row.locator("td").nth(1)).to_have_text("TXT")


def post_report(web: WebServer) -> None:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    report = Report(
        "Example Reporter <b>Inc</b>",
        start,
        start + timedelta(days=1),
        "mailto:tlsrpt@reporter.test",
        "browser-test-1",
        (
            TlsResult(
                Policy(PolicyType.STS, DOMAIN, ("version: STSv1", "mode: enforce"), (DOMAIN,)),
                120,
                4,
                (FailureDetails("certificate-expired", 4, receiving_mx_hostname="mx.localhost"),),
            ),
            TlsResult(Policy(PolicyType.TLSA, "mx.localhost"), 9, 0),
        ),
    )
    conn = http.client.HTTPSConnection(
        "localhost", web.https_port, timeout=10, context=web.client_context()
    )
    try:
        conn.request(
            "POST",
            "/tlsrpt",
            body=report_json(report),
            headers={"Content-Type": "application/tlsrpt+json"},
        )
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_received_tls_report_detail_shows_policies(page: Page, web: WebServer) -> None:
    post_report(web)
    log_in(page, web)
    page.click("text=TLS reports")
    expect(page.locator("h1")).to_have_text("Received TLS reports")
    page.click("text=Example Reporter <b>Inc</b>")
    expect(page.locator("h1")).to_have_text("TLS report from Example Reporter <b>Inc</b>")
    policies = page.locator("section.policy h2")
    expect(policies).to_have_text(["Policy sts for localhost", "Policy tlsa for mx.localhost"])
    expect(page.locator("section.policy").first).to_contain_text("certificate-expired")
    expect(page.locator("section.policy").first).to_contain_text("120 successful, 4 failed")


def test_queue_kick_and_drop_forms(page: Page, tmp_path: Path, nameserver: str) -> None:
    config, cert = web_config(tmp_path / "web", nameserver)
    source = tmp_path / "msg.eml"
    source.write_bytes(b"From: a@localhost\r\nSubject: queued\r\n\r\nhi\r\n")
    store = QueueStore(config.static.data_dir / "queue", logging.getLogger("mailactors.tests"))
    store.init()
    try:
        request = QueueRequest(
            sender="a@localhost", recipients=("kick@example.invalid", "drop@example.invalid")
        )
        message_id = store.enqueue(source, request, int(datetime.now(UTC).timestamp() * 1000))
        kick_id, drop_id = (r.id for r in store.recipients(message_id))
        store.hold([kick_id, drop_id])
    finally:
        store.close()
    web = WebServer(config, start_server(config), cert)
    try:
        log_in(page, web)
        page.click("nav >> text=Queue")
        expect(page.locator(f"#rcpt-{drop_id} td.address")).to_have_text(
            "drop@example.invalid (held)"
        )
        page.locator(f"#rcpt-{kick_id} button[value=kick]").click()
        expect(page.locator("#queue-done")).to_have_text("1 recipient(s) kicked")
        page.locator(f"#rcpt-{drop_id} button[value=drop]").click()
        expect(page.locator("#queue-done")).to_have_text("1 recipient(s) dropped")
        expect(page.locator(f"#rcpt-{drop_id}")).to_have_count(0)
    finally:
        web.stop()
