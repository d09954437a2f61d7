"""DANE for SMTP (RFC 7672): applicability, TLSA lookup and certificate matching."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from test_pkix import DAY, NOW, Issued, make_cert

from mailactors.protocol.dane import (
    RESULT_TLSA_INVALID,
    DaneMode,
    dane_applicable,
    is_usable,
    lookup_tlsa,
    record_matches,
    tlsa_name,
    verify_dane,
)
from mailactors.protocol.dns import (
    Answer,
    DnsPermanentError,
    DnsTemporaryError,
    InMemoryResolver,
    TlsaRecord,
)
from mailactors.protocol.pkix import (
    RESULT_CERTIFICATE_EXPIRED,
    RESULT_HOST_MISMATCH,
    RESULT_VALIDATION_FAILURE,
)

HOST = "mx.example.test"


def spki(issued: Issued) -> bytes:
    return issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def tlsa(usage: int, selector: int, mtype: int, issued: Issued) -> TlsaRecord:
    data = issued.der if selector == 0 else spki(issued)
    if mtype == 1:
        data = hashlib.sha256(data).digest()
    elif mtype == 2:
        data = hashlib.sha512(data).digest()
    return TlsaRecord(usage, selector, mtype, data)


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    root = make_cert("Private Root", ca=True, not_before=NOW - 400 * DAY)
    inter = make_cert("Private Intermediate", ca=True, issuer=root)
    return {
        "root": root,
        "inter": inter,
        "leaf": make_cert(HOST, issuer=inter),
        "other_leaf": make_cert("other.example.test", issuer=inter),
        "expired_leaf": make_cert(HOST, issuer=inter, not_after=NOW - DAY),
        "wild": make_cert("w", issuer=inter, sans=("*.example.test",)),
        "self_signed_elsewhere": make_cert("unrelated.example", not_after=NOW - DAY),
        "unrelated": make_cert("Unrelated CA", ca=True),
    }


# ---- applicability (RFC 7672 section 2.2) ------------------------------------------

SECURE = Answer((TlsaRecord(3, 1, 1, b"\x00" * 32),), authenticated=True)
SECURE_UNUSABLE = Answer((TlsaRecord(1, 1, 1, b"\x00" * 32),), authenticated=True)
INSECURE = Answer((TlsaRecord(3, 1, 1, b"\x00" * 32),), authenticated=False)
SECURE_DENIAL: Answer[TlsaRecord] = Answer((), authenticated=True, nxdomain=True)


@pytest.mark.parametrize(
    ("mx_secure", "addr_secure", "answer", "mode"),
    [
        (True, True, SECURE, DaneMode.REQUIRED),
        (False, True, SECURE, DaneMode.NONE),
        (True, False, SECURE, DaneMode.NONE),
        (True, True, None, DaneMode.NONE),
        (True, True, INSECURE, DaneMode.NONE),
        (True, True, SECURE_DENIAL, DaneMode.NONE),
        (True, True, SECURE_UNUSABLE, DaneMode.ENCRYPT),
        (True, True, DnsTemporaryError("x", "TLSA", "SERVFAIL"), DaneMode.TEMPFAIL),
        (True, True, DnsPermanentError("x", "TLSA", "bad"), DaneMode.TEMPFAIL),
        (False, False, DnsTemporaryError("x", "TLSA", "SERVFAIL"), DaneMode.NONE),
    ],
)
def test_dane_applicable(
    mx_secure: bool, addr_secure: bool, answer: object, mode: DaneMode
) -> None:
    assert dane_applicable(mx_secure, addr_secure, answer) is mode  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record", "usable"),
    [
        (TlsaRecord(3, 1, 1, b"a" * 32), True),
        (TlsaRecord(2, 0, 2, b"a" * 64), True),
        (TlsaRecord(3, 0, 0, b"cert"), True),
        (TlsaRecord(3, 1, 0, b""), False),
        (TlsaRecord(0, 1, 1, b"a" * 32), False),
        (TlsaRecord(1, 1, 1, b"a" * 32), False),
        (TlsaRecord(4, 1, 1, b"a" * 32), False),
        (TlsaRecord(3, 2, 1, b"a" * 32), False),
        (TlsaRecord(3, 1, 3, b"a" * 32), False),
        (TlsaRecord(3, 1, 1, b"a" * 31), False),
        (TlsaRecord(3, 1, 2, b"a" * 32), False),
    ],
)
def test_is_usable(record: TlsaRecord, usable: bool) -> None:
    assert is_usable(record) is usable


# ---- TLSA lookup and base domain (RFC 7672 section 2.2.3) ----------------------------

R1 = TlsaRecord(3, 1, 1, b"1" * 32)
R2 = TlsaRecord(3, 1, 1, b"2" * 32)


def test_tlsa_name() -> None:
    assert tlsa_name("MX.Example.COM.") == "_25._tcp.mx.example.com"
    assert tlsa_name("mx.example.com", 465) == "_465._tcp.mx.example.com"


def test_lookup_plain_host() -> None:
    r = InMemoryResolver(
        {("_25._tcp.mx.example.com", "TLSA"): [R1]},
        authenticated=frozenset({"_25._tcp.mx.example.com"}),
    )
    got = lookup_tlsa(r, "MX.example.com.")
    assert got.base_domain == "mx.example.com"
    assert got.host_names == ("mx.example.com",)
    assert isinstance(got.answer, Answer)
    assert got.answer.records == (R1,) and got.answer.authenticated


def _cname_resolver(*, secure_cname: bool, target_tlsa: bool) -> InMemoryResolver:
    records: dict[tuple[str, str], list[object]] = {
        ("mx.example.com", "CNAME"): ["Mail.Provider.NET."],
        ("mail.provider.net", "A"): ["192.0.2.1"],
        ("_25._tcp.mx.example.com", "TLSA"): [R1],
    }
    if target_tlsa:
        records[("_25._tcp.mail.provider.net", "TLSA")] = [R2]
    secure = {"_25._tcp.mx.example.com", "_25._tcp.mail.provider.net", "mail.provider.net"}
    if secure_cname:
        secure.add("mx.example.com")
    return InMemoryResolver(records, authenticated=frozenset(secure))


def test_lookup_secure_cname_prefers_expanded_name() -> None:
    got = lookup_tlsa(_cname_resolver(secure_cname=True, target_tlsa=True), "mx.example.com")
    assert got.base_domain == "mail.provider.net"
    assert got.host_names == ("mail.provider.net", "mx.example.com")
    assert isinstance(got.answer, Answer) and got.answer.records == (R2,)


def test_lookup_secure_cname_falls_back_to_mx_name() -> None:
    got = lookup_tlsa(_cname_resolver(secure_cname=True, target_tlsa=False), "mx.example.com")
    assert got.base_domain == "mx.example.com"
    assert isinstance(got.answer, Answer) and got.answer.records == (R1,)


def test_lookup_insecure_cname_uses_mx_name_only() -> None:
    r = _cname_resolver(secure_cname=False, target_tlsa=True)
    got = lookup_tlsa(r, "mx.example.com")
    assert got.base_domain == "mx.example.com"
    assert ("_25._tcp.mail.provider.net", "TLSA") not in r.queries


def test_lookup_failure_at_expanded_name_is_returned() -> None:
    r = _cname_resolver(secure_cname=True, target_tlsa=True)
    r.temporary = frozenset({("_25._tcp.mail.provider.net", "TLSA")})
    got = lookup_tlsa(r, "mx.example.com")
    assert isinstance(got.answer, DnsTemporaryError)
    assert dane_applicable(True, True, got.answer) is DaneMode.TEMPFAIL


def test_lookup_servfail() -> None:
    r = InMemoryResolver({}, temporary=frozenset({("_25._tcp.mx.example.com", "TLSA")}))
    assert isinstance(lookup_tlsa(r, "mx.example.com").answer, DnsTemporaryError)


# ---- verification (RFC 7672 section 3) --------------------------------------------


@pytest.mark.parametrize(("selector", "mtype"), [(s, m) for s in (0, 1) for m in (0, 1, 2)])
def test_dane_ee_matches_leaf(pki: dict[str, Issued], selector: int, mtype: int) -> None:
    record = tlsa(3, selector, mtype, pki["leaf"])
    assert record_matches(record, pki["leaf"].cert)
    verdict = verify_dane([record], [pki["leaf"].der], host_names=[HOST], now=NOW)
    assert verdict.ok and verdict.matched == record and verdict.result_type is None


def test_dane_ee_no_name_or_expiry_check(pki: dict[str, Issued]) -> None:
    # RFC 7672 3.1.1: an expired, self-signed certificate for another name is fine.
    cert = pki["self_signed_elsewhere"]
    verdict = verify_dane([tlsa(3, 1, 1, cert)], [cert.der], host_names=[HOST], now=NOW)
    assert verdict.ok
    verdict = verify_dane(
        [tlsa(3, 0, 1, pki["expired_leaf"])],
        [pki["expired_leaf"].der, pki["inter"].der],
        host_names=[HOST],
        now=NOW,
    )
    assert verdict.ok


def test_dane_ee_mismatch(pki: dict[str, Issued]) -> None:
    records = [tlsa(3, 1, 1, pki["other_leaf"]), tlsa(3, 0, 2, pki["other_leaf"])]
    verdict = verify_dane(records, [pki["leaf"].der], host_names=[HOST], now=NOW)
    assert (verdict.ok, verdict.result_type, verdict.matched) == (
        False,
        RESULT_VALIDATION_FAILURE,
        None,
    )


def test_dane_ee_does_not_match_issuer(pki: dict[str, Issued]) -> None:
    # DANE-EE(3) is about the leaf only, even if a chain certificate matches.
    record = tlsa(3, 1, 1, pki["inter"])
    chain = [pki["leaf"].der, pki["inter"].der]
    assert not verify_dane([record], chain, host_names=[HOST], now=NOW).ok


def test_second_record_matches(pki: dict[str, Issued]) -> None:
    records = [tlsa(3, 1, 1, pki["other_leaf"]), tlsa(3, 1, 2, pki["leaf"])]
    verdict = verify_dane(records, [pki["leaf"].der], host_names=[HOST], now=NOW)
    assert verdict.ok and verdict.matched == records[1]


@pytest.mark.parametrize("anchor", ["inter", "root"])
@pytest.mark.parametrize(("selector", "mtype"), [(0, 1), (1, 1), (1, 2), (0, 0)])
def test_dane_ta(pki: dict[str, Issued], anchor: str, selector: int, mtype: int) -> None:
    record = tlsa(2, selector, mtype, pki[anchor])
    chain = [pki["leaf"].der, pki["inter"].der, pki["root"].der]
    verdict = verify_dane([record], chain, host_names=[HOST], now=NOW)
    assert verdict.ok, verdict.detail
    assert verdict.matched == record


def test_dane_ta_name_check(pki: dict[str, Issued]) -> None:
    record = tlsa(2, 1, 1, pki["inter"])
    chain = [pki["other_leaf"].der, pki["inter"].der]
    verdict = verify_dane([record], chain, host_names=[HOST], now=NOW)
    assert (verdict.ok, verdict.result_type) == (False, RESULT_HOST_MISMATCH)
    assert verdict.matched == record
    # The MX host name (second reference identifier) is accepted too (3.2.2).
    verdict = verify_dane(
        [record], chain, host_names=["mx.provider.test", "other.example.test"], now=NOW
    )
    assert verdict.ok


@pytest.mark.parametrize(("host", "ok"), [("a.example.test", True), ("a.b.example.test", False)])
def test_dane_ta_wildcard(pki: dict[str, Issued], host: str, ok: bool) -> None:
    record = tlsa(2, 1, 1, pki["inter"])
    chain = [pki["wild"].der, pki["inter"].der]
    assert verify_dane([record], chain, host_names=[host], now=NOW).ok is ok


def test_dane_ta_expired_leaf(pki: dict[str, Issued]) -> None:
    record = tlsa(2, 1, 1, pki["inter"])
    chain = [pki["expired_leaf"].der, pki["inter"].der]
    verdict = verify_dane([record], chain, host_names=[HOST], now=NOW)
    assert (verdict.ok, verdict.result_type) == (False, RESULT_CERTIFICATE_EXPIRED)


def test_dane_ta_anchor_not_in_chain(pki: dict[str, Issued]) -> None:
    # RFC 7672 3.1.2: the server must send the TA certificate; without it, no match.
    record = tlsa(2, 1, 1, pki["root"])
    chain = [pki["leaf"].der, pki["inter"].der]
    verdict = verify_dane([record], chain, host_names=[HOST], now=NOW)
    assert (verdict.ok, verdict.result_type) == (False, RESULT_VALIDATION_FAILURE)


def test_dane_ta_wrong_anchor(pki: dict[str, Issued]) -> None:
    # A chain that includes an unrelated CA matched by the record, but the leaf
    # does not chain to it.
    record = tlsa(2, 1, 1, pki["unrelated"])
    chain = [pki["leaf"].der, pki["unrelated"].der]
    verdict = verify_dane([record], chain, host_names=[HOST], now=NOW)
    assert not verdict.ok and verdict.result_type is not None


def test_dane_ee_preferred_over_failing_ta(pki: dict[str, Issued]) -> None:
    records = [tlsa(2, 1, 1, pki["inter"]), tlsa(3, 1, 1, pki["other_leaf"])]
    chain = [pki["other_leaf"].der, pki["inter"].der]
    verdict = verify_dane(records, chain, host_names=[HOST], now=NOW)
    assert verdict.ok and verdict.matched == records[1]


def test_all_unusable_is_tlsa_invalid(pki: dict[str, Issued]) -> None:
    # PKIX-EE(1) matching the leaf is still unusable for SMTP (3.1.3).
    records = [tlsa(1, 1, 1, pki["leaf"]), tlsa(0, 1, 1, pki["root"]), TlsaRecord(3, 1, 1, b"x")]
    verdict = verify_dane(records, [pki["leaf"].der], host_names=[HOST], now=NOW)
    assert (verdict.ok, verdict.result_type) == (False, RESULT_TLSA_INVALID)


@pytest.mark.parametrize("chain", [[], [b"\x30\x00"]])
def test_malformed_chain(pki: dict[str, Issued], chain: list[bytes]) -> None:
    verdict = verify_dane([tlsa(3, 1, 1, pki["leaf"])], chain, host_names=[HOST], now=NOW)
    assert (verdict.ok, verdict.result_type) == (False, RESULT_VALIDATION_FAILURE)
