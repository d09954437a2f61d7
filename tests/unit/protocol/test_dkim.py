"""DKIM sign() and verify(): results for good, tampered and malformed signatures."""

from __future__ import annotations

import base64
import random
import re

import dkim as dkimpy  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailactors.protocol.dkim import (
    DEFAULT_MAX_SIGNATURES,
    DkimKey,
    DkimKeyError,
    DkimResult,
    DkimStatus,
    dns_txt_record,
    generate_private_key,
    load_private_key,
    sign,
    verify,
)
from mailactors.protocol.dns import InMemoryResolver

NOW = 1_790_000_000
DOMAIN = "example.org"
SELECTOR = "sel"
KEY_NAME = f"{SELECTOR}._domainkey.{DOMAIN}"

RSA_KEY = load_private_key(generate_private_key("rsa", bits=1024))
ED_KEY = load_private_key(generate_private_key("ed25519"))
KEYS = {"rsa": RSA_KEY, "ed25519": ED_KEY}

MESSAGE = (
    b"Received: from client by mx (Postfix)\r\n"
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: Lunch\r\n"
    b"  tomorrow?\r\n"
    b"Date: Mon, 24 Nov 2026 20:00:00 +0000\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
    b"Shall we meet  at noon?\r\n"
    b"\r\n"
    b"-- Alice\r\n"
)


def resolver(*records: str, name: str = KEY_NAME) -> InMemoryResolver:
    return InMemoryResolver({(name, "TXT"): list(records)})


def signed(message: bytes = MESSAGE, key: DkimKey = RSA_KEY, **kw: object) -> bytes:
    options: dict[str, object] = {"domain": DOMAIN, "selector": SELECTOR, "key": key, "now": NOW}
    options.update(kw)
    return sign(message, **options) + message  # type: ignore[arg-type]


def one(message: bytes, res: InMemoryResolver, now: int = NOW) -> DkimResult:
    results = verify(message, res, now=now)
    assert len(results) == 1
    return results[0]


def weak_rsa_key() -> rsa.RSAPrivateKey:
    """A 512-bit RSA key (cryptography refuses to generate one), from two random primes."""
    rng = random.Random(6376)

    def is_prime(n: int) -> bool:
        d, s = n - 1, 0
        while d % 2 == 0:
            d, s = d // 2, s + 1
        for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
            x = pow(a, d, n)
            if x in (1, n - 1):
                continue
            for _ in range(s - 1):
                x = x * x % n
                if x == n - 1:
                    break
            else:
                return False
        return True

    def prime() -> int:
        while True:
            candidate = rng.getrandbits(256) | (3 << 254) | 1
            if is_prime(candidate) and (candidate - 1) % 65537:
                return candidate

    p, q = prime(), prime()
    e, n = 65537, p * q
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, n)
    )
    return numbers.private_key()


# --- passing signatures ---


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
@pytest.mark.parametrize("header", ["simple", "relaxed"])
@pytest.mark.parametrize("body", ["simple", "relaxed"])
def test_sign_then_verify(algorithm: str, header: str, body: str) -> None:
    key = KEYS[algorithm]
    result = one(signed(key=key, canonicalization=(header, body)), resolver(dns_txt_record(key)))
    assert result.status is DkimStatus.PASS, result.problem
    assert result.problem is None and not result.testing
    assert result.domain == DOMAIN and result.selector == SELECTOR
    assert result.algorithm == f"{algorithm}-sha256"
    assert result.identity is None
    assert len(result.signature_b) == 12


def test_signature_field_layout() -> None:
    field = sign(
        MESSAGE,
        domain="Example.ORG",
        selector="sel",
        key=RSA_KEY,
        now=NOW,
        expiration=NOW + 3600,
        identity="alice@example.org",
    )
    text = field.decode("ascii")
    assert text.startswith("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;")
    assert text.endswith("\r\n") and not text.endswith("\r\n\r\n")
    lines = text[:-2].split("\r\n")
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith(" ") for line in lines[1:])
    unfolded = text.replace("\r\n ", " ")
    assert f"t={NOW};" in unfolded and f"x={NOW + 3600};" in unfolded
    assert "i=alice@example.org;" in unfolded
    # b= is the last tag.
    assert re.search(r"; b=[A-Za-z0-9+/= ]+\r\n$", unfolded)
    h = re.search(r"h=([^;]*);", unfolded)
    assert h is not None
    names = h.group(1).replace(" ", "").split(":")
    # Present fields once, plus once more for the oversigned; Received is not signed;
    # absent fields that are not oversigned are not listed.
    assert names.count("from") == 2 and names.count("subject") == 2 and names.count("to") == 2
    assert names.count("cc") == 1  # absent but oversigned
    assert "received" not in names and "list-id" not in names and "resent-date" not in names


def test_utf8_identity() -> None:
    # RFC 8616 section 4: i= may hold a UTF-8 local-part.
    msg = signed(identity="j\u00f6rg@example.org")
    assert "i=j\u00f6rg@example.org;".encode() in msg
    result = one(msg, resolver(dns_txt_record(RSA_KEY)))
    assert result.status is DkimStatus.PASS and result.identity == "j\u00f6rg@example.org"


def test_identity_is_reported() -> None:
    msg = signed(identity="alice@mail.example.org")
    result = one(msg, resolver(dns_txt_record(RSA_KEY)))
    assert result.status is DkimStatus.PASS and result.identity == "alice@mail.example.org"


def test_headers_parameter_and_repeated_fields() -> None:
    message = b"From: a@example.org\r\nX-Tag: 1\r\nX-Tag: 2\r\n\r\nbody\r\n"
    msg = signed(message, headers=["From", "X-Tag"])
    field = msg[: msg.index(b"From:")].decode().replace("\r\n ", " ")
    assert "h=from:from:x-tag:x-tag;" in field
    res = resolver(dns_txt_record(RSA_KEY))
    assert one(msg, res).status is DkimStatus.PASS
    # Reordering the two X-Tag fields changes what is signed (bottom-up selection).
    swapped = msg.replace(b"X-Tag: 1\r\nX-Tag: 2", b"X-Tag: 2\r\nX-Tag: 1")
    assert one(swapped, res).status is DkimStatus.FAIL
    # A third X-Tag on top is not covered (X-Tag is not oversigned).
    extra = msg.replace(b"From: a", b"X-Tag: 0\r\nFrom: a")
    assert one(extra, res).status is DkimStatus.PASS


def test_lf_message_signs_like_crlf() -> None:
    field = sign(
        MESSAGE.replace(b"\r\n", b"\n"), domain=DOMAIN, selector=SELECTOR, key=ED_KEY, now=NOW
    )
    result = one(field + MESSAGE, resolver(dns_txt_record(ED_KEY)))
    assert result.status is DkimStatus.PASS


def test_unrelated_changes_keep_passing() -> None:
    msg = signed()
    res = resolver(dns_txt_record(RSA_KEY))
    # Fields that are not signed may be added anywhere; relaxed tolerates whitespace.
    msg = b"Received: from relay\r\n" + msg.replace(b"Subject: Lunch", b"Subject:   Lunch ")
    msg = msg.replace(b"at noon?\r\n", b"at \tnoon?  \r\n") + b"\r\n\r\n"
    assert one(msg, res).status is DkimStatus.PASS


def test_no_signature_gives_no_results() -> None:
    assert verify(MESSAGE, InMemoryResolver(), now=NOW) == ()
    assert verify(b"", InMemoryResolver(), now=NOW) == ()


# --- tampering ---


def test_body_change_fails_on_body_hash() -> None:
    msg = signed().replace(b"noon", b"nine")
    result = one(msg, resolver(dns_txt_record(RSA_KEY)))
    assert result.status is DkimStatus.FAIL
    assert result.problem is not None and "bh=" in result.problem


def test_header_change_fails_on_signature() -> None:
    msg = signed(key=ED_KEY).replace(b"Subject: Lunch", b"Subject: Dinner")
    result = one(msg, resolver(dns_txt_record(ED_KEY)))
    assert result.status is DkimStatus.FAIL
    assert result.problem is not None and "b=" in result.problem and "bh=" not in result.problem


@pytest.mark.parametrize(
    "added",
    [b"Subject: Free money\r\n", b"From: mallory@example.com\r\n", b"Cc: eve@example.com\r\n"],
)
@pytest.mark.parametrize("where", ["top", "bottom"])
def test_added_oversigned_field_fails(added: bytes, where: str) -> None:
    msg = signed()
    if where == "top":
        msg = added + msg
    else:
        msg = msg.replace(b"\r\n\r\nShall", b"\r\n" + added + b"\r\nShall")
    result = one(msg, resolver(dns_txt_record(RSA_KEY)))
    assert result.status is DkimStatus.FAIL


def test_expired_signature() -> None:
    msg = signed(expiration=NOW + 100)
    res = resolver(dns_txt_record(RSA_KEY))
    assert one(msg, res, now=NOW + 100).status is DkimStatus.PASS
    result = one(msg, res, now=NOW + 101)
    assert result.status is DkimStatus.PERMERROR
    assert result.problem is not None and "expired" in result.problem
    assert res.queries == [(KEY_NAME, "TXT")]  # no lookup for the expired signature


def test_revoked_key() -> None:
    result = one(signed(), resolver("v=DKIM1; k=rsa; p="))
    assert result.status is DkimStatus.FAIL
    assert result.problem is not None and "revoked" in result.problem


def test_strict_identity_flag() -> None:
    record = dns_txt_record(RSA_KEY) + "; t=s"
    same = one(signed(identity="alice@example.org"), resolver(record))
    assert same.status is DkimStatus.PASS
    sub = one(signed(identity="alice@sub.example.org"), resolver(record))
    assert sub.status is DkimStatus.PERMERROR
    assert sub.problem is not None and "t=s" in sub.problem
    # Without t=s, a subdomain identity is fine.
    assert (
        one(signed(identity="@sub.example.org"), resolver(dns_txt_record(RSA_KEY))).status
        is DkimStatus.PASS
    )


def test_testing_flag_is_reported() -> None:
    res = resolver(dns_txt_record(ED_KEY) + "; t=y")
    good = one(signed(key=ED_KEY), res)
    assert good.status is DkimStatus.PASS and good.testing
    bad = one(signed(key=ED_KEY).replace(b"noon", b"ten"), res)
    assert bad.status is DkimStatus.FAIL and bad.testing


def test_dns_temporary_error() -> None:
    res = InMemoryResolver(temporary=frozenset({(KEY_NAME, "TXT")}))
    result = one(signed(), res)
    assert result.status is DkimStatus.TEMPERROR
    assert result.domain == DOMAIN and result.selector == SELECTOR


def test_no_key_record() -> None:
    result = one(signed(), InMemoryResolver())
    assert result.status is DkimStatus.PERMERROR
    assert result.problem is not None and "no key record" in result.problem


def test_key_record_syntax_error() -> None:
    result = one(signed(), resolver("v=DKIM1; p=%%%"))
    assert result.status is DkimStatus.PERMERROR


def test_several_key_records() -> None:
    # Not-DKIM and broken records are skipped; the first key that verifies wins.
    records = ["v=spf1 -all", dns_txt_record(ED_KEY), dns_txt_record(RSA_KEY)]
    assert one(signed(), resolver(*records)).status is DkimStatus.PASS
    assert one(signed(key=ED_KEY), resolver(*records)).status is DkimStatus.PASS


@pytest.mark.parametrize(
    ("suffix", "problem"),
    [("; h=sha1", "h="), ("; s=other", "s=")],
)
def test_key_record_restrictions(suffix: str, problem: str) -> None:
    result = one(signed(), resolver(dns_txt_record(RSA_KEY) + suffix))
    assert result.status is DkimStatus.PERMERROR
    assert result.problem is not None and problem in result.problem


def test_key_type_mismatch() -> None:
    result = one(signed(key=ED_KEY), resolver(dns_txt_record(RSA_KEY)))
    assert result.status is DkimStatus.PERMERROR
    assert result.problem is not None and "k=rsa" in result.problem


def test_wrong_key_fails() -> None:
    other = load_private_key(generate_private_key("ed25519"))
    result = one(signed(key=ED_KEY), resolver(dns_txt_record(other)))
    assert result.status is DkimStatus.FAIL


def test_weak_rsa_key_fails() -> None:
    weak = DkimKey("rsa", weak_rsa_key())
    result = one(signed(key=weak), resolver(dns_txt_record(weak)))
    assert result.status is DkimStatus.FAIL
    assert result.problem is not None and "512 bits" in result.problem


def test_load_private_key_refuses_weak_rsa() -> None:
    pem = weak_rsa_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(DkimKeyError, match="RFC 8301"):
        load_private_key(pem)


def _rsa_pem(key: DkimKey) -> bytes:
    return key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_rsa_sha1_fails() -> None:
    field = dkimpy.sign(
        MESSAGE, b"sel", b"example.org", _rsa_pem(RSA_KEY), signature_algorithm=b"rsa-sha1"
    )
    res = resolver(dns_txt_record(RSA_KEY))
    result = one(field + MESSAGE, res)
    assert result.status is DkimStatus.FAIL
    assert (
        result.algorithm == "rsa-sha1" and result.problem is not None and "8301" in result.problem
    )


# --- l= (body length) ---


def test_body_length() -> None:
    msg = signed(body_length=True)
    res = resolver(dns_txt_record(RSA_KEY))
    assert one(msg + b"appended footer\r\n", res).status is DkimStatus.PASS
    shorter = msg.replace(b"-- Alice\r\n", b"")
    result = one(shorter, res)
    assert (
        result.status is DkimStatus.FAIL and result.problem is not None and "l=" in result.problem
    )


# --- malformed signatures ---

GOOD_TAGS = {
    "v": "1",
    "a": "rsa-sha256",
    "c": "relaxed/relaxed",
    "d": "example.org",
    "s": "sel",
    "h": "from:to",
    "bh": base64.b64encode(b"\0" * 32).decode(),
    "b": base64.b64encode(b"\0" * 128).decode(),
}


def _field(**changes: str | None) -> bytes:
    tags = dict(GOOD_TAGS)
    for name, value in changes.items():
        if value is None:
            del tags[name]
        else:
            tags[name] = value
    return ("DKIM-Signature: " + "; ".join(f"{k}={v}" for k, v in tags.items()) + "\r\n").encode()


def test_handmade_field_reaches_the_signature_check() -> None:
    result = one(_field() + MESSAGE, resolver(dns_txt_record(RSA_KEY)))
    assert result.status is DkimStatus.FAIL


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"v": None}, "missing"),
        ({"b": None}, "missing"),
        ({"bh": None}, "missing"),
        ({"v": "2"}, "version"),
        ({"a": "rsa-sha512"}, "algorithm"),
        ({"c": "relaxed/fancy"}, "canonicalization"),
        ({"c": "simple/relaxed/simple"}, "canonicalization"),
        ({"h": "to:subject"}, "From"),
        ({"h": "from::to"}, "empty"),
        ({"h": ":".join(["from"] * 1001)}, "more than"),
        ({"i": "alice@example.com"}, "not within"),
        ({"i": "alice@ample.org"}, "not within"),
        ({"i": "alice"}, "no '@'"),
        ({"t": "200", "x": "100"}, "x="),
        ({"t": "100", "x": "100"}, "x="),
        ({"t": "soon"}, "number"),
        ({"l": "-1"}, "l="),
        ({"q": "http/well-known"}, "query method"),
        ({"bh": "AAAA"}, "bh="),
        ({"bh": "not*base64"}, "base64"),
        ({"b": "a"}, "base64"),
        ({"d": "exa mple.org"}, "d="),
        ({"d": "-example.org"}, "d="),
        ({"s": "s\u00e9l"}, "s="),
    ],
)
def test_malformed_signature_is_permerror(changes: dict[str, str | None], problem: str) -> None:
    res = resolver(dns_txt_record(RSA_KEY))
    result = one(_field(**changes) + MESSAGE, res)
    assert result.status is DkimStatus.PERMERROR
    assert result.problem is not None and problem in result.problem
    assert res.queries == []  # decided without DNS


def test_reported_values_are_bounded() -> None:
    field = _field(d="x" * 100_000, a="y" * 100_000, i="z" * 100_000 + "@example.org")
    result = one(field + MESSAGE, InMemoryResolver())
    assert result.status is DkimStatus.PERMERROR
    assert len(result.domain) == len(result.algorithm) == 256
    assert result.identity is not None and len(result.identity) == 256
    long_version = one(_field(v="9" * 100_000) + MESSAGE, InMemoryResolver())
    assert long_version.problem is not None and len(long_version.problem) == 256


