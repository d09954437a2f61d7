"""WebApp: one HttpRequest in, one HttpResponse out.

Routing is by Host first: "mta-sts.<our domain>" serves only the domain's
MTA-STS policy (RFC 8461 3.3). POST /tlsrpt on any host takes TLS reports
(RFC 8460 3, the "https" rua). /static/ and /login are open; /metrics needs the
admin login or a loopback client; every other path is an admin page behind the
login. Every POST of the admin pages carries the session's CSRF token and must
come from our own origin (Origin, else Referer).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from mailactors import metrics as metrics_module
from mailactors.conf import Config, Domain, names
from mailactors.conf.dnsrecords import mta_sts_policy_text
from mailactors.protocol.http import HttpRequest, HttpResponse
from mailactors.protocol.sasl.scram import ScramCredentials, verify_password
from mailactors.protocol.tlsrpt import MEDIA_TYPE_GZIP, MEDIA_TYPE_JSON, TlsReportError
from mailactors.protocol.tlsrpt import parse_report as parse_tls_report
from mailactors.web import auth, views
from mailactors.web.backend import BackendUnavailable, WebBackend
from mailactors.web.render import render

__all__ = ["MTA_STS_PATH", "RequestContext", "WebApp"]

# RFC 8461 3.3: "https://mta-sts.example.com/.well-known/mta-sts.txt".
MTA_STS_PATH = "/.well-known/mta-sts.txt"
TLSRPT_PATH = "/tlsrpt"
# Form fields we read from one POST; parse_qs raises beyond this.
MAX_FORM_FIELDS = 1000

_HTML = ("Content-Type", "text/html; charset=utf-8")
_TEXT = ("Content-Type", "text/plain; charset=utf-8")
# No scripts, no framing, forms only to ourselves: the pages need nothing else.
_ADMIN_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the connection knows about a request besides its bytes."""

    peer_ip: str
    https: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class _Admin:
    """A logged-in admin request."""

    session: auth.AdminSession
    creds: ScramCredentials
    csrf: str


_ROUTES: list[tuple[str, re.Pattern[str]]] = [
    ("overview", re.compile(r"/")),
    ("dns", re.compile(r"/domains/(?P<domain>[^/]+)/dns")),
    ("dnscheck", re.compile(r"/domains/(?P<domain>[^/]+)/dnscheck")),
    ("dmarc_list", re.compile(r"/dmarc/reports")),
    ("dmarc_detail", re.compile(r"/dmarc/reports/(?P<id>[0-9]{1,18})")),
    ("tlsrpt_list", re.compile(r"/tlsrpt/reports")),
    ("tlsrpt_detail", re.compile(r"/tlsrpt/reports/(?P<id>[0-9]{1,18})")),
    ("tls_results", re.compile(r"/tlsrpt/results")),
    ("queue", re.compile(r"/queue")),
]


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _cookies(request: HttpRequest) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.headers:
        if name != "cookie":
            continue
        for part in value.split(";"):
            key, eq, val = part.strip().partition("=")
            if eq and key not in out:
                out[key] = val.strip('"')
    return out


