"""The CAs we trust when delivering mail and fetching MTA-STS policies.

PKIX verification trusts the system's CA certificates plus the PEM files listed
in mailactors.conf `tls: {ca_certs: [...]}` (private CAs; the tests use one).
`load_trust` reads both once into a `TrustStore`, which hands out the same
anchors as DER (for mailactors.protocol.pkix, which verifies at a given time)
and as an ssl.SSLContext (for connections that let OpenSSL verify).
"""

from __future__ import annotations

import os
import re
import ssl
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from mailactors.protocol.pkix import TrustAnchors

__all__ = ["TrustError", "TrustStore", "load_ca_file", "load_trust", "system_ca_certificates"]


class TrustError(Exception):
    """A configured CA file cannot be read or holds no certificate."""


_PEM_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----",
    re.DOTALL,
)


def _parses(der: bytes) -> bool:
    # Some system CAs are old enough to make cryptography warn (e.g. a serial number
    # of zero); they still serve as anchors for those who trust them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            return False
    return True


def _pem_or_der_certificates(data: bytes, source: str) -> list[bytes]:
    """Every certificate of a PEM bundle, or the one certificate of a DER file."""
    if b"-----BEGIN" in data:
        ders = []
        for block in _PEM_BLOCK.findall(data):
            try:
                ders.append(ssl.PEM_cert_to_DER_cert(block.decode("ascii")))
            except (ValueError, UnicodeDecodeError) as exc:
                raise TrustError(f"{source}: bad PEM block: {exc}") from exc
    else:
        ders = [data]
    for der in ders:
        if not _parses(der):
            raise TrustError(f"{source}: not a certificate")
    return ders


def load_ca_file(path: Path) -> list[bytes]:
    """The certificates (DER) of one PEM file (several certificates) or DER file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrustError(f"cannot read CA file {path}: {exc}") from exc
    certs = _pem_or_der_certificates(data, str(path))
    if not certs:
        raise TrustError(f"{path}: no certificate")
    return certs


def _windows_store_certificates() -> list[bytes]:
    enum = getattr(ssl, "enum_certificates", None)
    if enum is None:
        return []
    out = []
    for store in ("ROOT", "CA"):
        for der, encoding, trust in enum(store):
            # trust is True (every purpose) or a set of OIDs.
            server_auth = trust is True or "1.3.6.1.5.5.7.3.1" in trust
            if encoding == "x509_asn" and server_auth:
                out.append(der)
    return out


def _files_of(paths: Iterable[str | None]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        if not name:
            continue
        path = Path(name)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file()))
    return files


def system_ca_certificates() -> list[bytes]:
    """The system's trusted CA certificates as DER, deduplicated.

    Read from OpenSSL's default CA file (SSL_CERT_FILE overrides it) or, failing
    that, the default CA directory; on Windows from the certificate store.
    Unparsable entries are skipped.
    """
    if sys.platform == "win32":
        found = _windows_store_certificates()
    else:
        paths = ssl.get_default_verify_paths()
        cafile = os.environ.get(paths.openssl_cafile_env) or paths.cafile or paths.openssl_cafile
        files = _files_of([cafile])
        if not files:
            capath = os.environ.get(paths.openssl_capath_env) or paths.capath
            files = _files_of([capath])
        found = []
        for path in files:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            blocks = _PEM_BLOCK.findall(data) if b"-----BEGIN" in data else []
            for block in blocks:
                try:
                    der = ssl.PEM_cert_to_DER_cert(block.decode("ascii"))
                except (ValueError, UnicodeDecodeError):
                    continue
                if _parses(der):
                    found.append(der)
    return list(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Trust anchors as DER, with the parsed form verify_pkix uses."""

    anchors_der: tuple[bytes, ...]
    anchors: TrustAnchors

    @classmethod
    def from_der(cls, anchors_der: Sequence[bytes]) -> TrustStore:
        unique = tuple(dict.fromkeys(anchors_der))
        return cls(unique, TrustAnchors.from_der(unique))

    def client_context(self) -> ssl.SSLContext:
        """A TLS client context that verifies peers against exactly these anchors
        (certificate and host name required, TLS 1.2 or newer)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = True
        if self.anchors_der:
            ctx.load_verify_locations(cadata=b"".join(self.anchors_der))
        return ctx


def load_trust(ca_certs: Sequence[Path] = (), *, system: bool = True) -> TrustStore:
    """The system CAs (unless system=False) plus the configured CA files.

    Raises TrustError when a configured file is unreadable or holds no certificate.
    """
    anchors: list[bytes] = system_ca_certificates() if system else []
    for path in ca_certs:
        anchors.extend(load_ca_file(path))
    return TrustStore.from_der(anchors)
