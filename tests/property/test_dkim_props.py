"""DKIM against dkimpy, both ways, over generated messages; robustness of the parsers."""

from __future__ import annotations

import base64
import logging

import dkim as dkimpy  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailactors.protocol.dkim import (
    DkimKey,
    DkimResult,
    DkimStatus,
    dns_txt_record,
    generate_private_key,
    load_private_key,
    sign,
    verify,
)
from mailactors.protocol.dkim.canon import canonical_body
from mailactors.protocol.dkim.tags import TagListError, parse_tag_list
from mailactors.protocol.dns import InMemoryResolver

# In the past, so that dkimpy (which checks t= against the clock) accepts our t=.
NOW = 1_700_000_000
DOMAIN = "example.org"
SELECTOR = "sel"
KEY_NAME = f"{SELECTOR}._domainkey.{DOMAIN}"

RSA_PEM = generate_private_key("rsa")  # 2048 bits, the default
KEYS = {
    "rsa": load_private_key(RSA_PEM),
    "ed25519": load_private_key(generate_private_key("ed25519")),
}
CANONICALIZATIONS = [(h, b) for h in ("simple", "relaxed") for b in ("simple", "relaxed")]

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dkimpy_private_key(key: DkimKey) -> bytes:
    """dkimpy takes RSA keys as PEM and Ed25519 keys as the base64 of the 32-byte seed."""
    if key.algorithm == "rsa":
        return RSA_PEM
    raw = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw)


def resolver_for(key: DkimKey) -> InMemoryResolver:
    return InMemoryResolver({(KEY_NAME, "TXT"): [dns_txt_record(key)]})


# --- generated messages ---

# Header text octets: visible ASCII and 8-bit bytes (no controls, no bare CR/LF).
_TEXT_OCTETS = [bytes([c]) for c in [*range(0x21, 0x7F), *range(0x80, 0x100)]]
_WSP = st.sampled_from([b" ", b"  ", b"\t", b" \t ", b"\t\t", b"     "])
_WORDS = st.lists(st.sampled_from(_TEXT_OCTETS), min_size=1, max_size=8).map(b"".join)
_NAMES = [
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "Sender",
    "In-Reply-To",
    "References",
    "Content-Type",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "Received",
    "X-Mailer",
    "X-Tag",
]
_NAME = st.sampled_from(_NAMES).flatmap(lambda n: st.sampled_from([n, n.lower(), n.upper()]))


@st.composite
def header_values(draw: st.DrawFn, min_words: int = 0) -> bytes:
    """A field value: words separated by whitespace runs or folds, maybe trailing WSP."""
    words = draw(st.lists(_WORDS, min_size=min_words, max_size=6))
    out = draw(st.sampled_from([b" ", b"", b"\t", b"  "]))
    for index, word in enumerate(words):
        if index:
            fold = draw(st.booleans())
            out += (b"\r\n" if fold else b"") + draw(_WSP)
        out += word
    if words and draw(st.booleans()):
        out += draw(_WSP)
    return out


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Lines with whitespace runs and 8-bit octets, trailing blank lines, maybe an unfinished
    last line (ending in a non-blank octet), maybe empty."""
    line = st.lists(st.one_of(_WORDS, _WSP), max_size=6).map(b"".join)
    lines = draw(st.lists(line, max_size=8))
    blanks = draw(st.lists(st.sampled_from([b"", b" ", b"\t ", b"  "]), max_size=4))
    body = b"".join(part + b"\r\n" for part in lines + blanks)
    if draw(st.booleans()):
        body += draw(st.sampled_from([b"", b" ", b"\t"])) + draw(_WORDS)
    return body


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """Exactly one From (dkimpy counts one more From than listed when verifying), other
    fields in any number, order and case; CRLF or LF line ends."""
    fields = [
        draw(_NAME).encode() + b":" + draw(header_values()) for _ in range(draw(st.integers(0, 8)))
    ]
    position = draw(st.integers(0, len(fields)))
    fields.insert(
        position,
        draw(st.sampled_from([b"From", b"from", b"FROM"]))
        + b":"
        + draw(header_values(min_words=1)),
    )
    message = b"".join(field + b"\r\n" for field in fields) + b"\r\n" + draw(bodies())
    if draw(st.booleans()):
        message = message.replace(b"\r\n", b"\n")
    return message


# --- dkimpy verifies what we sign ---


@PROPS
@given(
    message=messages(),
    algorithm=st.sampled_from(sorted(KEYS)),
    canonicalization=st.sampled_from(CANONICALIZATIONS),
    body_length=st.booleans(),
    identity=st.sampled_from([None, "@example.org", "alice@example.org", "bob@mail.example.org"]),
    expiration=st.sampled_from([None, NOW + 10**9]),  # x= after dkimpy's clock too
)
def test_dkimpy_verifies_our_signatures(
    message: bytes,
    algorithm: str,
    canonicalization: tuple[str, str],
    body_length: bool,
    identity: str | None,
    expiration: int | None,
) -> None:
    key = KEYS[algorithm]
    field = sign(
        message,
        domain=DOMAIN,
        selector=SELECTOR,
        key=key,
        now=NOW,
        canonicalization=canonicalization,
        body_length=body_length,
        identity=identity,
        expiration=expiration,
    )
    record = dns_txt_record(key).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{KEY_NAME}.".encode()
        return record

    logger = logging.getLogger("test_dkim_props")
    assert dkimpy.verify(field + message, logger=logger, dnsfunc=dnsfunc)


# --- we verify what dkimpy signs ---


@PROPS
@given(
    message=messages(),
    algorithm=st.sampled_from(sorted(KEYS)),
    canonicalization=st.sampled_from(CANONICALIZATIONS),
    length=st.booleans(),
    include=st.one_of(
        st.none(), st.lists(st.sampled_from([n.lower() for n in _NAMES if n != "Received"]))
    ),
)
def test_we_verify_dkimpy_signatures(
    message: bytes,
    algorithm: str,
    canonicalization: tuple[str, str],
    length: bool,
    include: list[str] | None,
) -> None:
    key = KEYS[algorithm]
    field = dkimpy.sign(
        message,
        SELECTOR.encode(),
        DOMAIN.encode(),
        dkimpy_private_key(key),
        canonicalize=(canonicalization[0].encode(), canonicalization[1].encode()),
        signature_algorithm=key.signature_algorithm.encode(),
        include_headers=None if include is None else [b"from", *(n.encode() for n in include)],
        length=length,
    )
    results = verify(field + message, resolver_for(key), now=NOW)
    assert [r.status for r in results] == [DkimStatus.PASS], results[0].problem
    assert results[0].algorithm == key.signature_algorithm


# --- our own round trip, and tampering ---


@PROPS
@given(
    message=messages(),
    algorithm=st.sampled_from(sorted(KEYS)),
    canonicalization=st.sampled_from(CANONICALIZATIONS),
    body_length=st.booleans(),
    extra=_WORDS,
)
def test_appended_body_text(
    message: bytes,
    algorithm: str,
    canonicalization: tuple[str, str],
    body_length: bool,
    extra: bytes,
) -> None:
    key = KEYS[algorithm]
    field = sign(
        message,
        domain=DOMAIN,
        selector=SELECTOR,
        key=key,
        now=NOW,
        canonicalization=canonicalization,
        body_length=body_length,
    )
    res = resolver_for(key)
    [result] = verify(field + message, res, now=NOW)
    assert result.status is DkimStatus.PASS, result.problem
    # Text added after the end: covered only without l= (RFC 6376 3.4.5).
    ending = b"\n" if message.endswith(b"\n") else b"\r\n"
    [after] = verify(field + message + ending + extra + b"\r\n", res, now=NOW)
    if body_length:
        assert after.status is DkimStatus.PASS
    else:
        assert after.status is DkimStatus.FAIL
        assert after.problem is not None and "bh=" in after.problem


@PROPS
@given(
    message=messages(),
    algorithm=st.sampled_from(sorted(KEYS)),
    value=header_values(1),
    top=st.booleans(),
)
def test_added_from_breaks_the_signature(
    message: bytes, algorithm: str, value: bytes, top: bool
) -> None:
    key = KEYS[algorithm]
    field = sign(message, domain=DOMAIN, selector=SELECTOR, key=key, now=NOW)
    added = b"From:" + value + b"\r\n"
    if top:
        tampered = added + message
    else:
        end = message.find(b"\n\n") if b"\r\n" not in message else message.find(b"\r\n\r\n") + 1
        tampered = message[: end + 1] + added + message[end + 1 :]
    [result] = verify(field + tampered, resolver_for(key), now=NOW)
    assert result.status is DkimStatus.FAIL
    assert result.problem is not None and "b=" in result.problem


# --- robustness ---

_SIG_ALPHABET = b"abhvdsilqtxzk=;:@.-/+ \t\r\n0123456789ABCZ"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.lists(st.sampled_from([bytes([c]) for c in _SIG_ALPHABET]), max_size=300).map(
            lambda parts: b"DKIM-Signature:" + b"".join(parts) + b"\r\nFrom: a@b.c\r\n\r\nx"
        ),
    )
)
def test_verify_never_raises(data: bytes) -> None:
    results = verify(data, InMemoryResolver({(KEY_NAME, "TXT"): ["v=DKIM1; p="]}), now=NOW)
    assert all(isinstance(r, DkimResult) for r in results)
    assert all(r.status is not DkimStatus.PASS for r in results)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_tag_list_parser_total(data: bytes) -> None:
    try:
        tags = parse_tag_list(data)
    except TagListError:
        return
    for tag in tags.values():
        assert 0 <= tag.start <= tag.end <= len(data)
        assert tag.value.encode("utf-8", "replace") in data or "\ufffd" in tag.value


_TAG_NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,4}", fullmatch=True)
_TVAL = st.lists(
    st.sampled_from([bytes([c]) for c in range(0x21, 0x7F) if c != ord(";")]),
    min_size=1,
    max_size=6,
).map(b"".join)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(_TAG_NAMES, st.lists(_TVAL, max_size=3), max_size=6),
    st.lists(st.sampled_from([b"", b" ", b"\r\n ", b"\t"]), min_size=4, max_size=4),
    st.booleans(),
)
def test_tag_list_round_trip(
    tags: dict[str, list[bytes]], spaces: list[bytes], trailing: bool
) -> None:
    a, b, c, d = spaces
    specs = [
        a + name.encode() + b + b"=" + c + b" ".join(words) + d for name, words in tags.items()
    ]
    text = b";".join(specs) + (b";" if trailing and specs else b"")
    parsed = parse_tag_list(text)
    assert list(parsed) == list(tags)
    for name, words in tags.items():
        assert parsed[name].value == b" ".join(words).decode()


@settings(max_examples=200, deadline=None)
@given(bodies(), st.booleans())
def test_body_canonicalization_is_idempotent(body: bytes, relaxed: bool) -> None:
    once = canonical_body(body, relaxed)
    assert canonical_body(once, relaxed) == once
    assert once == b"" or once.endswith(b"\r\n")
    assert not once.endswith(b"\r\n\r\n")
    if relaxed:
        assert b"\t" not in once and b"  " not in once and b" \r\n" not in once
