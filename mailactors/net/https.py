"""Fetch an MTA-STS policy over HTTPS (RFC 8461 section 3.3), blocking.

`fetch_policy` resolves mta-sts.<domain> through our Resolver, connects to an
address, speaks TLS with SNI and verifies the certificate for that host name
(PKIX, RFC 6125), sends one HTTP/1.1 GET for /.well-known/mta-sts.txt and reads
the answer with a small client of our own: status 200 only, no redirects,
Content-Type text/plain, body at most POLICY_BODY_LIMIT bytes (Content-Length,
chunked or until close), all within one total timeout. Failures raise
PolicyFetchError carrying the RFC 8460 result type: sts-webpki-invalid for
certificate problems, sts-policy-fetch-error for everything else.
"""

from __future__ import annotations

import datetime
import http.client
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass

from mailactors.net.tlstrust import TrustStore
from mailactors.protocol.dns import DnsError, IPAddress, Resolver
from mailactors.protocol.mtasts import (
    POLICY_BODY_LIMIT,
    POLICY_PATH,
    RESULT_POLICY_FETCH_ERROR,
    RESULT_WEBPKI_INVALID,
    policy_host,
)
from mailactors.protocol.pkix import PkixVerdict, verify_pkix

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_HEADER_BYTES",
    "PolicyFetchError",
    "fetch_policy",
    "peer_chain_der",
]

# RFC 8461 section 3.3 leaves the fetch timeout to the sender; one minute for the
# whole fetch (connect, TLS, request and response).
DEFAULT_TIMEOUT = 60.0

# The status line and header fields together; a policy host needs little.
MAX_HEADER_BYTES = 16 * 1024

_RECV_SIZE = 16 * 1024
_USER_AGENT = "mailactors"

# _ssl.ENCODING_DER: the format argument of _ssl.Certificate.public_bytes.
_ENCODING_DER = 2


class PolicyFetchError(Exception):
    """The policy could not be fetched; `result_type` is the RFC 8460 result type."""

    def __init__(self, result_type: str, detail: str, verdict: PkixVerdict | None = None) -> None:
        super().__init__(f"{result_type}: {detail}")
        self.result_type = result_type
        self.detail = detail
        # The PKIX verdict when the certificate failed verification against a TrustStore.
        self.verdict = verdict


def _fetch_error(detail: str) -> PolicyFetchError:
    return PolicyFetchError(RESULT_POLICY_FETCH_ERROR, detail)


def peer_chain_der(sock: ssl.SSLSocket) -> list[bytes]:
    """The certificates the peer sent (DER, leaf first), not verified.

    Python 3.13 has SSLSocket.get_unverified_chain(); older versions have the same
    method on the underlying _ssl object. Without either, only the leaf.
    """
    leaf = sock.getpeercert(binary_form=True)
    get = getattr(sock, "get_unverified_chain", None)
    if get is None:
        get = getattr(getattr(sock, "_sslobj", None), "get_unverified_chain", None)
    chain: list[bytes] = []
    if get is not None:
        for cert in get() or []:
            chain.append(cert if isinstance(cert, bytes) else cert.public_bytes(_ENCODING_DER))
    if leaf and (not chain or chain[0] != leaf):
        chain.insert(0, leaf)
    return chain


@dataclass
class _Reader:
    """Buffered reads from a socket, each bounded by the overall deadline."""

    sock: socket.socket
    deadline: float
    buf: bytearray
    eof: bool = False

    def _fill(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _fetch_error("timeout")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(_RECV_SIZE)
        except TimeoutError:
            raise _fetch_error("timeout") from None
        except OSError as exc:
            raise _fetch_error(f"reading the response: {exc}") from exc
        if not data:
            self.eof = True
        self.buf += data

    def readline(self, limit: int) -> bytes:
        """One line including its LF; PolicyFetchError beyond `limit` bytes or at EOF."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                if end + 1 > limit:
                    raise _fetch_error("response line too long")
                line = bytes(self.buf[: end + 1])
                del self.buf[: end + 1]
                return line
            if len(self.buf) > limit:
                raise _fetch_error("response line too long")
            if self.eof:
                raise _fetch_error("connection closed in the response header")
            self._fill()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if self.eof:
                raise _fetch_error("connection closed before the end of the body")
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_to_eof(self, limit: int) -> bytes:
        while not self.eof:
            if len(self.buf) > limit:
                raise _fetch_error(f"policy larger than {limit} bytes")
            self._fill()
        if len(self.buf) > limit:
            raise _fetch_error(f"policy larger than {limit} bytes")
        data = bytes(self.buf)
        self.buf.clear()
        return data


def _read_headers(reader: _Reader) -> tuple[int, str, dict[str, list[str]]]:
    budget = MAX_HEADER_BYTES
    status_line = reader.readline(budget)
    budget -= len(status_line)
    parts = status_line.rstrip(b"\r\n").split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise _fetch_error(f"not an HTTP/1.x response: {status_line[:80]!r}")
    status = int(parts[1])
    reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
    headers: dict[str, list[str]] = {}
    while True:
        line = reader.readline(budget)
        budget -= len(line)
        line = line.rstrip(b"\r\n")
        if not line:
            return status, reason, headers
        if line[:1] in (b" ", b"\t"):
            # RFC 9112 section 5.2: obs-fold; a client may reject it.
            raise _fetch_error("folded header field in the response")
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise _fetch_error(f"malformed header field {line[:80]!r}")
        headers.setdefault(name.decode("latin-1").lower(), []).append(
            value.strip(b" \t").decode("latin-1")
        )


def _read_chunked(reader: _Reader, limit: int) -> bytes:
    """RFC 9112 section 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF."""
    body = bytearray()
    while True:
        size_line = reader.readline(1024).rstrip(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip(b" \t")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _fetch_error(f"bad chunk size {size_line[:40]!r}") from None
        if size < 0:
            raise _fetch_error("bad chunk size")
        if size == 0:
            # Trailer fields, up to the final empty line.
            budget = MAX_HEADER_BYTES
            while True:
                line = reader.readline(budget)
                budget -= len(line)
                if not line.rstrip(b"\r\n"):
                    return bytes(body)
        if len(body) + size > limit:
            raise _fetch_error(f"policy larger than {limit} bytes")
        body += reader.read_exact(size)
        # The CRLF after chunk-data (a bare LF is tolerated, RFC 9112 section 2.2).
        if reader.readline(2) not in (b"\r\n", b"\n"):
            raise _fetch_error("chunk data not followed by CRLF")


def _read_response(reader: _Reader, limit: int) -> bytes:
    status, reason, headers = _read_headers(reader)
    # RFC 8461 section 3.3: "HTTP 3xx redirects MUST NOT be followed".
    if 300 <= status < 400:
        location = headers.get("location", ["?"])[0]
        raise _fetch_error(f"HTTP {status} redirect to {location} refused (RFC 8461 3.3)")
    # RFC 8461 section 3.3: "policies fetched via HTTPS are only valid if the HTTP
    # response code is 200 (OK)".
    if status != 200:
        raise _fetch_error(f"HTTP {status} {reason}".rstrip())
    # RFC 8461 section 3.3: senders check that the media type is text/plain, so a
    # web server hosting user content cannot be made to serve a policy.
    content_type = headers.get("content-type", [""])[0]
    media_type = content_type.split(";", 1)[0].strip(" \t").lower()
    if media_type != "text/plain":
        raise _fetch_error(f"Content-Type {content_type!r} is not text/plain")
    transfer = [
        c.strip(" \t").lower() for v in headers.get("transfer-encoding", []) for c in v.split(",")
    ]
    if transfer:
        if transfer != ["chunked"]:
            raise _fetch_error(f"unsupported Transfer-Encoding {', '.join(transfer)}")
        return _read_chunked(reader, limit)
    lengths = {v.strip() for v in headers.get("content-length", [])}
    if lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise _fetch_error(f"bad Content-Length {sorted(lengths)}")
        length = int(next(iter(lengths)))
        if length > limit:
            raise _fetch_error(f"policy of {length} bytes is larger than {limit} bytes")
        return reader.read_exact(length)
    return reader.read_to_eof(limit)


def _addresses(resolver: Resolver, host: str) -> list[IPAddress]:
    found: list[IPAddress] = []
    errors: list[str] = []
    for lookup in (resolver.aaaa, resolver.a):
        try:
            found.extend(lookup(host).records)
        except DnsError as exc:
            errors.append(str(exc))
    if not found:
        raise _fetch_error(f"no address for {host}" + (f": {'; '.join(errors)}" if errors else ""))
    return found


def _client_context(trust: ssl.SSLContext | TrustStore) -> ssl.SSLContext:
    if isinstance(trust, ssl.SSLContext):
        return trust
    # We verify the chain ourselves (verify_pkix at the given time), after the handshake.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _connect(
    resolver: Resolver, host: str, port: int, ctx: ssl.SSLContext, deadline: float
) -> ssl.SSLSocket:
    failures: list[str] = []
    for address in _addresses(resolver, host):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            raw = socket.create_connection((str(address), port), timeout=remaining)
        except OSError as exc:
            failures.append(f"{address}: {exc}")
            continue
        try:
            raw.settimeout(max(deadline - time.monotonic(), 0.001))
            return ctx.wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise PolicyFetchError(RESULT_WEBPKI_INVALID, f"{host}: {exc.verify_message}") from exc
        except TimeoutError:
            raw.close()
            raise _fetch_error(f"{address}: timeout in the TLS handshake") from None
        except OSError as exc:
            raw.close()
            failures.append(f"{address}: TLS: {exc}")
    raise _fetch_error("; ".join(failures) or "timeout")


def fetch_policy(
    domain: str,
    *,
    resolver: Resolver,
    trust: ssl.SSLContext | TrustStore,
    port: int = 443,
    timeout: float = DEFAULT_TIMEOUT,
    now: datetime.datetime | None = None,
    limit: int = POLICY_BODY_LIMIT,
) -> bytes:
    """The body of https://mta-sts.<domain>/.well-known/mta-sts.txt.

    With an SSLContext, OpenSSL verifies the certificate (the context must check
    host names). With a TrustStore, the chain is verified by verify_pkix against
    its anchors at `now` (default: the current time), and a failure's
    PolicyFetchError carries the PKIX verdict. Raises PolicyFetchError.
    """
    host = policy_host(domain)
    deadline = time.monotonic() + timeout
    ctx = _client_context(trust)
    sock = _connect(resolver, host, port, ctx, deadline)
    try:
        if isinstance(trust, TrustStore):
            # RFC 8461 section 3.3: the policy host's certificate must be valid for
            # "mta-sts.<domain>" and chain to a trusted root.
            when = now or datetime.datetime.now(datetime.UTC)
            verdict = verify_pkix(peer_chain_der(sock), host, trust.anchors, when)
            if not verdict.ok:
                raise PolicyFetchError(
                    RESULT_WEBPKI_INVALID,
                    f"{host}: {verdict.result_type}: {verdict.detail}",
                    verdict,
                )
        request = (
            f"GET {POLICY_PATH} HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            f"User-Agent: {_USER_AGENT}\r\n"
            "Accept: text/plain\r\n"
            "Connection: close\r\n"
            "\r\n"
        ).encode("ascii")
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.sendall(request)
        except TimeoutError:
            raise _fetch_error("timeout sending the request") from None
        except OSError as exc:
            raise _fetch_error(f"sending the request: {exc}") from exc
        return _read_response(_Reader(sock, deadline, bytearray()), limit)
    finally:
        sock.close()


class ReportPostError(Exception):
    """An https: TLSRPT destination refused or could not take the report."""


def post_report(
    url: str,
    gzip_body: bytes,
    *,
    context: ssl.SSLContext | None = None,
    timeout: float = 60.0,
) -> None:
    """POST a gzipped TLS report to an https: rua (RFC 8460 3: "the report is submitted
    as the body of an HTTP POST request" with Content-Type application/tlsrpt+gzip).

    Any 2xx answer is success; redirects are not followed.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() != "https" or not parsed.hostname:
        raise ReportPostError(f"not an https URL: {url!r}")
    ctx = context or ssl.create_default_context()
    conn = http.client.HTTPSConnection(
        parsed.hostname, parsed.port or 443, timeout=timeout, context=ctx
    )
    try:
        path = parsed.path or "/"
        if parsed.query:
            path += "?" + parsed.query
        conn.request(
            "POST",
            path,
            body=gzip_body,
            headers={"Content-Type": "application/tlsrpt+gzip"},
        )
        response = conn.getresponse()
        response.read(MAX_HEADER_BYTES)
        if not 200 <= response.status < 300:
            raise ReportPostError(f"{url}: HTTP {response.status} {response.reason}")
    except (OSError, http.client.HTTPException) as exc:
        raise ReportPostError(f"{url}: {exc}") from exc
    finally:
        conn.close()
