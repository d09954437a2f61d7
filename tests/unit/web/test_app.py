"""WebApp routing, login, CSRF and Origin checks, escaping, MTA-STS and TLS report POST.

The app runs against a fake backend (no actors); pages read real databases that the
tests write with the stores' writer classes.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from browser.websetup import ADMIN_PASSWORD, web_config  # type: ignore[import-not-found]
from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.conf import Config
from mailactors.protocol.dns import InMemoryResolver, Resolver
from mailactors.protocol.http import HttpRequest, HttpResponse
from mailactors.protocol.tlsrpt import (
    FailureDetails,
    Policy,
    PolicyType,
    Report,
    TlsResult,
    report_json,
)
from mailactors.storage.tlsrptdb import ReceivedTlsReportStore
from mailactors.web.app import RequestContext, WebApp
from mailactors.web.backend import BackendUnavailable

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LOCAL = RequestContext("127.0.0.1", False, NOW)
REMOTE = RequestContext("192.0.2.7", True, NOW)
ORIGIN = "http://localhost"


@dataclass
class FakeBackend:
    allowed: bool = True
    auth_results: list[tuple[str, bool]] = field(default_factory=list)
    queue_calls: list[tuple[str, tuple[int, ...] | None]] = field(default_factory=list)
    queue_up: bool = True
    reports: list[tuple[Report, str]] = field(default_factory=list)
    _resolver: InMemoryResolver = field(default_factory=lambda: InMemoryResolver({}))

    def auth_allowed(self, ip: str) -> bool:
        return self.allowed

    def auth_result(self, ip: str, success: bool) -> None:
        self.auth_results.append((ip, success))

    def queue_control(self, action: str, ids: tuple[int, ...] | None) -> Any:
        if not self.queue_up:
            raise BackendUnavailable("queue")
        self.queue_calls.append((action, ids))
        return len(ids or ()) or 3

    def store_tls_report(self, report: Report, from_addr: str, received_at: datetime) -> int | None:
        if any(r.report_id == report.report_id for r, _ in self.reports):
            return None
        self.reports.append((report, from_addr))
        return len(self.reports)

    @property
    def resolver(self) -> Resolver:
        return self._resolver


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    config, _ = web_config(tmp_path_factory.mktemp("web"), "127.0.0.1:53")
    return config


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def app(config: Config, backend: FakeBackend) -> WebApp:
    return WebApp(config, backend, b"K" * 32, logging.getLogger("mailactors.tests.web"))


def req(
    method: str,
    target: str,
    *,
    host: str = "localhost",
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> HttpRequest:
    path, _, query = target.partition("?")
    return HttpRequest(method, target, path, query, (("host", host), *headers), body)


def form(method: str, target: str, fields: dict[str, str], *extra: tuple[str, str]) -> HttpRequest:
    return req(
        method,
        target,
        headers=(("content-type", "application/x-www-form-urlencoded"), *extra),
        body=urlencode(fields).encode(),
    )


def login(app: WebApp, ctx: RequestContext = LOCAL) -> str:
    """The cookie header value of a fresh admin session."""
    r = app.handle(
        form("POST", "/login", {"password": ADMIN_PASSWORD, "next": "/queue"}, ("origin", ORIGIN)),
        ctx,
    )
    assert r.status == 303, r.body
    assert r.header("location") == "/queue"
    cookie = r.header("set-cookie")
    assert cookie is not None
    return cookie.split(";", 1)[0]


def get(
    app: WebApp, target: str, cookie: str | None = None, ctx: RequestContext = LOCAL
) -> HttpResponse:
    headers = (("cookie", cookie),) if cookie else ()
    return app.handle(req("GET", target, headers=headers), ctx)


def csrf_of(page: HttpResponse) -> str:
    found = re.search(rb'name="csrf" value="([^"]+)"', page.body)
    assert found is not None
    return found.group(1).decode()


# --- login ------------------------------------------------------------------------------


def test_pages_redirect_to_login(app: WebApp) -> None:
    r = get(app, "/tlsrpt/reports")
    assert r.status == 303
    assert r.header("location") == "/login?next=/tlsrpt/reports"
    assert get(app, "/login").status == 200


def test_wrong_password_refused_and_counted(app: WebApp, backend: FakeBackend) -> None:
    r = app.handle(form("POST", "/login", {"password": "nope"}, ("origin", ORIGIN)), LOCAL)
    assert r.status == 403
    assert b"Wrong password" in r.body
    assert r.header("set-cookie") is None
    assert backend.auth_results == [("127.0.0.1", False)]


def test_rate_limited_login_not_checked(app: WebApp, backend: FakeBackend) -> None:
    backend.allowed = False
    r = app.handle(form("POST", "/login", {"password": ADMIN_PASSWORD}, ("origin", ORIGIN)), LOCAL)
    assert r.status == 429
    assert r.header("set-cookie") is None


def test_login_cookie_attributes(app: WebApp, backend: FakeBackend) -> None:
    r = app.handle(
        form("POST", "/login", {"password": ADMIN_PASSWORD}, ("origin", "https://localhost")),
        REMOTE,
    )
    cookie = r.header("set-cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    assert backend.auth_results == [("192.0.2.7", True)]
    # Over plain http the cookie cannot be Secure (the browser would drop it).
    assert "Secure" not in (
        app.handle(
            form("POST", "/login", {"password": ADMIN_PASSWORD}, ("origin", ORIGIN)), LOCAL
        ).header("set-cookie")
        or "Secure"
    )


def test_login_post_needs_same_origin(app: WebApp) -> None:
    fields = {"password": ADMIN_PASSWORD}
    assert app.handle(form("POST", "/login", fields), LOCAL).status == 403
    evil = form("POST", "/login", fields, ("origin", "http://evil.test"))
    assert app.handle(evil, LOCAL).status == 403
    by_referer = form("POST", "/login", fields, ("referer", f"{ORIGIN}/login"))
    assert app.handle(by_referer, LOCAL).status == 303


def test_open_redirect_refused(app: WebApp) -> None:
    r = app.handle(
        form(
            "POST",
            "/login",
            {"password": ADMIN_PASSWORD, "next": "//evil.test/x"},
            ("origin", ORIGIN),
        ),
        LOCAL,
    )
    assert r.header("location") == "/"


def test_session_cookie_works_and_expires(app: WebApp, config: Config) -> None:
    cookie = login(app)
    assert get(app, "/", cookie).status == 200
    later = RequestContext("127.0.0.1", False, NOW + timedelta(days=1))
    assert get(app, "/", cookie, later).status == 303
    assert get(app, "/", cookie.replace("v1.", "v1.9")).status == 303


def test_logout_needs_csrf_and_clears_cookie(app: WebApp) -> None:
    cookie = login(app)
    page = get(app, "/", cookie)
    token = csrf_of(page)
    bad = form("POST", "/logout", {"csrf": "x"}, ("cookie", cookie), ("origin", ORIGIN))
    assert app.handle(bad, LOCAL).status == 403
    good = form("POST", "/logout", {"csrf": token}, ("cookie", cookie), ("origin", ORIGIN))
    r = app.handle(good, LOCAL)
    assert r.status == 303
    assert "Max-Age=0" in (r.header("set-cookie") or "")


# --- admin pages ------------------------------------------------------------------------


def test_overview_and_security_headers(app: WebApp) -> None:
    r = get(app, "/", login(app))
    assert r.status == 200
    assert b"localhost" in r.body
    csp = r.header("content-security-policy") or ""
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert r.header("x-frame-options") == "DENY"


def test_dns_page_shows_per_host_tlsrpt_record(app: WebApp) -> None:
    r = get(app, "/domains/localhost/dns", login(app))
    assert r.status == 200
    assert b"_smtp._tls.localhost" in r.body
    assert b"v=TLSRPTv1; rua=mailto:tlsrpt@localhost" in r.body
    assert get(app, "/domains/unknown.example/dns", login(app)).status == 404


def test_dnscheck_page_reports_missing(app: WebApp) -> None:
    r = get(app, "/domains/localhost/dnscheck", login(app))
    assert r.status == 200
    assert b"missing" in r.body


def test_unknown_page_and_method(app: WebApp) -> None:
    cookie = login(app)
    assert get(app, "/nope", cookie).status == 404
    r = app.handle(req("DELETE", "/", headers=(("cookie", cookie),)), LOCAL)
    assert r.status == 405
    assert r.header("allow") == "GET, HEAD"
    assert app.handle(req("PUT", "/login"), LOCAL).status == 405


def test_empty_databases_read_as_empty(app: WebApp) -> None:
    cookie = login(app)
    for page in ("/dmarc/reports", "/tlsrpt/reports", "/tlsrpt/results", "/queue"):
        assert get(app, page, cookie).status == 200, page
    assert get(app, "/tlsrpt/reports/1", cookie).status == 404
    assert get(app, "/dmarc/reports/1", cookie).status == 404


def make_report(org: str, report_id: str = "r1") -> Report:
    start = datetime(2026, 11, 23, tzinfo=UTC)
    policy = Policy(
        PolicyType.STS, "localhost", ("version: STSv1", "mode: enforce"), ("localhost",)
    )
    detail = FailureDetails(
        "certificate-expired", 2, receiving_mx_hostname="mx.localhost", receiving_ip="192.0.2.1"
    )
    return Report(
        org,
        start,
        start + timedelta(days=1),
        "mailto:tls@reporter.test",
        report_id,
        (TlsResult(policy, 40, 2, (detail,)),),
    )


@pytest.fixture
def stored_report(config: Config) -> Iterator[int]:
    path = config.static.data_dir / "tlsrpt.db"
    store = ReceivedTlsReportStore(path)
    store.init()
    try:
        row = store.add(
            make_report(
                "<script>alert(1)</script> Org", report_id=f"r-{NOW.timestamp()}-{id(path)}"
            ),
            from_addr="reports@reporter.test",
            received_at=NOW,
            via="mail",
        )
    finally:
        store.close()
    assert row is not None
    yield row
    store = ReceivedTlsReportStore(path)
    store.init()
    try:
        store.remove(row)
    finally:
        store.close()


def test_tls_report_pages_escape_markup(app: WebApp, stored_report: int) -> None:
    cookie = login(app)
    listing = get(app, "/tlsrpt/reports", cookie)
    assert listing.status == 200
    assert b"<script>" not in listing.body
    assert b"&lt;script&gt;alert(1)&lt;/script&gt; Org" in listing.body
    assert b"2026-11-23" in listing.body  # totals per day
    detail = get(app, f"/tlsrpt/reports/{stored_report}", cookie)
    assert detail.status == 200
    assert b"<script>" not in detail.body
    assert b"certificate-expired" in detail.body and b"mx.localhost" in detail.body
    assert b"Policy sts for localhost" in detail.body


# --- queue ------------------------------------------------------------------------------


def test_queue_post_needs_csrf_and_origin(app: WebApp, backend: FakeBackend) -> None:
    cookie = login(app)
    token = csrf_of(get(app, "/", cookie))
    base = {"action": "drop", "id": "5"}
    no_token = form("POST", "/queue", base, ("cookie", cookie), ("origin", ORIGIN))
    assert app.handle(no_token, LOCAL).status == 403
    cross = form(
        "POST", "/queue", {**base, "csrf": token}, ("cookie", cookie), ("origin", "http://x")
    )
    assert app.handle(cross, LOCAL).status == 403
    no_cookie = form("POST", "/queue", {**base, "csrf": token}, ("origin", ORIGIN))
    assert app.handle(no_cookie, LOCAL).status == 403
    assert backend.queue_calls == []
    ok = form("POST", "/queue", {**base, "csrf": token}, ("cookie", cookie), ("origin", ORIGIN))
    r = app.handle(ok, LOCAL)
    assert r.status == 303
    assert (r.header("location") or "").startswith("/queue?done=")
    assert backend.queue_calls == [("drop", (5,))]
    kickall = form(
        "POST",
        "/queue",
        {"action": "kickall", "csrf": token},
        ("cookie", cookie),
        ("origin", ORIGIN),
    )
    assert app.handle(kickall, LOCAL).status == 303
    assert backend.queue_calls[-1] == ("kick", None)


def test_queue_down_is_503(app: WebApp, backend: FakeBackend) -> None:
    backend.queue_up = False
    cookie = login(app)
    token = csrf_of(get(app, "/", cookie))
    r = app.handle(
        form(
            "POST",
            "/queue",
            {"action": "kick", "id": "1", "csrf": token},
            ("cookie", cookie),
            ("origin", ORIGIN),
        ),
        LOCAL,
    )
    assert r.status == 503


# --- MTA-STS, TLS reports, metrics, static ---------------------------------------------


def test_mta_sts_policy_served_for_our_domain(app: WebApp) -> None:
    r = app.handle(req("GET", "/.well-known/mta-sts.txt", host="MTA-STS.localhost:443"), REMOTE)
    assert r.status == 200
    assert r.header("content-type") == "text/plain"
    assert r.body == b"version: STSv1\r\nmode: enforce\r\nmx: localhost\r\nmax_age: 86400\r\n"
    assert app.handle(req("GET", "/other", host="mta-sts.localhost"), REMOTE).status == 404
    assert (
        app.handle(req("POST", "/.well-known/mta-sts.txt", host="mta-sts.localhost"), REMOTE).status
        == 405
    )
    # Another host name gets no policy, and no admin pages either.
    other = req("GET", "/.well-known/mta-sts.txt", host="mta-sts.other.test")
    assert app.handle(other, REMOTE).status == 421


def post_report(app: WebApp, body: bytes, ctype: str) -> HttpResponse:
    return app.handle(
        req("POST", "/tlsrpt", host="any.test", headers=(("content-type", ctype),), body=body),
        REMOTE,
    )


def test_tls_report_post_json_and_gzip(app: WebApp, backend: FakeBackend) -> None:
    report = make_report("Reporter Inc.", "abc")
    r = post_report(app, report_json(report), "application/tlsrpt+json")
    assert r.status == 200 and r.body == b"report stored\n"
    assert backend.reports[0][0] == report
    assert backend.reports[0][1] == "[192.0.2.7]"
    again = post_report(app, gzip.compress(report_json(report)), "application/tlsrpt+gzip")
    assert again.status == 200 and again.body == b"already stored\n"


def test_tls_report_post_refusals(app: WebApp, backend: FakeBackend) -> None:
    assert post_report(app, b"{}", "application/json").status == 415
    assert post_report(app, b"{not json", "application/tlsrpt+json").status == 400
    assert app.handle(req("GET", "/tlsrpt"), REMOTE).status == 405
    backend.store_tls_report = lambda *a: (_ for _ in ()).throw(BackendUnavailable("x"))  # type: ignore[method-assign]
    r = post_report(app, report_json(make_report("X", "y")), "application/tlsrpt+json")
    assert r.status == 503


def test_metrics_loopback_or_admin(app: WebApp) -> None:
    r = get(app, "/metrics")
    assert r.status == 200
    assert b"mailactors_queue_messages 0.0" in r.body
    assert (
        b"mailactors_messages_received_total" in r.body
        or b"# TYPE mailactors_messages_received_total counter" in r.body
    )
    assert get(app, "/metrics", ctx=REMOTE).status == 403
    remote_login = RequestContext("192.0.2.7", False, NOW)
    assert get(app, "/metrics", login(app, remote_login), remote_login).status == 200


def test_static_css_open(app: WebApp) -> None:
    r = get(app, "/static/style.css")
    assert r.status == 200
    assert r.header("content-type") == "text/css; charset=utf-8"
    assert b"body" in r.body


def test_no_admin_password_means_no_login(
    tmp_path: Path, config: Config, backend: FakeBackend
) -> None:
    import dataclasses

    empty = dataclasses.replace(
        config, static=dataclasses.replace(config.static, data_dir=tmp_path)
    )
    app = WebApp(empty, backend, b"K" * 32, logging.getLogger("t"))
    r = app.handle(form("POST", "/login", {"password": ADMIN_PASSWORD}, ("origin", ORIGIN)), LOCAL)
    assert r.status == 403
    assert b"setadminpassword" in r.body


def test_pages_over_generated_data(tmp_path: Path, config: Config, backend: FakeBackend) -> None:
    """Every list and detail page renders the databases gentestdata writes."""
    import dataclasses

    from mailactors.storage.gentestdata import generate_dmarc, generate_queue, generate_tls

    log = logging.getLogger("mailactors.tests.web")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    generate_dmarc(data_dir, log)
    generate_tls(data_dir, log)
    generate_queue(data_dir, log)
    (data_dir / "adminpasswd").write_bytes((config.static.data_dir / "adminpasswd").read_bytes())
    static = dataclasses.replace(config.static, data_dir=data_dir)
    app = WebApp(dataclasses.replace(config, static=static), backend, b"K" * 32, log)
    cookie = login(app)
    dmarc = get(app, "/dmarc/reports", cookie)
    assert dmarc.status == 200 and b"gentestdata" not in dmarc.body.split(b"<h2>Reports")[0]
    link = re.search(rb'href="(/dmarc/reports/\d+)"', dmarc.body)
    assert link is not None
    detail = get(app, link.group(1).decode(), cookie)
    assert detail.status == 200 and b"gentestdata-1" in detail.body
    tls = get(app, "/tlsrpt/reports", cookie)
    link = re.search(rb'href="(/tlsrpt/reports/\d+)"', tls.body)
    assert link is not None
    assert b"gentestdata-tls-1" in get(app, link.group(1).decode(), cookie).body
    results = get(app, "/tlsrpt/results", cookie)
    assert results.status == 200 and b"No results collected" not in results.body
    queue = get(app, "/queue", cookie)
    assert queue.status == 200 and b"The queue is empty" not in queue.body
    overview = get(app, "/", cookie)
    assert b"message(s) in the queue" in overview.body and b">0 message(s)" not in overview.body
    metrics = get(app, "/metrics")
    assert re.search(rb"mailactors_queue_messages [1-9]", metrics.body)


def test_public_listener_serves_no_admin_pages(config: Config, backend: FakeBackend) -> None:
    from mailactors.actors.web import serves_admin

    assert serves_admin(["127.0.0.1", "::1"])
    assert not serves_admin(["127.0.0.1", "0.0.0.0"])
    assert not serves_admin(["192.0.2.1"])
    assert not serves_admin([])
    public = WebApp(config, backend, b"K" * 32, logging.getLogger("t"), admin=False)
    for target in ("/", "/login", "/metrics", "/static/style.css", "/queue"):
        assert get(public, target).status == 404, target
    policy = public.handle(req("GET", "/.well-known/mta-sts.txt", host="mta-sts.localhost"), REMOTE)
    assert policy.status == 200
    posted = public.handle(
        req(
            "POST",
            "/tlsrpt",
            headers=(("content-type", "application/tlsrpt+json"),),
            body=report_json(make_report("Public", "p1")),
        ),
        REMOTE,
    )
    assert posted.status == 200


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
    path=st.one_of(
        st.sampled_from(
            [
                "/",
                "/login",
                "/logout",
                "/queue",
                "/tlsrpt",
                "/metrics",
                "/dmarc/reports/1",
                "/tlsrpt/reports/99",
                "/domains/localhost/dns",
                "/.well-known/mta-sts.txt",
            ]
        ),
        st.text(min_size=1, max_size=40).map(lambda t: "/" + t),
    ),
    host=st.sampled_from(
        ["localhost", "evil.test", "mta-sts.localhost", "mta-sts.", "", "mta-sts.xn--"]
    ),
    ctype=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/tlsrpt+json",
            "application/tlsrpt+gzip",
            "",
        ]
    ),
    body=st.binary(max_size=300),
    cookie=st.text(max_size=60),
)
def test_any_request_gets_a_deliberate_answer(
    config: Config, method: str, path: str, host: str, ctype: str, body: bytes, cookie: str
) -> None:
    app = WebApp(config, FakeBackend(), b"K" * 32, logging.getLogger("t"))
    headers = (("content-type", ctype), ("cookie", cookie), ("origin", "http://localhost"))
    request = HttpRequest(method, path, path, "", (("host", host), *headers), body)
    response = app.handle(request, LOCAL)
    assert response.status in (200, 303, 400, 403, 404, 405, 415, 421, 429, 503)


def test_admin_pages_only_under_our_host_names(app: WebApp) -> None:
    cookie = login(app)
    for host in ("localhost", "127.0.0.1:8080", "[::1]:1080", "LOCALHOST."):
        assert (
            app.handle(req("GET", "/", host=host, headers=(("cookie", cookie),)), LOCAL).status
            == 200
        )
    # DNS rebinding: another site's name resolving to us.
    rebound = req("GET", "/", host="attacker.example:1080", headers=(("cookie", cookie),))
    assert app.handle(rebound, LOCAL).status == 421
    assert app.handle(req("GET", "/login", host="attacker.example"), LOCAL).status == 421


def test_bug_in_a_page_is_a_500_not_a_crash(app: WebApp, backend: FakeBackend) -> None:
    def broken(action: str, ids: tuple[int, ...] | None) -> int:
        raise RuntimeError("bug")

    backend.queue_control = broken  # type: ignore[method-assign]
    cookie = login(app)
    token = csrf_of(get(app, "/", cookie))
    fields = {"action": "kick", "id": "1", "csrf": token}
    r = app.handle(form("POST", "/queue", fields, ("cookie", cookie), ("origin", ORIGIN)), LOCAL)
    assert r.status == 500
    assert b"bug" not in r.body
