"""Property tests for SMTP address parsing (RFC 5321 4.1.2)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mailactors.protocol.address import AddressError, parse_address, parse_path, split_path

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
LABEL = st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?\Z")
DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
DOT_STRING = st.lists(st.text(alphabet=ATEXT, min_size=1, max_size=8), min_size=1, max_size=4).map(
    ".".join
)


@given(st.text(max_size=80), st.booleans())
def test_parse_address_any_text(text: str, smtputf8: bool) -> None:
    try:
        address = parse_address(text, smtputf8=smtputf8)
    except AddressError:
        return
    # The canonical form is stable.
    assert parse_address(str(address), smtputf8=smtputf8) == address
    assert address.domain == address.domain.lower()


@given(DOT_STRING, DOMAIN)
def test_valid_addresses_parse(localpart: str, domain: str) -> None:
    text = f"{localpart}@{domain}"
    address = parse_address(text, smtputf8=False)
    assert address.localpart == localpart
    assert address.domain == domain.lower()
    assert str(address) == f"{localpart}@{domain.lower()}"


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20), DOMAIN)
def test_quoted_localparts_roundtrip(localpart: str, domain: str) -> None:
    escaped = localpart.replace("\\", "\\\\").replace('"', '\\"')
    text = f'"{escaped}"@{domain}'
    try:
        address = parse_address(text, smtputf8=False)
    except AddressError:
        assert len(escaped) + 2 > 64  # only the length limit may refuse it
        return
    assert address.localpart == localpart
    assert parse_address(str(address), smtputf8=False) == address


@given(st.text(max_size=80))
def test_paths_any_text(text: str) -> None:
    for parse in (parse_path, lambda t: split_path(t)[0]):
        try:
            mailbox = parse(text)
        except AddressError:
            continue
        assert isinstance(mailbox, str)
