"""DKIM building blocks: tag=value lists, header/body canonicalization, keys and key records."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mailactors.protocol.dkim import (
    DkimKeyError,
    dns_txt_record,
    generate_private_key,
    load_private_key,
)
from mailactors.protocol.dkim.canon import canonical_body, select_fields, split_message
from mailactors.protocol.dkim.keys import KeyRecordError, parse_key_record
from mailactors.protocol.dkim.tags import TagListError, parse_tag_list

# --- tag=value lists (RFC 6376 3.2) ---


def test_tag_list_values_names_and_spans() -> None:
    data = b" v=1; a = rsa-sha256 ;\r\n\tb=ab\r\n cd== ;x=;"
    tags = parse_tag_list(data)
    assert list(tags) == ["v", "a", "b", "x"]
    assert tags["a"].value == "rsa-sha256"
    assert tags["b"].value == "ab\r\n cd=="
    assert tags["b"].unfolded() == "abcd=="
    assert tags["x"].value == ""
    # The span covers the value with its surrounding whitespace, up to the ";".
    b = tags["b"]
    assert data[b.start : b.end] == b"ab\r\n cd== "
    assert data[: b.start].endswith(b"b=") and data[b.end : b.end + 1] == b";"


def test_tag_list_value_without_semicolon_runs_to_the_end() -> None:
    data = b"d=example.org; b= abc "
    b = parse_tag_list(data)["b"]
    assert data[b.start : b.end] == b" abc "


@pytest.mark.parametrize(
    "data",
    [
        b"v=1; v=1",  # duplicate (RFC 6376 3.2: the entire tag-list is invalid)
        b"v=1;; a=b",  # empty tag-spec
        b"1v=1",  # tag-name must start with ALPHA
        b"v 1",  # no "="
        b"v=1\x00",  # control character
        b"v=a\x7fb",
    ],
)
def test_tag_list_errors(data: bytes) -> None:
    with pytest.raises(TagListError):
        parse_tag_list(data)


def test_tag_names_are_case_sensitive() -> None:
    tags = parse_tag_list(b"v=1; V=2")
    assert tags["v"].value == "1" and tags["V"].value == "2"


def test_tag_values_may_be_utf8() -> None:
    assert parse_tag_list("i=jörg@example.org".encode())["i"].value == "jörg@example.org"


# --- canonicalization (RFC 6376 3.4) ---

# RFC 6376 3.4.6, the example message.
RFC_EXAMPLE = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n"


def test_rfc6376_example_relaxed() -> None:
    msg = split_message(RFC_EXAMPLE)
    assert [f.canonical(True) for f in msg.fields] == [b"a:X\r\n", b"b:Y Z\r\n"]
    assert canonical_body(msg.body, True) == b" C\r\nD E\r\n"


def test_rfc6376_example_simple() -> None:
    msg = split_message(RFC_EXAMPLE)
    assert [f.canonical(False) for f in msg.fields] == [b"A: X\r\n", b"B : Y\t\r\n\tZ  \r\n"]
    assert canonical_body(msg.body, False) == b" C \r\nD \t E\r\n"


@pytest.mark.parametrize(
    ("body", "simple", "relaxed"),
    [
        (b"", b"\r\n", b""),  # 3.4.3 "If there is no body ... a CRLF is added"; 3.4.4 empty
        (b"\r\n", b"\r\n", b""),
        (b"\r\n\r\n \r\n", b"\r\n\r\n \r\n", b""),
        (b"a\r\n\r\n\r\n", b"a\r\n", b"a\r\n"),
        (b"a", b"a\r\n", b"a\r\n"),  # no trailing CRLF: one is added
        (b"a  b\t\r\n", b"a  b\t\r\n", b"a b\r\n"),
        (b"a\r\r\n\r\n", b"a\r\r\n", b"a\r\r\n"),  # a bare CR is content
        (b"\r\n\n\r\n", b"\r\n\n\r\n", b"\r\n\n\r\n"),
        (b"x\r\n\t\r\ny", b"x\r\n\t\r\ny\r\n", b"x\r\n\r\ny\r\n"),
    ],
)
def test_body_canonicalization(body: bytes, simple: bytes, relaxed: bytes) -> None:
    assert canonical_body(body, False) == simple
    assert canonical_body(body, True) == relaxed


def test_bare_lf_line_ends_read_as_crlf() -> None:
    crlf = split_message(RFC_EXAMPLE)
    lf = split_message(RFC_EXAMPLE.replace(b"\r\n", b"\n"))
    assert crlf == lf


def test_header_section_parsing() -> None:
    msg = split_message(
        b"From sender@example.org Mon Jan  1 00:00:00 2024\r\n"  # mbox line: no field
        b"Subject: a\r\n"
        b"not a field\r\n"
        b" its continuation\r\n"
        b"X-Empty:\r\n"
        b"Subject : b\r\n"
        b"\r\n"
        b"body\r\n"
    )
    assert [f.name for f in msg.fields] == ["subject", "x-empty", "subject"]
    assert msg.fields[2].raw == b"Subject : b\r\n"
    assert msg.fields[2].canonical(True) == b"subject:b\r\n"
    assert msg.body == b"body\r\n"


def test_message_without_body() -> None:
    msg = split_message(b"From: a@example.org")
    assert msg.fields[0].raw == b"From: a@example.org\r\n"
    assert msg.body == b""
    assert split_message(b"\r\nbody").fields == ()


def test_select_fields_bottom_up() -> None:
    msg = split_message(b"To: 1\r\nFrom: f\r\nTo: 2\r\nTo: 3\r\n\r\n")
    picked = select_fields(msg.fields, ["to", "From", "TO", "to", "to", "cc"])
    assert [f.raw for f in picked] == [b"To: 3\r\n", b"From: f\r\n", b"To: 2\r\n", b"To: 1\r\n"]
    # The signature being verified is left out.
    assert [f.raw for f in select_fields(msg.fields, ["to"], exclude=3)] == [b"To: 2\r\n"]


# --- keys ---


def test_generate_and_load_ed25519() -> None:
    pem = generate_private_key("ed25519")
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = load_private_key(pem)
    assert key.algorithm == "ed25519" and key.signature_algorithm == "ed25519-sha256"
    record = dns_txt_record(key)
    assert record.startswith("v=DKIM1; k=ed25519; p=")
    raw = base64.b64decode(record.split("p=")[1])
    # RFC 8463 4.2: the raw 32-byte key.
    assert len(raw) == 32
    assert parse_key_record(record).public_key().public_bytes_raw() == raw  # type: ignore[union-attr]


def test_generate_and_load_rsa() -> None:
    pem = generate_private_key("rsa", bits=1024)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = load_private_key(pem)
    assert key.algorithm == "rsa" and key.signature_algorithm == "rsa-sha256"
    record = parse_key_record(dns_txt_record(key))
    public = record.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 1024
    assert record.key_type == "rsa"


def test_rsa_default_is_2048_bits() -> None:
    key = load_private_key(generate_private_key("rsa"))
    assert isinstance(key.private_key, rsa.RSAPrivateKey) and key.private_key.key_size == 2048


def test_pkcs1_rsa_private_key_loads() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert load_private_key(pem).algorithm == "rsa"


@pytest.mark.parametrize(
    ("algorithm", "bits"), [("dsa", 2048), ("rsa", 512), ("rsa", 16384), ("RSA", 2048)]
)
def test_generate_refuses(algorithm: str, bits: int) -> None:
    with pytest.raises(DkimKeyError):
        generate_private_key(algorithm, bits=bits)


def _pem(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, password: bytes | None
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"", "not a PEM"),
        (b"garbage", "not a PEM"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "cannot read"),
        (_pem(ed25519.Ed25519PrivateKey.generate(), b"secret"), "encrypted"),
        (_pem(ec.generate_private_key(ec.SECP256R1()), None), "unsupported key type"),
    ],
)
def test_load_private_key_errors(pem: bytes, message: str) -> None:
    with pytest.raises(DkimKeyError, match=message):
        load_private_key(pem)


# --- key records (RFC 6376 3.6.1) ---


def test_key_record_defaults_and_tags() -> None:
    record = parse_key_record("p=")
    assert record.key_type == "rsa" and record.hashes is None and record.services == ("*",)
    assert record.revoked and not record.testing and record.allows_email()
    record = parse_key_record("v=DKIM1; h=sha256 : SHA1; k=ED25519; s=Email; t=y:s; n=x; p=AAAA")
    assert record.hashes == ("sha256", "sha1") and record.key_type == "ed25519"
    assert record.services == ("email",) and record.testing and record.strict_identity
    assert not parse_key_record("s=other; p=").allows_email()


def test_key_record_accepts_pkcs1_rsa_key() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    record = parse_key_record("k=rsa; p=" + base64.b64encode(der).decode())
    assert record.public_key().public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        "k=rsa; v=DKIM1; p=AAAA",  # v= must be first
        "v=DKIM2; p=AAAA",
        "v=DKIM1; k=rsa",  # no p=
        "p=not base64!",
        "v=DKIM1; p=A; p=B",
        "v=spf1 -all",
    ],
)
def test_key_record_errors(text: str) -> None:
    with pytest.raises(KeyRecordError):
        parse_key_record(text)


@pytest.mark.parametrize("text", ["k=ed25519; p=AAAA", "k=rsa; p=AAAA", "k=dsa; p=AAAA"])
def test_key_record_bad_public_key(text: str) -> None:
    with pytest.raises(KeyRecordError):
        parse_key_record(text).public_key()
