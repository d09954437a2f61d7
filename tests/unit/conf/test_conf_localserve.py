"""localserve configuration texts and self-signed certificates."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from mailactors.conf import Service, SmtpListener, load_config
from mailactors.conf.localserve import localserve_config_texts
from mailactors.conf.tlscert import self_signed_certificate

NOW = datetime.datetime(2026, 11, 24, 17, 0, tzinfo=datetime.UTC)


def write_localserve(directory: Path, ip: str, data_dir: str = "data") -> Path:
    texts = localserve_config_texts(ip=ip, data_dir=data_dir)
    assert set(texts) == {"mailactors.conf", "domains.conf"}
    for name, text in texts.items():
        (directory / name).write_text(text, encoding="utf-8")
    cert, key = self_signed_certificate(hostnames=["localhost"], ips=[ip], now=NOW)
    (directory / "localserve-cert.pem").write_bytes(cert)
    (directory / "localserve-key.pem").write_bytes(key)
    return directory / "mailactors.conf"


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1"])
def test_localserve_round_trip(tmp_path: Path, ip: str) -> None:
    config = load_config(write_localserve(tmp_path, ip))
    static = config.static
    assert static.hostname == "localhost"
    assert static.localserve is True
    assert static.data_dir == (tmp_path / "data").resolve()
    assert (static.postmaster.account, static.postmaster.mailbox) == ("mailactors", "Postmaster")
    assert (
        static.tls_key_certs["localserve"].cert_file == (tmp_path / "localserve-cert.pem").resolve()
    )
    assert (
        static.tls_key_certs["localserve"].key_file == (tmp_path / "localserve-key.pem").resolve()
    )
    (listener,) = static.listeners.values()
    assert listener.name == "local"
    assert listener.ips == (ip,)
    assert listener.tls == "localserve"
    assert listener.smtp == SmtpListener(1025)
    assert listener.submission == SmtpListener(1587)
    assert listener.submissions == SmtpListener(1465)
    assert listener.imap == Service(1143)
    assert listener.imaps == Service(1993)
    assert listener.http == Service(1080)
    assert listener.https == Service(1443)
    assert list(config.domains.domains) == ["localhost"]
    (account,) = config.domains.accounts.values()
    assert account.name == "mailactors"
    assert list(account.destinations) == ["mailactors@localhost"]
    found = config.account_for_address("mailactors@localhost")
    assert found is not None and found[0] is account
    # The certificate and key written next to the config work for a TLS server.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        static.tls_key_certs["localserve"].cert_file, static.tls_key_certs["localserve"].key_file
    )


def test_localserve_data_dir_and_quoting(tmp_path: Path) -> None:
    config = load_config(write_localserve(tmp_path, "127.0.0.1", data_dir="my data: 'x'"))
    assert config.static.data_dir == (tmp_path / "my data: 'x'").resolve()


def test_localserve_invalid_ip() -> None:
    with pytest.raises(ValueError, match="is not an IP address"):
        localserve_config_texts(ip="localhost")


@pytest.mark.parametrize("name", ["mailactors.conf", "domains.conf"])
def test_localserve_every_key_has_a_comment(name: str) -> None:
    lines = [
        line for line in localserve_config_texts(ip="127.0.0.1")[name].splitlines() if line.strip()
    ]
    for previous, line in zip(lines, lines[1:], strict=False):
        if not line.lstrip().startswith("#"):
            assert previous.lstrip().startswith("#"), f"no comment above {line!r}"
    assert lines[0].startswith("#")


def test_self_signed_certificate() -> None:
    cert_pem, key_pem = self_signed_certificate(
        hostnames=["localhost", "bücher.example"], ips=["127.0.0.1", "::1"], now=NOW, days=30
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert cert.public_key() == key.public_key()
    assert cert.issuer == cert.subject
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=30)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "xn--bcher-kva.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    cert.verify_directly_issued_by(cert)


def test_self_signed_certificate_default_days_and_naive_now() -> None:
    cert_pem, _ = self_signed_certificate(
        hostnames=[], ips=["127.0.0.1"], now=NOW.replace(tzinfo=None)
    )
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=3650)


@pytest.mark.parametrize(
    ("hostnames", "ips", "days"),
    [([], [], 1), (["bad name"], [], 1), ([], ["300.1.1.1"], 1), (["localhost"], [], 0)],
)
def test_self_signed_certificate_invalid(hostnames: list[str], ips: list[str], days: int) -> None:
    with pytest.raises(ValueError):
        self_signed_certificate(hostnames=hostnames, ips=ips, now=NOW, days=days)