def test_tag_syntax_error_and_duplicate_tags() -> None:
    for field in (
        b"DKIM-Signature: v=1; v=1\r\n",
        b"DKIM-Signature: ;;;\r\n",
        b"DKIM-Signature:\r\n",
    ):
        result = one(field + MESSAGE, InMemoryResolver())
        assert result.status is DkimStatus.PERMERROR
        assert result.domain == "" and result.signature_b == ""


def test_unknown_tags_are_ignored() -> None:
    # RFC 6376 3.2: "Unrecognized tags MUST be ignored." The field gets as far as the
    # signature check (FAIL, not PERMERROR).
    handmade = _field(zz="whatever", z="From:a|To:b")
    result = one(handmade + MESSAGE, resolver(dns_txt_record(RSA_KEY)))
    assert result.status is DkimStatus.FAIL


def test_b_value_removal_keeps_surrounding_tags() -> None:
    # b= in the middle of the field, with whitespace around its value: the value and its
    # surrounding whitespace are removed for hashing, other tags stay (RFC 6376 3.7).
    from mailactors.protocol.dkim.canon import split_message
    from mailactors.protocol.dkim.signature import parse_signature, parse_tags

    field = split_message(
        b"DKIM-Signature: v=1; b= AAAA\r\n  BBBB ; a=rsa-sha256; c=relaxed; d=example.org; s=s; h=from; bh="
        + GOOD_TAGS["bh"].encode()
        + b"\r\n\r\n"
    ).fields[0]
    sig = parse_signature(field, parse_tags(field))
    assert (
        sig.unsigned_field
        == b"DKIM-Signature: v=1; b=; a=rsa-sha256; c=relaxed; d=example.org; s=s; h=from; bh="
        + GOOD_TAGS["bh"].encode()
    )
    assert sig.hashed_field().startswith(b"dkim-signature:v=1; b=; a=rsa-sha256;")


# --- several signatures, limits ---


def test_several_signatures_in_order() -> None:
    once = signed(key=ED_KEY)
    field = sign(once, domain="other.example", selector="s2", key=RSA_KEY, now=NOW)
    msg = field + once
    res = InMemoryResolver({(KEY_NAME, "TXT"): [dns_txt_record(ED_KEY)]})
    results = verify(msg, res, now=NOW)
    assert [(r.domain, r.status) for r in results] == [
        ("other.example", DkimStatus.PERMERROR),  # no key published
        (DOMAIN, DkimStatus.PASS),
    ]


def test_signature_count_and_lookups_are_bounded() -> None:
    field = sign(MESSAGE, domain=DOMAIN, selector=SELECTOR, key=RSA_KEY, now=NOW)
    msg = field * 50 + MESSAGE
    res = resolver(dns_txt_record(RSA_KEY))
    results = verify(msg, res, now=NOW)
    assert len(results) == DEFAULT_MAX_SIGNATURES
    # Each copy verifies on its own: DKIM-Signature is not in h=.
    assert all(r.status is DkimStatus.PASS for r in results)
    assert res.queries == [(KEY_NAME, "TXT")]
    assert len(verify(msg, res, now=NOW, max_signatures=3)) == 3


def test_huge_header_section() -> None:
    # A megabyte of header fields, a long folded field and a hostile h=; bounded work.
    noise = b"".join(b"X-Noise-%d: %s\r\n" % (i, b"x" * 200) for i in range(5000))
    folded = b"X-Long: " + b"a \r\n\t" * 100_000 + b"z\r\n"
    hostile = _field(h=":".join(["from", "x-noise-1"] * 400))
    msg = signed(noise + folded + MESSAGE)
    results = verify(hostile + msg, resolver(dns_txt_record(RSA_KEY)), now=NOW)
    assert [r.status for r in results] == [DkimStatus.FAIL, DkimStatus.PASS]


