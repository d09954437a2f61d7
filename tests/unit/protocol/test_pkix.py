"""PKIX verification verdicts (RFC 5280, RFC 6125; result types of RFC 8460 4.3.2.1).

The certificate factory here is also used by test_dane.py.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mailactors.protocol.pkix import (
    RESULT_CERTIFICATE_EXPIRED,
    RESULT_HOST_MISMATCH,
    RESULT_NOT_TRUSTED,
    RESULT_VALIDATION_FAILURE,
    TrustAnchors,
    verify_pkix,
)

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def make_cert(
    name: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    sans: tuple[str, ...] | None = None,
    not_before: datetime.datetime = NOW - 30 * DAY,
    not_after: datetime.datetime = NOW + 60 * DAY,
) -> Issued:
    """A CA (ca=True) or a server certificate for `sans` (default: `name`), signed by
    `issuer` or self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer = issuer.key if issuer else key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
    )
    usage = dict.fromkeys(
        [
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **usage),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in (sans or (name,))]),
            critical=False,
        )
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage),
            critical=True,
        )
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    root = make_cert("Test Root", ca=True, not_before=NOW - 400 * DAY, not_after=NOW + 400 * DAY)
    inter = make_cert("Test Intermediate", ca=True, issuer=root)
    return {
        "root": root,
        "inter": inter,
        "leaf": make_cert("mx.example.test", issuer=inter),
        "wild": make_cert("wild", issuer=inter, sans=("*.example.test",)),
        "expired": make_cert(
            "mx.example.test", issuer=inter, not_before=NOW - 90 * DAY, not_after=NOW - DAY
        ),
        "future": make_cert("mx.example.test", issuer=inter, not_before=NOW + DAY),
        "other_root": make_cert("Other Root", ca=True),
        "expired_inter": make_cert(
            "Old Intermediate", ca=True, issuer=root, not_before=NOW - 90 * DAY, not_after=NOW - DAY
        ),
    }


def test_ok_with_intermediate(pki: dict[str, Issued]) -> None:
    chain = [pki["leaf"].der, pki["inter"].der]
    verdict = verify_pkix(chain, "mx.example.test", [pki["root"].der], NOW)
    assert verdict.ok and verdict.result_type is None


def test_ok_with_prebuilt_anchors_and_naive_now(pki: dict[str, Issued]) -> None:
    anchors = TrustAnchors.from_der([b"garbage", pki["other_root"].der, pki["root"].der])
    assert len(anchors.certificates) == 2
    chain = [pki["leaf"].der, pki["inter"].der]
    assert verify_pkix(chain, "MX.example.test", anchors, NOW.replace(tzinfo=None)).ok


@pytest.mark.parametrize(
    ("host", "ok"),
    [("a.example.test", True), ("example.test", False), ("a.b.example.test", False)],
)
def test_wildcard_leftmost_label_only(pki: dict[str, Issued], host: str, ok: bool) -> None:
    verdict = verify_pkix([pki["wild"].der, pki["inter"].der], host, [pki["root"].der], NOW)
    assert verdict.ok is ok
    if not ok:
        assert verdict.result_type == RESULT_HOST_MISMATCH


def test_host_mismatch(pki: dict[str, Issued]) -> None:
    chain = [pki["leaf"].der, pki["inter"].der]
    verdict = verify_pkix(chain, "other.example.test", [pki["root"].der], NOW)
    assert (verdict.ok, verdict.result_type) == (False, RESULT_HOST_MISMATCH)
    assert "subjectAltName" in verdict.detail


def test_not_trusted(pki: dict[str, Issued]) -> None:
    chain = [pki["leaf"].der, pki["inter"].der]
    verdict = verify_pkix(chain, "mx.example.test", [pki["other_root"].der], NOW)
    assert (verdict.ok, verdict.result_type) == (False, RESULT_NOT_TRUSTED)


def test_missing_intermediate_is_not_trusted(pki: dict[str, Issued]) -> None:
    verdict = verify_pkix([pki["leaf"].der], "mx.example.test", [pki["root"].der], NOW)
    assert verdict.result_type == RESULT_NOT_TRUSTED


def test_no_anchors(pki: dict[str, Issued]) -> None:
    verdict = verify_pkix([pki["leaf"].der], "mx.example.test", [], NOW)
    assert verdict.result_type == RESULT_NOT_TRUSTED


def test_self_signed_leaf_not_trusted(pki: dict[str, Issued]) -> None:
    self_signed = make_cert("mx.example.test")
    verdict = verify_pkix([self_signed.der], "mx.example.test", [pki["root"].der], NOW)
    assert verdict.result_type == RESULT_NOT_TRUSTED


def test_expired_leaf(pki: dict[str, Issued]) -> None:
    chain = [pki["expired"].der, pki["inter"].der]
    verdict = verify_pkix(chain, "mx.example.test", [pki["root"].der], NOW)
    assert (verdict.ok, verdict.result_type) == (False, RESULT_CERTIFICATE_EXPIRED)


def test_valid_leaf_expires_later(pki: dict[str, Issued]) -> None:
    chain = [pki["leaf"].der, pki["inter"].der]
    verdict = verify_pkix(chain, "mx.example.test", [pki["root"].der], NOW + 61 * DAY)
    assert verdict.result_type == RESULT_CERTIFICATE_EXPIRED


def test_expired_intermediate(pki: dict[str, Issued]) -> None:
    leaf = make_cert("mx.example.test", issuer=pki["expired_inter"])
    chain = [leaf.der, pki["expired_inter"].der]
    verdict = verify_pkix(chain, "mx.example.test", [pki["root"].der], NOW)
    assert verdict.result_type == RESULT_CERTIFICATE_EXPIRED


def test_not_yet_valid(pki: dict[str, Issued]) -> None:
    chain = [pki["future"].der, pki["inter"].der]
    verdict = verify_pkix(chain, "mx.example.test", [pki["root"].der], NOW)
    assert verdict.result_type == RESULT_VALIDATION_FAILURE
    assert "not valid before" in verdict.detail


@pytest.mark.parametrize("chain", [[], [b"not a certificate"]])
def test_malformed_chain(pki: dict[str, Issued], chain: list[bytes]) -> None:
    verdict = verify_pkix(chain, "mx.example.test", [pki["root"].der], NOW)
    assert (verdict.ok, verdict.result_type) == (False, RESULT_VALIDATION_FAILURE)


def test_invalid_host_name(pki: dict[str, Issued]) -> None:
    chain = [pki["leaf"].der, pki["inter"].der]
    verdict = verify_pkix(chain, "bad name..", [pki["root"].der], NOW)
    assert not verdict.ok
    assert verdict.result_type in (RESULT_VALIDATION_FAILURE, RESULT_HOST_MISMATCH)
