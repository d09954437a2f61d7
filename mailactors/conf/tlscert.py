"""Self-signed TLS certificates, for localserve and quickstart."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailactors.conf.names import domain_to_ascii, normalize_domain

__all__ = ["self_signed_certificate"]


def self_signed_certificate(
    *,
    hostnames: Sequence[str],
    ips: Sequence[str],
    now: datetime.datetime,
    days: int = 3650,
) -> tuple[bytes, bytes]:
    """Return (certificate PEM, private key PEM) for a self-signed ECDSA P-256 server certificate.

    The certificate names every host name and IP in its subjectAltName (RFC 5280
    4.2.1.6; Unicode names as A-labels), allows serverAuth only, and is valid
    from ``now`` (naive means UTC) for ``days`` days. Raises ValueError for an
    invalid host name or IP, or when none is given.
    """
    if not hostnames and not ips:
        raise ValueError("a certificate needs at least one host name or IP address")
    if days < 1:
        raise ValueError("days must be at least 1")
    dns_names = [domain_to_ascii(normalize_domain(name)) for name in hostnames]
    addresses = [ipaddress.ip_address(ip) for ip in ips]
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = dns_names[0] if dns_names else str(addresses[0])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(a) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem
