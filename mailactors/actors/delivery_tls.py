"""TLS for one outgoing SMTP connection: how the server's certificate is checked.

OpenSSL does the handshake without verifying anything; right after it, while
the SMTP session has not yet sent MAIL FROM, `CheckedContext.wrap_socket` runs
our own check on the chain the server sent: PKIX (verify_pkix against the
TrustStore, RFC 8461 section 4.2) or DANE (verify_dane against the TLSA records,
RFC 7672 section 3). The verdict is kept on the context for the TLS report.
When the check is enforced and fails, the connection is closed and the
handshake counts as failed, so not a byte of the message reaches that server
(net/smtpclient treats the raised SSLError as a TLS handshake failure).

RFC 7672 section 3.1.1: DANE-EE authenticates the server by its key alone,
without PKIX, so a DANE connection never asks OpenSSL for a verified chain.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mailactors.net.https import peer_chain_der
from mailactors.net.tlstrust import TrustStore
from mailactors.protocol.dane import verify_dane
from mailactors.protocol.dns import TlsaRecord
from mailactors.protocol.pkix import verify_pkix

__all__ = [
    "CheckedContext",
    "TlsVerdict",
    "TlsVerificationFailed",
    "dane_check",
    "pkix_check",
    "source_ip_for",
]


@dataclass(frozen=True, slots=True)
class TlsVerdict:
    """The outcome of a certificate check; result_type is an RFC 8460 4.3 type on failure."""

    ok: bool
    result_type: str | None = None
    detail: str = ""


Check = Callable[[Sequence[bytes]], TlsVerdict]


class TlsVerificationFailed(ssl.SSLError):
    """An enforced certificate check failed right after the handshake."""


def pkix_check(trust: TrustStore, host: str, now: datetime.datetime) -> Check:
    """Verify the chain for the MX host name against the trust anchors at `now`."""

    def check(chain: Sequence[bytes]) -> TlsVerdict:
        verdict = verify_pkix(chain, host, trust.anchors, now)
        return TlsVerdict(verdict.ok, verdict.result_type, verdict.detail)

    return check


def dane_check(
    records: Sequence[TlsaRecord], host_names: Sequence[str], now: datetime.datetime
) -> Check:
    """Verify the chain against secure TLSA records (RFC 7672 section 3)."""

    def check(chain: Sequence[bytes]) -> TlsVerdict:
        verdict = verify_dane(records, chain, host_names=host_names, now=now)
        return TlsVerdict(verdict.ok, verdict.result_type, verdict.detail)

    return check


class CheckedContext(ssl.SSLContext):
    """A client context that verifies nothing in OpenSSL and runs `check` after the handshake.

    One context per connection: `verdict` and `local_ip` describe that connection.
    """

    check: Check | None
    enforce: bool
    verdict: TlsVerdict | None
    local_ip: str | None

    def __new__(cls, check: Check | None = None, *, enforce: bool = False) -> CheckedContext:
        # ssl.SSLContext is made by __new__ (it has no __init__ of its own).
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, check: Check | None = None, *, enforce: bool = False) -> None:
        self.minimum_version = ssl.TLSVersion.TLSv1_2
        self.check_hostname = False
        self.verify_mode = ssl.CERT_NONE
        self.check = check
        self.enforce = enforce and check is not None
        self.verdict = None
        self.local_ip = None

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        try:
            self.local_ip = str(sock.getsockname()[0])
        except OSError:
            self.local_ip = None
        tls = super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )
        if self.check is None:
            return tls
        try:
            verdict = self.check(peer_chain_der(tls))
        except BaseException:
            tls.close()
            raise
        self.verdict = verdict
        if not verdict.ok and self.enforce:
            tls.close()
            raise TlsVerificationFailed(
                f"certificate refused: {verdict.result_type}: {verdict.detail}"
            )
        return tls


def source_ip_for(ip: str, port: int) -> str | None:
    """The local address the system would use to reach ip (no packet is sent)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((ip, port))
            return str(probe.getsockname()[0])
    except OSError:
        return None
