"""DKIM keys: generating and loading signing keys, and the key record in DNS.

RSA keys are published as the base64 of a DER SubjectPublicKeyInfo (RFC 6376
3.6.1; a bare PKCS#1 RSAPublicKey is accepted too, as some signers publish it),
Ed25519 keys as the base64 of the raw 32-byte public key (RFC 8463 section 4.2).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailactors.protocol.dkim.tags import TagListError, parse_tag_list, split_list

# RFC 8301 3.2: "Signers MUST use RSA keys of at least 1024 bits for all keys." and
# "Verifiers MUST NOT consider signatures using RSA keys of less than 1024 bits as valid".
MIN_RSA_BITS = 1024
# RFC 8301 3.2: verifiers "MUST be able to validate signatures with keys ranging from 1024
# bits to 4096 bits". We go to 8192 and refuse larger keys: their cost is ours to bear.
MAX_RSA_BITS = 8192
DEFAULT_RSA_BITS = 2048
# RFC 8032 5.1.5: an Ed25519 public key is 32 octets.
ED25519_KEY_BYTES = 32

KEY_ALGORITHMS = ("rsa", "ed25519")

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class DkimKeyError(ValueError):
    """A signing key or a published key that cannot be used."""


@dataclass(frozen=True, slots=True, eq=False)
class DkimKey:
    """A private signing key: `algorithm` is "rsa" or "ed25519"."""

    algorithm: str
    private_key: PrivateKey

    @property
    def signature_algorithm(self) -> str:
        """The a= value of signatures made with this key (RFC 8301 3.1, RFC 8463 3)."""
        return f"{self.algorithm}-sha256"

    def public_key_data(self) -> bytes:
        """The public key as it goes into the p= tag, before base64."""
        return _public_key_data(self.private_key.public_key())


def generate_private_key(algorithm: str, *, bits: int = DEFAULT_RSA_BITS) -> bytes:
    """A new private key, "rsa" (`bits`, default 2048) or "ed25519", as PKCS#8 PEM."""
    key: PrivateKey
    if algorithm == "rsa":
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise DkimKeyError(f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    elif algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise DkimKeyError(f"unknown key algorithm {algorithm!r}: use 'rsa' or 'ed25519'")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> DkimKey:
    """Load an unencrypted PEM private key (PKCS#8, or PKCS#1 for RSA)."""
    if not isinstance(pem, bytes) or b"-----BEGIN" not in pem:
        raise DkimKeyError("not a PEM private key (no '-----BEGIN' line)")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as exc:
        raise DkimKeyError(
            "the private key is encrypted; DKIM keys are stored unencrypted"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DkimKeyError(f"cannot read the private key: {exc}") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise DkimKeyError(
                f"RSA key has {key.key_size} bits; RFC 8301 requires at least {MIN_RSA_BITS}"
            )
        if key.key_size > MAX_RSA_BITS:
            raise DkimKeyError(f"RSA key has {key.key_size} bits; at most {MAX_RSA_BITS}")
        return DkimKey("rsa", key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return DkimKey("ed25519", key)
    raise DkimKeyError(f"unsupported key type {type(key).__name__}: DKIM uses rsa or ed25519")


def dns_txt_record(key: DkimKey) -> str:
    """The TXT record to publish at <selector>._domainkey.<domain> (RFC 6376 3.6.1)."""
    data = base64.b64encode(key.public_key_data()).decode("ascii")
    return f"v=DKIM1; k={key.algorithm}; p={data}"


def _public_key_data(public_key: PublicKey) -> bytes:
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class KeyRecordError(ValueError):
    """A TXT record that is not a usable DKIM key record."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A parsed key record (RFC 6376 3.6.1)."""

    key_type: str  # k=, lower case; "rsa" when absent
    hashes: tuple[str, ...] | None  # h=, lower case; None: any
    services: tuple[str, ...]  # s=, lower case; ("*",) when absent
    flags: tuple[str, ...]  # t=, lower case
    key_data: bytes  # p=, decoded; empty: the key is revoked

    @property
    def revoked(self) -> bool:
        # RFC 6376 3.6.1 p=: "An empty value means that this public key has been revoked."
        return not self.key_data

    @property
    def testing(self) -> bool:
        # RFC 6376 3.6.1 t=: "y  This domain is testing DKIM."
        return "y" in self.flags

    @property
    def strict_identity(self) -> bool:
        # RFC 6376 3.6.1 t=: "s  Any DKIM-Signature header fields using the "i=" tag MUST
        # have the same domain value on the right-hand side of the "@" in the "i=" tag and
        # the value of the "d=" tag."
        return "s" in self.flags

    def allows_email(self) -> bool:
        # RFC 6376 3.6.1 s=: "*  matches all service types; email  electronic mail".
        return "*" in self.services or "email" in self.services

    def public_key(self) -> PublicKey:
        """The key of p= for k=; raises KeyRecordError when it does not parse."""
        if self.key_type == "ed25519":
            if len(self.key_data) != ED25519_KEY_BYTES:
                raise KeyRecordError(
                    f"ed25519 key has {len(self.key_data)} bytes, must be {ED25519_KEY_BYTES}"
                )
            try:
                return ed25519.Ed25519PublicKey.from_public_bytes(self.key_data)
            except ValueError as exc:
                raise KeyRecordError("p= is not a valid ed25519 public key") from exc
        if self.key_type != "rsa":
            raise KeyRecordError(f"unknown key type k={self.key_type}")
        try:
            key = serialization.load_der_public_key(self.key_data)
        except (ValueError, UnsupportedAlgorithm):
            key = _load_pkcs1_rsa(self.key_data)
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyRecordError("k=rsa but p= holds another kind of key")
        return key


def _load_pkcs1_rsa(der: bytes) -> PublicKey:
    """A bare PKCS#1 RSAPublicKey, wrapped as PEM since cryptography reads it only so."""
    pem = (
        b"-----BEGIN RSA PUBLIC KEY-----\n"
        + base64.encodebytes(der)
        + b"-----END RSA PUBLIC KEY-----\n"
    )
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyRecordError("p= is not a valid RSA public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyRecordError("p= is not a valid RSA public key")
    return key


def parse_key_record(text: str) -> KeyRecord:
    """Parse one TXT record; raises KeyRecordError."""
    try:
        tags = parse_tag_list(text.encode("utf-8"))
    except TagListError as exc:
        raise KeyRecordError(f"key record syntax: {exc}") from exc
    # RFC 6376 3.6.1 v=: "If specified, this tag MUST be set to "DKIM1" ... This tag MUST be
    # the first tag in the record. Records beginning with a "v=" tag with any other value
    # MUST be discarded."
    if "v" in tags and (next(iter(tags)) != "v" or tags["v"].value != "DKIM1"):
        raise KeyRecordError("key record v= is not DKIM1 as its first tag")
    if "p" not in tags:
        raise KeyRecordError("key record has no p= tag")
    try:
        key_data = base64.b64decode(tags["p"].unfolded(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyRecordError("key record p= is not valid base64") from exc
    hashes = tuple(h.lower() for h in split_list(tags["h"].value)) if "h" in tags else None
    return KeyRecord(
        key_type=tags["k"].value.lower() if "k" in tags else "rsa",
        hashes=hashes,
        services=tuple(s.lower() for s in split_list(tags["s"].value)) if "s" in tags else ("*",),
        flags=tuple(f.lower() for f in split_list(tags["t"].value)) if "t" in tags else (),
        key_data=key_data,
    )
