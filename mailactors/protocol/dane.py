"""DANE for SMTP (RFC 7672) with TLSA records (RFC 6698): when it applies and how it verifies.

Theory of operation, per MX host (RFC 7672 section 2):

1. The MX lookup and the host's address lookups must be DNSSEC-authenticated
   (`Answer.authenticated`, the AD bit); otherwise DANE does not apply and the
   delivery uses ordinary opportunistic TLS (or MTA-STS/PKIX).
2. `lookup_tlsa` asks for `_25._tcp.<base domain>` TLSA. The TLSA base domain is
   the CNAME-expanded MX host name when every CNAME in the expansion was secure,
   falling back to the MX host name itself (section 2.2.3).
3. `dane_applicable` turns the answers into a `DaneMode`: a secure, non-empty
   TLSA RRset with usable records makes DANE required (STARTTLS and a matching
   certificate, or the host is skipped); a secure set whose records are all
   unusable still requires TLS, without authentication (sections 2.2 and 3.1.3:
   unusable records authenticate nothing but still announce TLS); a failed
   TLSA lookup in a signed zone is a temporary failure (section 2.2).
4. `verify_dane` checks the server's chain against the usable records: DANE-EE(3)
   matches the leaf only (no name or expiry checks, section 3.1.1); DANE-TA(2)
   matches a certificate of the chain and verifies the leaf up to it, with name
   checks against the TLSA base domain and the MX host name (sections 3.1.2, 3.2).

Verdicts carry the RFC 8460 section 4.3 result types. A DANE host that does not
offer STARTTLS is a starttls-not-supported failure (section 4.3.1); dane-required
(section 4.3.2.1) is for a sender configured to require DANE where the MX host
has no DNSSEC-validated TLSA records.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailactors.protocol.dns import (
    Answer,
    DnsError,
    Resolver,
    TlsaRecord,
    normalize_name,
)
from mailactors.protocol.pkix import (
    RESULT_CERTIFICATE_EXPIRED,
    RESULT_HOST_MISMATCH,
    RESULT_VALIDATION_FAILURE,
    load_chain,
    verify_to_anchor,
)

__all__ = [
    "MAX_CNAME_CHAIN",
    "RESULT_DANE_REQUIRED",
    "RESULT_DNSSEC_INVALID",
    "RESULT_STARTTLS_NOT_SUPPORTED",
    "RESULT_TLSA_INVALID",
    "USAGE_DANE_EE",
    "USAGE_DANE_TA",
    "DaneMode",
    "DaneVerdict",
    "TlsaLookup",
    "dane_applicable",
    "is_usable",
    "lookup_tlsa",
    "record_matches",
    "tlsa_name",
    "verify_dane",
]

# RFC 8460 sections 4.3.1 and 4.3.2.1: result types of DANE failures.
RESULT_STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
RESULT_TLSA_INVALID = "tlsa-invalid"
RESULT_DNSSEC_INVALID = "dnssec-invalid"
RESULT_DANE_REQUIRED = "dane-required"

# RFC 7218 section 2: certificate usages, selectors and matching types by name.
USAGE_PKIX_TA = 0
USAGE_PKIX_EE = 1
USAGE_DANE_TA = 2
USAGE_DANE_EE = 3
SELECTOR_CERT = 0
SELECTOR_SPKI = 1
MTYPE_FULL = 0
MTYPE_SHA256 = 1
MTYPE_SHA512 = 2

# RFC 6698 section 2.1.3: digest lengths of the matching types we know.
_DIGEST_SIZE = {MTYPE_SHA256: 32, MTYPE_SHA512: 64}

# How many CNAMEs we follow to expand an MX host name (RFC 7672 section 2.2.3 sets no
# number; resolvers commonly stop at 8 to 16).
MAX_CNAME_CHAIN = 8

SMTP_PORT = 25


def tlsa_name(base_domain: str, port: int = SMTP_PORT) -> str:
    """The TLSA owner name for a base domain (RFC 6698 section 3; RFC 7672 section 2.2.3)."""
    return f"_{port}._tcp.{normalize_name(base_domain)}"


class DaneMode(Enum):
    """What DANE asks of a delivery attempt to one MX host."""

    # Not applicable: an insecure MX or address lookup, or a secure denial of TLSA
    # records; ordinary opportunistic TLS (or MTA-STS) applies.
    NONE = "none"
    # RFC 7672 section 2.2: usable TLSA records; STARTTLS and a certificate matching
    # them are required, else this host is skipped.
    REQUIRED = "required"
    # RFC 7672 sections 2.2 and 3.1.3: secure TLSA records, none usable:
    # TLS is still mandatory, but unauthenticated.
    ENCRYPT = "encrypt"
    # RFC 7672 section 2.2: the TLSA lookup failed in a signed zone: try later (or the
    # next MX host), never deliver in the clear.
    TEMPFAIL = "tempfail"


@dataclass(frozen=True, slots=True)
class TlsaLookup:
    """The TLSA RRset of an MX host, where it was found, and the names to check."""

    base_domain: str
    # The answer, or the error of the lookup (DnsTemporaryError: SERVFAIL, timeout).
    answer: Answer[TlsaRecord] | DnsError
    # RFC 7672 section 3.2.2: names a DANE-TA certificate may carry: the TLSA base
    # domain and the original MX host name.
    host_names: tuple[str, ...]


def _expand_cname(resolver: Resolver, host: str) -> str | None:
    """The final target of a CNAME chain when every link is secure; None otherwise."""
    name = host
    for _ in range(MAX_CNAME_CHAIN):
        try:
            answer = resolver.cname(name)
        except DnsError:
            return None
        if not answer.records:
            return name
        if not answer.authenticated:
            return None
        name = answer.records[0]
    return None


def lookup_tlsa(resolver: Resolver, mx_host: str, *, port: int = SMTP_PORT) -> TlsaLookup:
    """Look up the TLSA records of an MX host (RFC 7672 section 2.2.3).

    When the MX host name is a CNAME whose expansion is secure, TLSA records are
    first looked up at the fully expanded name, and only when there are none there
    at the original MX host name. A failure of the first lookup is returned as it
    is: falling back past a SERVFAIL would let an attacker pick the weaker set.
    """
    host = normalize_name(mx_host)
    expanded = _expand_cname(resolver, host)
    if expanded is not None and expanded != host:
        try:
            answer = resolver.tlsa(tlsa_name(expanded, port))
        except DnsError as exc:
            return TlsaLookup(expanded, exc, (expanded, host))
        if answer.records or not answer.authenticated:
            return TlsaLookup(expanded, answer, (expanded, host))
    try:
        result: Answer[TlsaRecord] | DnsError = resolver.tlsa(tlsa_name(host, port))
    except DnsError as exc:
        result = exc
    return TlsaLookup(host, result, (host,))


def is_usable(record: TlsaRecord) -> bool:
    """Whether SMTP can use a TLSA record (RFC 7672 section 3.1.3).

    SMTP has no use for PKIX-TA(0) and PKIX-EE(1), which clients may treat as
    unusable, and we do; so are unknown usages, selectors and matching types, and
    digests of the wrong length.
    """
    if record.usage not in (USAGE_DANE_TA, USAGE_DANE_EE):
        return False
    if record.selector not in (SELECTOR_CERT, SELECTOR_SPKI):
        return False
    if record.mtype == MTYPE_FULL:
        return len(record.data) > 0
    return _DIGEST_SIZE.get(record.mtype) == len(record.data)


def dane_applicable(
    mx_authenticated: bool,
    address_authenticated: bool,
    tlsa_answer: Answer[TlsaRecord] | DnsError | None,
) -> DaneMode:
    """Decide what DANE requires for one MX host (RFC 7672 section 2.2).

    `tlsa_answer` is None when the caller did not look TLSA up (because the MX or
    address lookup was insecure).
    """
    # RFC 7672 section 2.2.1/2.2.2: DANE applies only when the MX RRset and the
    # host's address records are DNSSEC-validated.
    if not (mx_authenticated and address_authenticated) or tlsa_answer is None:
        return DaneMode.NONE
    if isinstance(tlsa_answer, DnsError):
        # RFC 7672 section 2.2: when the TLSA lookup fails (SERVFAIL, which is also
        # what a validating resolver answers for bogus data), the client must not
        # fall back to delivery without DANE: this host is tried again later.
        return DaneMode.TEMPFAIL
    # RFC 7672 section 2.2: insecure TLSA records are ignored; a secure denial means
    # no DANE either.
    if not tlsa_answer.authenticated or not tlsa_answer.records:
        return DaneMode.NONE
    if any(is_usable(r) for r in tlsa_answer.records):
        return DaneMode.REQUIRED
    return DaneMode.ENCRYPT


@dataclass(frozen=True, slots=True)
class DaneVerdict:
    ok: bool
    result_type: str | None = None
    matched: TlsaRecord | None = None
    detail: str = ""


def _selected(cert: x509.Certificate, selector: int) -> bytes:
    # RFC 6698 section 2.1.2: 0 = the full DER certificate, 1 = its DER
    # SubjectPublicKeyInfo.
    if selector == SELECTOR_CERT:
        return cert.public_bytes(serialization.Encoding.DER)
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def record_matches(record: TlsaRecord, cert: x509.Certificate) -> bool:
    """Whether one certificate matches a record's selector, matching type and data."""
    data = _selected(cert, record.selector)
    # RFC 6698 section 2.1.3: 0 = exact match, 1 = SHA-256, 2 = SHA-512.
    if record.mtype == MTYPE_SHA256:
        data = hashlib.sha256(data).digest()
    elif record.mtype == MTYPE_SHA512:
        data = hashlib.sha512(data).digest()
    elif record.mtype != MTYPE_FULL:
        return False
    return data == record.data