def _form(request: HttpRequest) -> dict[str, list[str]]:
    ctype = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return {}
    try:
        return parse_qs(
            request.body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        return {}


def _first(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


def text_response(status: int, text: str, *extra: tuple[str, str]) -> HttpResponse:
    return HttpResponse(status, (_TEXT, *extra), text.encode())


def redirect(location: str, *extra: tuple[str, str]) -> HttpResponse:
    # RFC 9110 15.4.4: 303 See Other makes the browser GET the new page after a POST.
    return HttpResponse(303, (("Location", location), *_ADMIN_HEADERS, *extra), b"")


class WebApp:
    """The web pages of one server; shared by its HTTP sessions, holding no mutable state."""

    def __init__(
        self,
        config: Config,
        backend: WebBackend,
        key: bytes,
        log: logging.Logger,
        metrics: metrics_module.Metrics | None = None,
        *,
        admin: bool = True,
    ) -> None:
        self.config = config
        self.backend = backend
        self.key = key
        self.log = log
        self.metrics = metrics or metrics_module.current()
        self.data_dir: Path = config.static.data_dir
        # False on public listeners: only the MTA-STS policy and TLS report POSTs.
        self.admin = admin

    # --- entry ------------------------------------------------------------------------

    def handle(self, request: HttpRequest, ctx: RequestContext) -> HttpResponse:
        """Answer one request; errors of ours become 500 pages (logged)."""
        try:
            response = self._route(request, ctx)
        except Exception:
            self.log.exception("web request failed", extra={"path": request.path})
            response = text_response(500, "internal server error\n")
        return response

    def _route(self, request: HttpRequest, ctx: RequestContext) -> HttpResponse:
        host = request.host.rstrip(".")
        if host.startswith("mta-sts."):
            domain = self._our_domain(host.removeprefix("mta-sts."))
            if domain is not None:
                return self._mta_sts(request, domain)
        if request.path == TLSRPT_PATH:
            return self._tlsrpt_post(request, ctx)
        if not self.admin:
            return text_response(404, "not found\n")
        if not self._admin_host(host):
            # A page of another site whose name now resolves to us (DNS rebinding)
            # must not reach the admin pages.
            return text_response(421, "unknown host name\n")
        if request.path == "/static/style.css":
            return self._static(request)
        if request.path == "/login":
            return self._login(request, ctx)
        admin = self._admin(request, ctx)
        if request.path == "/metrics":
            if admin is None and not _is_loopback(ctx.peer_ip):
                return text_response(403, "metrics: log in as admin or connect from loopback\n")
            return self._metrics(request)
        if admin is None:
            if request.method in ("GET", "HEAD"):
                return redirect("/login?next=" + quote(request.path, safe="/"))
            return text_response(403, "not logged in\n")
        if request.path == "/logout":
            return self._logout(request, ctx, admin)
        for name, pattern in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if name == "queue" and request.method == "POST":
                return self._queue_post(request, ctx, admin)
            if request.method not in ("GET", "HEAD"):
                return self._not_allowed("GET, HEAD")
            return self._page(name, match.groupdict(), request, admin)
        return self._html(404, "error.html", admin, message="No such page.")

    # --- helpers ----------------------------------------------------------------------

    def _admin_host(self, host: str) -> bool:
        """The Host field names this server: an IP address, localhost or our host names."""
        try:
            ipaddress.ip_address(host.strip("[]"))
            return True
        except ValueError:
            pass
        static = self.config.static
        names_ok = {"localhost", static.hostname.lower()}
        names_ok.update(li.hostname.lower() for li in static.listeners.values() if li.hostname)
        return host in names_ok

    def _our_domain(self, name: str) -> Domain | None:
        """The configured domain a host name part means (A-labels match Unicode names)."""
        try:
            key = names.normalize_domain(name)
        except ValueError:
            return None
        return self.config.domains.domains.get(key)

    def _not_allowed(self, allow: str) -> HttpResponse:
        return text_response(405, "method not allowed\n", ("Allow", allow))

    def _html(
        self, status: int, template: str, admin: _Admin | None, **values: object
    ) -> HttpResponse:
        values.setdefault("csrf", admin.csrf if admin else "")
        values.setdefault("logged_in", admin is not None)
        values.setdefault("hostname", self.config.static.hostname)
        body = render(template, values).encode("utf-8")
        return HttpResponse(status, (_HTML, *_ADMIN_HEADERS), body)

    def _same_origin(self, request: HttpRequest, ctx: RequestContext) -> bool:
        """A POST from our own pages: Origin, else Referer, names this scheme and host."""
        scheme = "https" if ctx.https else "http"
        host = (request.header("host") or "").strip().lower()
        if not host:
            return False
        origin = request.header("origin")
        if origin is not None and origin != "null":
            return origin.lower() == f"{scheme}://{host}"
        referer = request.header("referer")
        if referer is None:
            return False
        parts = urlsplit(referer)
        return parts.scheme.lower() == scheme and parts.netloc.lower() == host

    def _admin(self, request: HttpRequest, ctx: RequestContext) -> _Admin | None:
        cookie = _cookies(request).get(auth.SESSION_COOKIE)
        if not cookie:
            return None
        creds = self._credentials()
        if creds is None:
            return None
        session = auth.verify_session_cookie(self.key, creds, cookie, int(ctx.now.timestamp()))
        if session is None:
            return None
        return _Admin(session, creds, auth.csrf_token(self.key, creds, session))

    def _credentials(self) -> ScramCredentials | None:
        try:
            return auth.read_admin_credentials(self.data_dir)
        except (OSError, ValueError) as exc:
            self.log.error("cannot read the admin password file", extra={"err": str(exc)})
            return None

    def _session_cookie(self, value: str, max_age: int, ctx: RequestContext) -> tuple[str, str]:
        attrs = (
            f"{auth.SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
        )
        if ctx.https:
            attrs += "; Secure"
        return ("Set-Cookie", attrs)

    # --- login ------------------------------------------------------------------------

    def _login(self, request: HttpRequest, ctx: RequestContext) -> HttpResponse:
        next_path = _safe_next(_first(parse_qs(request.query), "next"))
        if request.method in ("GET", "HEAD"):
            return self._html(200, "login.html", None, next=next_path, error="")
        if request.method != "POST":
            return self._not_allowed("GET, HEAD, POST")
        if not self._same_origin(request, ctx):
            return text_response(403, "cross-origin form post refused\n")
        form = _form(request)
        next_path = _safe_next(_first(form, "next"))
        creds = self._credentials()
        if creds is None:
            return self._html(
                403,
                "login.html",
                None,
                next=next_path,
                error="No admin password is set: run `mailactors setadminpassword`.",
            )
        if not self.backend.auth_allowed(ctx.peer_ip):
            return self._html(
                429, "login.html", None, next=next_path, error="Too many failed logins, wait."
            )
        if not verify_password(creds, _first(form, "password")):
            self.backend.auth_result(ctx.peer_ip, False)
            self.log.info("admin login failed", extra={"remote": ctx.peer_ip})
            return self._html(403, "login.html", None, next=next_path, error="Wrong password.")
        self.backend.auth_result(ctx.peer_ip, True)
        self.log.info("admin login", extra={"remote": ctx.peer_ip})
        value, _ = auth.new_session_cookie(self.key, creds, int(ctx.now.timestamp()))
        return redirect(next_path, self._session_cookie(value, auth.SESSION_LIFETIME, ctx))

    def _logout(self, request: HttpRequest, ctx: RequestContext, admin: _Admin) -> HttpResponse:
        if request.method != "POST":
            return self._not_allowed("POST")
        refusal = self._check_post(request, ctx, admin)
        if refusal is not None:
            return refusal
        return redirect("/login", self._session_cookie("", 0, ctx))

    def _check_post(
        self, request: HttpRequest, ctx: RequestContext, admin: _Admin
    ) -> HttpResponse | None:
        if not self._same_origin(request, ctx):
            return text_response(403, "cross-origin form post refused\n")
        token = _first(_form(request), "csrf")
        if not auth.verify_csrf_token(self.key, admin.creds, admin.session, token):
            return text_response(403, "missing or wrong CSRF token\n")
        return None

    # --- open endpoints -----------------------------------------------------------------

    def _mta_sts(self, request: HttpRequest, domain: Domain) -> HttpResponse:
        if request.path != MTA_STS_PATH or domain.mta_sts is None:
            return text_response(404, "not found\n")
        if request.method not in ("GET", "HEAD"):
            return self._not_allowed("GET, HEAD")
        policy = domain.mta_sts
        # RFC 8461 3.2: CRLF-separated key/value pairs, one "mx" line per pattern.
        body = mta_sts_policy_text(policy.mode, policy.mx, policy.max_age).encode("ascii")
        # RFC 8461 3.3: "the policy resource ... MUST be served with Content-Type text/plain".
        return HttpResponse(200, (("Content-Type", "text/plain"),), body)

    def _tlsrpt_post(self, request: HttpRequest, ctx: RequestContext) -> HttpResponse:
        if request.method != "POST":
            return self._not_allowed("POST")
        ctype = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
        # RFC 8460 5.4 (the "https" rua): the report is POSTed with one of these types.
        if ctype not in (MEDIA_TYPE_GZIP, MEDIA_TYPE_JSON):
            return text_response(415, f"use {MEDIA_TYPE_GZIP} or {MEDIA_TYPE_JSON}\n")
        try:
            report = parse_tls_report(request.body)
        except TlsReportError as exc:
            return text_response(400, f"unusable TLS report: {exc}\n")
        try:
            stored = self.backend.store_tls_report(report, f"[{ctx.peer_ip}]", ctx.now)
        except BackendUnavailable:
            return text_response(503, "cannot store reports now, try later\n")
        self.log.info(
            "TLS report received over HTTPS",
            extra={"org": report.organization_name, "duplicate": stored is None},
        )
        return text_response(200, "report stored\n" if stored is not None else "already stored\n")

    def _static(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return self._not_allowed("GET, HEAD")
        css = resources.files("mailactors.web").joinpath("static/style.css").read_bytes()
        return HttpResponse(
            200,
            (
                ("Content-Type", "text/css; charset=utf-8"),
                ("Cache-Control", "max-age=3600"),
                ("X-Content-Type-Options", "nosniff"),
            ),
            css,
        )

    def _metrics(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return self._not_allowed("GET, HEAD")
        body = self.metrics.exposition(views.queue_size(self.data_dir, self.log))
        return HttpResponse(
            200,
            (("Content-Type", metrics_module.CONTENT_TYPE), ("Cache-Control", "no-store")),
            body,
        )

    # --- admin pages ------------------------------------------------------------------

    def _page(
        self, name: str, args: dict[str, str], request: HttpRequest, admin: _Admin
    ) -> HttpResponse:
        loaders: dict[str, Callable[[], tuple[str, dict[str, object]] | None]] = {
            "overview": lambda: ("overview.html", views.overview(self.config, self.log)),
            "dns": lambda: _with(views.dns_records(self.config, args["domain"]), "dns.html"),
            "dnscheck": lambda: _with(
                views.dns_check(self.config, args["domain"], self.backend.resolver),
                "dnscheck.html",
            ),
            "dmarc_list": lambda: ("dmarc_list.html", views.dmarc_reports(self.data_dir, self.log)),
            "dmarc_detail": lambda: _with(
                views.dmarc_report(self.data_dir, int(args["id"]), self.log), "dmarc_detail.html"
            ),
            "tlsrpt_list": lambda: (
                "tlsrpt_list.html",
                views.tls_reports(self.data_dir, self.log),
            ),
            "tlsrpt_detail": lambda: _with(
                views.tls_report(self.data_dir, int(args["id"]), self.log), "tlsrpt_detail.html"
            ),
            "tls_results": lambda: ("tls_results.html", views.tls_results(self.data_dir, self.log)),
            "queue": lambda: (
                "queue.html",
                views.queue(self.data_dir, self.log, _first(parse_qs(request.query), "done")),
            ),
        }
        found = loaders[name]()
        if found is None:
            return self._html(404, "error.html", admin, message="Not found.")
        template, values = found
        return self._html(200, template, admin, **values)

    def _queue_post(self, request: HttpRequest, ctx: RequestContext, admin: _Admin) -> HttpResponse:
        refusal = self._check_post(request, ctx, admin)
        if refusal is not None:
            return refusal
        form = _form(request)
        action = _first(form, "action")
        if action not in ("kick", "drop", "kickall"):
            return text_response(400, "unknown queue action\n")
        ids: tuple[int, ...] | None = None
        if action != "kickall":
            try:
                ids = tuple(int(v) for v in form.get("id", []))
            except ValueError:
                return text_response(400, "bad recipient id\n")
            if not ids:
                return text_response(400, "no recipient chosen\n")
        try:
            count = self.backend.queue_control("kick" if action == "kickall" else action, ids)
        except BackendUnavailable:
            return self._html(
                503, "error.html", admin, message="The queue is not running; try again later."
            )
        self.log.info("queue changed from the admin pages", extra={"action": action, "ids": ids})
        verb = "dropped" if action == "drop" else "kicked"
        return redirect(f"/queue?done={quote(f'{count} recipient(s) {verb}')}")


def _with(values: dict[str, object] | None, template: str) -> tuple[str, dict[str, object]] | None:
    return None if values is None else (template, values)


def _safe_next(path: str) -> str:
    """Only local absolute paths: no open redirect through ?next=."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
