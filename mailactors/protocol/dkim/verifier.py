"""Verifying DKIM signatures (RFC 6376 section 6, RFC 8301, RFC 8463).

Theory of operation: every DKIM-Signature field, top to bottom and at most
`max_signatures` of them, gets one `DkimResult`. A field is parsed and checked
without DNS first (syntax, required tags, i= within d=, expiry); then the key
record is looked up once per selector and domain; then the header hash is
checked against b= and, only if that holds, the body hash against bh=, so that
`problem` tells a changed header from a changed body. The canonical body is
computed once per canonicalization and hashed once per (algorithm, l=).

Result statuses are those of RFC 8601 section 2.7.1:
- pass: the signature verified;
- fail: it did not (b= or bh= mismatch), or it cannot be valid: a revoked key,
  rsa-sha1 (RFC 8301 3.1), an RSA key under 1024 bits (RFC 8301 3.2), a body
  shorter than l=;
- permerror: a malformed or unacceptable signature or key record, an expired
  signature, no key record (RFC 6376 6.1.2 "PERMFAIL (no key for signature)");
- temperror: the key lookup failed temporarily.
A key record with t=y marks the signer as testing; RFC 6376 3.6.1 says not to
treat such mail differently from unsigned mail, so `testing` tells the caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from mailactors.protocol.dkim.canon import (
    HeaderField,
    Message,
    canonical_body,
    select_fields,
    split_message,
)
from mailactors.protocol.dkim.keys import (
    MAX_RSA_BITS,
    MIN_RSA_BITS,
    KeyRecord,
    KeyRecordError,
    parse_key_record,
)
from mailactors.protocol.dkim.signature import (
    SUMMARY_CHARS,
    Signature,
    SignatureError,
    SignatureSummary,
    parse_signature,
    parse_tags,
    summarize,
)
from mailactors.protocol.dns import DnsError, DnsPermanentError, DnsTemporaryError, Resolver

# RFC 6376 6.1 lets verifiers limit how many signatures they try, to bound the work one
# message can cause. Fields past the limit get no result.
DEFAULT_MAX_SIGNATURES = 10
# RFC 6008 section 4: header.b carries a prefix of b= (of at least eight characters) that
# tells signatures apart; we report twelve.
HEADER_B_CHARS = 12
SIGNATURE_FIELD = "dkim-signature"


class DkimStatus(StrEnum):
    """RFC 8601 section 2.7.1 result of one signature ("none" is the absence of any).

    verify() does not produce NEUTRAL or POLICY; they are there for the caller's policy.
    """

    PASS = "pass"
    FAIL = "fail"
    NEUTRAL = "neutral"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"
    POLICY = "policy"


@dataclass(frozen=True, slots=True)
class DkimResult:
    """The outcome for one DKIM-Signature field.

    `signature_b` is the start of b= for header.b in Authentication-Results (RFC 6008);
    `problem` says what went wrong (None on pass); `testing` is the key record's t=y.
    """

    status: DkimStatus
    domain: str
    selector: str
    identity: str | None
    algorithm: str
    signature_b: str
    problem: str | None = None
    testing: bool = False


class _Verdict(Exception):
    """Ends the checks of one signature with a status."""

    def __init__(self, status: DkimStatus, problem: str, testing: bool = False) -> None:
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.testing = testing


@dataclass
class _Verification:
    """Per-message state shared by the signatures of one `verify` call."""

    message: Message
    resolver: Resolver
    now: int
    bodies: dict[bool, bytes] = field(default_factory=dict)
    body_hashes: dict[tuple[bool, str, int | None], bytes | None] = field(default_factory=dict)
    keys: dict[str, tuple[KeyRecord, ...] | _Verdict] = field(default_factory=dict)

    def body_hash(self, sig: Signature) -> bytes | None:
        """The hash bh= should hold; None when the body is shorter than l=."""
        key = (sig.body_relaxed, sig.algorithm, sig.length)
        if key not in self.body_hashes:
            body = self.bodies.get(sig.body_relaxed)
            if body is None:
                body = self.bodies[sig.body_relaxed] = canonical_body(
                    self.message.body, sig.body_relaxed
                )
            if sig.length is not None:
                # RFC 6376 3.5 l=: the body length count; only that prefix is hashed.
                if sig.length > len(body):
                    self.body_hashes[key] = None
                    return None
                body = body[: sig.length]
            digest = hashlib.sha1 if sig.algorithm == "rsa-sha1" else hashlib.sha256
            self.body_hashes[key] = digest(body).digest()
        return self.body_hashes[key]

    def key_records(self, sig: Signature) -> tuple[KeyRecord, ...]:
        name = f"{sig.selector}._domainkey.{sig.domain}"
        if name not in self.keys:
            try:
                self.keys[name] = _lookup(self.resolver, name)
            except _Verdict as verdict:
                self.keys[name] = verdict
        found = self.keys[name]
        if isinstance(found, _Verdict):
            raise _Verdict(found.status, found.problem)
        return found


def _may_be_signed(message: bytes) -> bool:
    """Whether the header section mentions DKIM-Signature at all (a cheap pre-check)."""
    ends = [i for i in (message.find(b"\r\n\r\n"), message.find(b"\n\n")) if i >= 0]
    head = message[: min(ends)] if ends else message
    return b"dkim-signature" in head.lower()


def verify(
    message: bytes,
    resolver: Resolver,
    *,
    now: int,
    max_signatures: int = DEFAULT_MAX_SIGNATURES,
) -> tuple[DkimResult, ...]:
    """Verify the DKIM-Signature fields of `message`, top to bottom; () when there are none."""
    if not _may_be_signed(message):
        return ()  # most mail: no need to canonicalize a large body
    parsed = split_message(message)
    state = _Verification(parsed, resolver, now)
    results: list[DkimResult] = []
    for index, header in enumerate(parsed.fields):
        if header.name != SIGNATURE_FIELD:
            continue
        if len(results) >= max_signatures:
            break
        results.append(_verify_field(state, index, header))
    return tuple(results)


def _verify_field(state: _Verification, index: int, header: HeaderField) -> DkimResult:
    summary = SignatureSummary()
    try:
        try:
            tags = parse_tags(header)
            summary = summarize(tags)
            sig = parse_signature(header, tags)
        except SignatureError as exc:
            raise _Verdict(DkimStatus.PERMERROR, str(exc)) from exc
        _check_before_lookup(sig, state.now)
        status, problem, testing = _check_with_key(state, index, sig)
    except _Verdict as verdict:
        status, problem, testing = verdict.status, verdict.problem, verdict.testing
    return DkimResult(
        status=status,
        domain=summary.domain,
        selector=summary.selector,
        identity=summary.identity,
        algorithm=summary.algorithm,
        signature_b=summary.b[:HEADER_B_CHARS],
        problem=None if problem is None else problem[:SUMMARY_CHARS],
        testing=testing,
    )


def _check_before_lookup(sig: Signature, now: int) -> None:
    # RFC 6376 6.1.1: "Verifiers MAY ignore the DKIM-Signature header field and return
    # PERMFAIL (signature expired) if it contains an "x=" tag and the signature has expired."
    if sig.expiration is not None and now > sig.expiration:
        raise _Verdict(DkimStatus.PERMERROR, f"signature expired at x={sig.expiration}")
    # RFC 8301 3.1: "Verifiers MUST NOT consider signatures using SHA-1 to be valid."
    if sig.algorithm == "rsa-sha1":
        raise _Verdict(DkimStatus.FAIL, "rsa-sha1 signatures are not valid (RFC 8301)")


def _lookup(resolver: Resolver, name: str) -> tuple[KeyRecord, ...]:
    """The DKIM key records at `name` (RFC 6376 6.1.2)."""
    try:
        answer = resolver.txt(name)
    except DnsTemporaryError as exc:
        raise _Verdict(DkimStatus.TEMPERROR, f"key lookup: {exc}") from exc
    except DnsPermanentError as exc:
        raise _Verdict(DkimStatus.PERMERROR, f"key lookup: {exc}") from exc
    except DnsError as exc:
        raise _Verdict(DkimStatus.TEMPERROR, f"key lookup: {exc}") from exc
    if not answer.records:
        # 6.1.2: "If the query for the public key fails because the corresponding key
        # record does not exist, the Verifier MUST immediately return PERMFAIL".
        raise _Verdict(DkimStatus.PERMERROR, f"no key record at {name}")
    records: list[KeyRecord] = []
    first_error = ""
    for text in answer.records:
        try:
            records.append(parse_key_record(text))
        except KeyRecordError as exc:
            first_error = first_error or str(exc)
    if not records:
        # 6.1.2: "If the result returned from the query does not adhere to the format
        # defined in this specification, the Verifier MUST ignore the key record and return
        # PERMFAIL (key syntax error)."
        raise _Verdict(DkimStatus.PERMERROR, f"{name}: {first_error}")
    return tuple(records)


def _check_with_key(
    state: _Verification, index: int, sig: Signature
) -> tuple[DkimStatus, str | None, bool]:
    # RFC 6376 6.1.2: with several key records, "the Verifier can choose one of the key
    # records or may cycle through the key records". We take the first that passes.
    first: _Verdict | None = None
    for record in state.key_records(sig):
        try:
            _check_record(state, index, sig, record)
        except _Verdict as verdict:
            first = first or verdict
            continue
        return DkimStatus.PASS, None, record.testing
    assert first is not None  # key_records() returns at least one record
    raise first


def _check_record(state: _Verification, index: int, sig: Signature, record: KeyRecord) -> None:
    testing = record.testing

    def verdict(status: DkimStatus, problem: str) -> _Verdict:
        return _Verdict(status, problem, testing)

    if record.revoked:
        raise verdict(DkimStatus.FAIL, "key revoked (empty p=)")
    # RFC 6376 6.1.2: "If the "h=" tag exists in the public-key record and the hash
    # algorithm implied by the "a=" tag in the DKIM-Signature header field is not included
    # in the contents of the "h=" tag, the Verifier MUST ignore the key record and return
    # PERMFAIL (inappropriate hash algorithm)."
    hash_name = sig.algorithm.split("-", 1)[1]
    if record.hashes is not None and hash_name not in record.hashes:
        raise verdict(DkimStatus.PERMERROR, f"key record h= does not allow {hash_name}")
    # "If the public-key data is not suitable for use with the algorithm and key types
    # defined by the "a=" and "k=" tags ..., the Verifier MUST immediately return PERMFAIL
    # (inappropriate key algorithm)."
    if record.key_type != sig.key_type:
        raise verdict(
            DkimStatus.PERMERROR, f"key record k={record.key_type} does not fit a={sig.algorithm}"
        )
    if not record.allows_email():
        raise verdict(DkimStatus.PERMERROR, "key record s= does not allow email")
    if record.strict_identity and sig.identity_domain != sig.domain:
        raise verdict(DkimStatus.PERMERROR, "key record t=s requires the i= domain to equal d=")
    try:
        public_key = record.public_key()
    except KeyRecordError as exc:
        raise verdict(DkimStatus.PERMERROR, str(exc)) from exc
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise verdict(
                DkimStatus.FAIL, f"RSA key of {public_key.key_size} bits is too weak (RFC 8301)"
            )
        if public_key.key_size > MAX_RSA_BITS:
            raise verdict(
                DkimStatus.PERMERROR, f"RSA key of {public_key.key_size} bits is too large"
            )
    data = header_hash_input(state.message, index, sig)
    if not _signature_holds(public_key, sig, data):
        raise verdict(DkimStatus.FAIL, "signature (b=) did not verify: header fields changed")
    body_hash = state.body_hash(sig)
    if body_hash is None:
        raise verdict(DkimStatus.FAIL, "body is shorter than l=: body changed")
    if body_hash != sig.body_hash:
        raise verdict(DkimStatus.FAIL, "body hash (bh=) did not verify: body changed")


def header_hash_input(message: Message, index: int | None, sig: Signature) -> bytes:
    """The bytes whose hash b= signs (RFC 6376 3.7): the selected fields, canonicalized,
    then this DKIM-Signature field with b= empty and no final CRLF."""
    selected = select_fields(message.fields, sig.signed_fields, exclude=index)
    return b"".join(f.canonical(sig.header_relaxed) for f in selected) + sig.hashed_field()


def _signature_holds(
    public_key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey, sig: Signature, data: bytes
) -> bool:
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(sig.signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            # RFC 8463 3: the Ed25519 signature is over the SHA-256 hash of the data
            # (PureEdDSA of the digest, not Ed25519ph).
            public_key.verify(sig.signature, hashlib.sha256(data).digest())
    except InvalidSignature:
        return False
    return True