def verify_dane(
    tlsa: Sequence[TlsaRecord],
    chain_der: Sequence[bytes],
    *,
    host_names: Sequence[str],
    now: datetime.datetime,
) -> DaneVerdict:
    """Verify a server's chain (leaf first) against secure TLSA records.

    `host_names` are the reference identifiers for DANE-TA: the TLSA base domain
    first, then the MX host name (TlsaLookup.host_names).
    """
    usable = [r for r in tlsa if is_usable(r)]
    if not usable:
        # RFC 7672 section 3.1.3: with no usable records there is nothing to
        # authenticate against; TLS reports call this tlsa-invalid.
        return DaneVerdict(False, RESULT_TLSA_INVALID, None, "no usable TLSA records")
    try:
        chain = load_chain(chain_der)
    except ValueError as exc:
        return DaneVerdict(False, RESULT_VALIDATION_FAILURE, None, f"bad certificate: {exc}")
    leaf = chain[0]
    # RFC 7672 section 3.1.1: DANE-EE(3) authenticates the leaf by its key or
    # certificate alone, with no name checks and no check of the validity period.
    for record in usable:
        if record.usage == USAGE_DANE_EE and record_matches(record, leaf):
            return DaneVerdict(True, None, record, "DANE-EE matched the server certificate")
    failure: DaneVerdict | None = None
    for record in usable:
        if record.usage != USAGE_DANE_TA:
            continue
        # RFC 7672 section 3.1.2: servers "MUST include the TA certificate as part of
        # the certificate chain presented in the TLS handshake", so a TA matched by
        # its public key is found in the chain too.
        for anchor in chain:
            if not record_matches(record, anchor):
                continue
            verdict = verify_to_anchor(chain, anchor, host_names, now)
            if verdict.ok:
                return DaneVerdict(True, None, record, "DANE-TA matched and the chain verified")
            specific = verdict.result_type in (RESULT_CERTIFICATE_EXPIRED, RESULT_HOST_MISMATCH)
            if failure is None or (specific and failure.result_type == RESULT_VALIDATION_FAILURE):
                failure = DaneVerdict(False, verdict.result_type, record, verdict.detail)
    if failure is not None:
        return failure
    return DaneVerdict(
        False, RESULT_VALIDATION_FAILURE, None, "no TLSA record matches the server's certificates"
    )
