"""PKIX verification of a server's certificate chain (RFC 5280, RFC 6125) for SMTP and HTTPS.

The chain is the DER certificates the server sent, leaf first. It is verified
with cryptography's X.509 verifier (the CA/Browser Forum "web PKI" profile)
against trust anchors the caller passes in (system CAs plus configured files,
see mailactors.net.tlstrust), at the time the caller passes in. A failure
becomes one of the RFC 8460 section 4.3.1 result types that TLS reports use.

DANE-TA (RFC 7672 section 3.1.2) verifies against a trust anchor taken from a
TLSA record with the relaxed profile of `verify_to_anchor`.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import DNSName
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

__all__ = [
    "RESULT_CERTIFICATE_EXPIRED",
    "RESULT_HOST_MISMATCH",
    "RESULT_NOT_TRUSTED",
    "RESULT_VALIDATION_FAILURE",
    "PkixVerdict",
    "TrustAnchors",
    "load_chain",
    "verify_pkix",
    "verify_to_anchor",
]

# RFC 8460 section 4.3.1: negotiation failure result types about certificates.
RESULT_CERTIFICATE_EXPIRED = "certificate-expired"
RESULT_HOST_MISMATCH = "certificate-host-mismatch"
RESULT_NOT_TRUSTED = "certificate-not-trusted"
RESULT_VALIDATION_FAILURE = "validation-failure"


@dataclass(frozen=True, slots=True)
class PkixVerdict:
    """Whether a chain verified; when not, the RFC 8460 result type and a detail."""

    ok: bool
    result_type: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """Parsed trust anchor certificates; build once, verify many chains."""

    certificates: tuple[x509.Certificate, ...]
    store: Store | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_der(cls, anchors_der: Sequence[bytes]) -> TrustAnchors:
        """Parse DER certificates; ones that do not parse are skipped."""
        certs = []
        for der in anchors_der:
            # Old system CAs can make cryptography warn (e.g. a zero serial number);
            # whoever trusts them gets them.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                try:
                    certs.append(x509.load_der_x509_certificate(der))
                except ValueError:
                    continue
        return cls(tuple(certs), Store(certs) if certs else None)


def _utc(now: datetime.datetime) -> datetime.datetime:
    return now.replace(tzinfo=datetime.UTC) if now.tzinfo is None else now


def load_chain(chain_der: Sequence[bytes]) -> list[x509.Certificate]:
    """Parse a DER chain; raises ValueError for an empty chain or a malformed certificate."""
    if not chain_der:
        raise ValueError("the server sent no certificate")
    return [x509.load_der_x509_certificate(der) for der in chain_der]


def _classify(
    exc: VerificationError, leaf: x509.Certificate, now: datetime.datetime
) -> PkixVerdict:
    detail = str(exc)
    if leaf.not_valid_after_utc < now:
        return PkixVerdict(
            False,
            RESULT_CERTIFICATE_EXPIRED,
            f"certificate expired {leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z",
        )
    if leaf.not_valid_before_utc > now:
        return PkixVerdict(
            False,
            RESULT_VALIDATION_FAILURE,
            f"certificate not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z",
        )
    # cryptography reports its first failure as text; these phrases name the cause.
    if "no matching subjectAltName" in detail:
        return PkixVerdict(False, RESULT_HOST_MISMATCH, detail)
    if "not valid at validation time" in detail:
        return PkixVerdict(False, RESULT_CERTIFICATE_EXPIRED, detail)
    if "candidates exhausted" in detail:
        return PkixVerdict(False, RESULT_NOT_TRUSTED, detail)
    return PkixVerdict(False, RESULT_VALIDATION_FAILURE, detail)


def _verify(
    chain: Sequence[x509.Certificate],
    host_names: Sequence[str],
    store: Store,
    now: datetime.datetime,
    *,
    relaxed: bool,
) -> PkixVerdict:
    """Verify `chain` for any of `host_names`; the verdict of the first name when none fits."""
    now = _utc(now)
    first: PkixVerdict | None = None
    for name in host_names:
        builder = PolicyBuilder().store(store).time(now)
        if relaxed:
            builder = builder.extension_policies(
                ca_policy=ExtensionPolicy.permit_all().require_present(
                    x509.BasicConstraints, Criticality.AGNOSTIC, None
                ),
                ee_policy=ExtensionPolicy.permit_all().require_present(
                    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
                ),
            )
        try:
            verifier = builder.build_server_verifier(DNSName(name))
        except ValueError as exc:
            verdict = PkixVerdict(False, RESULT_VALIDATION_FAILURE, f"host name {name!r}: {exc}")
        else:
            try:
                verifier.verify(chain[0], list(chain[1:]))
                return PkixVerdict(True)
            except VerificationError as exc:
                verdict = _classify(exc, chain[0], now)
        if first is None or (
            first.result_type == RESULT_HOST_MISMATCH
            and verdict.result_type != RESULT_HOST_MISMATCH
        ):
            # Prefer a failure that is not about the name: it concerns every name.
            first = verdict
    return first or PkixVerdict(False, RESULT_VALIDATION_FAILURE, "no host name to verify")


def verify_pkix(
    chain_der: Sequence[bytes],
    host_name: str,
    trust_anchors: TrustAnchors | Sequence[bytes],
    now: datetime.datetime,
) -> PkixVerdict:
    """Verify a server chain (leaf first) for `host_name` against the trust anchors at `now`.

    RFC 8461 section 4.2 (MTA-STS): the MX certificate "MUST be valid for the MX
    host name ... and chain to a root CA that is trusted by the sending MTA", with
    wildcards matching only the leftmost label (RFC 6125 section 6.4.3).
    """
    anchors = (
        trust_anchors
        if isinstance(trust_anchors, TrustAnchors)
        else TrustAnchors.from_der(trust_anchors)
    )
    try:
        chain = load_chain(chain_der)
    except ValueError as exc:
        return PkixVerdict(False, RESULT_VALIDATION_FAILURE, f"bad certificate: {exc}")
    if anchors.store is None:
        return PkixVerdict(False, RESULT_NOT_TRUSTED, "no trust anchors")
    return _verify(chain, [host_name], anchors.store, now, relaxed=False)


def verify_to_anchor(
    chain: Sequence[x509.Certificate],
    anchor: x509.Certificate,
    host_names: Sequence[str],
    now: datetime.datetime,
) -> PkixVerdict:
    """Verify that the leaf chains to `anchor` and names one of `host_names` (DANE-TA).

    RFC 7672 section 3.1.2: the chain is validated as in RFC 5280 up to the trust
    anchor from the TLSA record, with name checks (section 3.2.2). The web PKI
    extension profile is relaxed: a private CA need not follow the CA/Browser Forum
    rules; CA certificates still need basicConstraints and the leaf a
    subjectAltName, which is where its names are read from.
    """
    return _verify(chain, host_names, Store([anchor]), now, relaxed=True)