def test_own_field_is_left_out_of_selection() -> None:
    # h= may name DKIM-Signature to cover earlier signatures. When verifying, the field being
    # verified did not exist at signing time, so it must not be selected (oversigned here).
    once = signed(key=ED_KEY)
    field = sign(
        once,
        domain=DOMAIN,
        selector=SELECTOR,
        key=RSA_KEY,
        now=NOW,
        headers=["From", "DKIM-Signature"],
        oversign=["DKIM-Signature"],
    )
    assert b"h=from:dkim-signature:dkim-signature;" in field
    res = InMemoryResolver({(KEY_NAME, "TXT"): [dns_txt_record(RSA_KEY), dns_txt_record(ED_KEY)]})
    results = verify(field + once, res, now=NOW)
    assert [r.status for r in results] == [DkimStatus.PASS, DkimStatus.PASS]
    # Changing the covered earlier signature breaks the new one.
    changed = once.replace(b"a=ed25519-sha256", b"a=ed25519-sha256 ", 1)
    assert verify(field + changed, res, now=NOW)[0].status is DkimStatus.FAIL


# --- sign() misuse ---


def test_sign_needs_a_from_field() -> None:
    with pytest.raises(ValueError, match="no From"):
        sign(
            b"To: b@example.net\r\n\r\nbody\r\n",
            domain=DOMAIN,
            selector=SELECTOR,
            key=ED_KEY,
            now=NOW,
        )


@pytest.mark.parametrize(
    "kw",
    [
        {"headers": ["To", "Subject"]},
        {"domain": "bad domain"},
        {"selector": ""},
        {"expiration": NOW},
        {"identity": "alice@example.com"},
        {"identity": "alice"},
        {"canonicalization": ("relaxed", "nofws")},
        {"identity": "a;b@example.org"},
        {"identity": "a b@example.org"},
        {"headers": ["From", "Bad Name"]},
        {"headers": ["From", "To:"]},
    ],
)
def test_sign_refuses_misuse(kw: dict[str, object]) -> None:
    options: dict[str, object] = {
        "domain": DOMAIN,
        "selector": SELECTOR,
        "key": RSA_KEY,
        "now": NOW,
    }
    options.update(kw)
    with pytest.raises(ValueError):
        sign(MESSAGE, **options)  # type: ignore[arg-type]


# --- RFC 8463 appendix A ---

RFC8463_ED25519_SEED = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
RFC8463_RECORDS = {
    ("brisbane._domainkey.football.example.com", "TXT"): [
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    ],
    ("test._domainkey.football.example.com", "TXT"): [
        "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
        "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
        "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
        "Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
    ],
}
RFC8463_MESSAGE = (
    b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    b" subject : date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    b" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    b" date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    b" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    b" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    b"From: Joe SixPack <joe@football.example.com>\r\n"
    b"To: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    b"\r\n"
    b"Hi.\r\n"
    b"\r\n"
    b"We lost the game.  Are you hungry yet?\r\n"
    b"\r\n"
    b"Joe.\r\n"
)


def test_rfc8463_example_verifies() -> None:
    res = InMemoryResolver(RFC8463_RECORDS)
    results = verify(RFC8463_MESSAGE, res, now=1528637909 + 86400)
    assert [(r.status, r.selector, r.algorithm) for r in results] == [
        (DkimStatus.PASS, "brisbane", "ed25519-sha256"),
        (DkimStatus.PASS, "test", "rsa-sha256"),
    ]
    assert results[0].identity == "@football.example.com"
    assert results[0].signature_b == "/gCrinpcQOoI"


def test_rfc8463_example_key_and_tampering() -> None:
    seed = base64.b64decode(RFC8463_ED25519_SEED)
    public = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
    key = DkimKey("ed25519", ed25519.Ed25519PrivateKey.from_private_bytes(seed))
    assert (
        dns_txt_record(key)
        == RFC8463_RECORDS[("brisbane._domainkey.football.example.com", "TXT")][0]
    )
    assert public.public_bytes_raw() == key.public_key_data()
    tampered = RFC8463_MESSAGE.replace(b"hungry", b"thirsty")
    results = verify(tampered, InMemoryResolver(RFC8463_RECORDS), now=1528637909)
    assert [r.status for r in results] == [DkimStatus.FAIL, DkimStatus.FAIL]
    assert all(r.problem is not None and "bh=" in r.problem for r in results)
