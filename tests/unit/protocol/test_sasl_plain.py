"""PLAIN (RFC 4616) against the RFC's examples."""

from __future__ import annotations

import pytest

from mailactors.protocol.sasl.errors import SaslError
from mailactors.protocol.sasl.plain import make_plain, parse_plain


def test_rfc4616_examples() -> None:
    # RFC 4616 section 4: "<NUL>tim<NUL>tanstaaftanstaaf"
    assert parse_plain(b"\x00tim\x00tanstaaftanstaaf") == ("", "tim", "tanstaaftanstaaf")
    # "Ursel<NUL>Kurt<NUL>xipj3plmq": Kurt acting as Ursel.
    assert parse_plain(b"Ursel\x00Kurt\x00xipj3plmq") == ("Ursel", "Kurt", "xipj3plmq")


def test_utf8_and_roundtrip() -> None:
    response = make_plain("jöran", "pässwörd ☃")
    assert parse_plain(response) == ("", "jöran", "pässwörd ☃")


@pytest.mark.parametrize(
    "response",
    [
        b"",
        b"tim",
        b"\x00tim",
        b"\x00tim\x00pw\x00extra",
        b"\x00\x00password",  # empty authcid
        b"\x00tim\x00",  # empty password
        b"\x00tim\x00\xff\xfe",  # not UTF-8
        b"\x00tim\x00" + b"x" * 2000,  # absurdly long
    ],
)
def test_malformed(response: bytes) -> None:
    with pytest.raises(SaslError) as info:
        parse_plain(response)
    # Errors never echo the payload.
    assert "tim" not in str(info.value) and "xxxx" not in str(info.value)
