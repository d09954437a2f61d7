"""DKIM signing and verification (RFC 6376, rsa-sha256 per RFC 8301, ed25519-sha256 per RFC 8463).

    pem = generate_private_key("ed25519")          # store it; publish dns_txt_record(key)
    key = load_private_key(pem)
    field = sign(message, domain="example.org", selector="2026a", key=key, now=now)
    results = verify(field + message, resolver, now=now)   # one DkimResult per signature

Modules: tags (tag=value lists), canon (header fields, canonicalization), keys
(signing keys, key records), signature (DKIM-Signature parsing), signer, verifier.
"""

from __future__ import annotations

from mailactors.protocol.dkim.keys import (
    DEFAULT_RSA_BITS,
    MAX_RSA_BITS,
    MIN_RSA_BITS,
    DkimKey,
    DkimKeyError,
    dns_txt_record,
    generate_private_key,
    load_private_key,
)
from mailactors.protocol.dkim.signer import DEFAULT_SIGNED_HEADERS, OVERSIGNED_HEADERS, sign
from mailactors.protocol.dkim.verifier import (
    DEFAULT_MAX_SIGNATURES,
    HEADER_B_CHARS,
    DkimResult,
    DkimStatus,
    verify,
)

__all__ = [
    "DEFAULT_MAX_SIGNATURES",
    "DEFAULT_RSA_BITS",
    "DEFAULT_SIGNED_HEADERS",
    "HEADER_B_CHARS",
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "OVERSIGNED_HEADERS",
    "DkimKey",
    "DkimKeyError",
    "DkimResult",
    "DkimStatus",
    "dns_txt_record",
    "generate_private_key",
    "load_private_key",
    "sign",
    "verify",
]
